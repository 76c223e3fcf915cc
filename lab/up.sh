#!/usr/bin/env bash
# Start (or reconcile) the lab hosts: systemd containers on a private docker network,
# BROKERS brokers, LBS load balancers and PIS Pis. Safe to run again: running hosts are
# kept, missing ones started, surplus ones removed, hosts on an old image replaced.
. "$(dirname "$0")/lib.sh"

BROKERS=${BROKERS:-3}
LBS=${LBS:-1}
PIS=${PIS:-3}
LAB_PORT=${LAB_PORT:-18883}   # 127.0.0.1 port forwarded to the first load balancer's 8883
for n in BROKERS LBS PIS; do
  [[ ${!n} =~ ^[0-9]+$ ]] && [ "${!n}" -le 200 ] || die "$n must be a number from 0 to 200"
done
[ "$BROKERS" -ge 1 ] || die "BROKERS must be at least 1"

# LAB_CONNECTION=ssh: every host runs image-ssh.sh's image (sshd, sudo, user pi).
flavour=
if [ "$LAB_CONNECTION" = ssh ]; then
  [ -z "$LAB_PI_ARCH" ] || die "LAB_CONNECTION=ssh with LAB_PI_ARCH is not supported (no ssh image for $LAB_PI_ARCH)"
  flavour=ssh
fi
image=$(image_alias $flavour)
image_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null) ||
  die "image $image is missing (run: make image${flavour:+ LAB_CONNECTION=ssh})"
# LAB_PI_ARCH=armhf: the Pis run that architecture's image under qemu (lib.sh, emulate).
# No --platform: this dockerd (20.10, not experimental) ignores it on import, so the
# image says amd64; binfmt_misc runs its binaries all the same, and a Pi reports armv7l.
pi_image=$image pi_image_id=$image_id
if [ -n "$LAB_PI_ARCH" ]; then
  emulate "$LAB_PI_ARCH"
  pi_image=$(image_alias "$LAB_PI_ARCH")
  pi_image_id=$(docker image inspect -f '{{.Id}}' "$pi_image" 2>/dev/null) ||
    die "image $pi_image is missing (run: make image LAB_PI_ARCH=$LAB_PI_ARCH)"
fi

# Systemd as PID 1 without --privileged (LAB.md): named capabilities, the host's cgroups,
# tmpfs mounts systemd expects, and a private network with DNS between hosts.
RUN_ARGS=(--detach --network "$LAB_NAME" --label "$LAB_LABEL=1"
  --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE --cap-add SYS_NICE
  --cap-add IPC_LOCK --cap-add NET_RAW
  --cgroupns=host --volume /sys/fs/cgroup:/sys/fs/cgroup:rw
  --tmpfs /run:exec --tmpfs /run/lock --tmpfs /tmp:exec)

# Each systemd host uses inotify instances of the build machine's root user; the kernel
# default (128) runs out at about 15 hosts and units fail. Raise it as kind's docs advise.
hosts=$((BROKERS + LBS + PIS))
need=$((hosts * 16 + 256))
have=$(cat /proc/sys/fs/inotify/max_user_instances)
if [ "$have" -lt "$need" ]; then
  log "raising fs.inotify.max_user_instances from $have to $need for $hosts hosts"
  sysctl -qw fs.inotify.max_user_instances="$need" ||
    die "cannot raise fs.inotify.max_user_instances to $need (needed for $hosts hosts)"
fi

# LAB_CONNECTION=ssh: the lab's key pair, made once on the controller (private key 0600,
# in LAB_SSH_DIR under LAB_DIR, never in the repository); its public half goes to pi on
# every host below.
if [ "$LAB_CONNECTION" = ssh ]; then
  command -v ssh-keygen >/dev/null || die "ssh-keygen is not installed (run: make deps)"
  (umask 077 && mkdir -p "$LAB_SSH_DIR")
  [ -s "$LAB_SSH_DIR/id_ed25519" ] ||
    ssh-keygen -q -t ed25519 -N '' -C "roost lab $LAB_NAME" -f "$LAB_SSH_DIR/id_ed25519" ||
    die "cannot make the lab's key pair in $LAB_SSH_DIR"
  chmod 0600 "$LAB_SSH_DIR/id_ed25519"
fi

created=()
network_created=
undo() {
  # A failed run leaves nothing it started: no orphan containers, no empty network.
  for c in "${created[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  [ -z "$network_created" ] || docker network rm "$LAB_NAME" >/dev/null 2>&1 || true
}
trap 'undo' EXIT

mkdir -p "$LAB_DIR"  # error output of docker goes here, from the network on
if docker network inspect "$LAB_NAME" >/dev/null 2>&1; then
  owned "$LAB_NAME" || die "docker network '$LAB_NAME' exists and is not Roost's (set LAB_NAME)"
else
  docker network create --label "$LAB_LABEL=1" "$LAB_NAME" >/dev/null 2>"$LAB_DIR/net.err" ||
    die "cannot create docker network '$LAB_NAME': $(tail -n1 "$LAB_DIR/net.err")"
  network_created=1
fi

port_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' \
    "$1" 2>/dev/null
}

# start NAME GROUP [extra docker args]: make sure host NAME runs the current image.
start() {
  local name=$1 group=$2 container=$LAB_NAME-$1 image=$image image_id=$image_id
  shift 2
  [ "$group" != pis ] || image=$pi_image image_id=$pi_image_id
  if docker container inspect "$container" >/dev/null 2>&1; then
    owned "$container" || die "container '$container' exists and is not Roost's"
    if [ "$(docker inspect -f '{{.Image}}' "$container")" = "$image_id" ]; then
      [ "$(docker inspect -f '{{.State.Running}}' "$container")" = true ] ||
        docker start "$container" >/dev/null
      return
    fi
    log "replacing $container: the image changed"
    docker rm -f "$container" >/dev/null
  fi
  local err=$LAB_DIR/run.err
  created+=("$container")
  docker run "${RUN_ARGS[@]}" --name "$container" --hostname "$name" \
    --network-alias "$name" --label "$LAB_LABEL.group=$group" --label "$LAB_LABEL.host=$name" \
    "$@" "$image" >/dev/null 2>"$err" ||
    die "cannot start $container: $(tail -n1 "$err")"
}

wanted=()
for i in $(seq 1 "$BROKERS"); do wanted+=("broker-$i brokers"); done
for i in $(seq 1 "$LBS"); do wanted+=("lb-$i loadbalancers"); done
for i in $(seq 1 "$PIS"); do wanted+=("pi-$i pis"); done

# Surplus hosts from a bigger lab go first, so a smaller one can reuse names and ports.
keep=" $(printf '%s\n' "${wanted[@]}" | cut -d' ' -f1 | tr '\n' ' ')"
for c in $(docker ps -aq --filter "label=$LAB_LABEL=1" --filter "network=$LAB_NAME"); do
  host=$(docker inspect -f "{{ index .Config.Labels \"$LAB_LABEL.host\" }}" "$c")
  case $keep in *" $host "*) ;; *) log "removing surplus host $host"; docker rm -f "$c" >/dev/null ;; esac
done

for entry in "${wanted[@]}"; do
  read -r name group <<<"$entry"
  if [ "$name" = lb-1 ] && ! docker container inspect "$LAB_NAME-lb-1" >/dev/null 2>&1; then
    port_free "$LAB_PORT" || die "port 127.0.0.1:$LAB_PORT is taken (set LAB_PORT to a free port)"
    start "$name" "$group" --publish "127.0.0.1:$LAB_PORT:8883"
  else
    start "$name" "$group"
  fi
done

# Hosts are usable once systemd finishes booting. Many hosts on two cores boot slowly,
# so the bound grows with their number: 30 s plus 3 s per host.
bound=$((30 + 3 * hosts))
# An emulated Pi boots in 17 s when the machine is quiet, and once took over 45 s.
[ -z "$LAB_PI_ARCH" ] || bound=$((bound + 60 * PIS))
deadline=$((SECONDS + bound))
for entry in "${wanted[@]}"; do
  read -r name group <<<"$entry"
  state=
  while [ "$SECONDS" -lt "$deadline" ]; do
    state=$(docker exec "$LAB_NAME-$name" systemctl is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    sleep 0.5
  done
  case $state in
    running) ;;
    degraded) log "$name is degraded: $(docker exec "$LAB_NAME-$name" systemctl --failed --plain --no-legend | cut -d' ' -f1 | tr '\n' ' ')" ;;
    *) die "$name did not finish booting within $bound s (state: ${state:-unknown})" ;;
  esac
  # Docker's --tmpfs /run is a private mount; systemd needs it shared so a unit's
  # LoadCredential= files reach the service (systemd#38103). A real Pi boots with it shared.
  docker exec "$LAB_NAME-$name" mount --make-shared /run
  # LAB_CONNECTION=ssh: pi logs in with the lab's key, and only with it.
  if [ "$LAB_CONNECTION" = ssh ]; then
    docker exec "$LAB_NAME-$name" systemctl is-active --quiet ssh.service ||
      die "$name: sshd is not running ($(docker exec "$LAB_NAME-$name" systemctl is-active ssh.service || true))"
    docker exec -i "$LAB_NAME-$name" sh -c 'install -d -m 0700 -o pi -g pi ~pi/.ssh &&
      cat >~pi/.ssh/authorized_keys.tmp && chown pi:pi ~pi/.ssh/authorized_keys.tmp &&
      chmod 0600 ~pi/.ssh/authorized_keys.tmp &&
      mv ~pi/.ssh/authorized_keys.tmp ~pi/.ssh/authorized_keys' <"$LAB_SSH_DIR/id_ed25519.pub"
  fi
  # An emulated Pi's systemd cannot set up the agent's LoadCredential= (qemu-agent.conf).
  if [ -n "$LAB_PI_ARCH" ] && [ "$group" = pis ]; then
    docker exec -i "$LAB_NAME-$name" sh -c 'd=/etc/systemd/system/roost-agent.service.d &&
      mkdir -p $d && cat >$d/qemu-credentials.conf' <"$ROOT/lab/qemu-agent.conf"
  fi
done

created=()
network_created=
log "lab up: $BROKERS brokers, $LBS load balancers, $PIS Pis on network $LAB_NAME"
