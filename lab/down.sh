#!/usr/bin/env bash
# Remove the lab: every container we labelled on the lab network, then the network.
. "$(dirname "$0")/lib.sh"

ids=$(docker ps -aq --filter "label=$LAB_LABEL=1" --filter "network=$LAB_NAME")
# shellcheck disable=SC2086
[ -z "$ids" ] || docker rm -f $ids >/dev/null
# dockerd can keep an endpoint of a container `rm -f` removed ("has active endpoints",
# seen once after a 25-host lab, and still there a minute later): try for 10 s, then
# keep the empty network with a warning. The hosts are gone, and up.sh reuses it.
if docker network inspect "$LAB_NAME" >/dev/null 2>&1 && owned "$LAB_NAME"; then
  for try in $(seq 1 10); do
    err=$(docker network rm "$LAB_NAME" 2>&1 >/dev/null) && break
    if [ "$try" -eq 10 ]; then
      err=${err%%$'\n'*}
      log "warning: kept the empty network $LAB_NAME (${err##*: }); restarting dockerd clears it"
    else sleep 1; fi
  done
fi
rm -rf "$LAB_INVENTORY"
# An ssh lab's key pair and known_hosts (LAB_CONNECTION=ssh) go with it.
rm -rf "$LAB_SSH_DIR"
log "lab down"
