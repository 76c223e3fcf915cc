#!/usr/bin/env bash
# Remove the lab: every container we labelled on the lab network, then the network.
. "$(dirname "$0")/lib.sh"

ids=$(docker ps -aq --filter "label=$LAB_LABEL=1" --filter "network=$LAB_NAME")
# shellcheck disable=SC2086
[ -z "$ids" ] || docker rm -f $ids >/dev/null
if docker network inspect "$LAB_NAME" >/dev/null 2>&1 && owned "$LAB_NAME"; then
  docker network rm "$LAB_NAME" >/dev/null
fi
rm -rf "$LAB_INVENTORY"
# An ssh lab's key pair and known_hosts (LAB_CONNECTION=ssh) go with it.
rm -rf "$LAB_SSH_DIR"
log "lab down"
