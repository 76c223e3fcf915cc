#!/usr/bin/env bash
# Install the Debian packages the lab and the test suites need, only if some are missing.
. "$(dirname "$0")/lib.sh"

# docker.io + debootstrap: the lab; mosquitto + haproxy: binaries the Python tests run;
# chromium + firefox-esr: the dashboard's browser tests; prometheus (promtool): the alert
# rules' tests; python3-venv: the repo's .venv; git, make: the workflow itself;
# openssh-client: ssh and ssh-keygen for the ssh lab (LAB_CONNECTION=ssh, make test's
# lab-ssh-test).
PACKAGES=(docker.io debootstrap mosquitto mosquitto-clients haproxy chromium firefox-esr
  prometheus python3-venv git make openssh-client)
# qemu-user-static: Pis of another architecture (LAB_PI_ARCH=armhf) run under emulation.
[ -z "$LAB_PI_ARCH" ] || PACKAGES+=(qemu-user-static)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

need_root
log "apt-get install ${missing[*]}"
mkdir -p "$LAB_DIR"
export DEBIAN_FRONTEND=noninteractive
apt_log=$LAB_DIR/apt.log
apt-get update -o DPkg::Lock::Timeout=300 >"$apt_log" 2>&1 ||
  die "apt-get update failed: $(tail -n1 "$apt_log")"
apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" \
  >>"$apt_log" 2>&1 || die "apt-get install ${missing[*]} failed: $(tail -n1 "$apt_log")"
