#!/usr/bin/env bash
# Build the lab's systemd Debian image from Debian packages (no registry): debootstrap,
# prepare the root filesystem, `docker import`. The tag carries a hash of the recipe,
# so a build happens only when the recipe changes; a failed build never gets a good tag.
. "$(dirname "$0")/lib.sh"

# LAB_PI_ARCH=armhf: the Pis' image as well, by a second run of this script for that
# architecture (LAB_IMAGE_ARCH) after the build machine's own.
if [ -n "$LAB_PI_ARCH" ]; then
  LAB_PI_ARCH= bash "$0"
  exec env LAB_PI_ARCH= LAB_IMAGE_ARCH="$LAB_PI_ARCH" bash "$0"
fi
arch=${LAB_IMAGE_ARCH:-}
# Before the cache check: the handler is gone after a reboot, the image is not.
[ -z "$arch" ] || emulate "$arch"

codename=$(codename "$LAB_RELEASE")
repo=$(image_repo "$arch")
alias=$(image_alias "$arch")
# python3-apt: Ansible's apt module needs it and Raspberry Pi OS ships it.
INCLUDE=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,procps,ca-certificates,netbase
# Timers and units that grab the dpkg lock or fail in a container.
MASK=(apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
  e2scrub_reap.service fstrim.timer getty@tty1.service systemd-pstore.service)

host_codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
sources=$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
  /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
cas=$(ls /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)

# The mirror the build machine uses, so containers reach the same one.
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p; s/^deb  *\(\[[^]]*\] *\)\?\(http[^ ]*\) .*/\2/p' \
  $sources 2>/dev/null | grep -v security | head -n1)
mirror=${LAB_MIRROR:-${mirror:-http://deb.debian.org/debian}}

# The recipe: this script, release, mirror, and the host files copied into the image.
# shellcheck disable=SC2086
recipe=$(cat "$0" <(echo "$codename $mirror${arch:+ $arch}") $sources $cas | sha256sum | cut -c1-12)
tag=$repo:$(release_number "$LAB_RELEASE")-$recipe

if docker image inspect "$tag" >/dev/null 2>&1; then
  docker tag "$tag" "$alias"
  exit 0
fi
need_root
command -v debootstrap >/dev/null || die "debootstrap is not installed (run: make deps)"

mkdir -p "$LAB_DIR"
work=$(mktemp -d "$LAB_DIR/image.XXXXXX")
rootfs=$work/rootfs
building=$repo:building-$$
cleanup() {
  # debootstrap mounts /proc and /sys; a failed run can leave them mounted.
  grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
  docker rmi "$building" "$building-raw" >/dev/null 2>&1 || true
}
trap cleanup EXIT

blog=$LAB_DIR/debootstrap-$codename.log
log "building $tag: debootstrap $codename ${arch:-native} from $mirror (about 75 s native, log: $blog)"
# A foreign --arch runs debootstrap's second stage under qemu (emulate, above).
debootstrap --variant=minbase ${arch:+--arch="$arch"} --include="$INCLUDE" "$codename" "$rootfs" "$mirror" \
  >"$blog" 2>&1 || die "debootstrap $codename failed: $(tail -n1 "$blog")"

# Every container gets its own machine id at boot only if the file is empty.
: >"$rootfs/etc/machine-id"
mkdir -p "$rootfs/var/lib/dbus"
ln -sf /etc/machine-id "$rootfs/var/lib/dbus/machine-id"

# Same apt mirror as the build machine, renamed to the target release.
rm -f "$rootfs/etc/apt/sources.list"
for f in $sources; do
  [ -s "$f" ] && sed "s/\b$host_codename\b/$codename/g" "$f" >"$rootfs$f"
done

# HTTPS from inside the containers is verified against the build machine's extra CAs.
if [ -n "$cas" ]; then
  # shellcheck disable=SC2086
  cp $cas "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi

chroot "$rootfs" systemctl mask "${MASK[@]}" >/dev/null 2>&1
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
# No package lists in the image; date their directory to 1970 so Ansible's apt module
# (cache_valid_time judges by that mtime) refreshes them on first use.
touch -d @0 "$rootfs/var/lib/apt/lists"

tar -C "$rootfs" -c . | docker import -c 'CMD ["/sbin/init"]' -c 'ENV container=docker' \
  - "$building-raw" >/dev/null || die "docker import of $tag failed"
# import cannot set STOPSIGNAL: a one-line build on top (no pull, no context).
# SIGRTMIN+3 makes systemd halt cleanly in well under a second.
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nLABEL %s.recipe=%s\n' "$building-raw" "$LAB_LABEL" "$recipe" |
  DOCKER_BUILDKIT=0 docker build -q -t "$building" - >"$LAB_DIR/build.log" 2>&1 ||
  die "docker build of $tag failed: $(tail -n1 "$LAB_DIR/build.log")"
publish_image "$building" "$tag" "$alias" "$repo"
