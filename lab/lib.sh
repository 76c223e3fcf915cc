# Shared settings and helpers for the lab scripts. Sourced, never run directly.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_DIR=${LAB_DIR:-$ROOT/.lab}           # scratch space and logs (gitignored)
LAB_NAME=${LAB_NAME:-roost-lab}          # docker network name and container prefix
LAB_RELEASE=${LAB_RELEASE:-12}           # Debian release of the lab hosts: 12 or 13
# Debian architecture of the Pis when it is not the build machine's (armhf), run under
# qemu-user; brokers and load balancers stay native. Empty: every host is native.
LAB_PI_ARCH=${LAB_PI_ARCH:-}
# How Ansible reaches the hosts: `docker` (docker exec as root, no sudo) or `ssh` (as a
# real fleet: ssh as `pi` with a key, become root through sudo; image-ssh.sh's image).
LAB_CONNECTION=${LAB_CONNECTION:-docker}
# An ssh lab's key pair and known_hosts, on the controller only (down.sh removes them).
LAB_SSH_DIR=$LAB_DIR/ssh-$LAB_NAME
# Written by inventory.sh, removed by down.sh: one per lab, so two labs never share one.
if [ "$LAB_NAME" = roost-lab ]; then
  LAB_INVENTORY=${LAB_INVENTORY:-$ROOT/inventory/lab}
else
  LAB_INVENTORY=${LAB_INVENTORY:-$ROOT/inventory/lab-$LAB_NAME}
fi
LAB_LABEL=io.roost.lab                   # label on every container and network we own
IMAGE_REPO=roost-lab/debian

log() { echo "lab: $*" >&2; }
# One line that says why we stopped: the contract for every failure of `make lab`.
die() { echo "lab: error: $*" >&2; exit 1; }
trap 'echo "lab: error: $(basename "$0"): command failed: $BASH_COMMAND" >&2' ERR

case $LAB_CONNECTION in
  docker | ssh) ;;
  *) die "unsupported LAB_CONNECTION '$LAB_CONNECTION' (use docker or ssh)" ;;
esac

# free_port: a loopback port nobody listens on now (a lab of its own's LAB_PORT).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# changed_hosts LOG: "host changed" for every host whose PLAY RECAP in an ansible-playbook
# log says changed is not 0.
changed_hosts() {
  sed -n '/^PLAY RECAP/,$p' "$1" | awk '/ changed=/ { split($0, a, "changed="); split(a[2], b, " "); if (b[1] != 0) print $1, b[1] }'
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "run as root (apt-get, dockerd and debootstrap need it)"
}

codename() {
  case $1 in
    12 | bookworm) echo bookworm ;;
    13 | trixie) echo trixie ;;
    *) die "unsupported Debian release '$1' (use 12 or 13)" ;;
  esac
}

release_number() {
  case $(codename "$1") in bookworm) echo 12 ;; trixie) echo 13 ;; esac
}

# image_repo [ARCH]: another architecture's images live in their own repository
# (roost-lab/debian-armhf), so neither build's clean-up ever removes the other's.
image_repo() { echo "$IMAGE_REPO${1:+-$1}"; }

# The stable name Molecule and the lab use; it points at the newest good build.
image_alias() { echo "$(image_repo "${1:-}"):$(release_number "$LAB_RELEASE")"; }
# publish_image BUILT TAG ALIAS REPO: a finished build gets its tags (only a complete
# build reaches this), and REPO's older recipes of this release go: dead weight
# (containers still using one keep it).
publish_image() {
  docker tag "$1" "$2"
  docker tag "$1" "$3"
  docker images --format '{{.Repository}}:{{.Tag}}' "$4" |
    grep "^$4:$(release_number "$LAB_RELEASE")-" | grep -vx "$2" |
    xargs -r docker rmi >/dev/null 2>&1 || true
  log "built $2"
}

# emulate ARCH: let this machine run ARCH's binaries, in chroots and containers alike:
# qemu-user-static's binfmt_misc handler, registered by hand (no systemd here to do it).
# Its F flag opens the interpreter now, so a container needs no qemu inside.
# armhf is the only architecture tried (arm64 would need qemu-aarch64; not run in Docker).
emulate() {
  [ "$1" = armhf ] || die "unsupported LAB_PI_ARCH '$1' (use armhf, or none for the build machine's)"
  local conf=/usr/lib/binfmt.d/qemu-arm.conf
  [ -e /proc/sys/fs/binfmt_misc/qemu-arm ] && return
  need_root
  [ -r $conf ] || die "no qemu-arm handler for $1 (apt-get install qemu-user-static)"
  [ -e /proc/sys/fs/binfmt_misc/register ] ||
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
  cat $conf >/proc/sys/fs/binfmt_misc/register || die "cannot register qemu-arm with binfmt_misc"
}

# True when we created this docker object (container or network).
owned() { [ "$(docker inspect -f "{{ index .Config.Labels \"$LAB_LABEL\" }}" "$1" 2>/dev/null)" = 1 ] ||
  [ "$(docker network inspect -f "{{ index .Labels \"$LAB_LABEL\" }}" "$1" 2>/dev/null)" = 1 ]; }
