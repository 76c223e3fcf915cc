#!/usr/bin/env bash
# Issue #7's timings on a lab of its own (make timings N=3): 3 brokers + 1 load balancer
# + N Pis from fresh hosts, then
#   first converge   ansible-playbook site.yml (what make lab-deploy runs)
#   re-run           the same, which must report changed=0 on every host
#   add one Pi       start pi-<N+1>, rewrite the inventory, run README's add-a-Pi command;
#                    the new Pi's agent must then be connected through a load balancer
#   re-run           the full site.yml again: changed=0 on every host, the new one too
# Prints wall times and load averages, writes lab/results/kit-timings-<stamp>.txt, and
# removes the lab afterwards (KEEP=1 keeps it). Every step is bounded by a timeout.
LAB_NAME=${LAB_NAME:-roost-timings}
. "$(dirname "$0")/lib.sh"
need_root

N=${N:-3}
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 100 ] || die "N must be a number of Pis from 1 to 100"
# A free loopback port for the first load balancer, unless one is asked for.
LAB_PORT=${LAB_PORT:-$(free_port)}
export LAB_NAME LAB_INVENTORY LAB_PORT BROKERS=3 LBS=1
export PATH=$ROOT/.venv/bin:$PATH ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
# Per-task and per-role times in each log, for finding what is slow. The variable replaces
# ansible.cfg's callbacks_enabled, so those (roost_warmup, ...) are named too.
cfg_callbacks=$(python3 -c 'import configparser, sys
c = configparser.ConfigParser(); c.read(sys.argv[1])
print(c.get("defaults", "callbacks_enabled", fallback="").replace(" ", ""))' "$ROOT/ansible.cfg")
export ANSIBLE_CALLBACKS_ENABLED=${cfg_callbacks:+$cfg_callbacks,}ansible.posix.profile_tasks,ansible.posix.profile_roles

stamp=$(date -u +%Y%m%d-%H%M%S)
logs=$LAB_DIR/timings-$stamp
result=$ROOT/lab/results/kit-timings-$stamp.txt
mkdir -p "$logs" "$ROOT/lab/results"
new_pi=pi-$((N + 1))
echo "# Issue #7 timings (lab/timings.sh), logs in ${logs#"$ROOT"/}" >"$result"

load() { cut -d' ' -f1-3 /proc/loadavg; }
# Each line goes to the results file at once, so a step that fails keeps those before it.
note() { echo "$1" >>"$result"; echo "timings: $1" >&2; }

cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then log "kept lab $LAB_NAME (make lab-down LAB_NAME=$LAB_NAME)"
  else bash "$ROOT/lab/down.sh"; fi
}
trap cleanup EXIT

# CPU milliseconds used so far by each host of this lab, "name ms" per line, from its
# container's cgroup (v1 cpuacct or v2 cpu.stat). The lab's hosts share this machine's
# cores, real Pis do not: a step's CPU per host, next to the controller's own CPU, says
# what its wall time would be on a fleet where every host has its own CPU.
host_cpu() {
  local id name f
  docker ps --no-trunc --filter label=io.roost.lab=1 --filter "name=^$LAB_NAME-" \
    --format '{{.ID}} {{.Names}}' | while read -r id name; do
    f=/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage
    if [ -r "$f" ]; then echo "${name#"$LAB_NAME"-} $(($(cat "$f") / 1000000))"
    elif f=/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat; [ -r "$f" ]; then
      echo "${name#"$LAB_NAME"-} $(awk '$1 == "usage_usec" { print int($2 / 1000) }' "$f")"
    fi
  done
}
# Children's user + system CPU milliseconds of this shell so far: the controller's side
# of a step (ansible-playbook, its workers, the docker CLI). `times` runs in this shell
# (in a $(...) subshell it would count that subshell's children only).
own_cpu() {
  times >"$logs/times"
  awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); n += t[1] * 60 + t[2] }
    printf "%d\n", n * 1000 }' "$logs/times"
}
# cpu_note BEFORE_FILE AFTER_FILE CONTROLLER_MS: the controller's CPU seconds, the
# hosts' total and the busiest host's, for one step.
cpu_note() {
  local hosts
  hosts=$(awk 'NR == FNR { b[$1] = $2; next } { d = $2 - b[$1]; t += d; if (d > m) { m = d; h = $1 } }
    END { printf "hosts %.0f s, busiest %s %.1f s", t / 1000, h, m / 1000 }' "$1" "$2")
  note "$(printf '%-36s controller %s s, %s' "  CPU" $(($3 / 1000)) "$hosts")"
}

# step KEY LABEL LIMIT_SECONDS CMD...: run CMD with its output in $logs/KEY.log, bounded
# by LIMIT_SECONDS; note the wall time, the load average before and after, and the CPU
# the controller and the hosts spent.
step() {
  local key=$1 label=$2 limit=$3 before start rc=0
  shift 3
  before=$(load)
  host_cpu >"$logs/$key.cpu-before"
  own_cpu >"$logs/$key.cpu-own"
  start=$SECONDS
  timeout --kill-after=30 "$limit" "$@" >"$logs/$key.log" 2>&1 || rc=$?
  note "$(printf '%-36s %5s s   load %s -> %s' "$label" $((SECONDS - start)) "$before" "$(load)")"
  host_cpu >"$logs/$key.cpu-after"
  own_cpu >>"$logs/$key.cpu-own"
  cpu_note "$logs/$key.cpu-before" "$logs/$key.cpu-after" \
    $(($(tail -n1 "$logs/$key.cpu-own") - $(head -n1 "$logs/$key.cpu-own")))
  [ "$rc" -eq 0 ] || die "$label failed (exit $rc, limit $limit s): see $logs/$key.log"
}

# unchanged KEY LABEL: the step's recap says changed=0 for every host.
unchanged() {
  local changed
  changed=$(changed_hosts "$logs/$1.log")
  [ -z "$changed" ] || die "$2 changed something: $(echo "$changed" | tr '\n' ' ')(see $logs/$1.log)"
  note "$(printf '%-36s changed=0 on %s hosts' "$2" "$(sed -n '/^PLAY RECAP/,$p' "$logs/$1.log" | grep -c ' changed=')")"
}

note "lab $LAB_NAME: 3 brokers, 1 load balancer, $N Pis; $(nproc) cores; $(date -u '+%F %T') UTC"
note "$(printf '%-36s %s' "load average at start" "$(load)")"
bash "$ROOT/lab/down.sh"   # fresh hosts: the first converge starts from the bare image
cd "$ROOT"
step hosts "hosts up ($((N + 4)) containers)" 600 env PIS="$N" bash -c 'lab/up.sh && lab/inventory.sh'
step converge "first converge" 2700 ansible-playbook -i "$LAB_INVENTORY" site.yml
step rerun "re-run" 1200 ansible-playbook -i "$LAB_INVENTORY" site.yml
unchanged rerun "re-run"
step start "start $new_pi (container, inventory)" 300 env PIS=$((N + 1)) bash -c 'lab/up.sh && lab/inventory.sh'
# README's command; with monitoring, as the fleet dashboard lists the inventory's Pis.
step add "add $new_pi: --limit $new_pi,monitoring" 1200 ansible-playbook -i "$LAB_INVENTORY" site.yml --limit "$new_pi,monitoring"
# Online: the new Pi's agent says it is connected, and the load balancer holds an MQTT
# session from the Pi's address (what the verify suite checks; it waits out the backoff).
online() {
  local ip deadline=$((SECONDS + 120))
  ip=$(docker exec "$LAB_NAME-$new_pi" hostname -I | cut -d' ' -f1)
  while [ "$SECONDS" -lt "$deadline" ]; do
    if docker exec "$LAB_NAME-$new_pi" systemctl show -p StatusText roost-agent.service |
      grep -q 'connected to' &&
      docker exec "$LAB_NAME-lb-1" sh -c "echo 'show sess' | socat stdio /run/haproxy/admin.sock" |
      grep -q "src=$ip:.* fe=mqtt"; then
      return 0
    fi
    sleep 2
  done
  echo "$new_pi ($ip) has no MQTT session through lb-1 after 120 s"
  return 1
}
export new_pi
step online "$new_pi online (agent, lb-1 session)" 300 bash -c "$(declare -f online); online"
step rerun2 "re-run with $new_pi" 1200 ansible-playbook -i "$LAB_INVENTORY" site.yml
unchanged rerun2 "re-run with $new_pi"
note "$(printf '%-36s %s' "load average at end" "$(load)")"
log "wrote ${result#"$ROOT"/}"
