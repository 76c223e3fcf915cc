#!/usr/bin/env bash
# Make sure a Docker engine answers. Build and CI machines have no systemd, so nothing
# starts dockerd for us: start it in the background and poll until it answers.
. "$(dirname "$0")/lib.sh"

docker info >/dev/null 2>&1 && exit 0
need_root
command -v dockerd >/dev/null || die "dockerd is not installed (run: make deps)"
mkdir -p "$LAB_DIR"
dlog=$LAB_DIR/dockerd.log
log "starting dockerd (log: $dlog)"
# setsid: an interrupted make must not take the daemon down with it.
setsid nohup dockerd >"$dlog" 2>&1 </dev/null &
pid=$!
for _ in $(seq 120); do
  docker info >/dev/null 2>&1 && exit 0
  kill -0 "$pid" 2>/dev/null || die "dockerd exited at start: $(tail -n1 "$dlog")"
  sleep 0.5
done
kill "$pid" 2>/dev/null || true
die "dockerd did not answer within 60 s: $(tail -n1 "$dlog")"
