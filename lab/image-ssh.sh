#!/usr/bin/env bash
# The ssh lab's image (LAB_CONNECTION=ssh): the lab image (image.sh) plus what a Raspberry
# Pi OS host has and the docker connection never needs: openssh-server and sudo, and a
# user `pi` with passwordless sudo (Raspberry Pi OS's /etc/sudoers.d/010_pi-nopasswd),
# key logins only. A layer on top of image.sh's image, in its own repository
# (roost-lab/debian-ssh), so image.sh, its recipe and its hash stay as they are. Tagged by
# a hash of this script and the base image's id: rebuilt only when either changes.
# up.sh puts the lab's public key into ~pi/.ssh/authorized_keys of each host it starts.
. "$(dirname "$0")/lib.sh"

base=$(image_alias)
base_id=$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null) ||
  die "image $base is missing (run: make image)"
repo=$(image_repo ssh)
alias=$(image_alias ssh)
recipe=$(cat "$0" <(echo "$base_id") | sha256sum | cut -c1-12)
tag=$repo:$(release_number "$LAB_RELEASE")-$recipe

if docker image inspect "$tag" >/dev/null 2>&1; then
  docker tag "$tag" "$alias"
  exit 0
fi

# One RUN: apt from the mirror the base image already points at (the containers reach the
# build machine's), then the lists dropped and dated 1970 again as image.sh leaves them.
# The host keys the package generated are removed: every container makes its own at its
# first boot (ssh-keygen -A before sshd starts), as Raspberry Pi OS does on first boot.
read -r -d '' setup <<'EOF' || true
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends openssh-server sudo >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/*.log /etc/ssh/ssh_host_*
touch -d @0 /var/lib/apt/lists
mkdir -p /etc/systemd/system/ssh.service.d
printf '%s\n' '[Service]' 'ExecStartPre=' 'ExecStartPre=/usr/bin/ssh-keygen -A' \
  'ExecStartPre=/usr/sbin/sshd -t' >/etc/systemd/system/ssh.service.d/host-keys.conf
printf '%s\n' '# Roost lab: key logins as pi only, as on a fleet set up for Ansible.' \
  'PasswordAuthentication no' 'KbdInteractiveAuthentication no' \
  'AuthenticationMethods publickey' 'PermitRootLogin no' 'AllowUsers pi' \
  >/etc/ssh/sshd_config.d/roost-lab.conf
useradd --create-home --shell /bin/bash --groups sudo pi
# '*': no password can ever match (key logins only); '!' would mark the account locked.
usermod -p '*' pi
echo 'pi ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/010_pi-nopasswd
chmod 0440 /etc/sudoers.d/010_pi-nopasswd
visudo -cq
EOF

mkdir -p "$LAB_DIR"
building=$repo:building-$$
trap 'docker rmi "$building" >/dev/null 2>&1 || true' EXIT
blog=$LAB_DIR/build-ssh.log
log "building $tag: $base + openssh-server, sudo, user pi (log: $blog)"
# The script goes in base64, so no Dockerfile quoting rule can change it.
printf 'FROM %s\nRUN echo %s | base64 -d | sh\nLABEL %s.recipe=%s\n' "$base_id" \
  "$(printf '%s\n' "$setup" | base64 -w0)" "$LAB_LABEL" "$recipe" |
  DOCKER_BUILDKIT=0 docker build -q -t "$building" - >"$blog" 2>&1 ||
  die "docker build of $tag failed: $(tail -n1 "$blog")"
publish_image "$building" "$tag" "$alias" "$repo"
