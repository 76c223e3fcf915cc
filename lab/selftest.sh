#!/usr/bin/env bash
# Bad input for `make lab` (issue 2): each case must stop with exit 1 and one line saying
# why, and leave nothing behind (no containers, no network, no image tagged as good).
# Needs a running dockerd and the lab image (make image). Names are unique per run.
. "$(dirname "$0")/lib.sh"
trap - ERR

lab=$ROOT/lab
tmp=$(mktemp -d)
id=selftest-$$
passed=0
failed=0
trap 'docker network rm "$id-foreign" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

# expect NAME PATTERN CMD...: CMD exits 1 and its last stderr line is one "lab: error:" line
# matching PATTERN.
expect() {
  local name=$1 pattern=$2 rc=0
  shift 2
  "$@" >/dev/null 2>"$tmp/err" || rc=$?
  local errors reason
  errors=$(grep -c '^lab: error:' "$tmp/err" || true)
  reason=$(tail -n1 "$tmp/err")
  if [ "$rc" -eq 1 ] && [ "$errors" -eq 1 ] && [[ $reason == "lab: error: "*$pattern* ]]; then
    return 0
  fi
  echo "FAIL $name: rc=$rc, stderr: $(tr '\n' '|' <"$tmp/err")"
  return 1
}

# check NAME CONDITION...: record a pass or a failure.
check() {
  local name=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); fi
}

no_containers() {
  [ -z "$(docker ps -aq --filter "name=^$1-")" ] || { echo "FAIL: containers left: $1-*"; return 1; }
}
no_network() {
  ! docker network inspect "$1" >/dev/null 2>&1 || { echo "FAIL: network $1 left"; return 1; }
}

network_taken() {
  docker network create "$id-foreign" >/dev/null
  expect network-taken "exists and is not Roost's" \
    env LAB_NAME="$id-foreign" BROKERS=1 LBS=1 PIS=0 bash "$lab/up.sh" &&
    no_containers "$id-foreign"
}

port_taken() {
  # Hold a loopback port for the duration of the case; broker-1 starts before lb-1
  # hits the port, so this also proves the started container is removed again.
  python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen();
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$tmp/port" &
  local holder=$! port=
  for _ in $(seq 50); do port=$(cat "$tmp/port"); [ -n "$port" ] && break; sleep 0.1; done
  local ok=0
  expect port-taken "port 127.0.0.1:$port is taken" \
    env LAB_NAME="$id" LAB_PORT="$port" BROKERS=1 LBS=1 PIS=0 bash "$lab/up.sh" &&
    no_containers "$id" && no_network "$id" || ok=1
  kill "$holder" 2>/dev/null || true
  return $ok
}

debootstrap_fails() {
  # Nothing listens on the discard port: debootstrap fails at its first download.
  local before after
  before=$(docker images -q --no-trunc "$IMAGE_REPO" | sort -u)
  expect debootstrap-fails "debootstrap bookworm failed" \
    env LAB_DIR="$tmp/lab" LAB_RELEASE=12 LAB_MIRROR=http://127.0.0.1:9/debian \
    bash "$lab/image.sh" || return 1
  after=$(docker images -q --no-trunc "$IMAGE_REPO" | sort -u)
  [ "$before" = "$after" ] || { echo "FAIL: image list changed"; return 1; }
  [ -z "$(ls "$tmp/lab" | grep '^image\.' || true)" ] || { echo "FAIL: rootfs left"; return 1; }
}

dockerd_cannot_start() {
  # A dockerd that dies at once, and a docker CLI pointed at a socket nobody serves.
  mkdir -p "$tmp/bin"
  printf '#!/bin/sh\necho "failed to start daemon: selftest" >&2\nexit 1\n' >"$tmp/bin/dockerd"
  chmod +x "$tmp/bin/dockerd"
  expect dockerd-cannot-start "dockerd exited at start: failed to start daemon: selftest" \
    env PATH="$tmp/bin:$PATH" DOCKER_HOST="unix://$tmp/none.sock" LAB_DIR="$tmp/lab" \
    bash "$lab/dockerd.sh"
}

check "network name taken" network_taken
check "port taken" port_taken
check "debootstrap fails" debootstrap_fails
check "dockerd cannot start" dockerd_cannot_start
echo "lab selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
