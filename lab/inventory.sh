#!/usr/bin/env bash
# Write inventory/lab/ from the running lab containers. Ansible reaches them through the
# docker connection plugin: no SSH daemon, no keys. group_vars come from lab/group_vars.
# It is named `docker`, which ansible-core redirects to community.docker.docker and which
# Mitogen (ansible.cfg) takes over; under the full name Mitogen would leave it to stock Ansible.
# LAB_CONNECTION=ssh: the fleet's way instead (below): ssh as pi with the lab's key to
# each host's address on the lab network, host keys checked against a known_hosts file
# of the lab's own, become through sudo as the plays say.
. "$(dirname "$0")/lib.sh"

out=$LAB_INVENTORY
mkdir -p "$out"
if [ "$LAB_CONNECTION" = ssh ]; then
  # lab/group_vars without all/docker.yml (ansible_become: false): a variable would
  # override every play's `become: true`, and a fleet's inventory sets none.
  rm -rf "$out/group_vars"
  for entry in "$ROOT"/lab/group_vars/*; do
    if [ "$(basename "$entry")" = all ]; then
      mkdir -p "$out/group_vars/all"
      for f in "$entry"/*; do
        [ "$(basename "$f")" = docker.yml ] || ln -s "$f" "$out/group_vars/all/"
      done
    else
      ln -s "$entry" "$out/group_vars/"
    fi
  done
else
  [ -L "$out/group_vars" ] || rm -rf "$out/group_vars"   # an ssh lab's, if it was one
  ln -sfn "$ROOT/lab/group_vars" "$out/group_vars"
fi

hosts_in() {
  docker ps --filter "label=$LAB_LABEL=1" --filter "label=$LAB_LABEL.group=$1" \
    --filter "network=$LAB_NAME" --format "{{.Label \"$LAB_LABEL.host\"}}" | sort -V
}

# The address of a host on the lab network (ssh labs connect to it).
address() {
  docker inspect -f "{{ (index .NetworkSettings.Networks \"$LAB_NAME\").IPAddress }}" "$LAB_NAME-$1"
}

if [ "$LAB_CONNECTION" = ssh ]; then
  key=$LAB_SSH_DIR/id_ed25519
  known=$LAB_SSH_DIR/known_hosts
  [ -s "$key" ] || die "no lab key $key (run lab/up.sh with LAB_CONNECTION=ssh first)"
  # Each host's own public host keys, read through docker exec (the docker socket vouches
  # for them) rather than ssh-keyscan over the network, which would trust whatever
  # answered first. One line per address; ssh checks every login against this file only.
  for group in brokers loadbalancers pis; do
    for host in $(hosts_in "$group"); do
      ip=$(address "$host")
      [ -n "$ip" ] || die "$host has no address on network $LAB_NAME"
      keys=$(docker exec "$LAB_NAME-$host" sh -c 'cat /etc/ssh/ssh_host_*_key.pub') ||
        die "cannot read the host keys of $host"
      echo "$keys" | awk -v ip="$ip" '{ print ip, $1, $2 }'
    done
  done >"$known.tmp"
  mv "$known.tmp" "$known"
fi

{
  echo "# Written by lab/inventory.sh from the running lab; \`make lab\` rewrites it."
  echo "all:"
  echo "  vars:"
  if [ "$LAB_CONNECTION" = ssh ]; then
    echo "    ansible_connection: ssh"
    echo "    ansible_user: pi"
    echo "    ansible_ssh_private_key_file: '$key'"
    # Only this lab's key and known_hosts (nothing read from or written to ~/.ssh); an
    # unknown or changed host key stops the connection (host_key_checking stays True).
    echo "    ansible_ssh_common_args: '-o UserKnownHostsFile=$known -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'"
  else
    echo "    ansible_connection: docker"
  fi
  echo "    ansible_python_interpreter: /usr/bin/python3"
  echo "  children:"
  for group in brokers loadbalancers pis; do
    echo "    $group:"
    echo "      hosts:"
    for host in $(hosts_in "$group"); do
      echo "        $host:"
      if [ "$LAB_CONNECTION" = ssh ]; then
        echo "          ansible_host: $(address "$host")"
      else
        echo "          ansible_host: $LAB_NAME-$host"
      fi
    done
  done
  # Prometheus (roles/monitoring) runs on the first load balancer, if there is one.
  monitor=$(hosts_in loadbalancers | head -n1)
  if [ -n "$monitor" ]; then
    echo "    monitoring:"
    echo "      hosts:"
    echo "        $monitor:"
  fi
} >"$out/hosts.yml.tmp"
mv "$out/hosts.yml.tmp" "$out/hosts.yml"
