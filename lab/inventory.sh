#!/usr/bin/env bash
# Write inventory/lab/ from the running lab containers. Ansible reaches them through the
# docker connection plugin: no SSH daemon, no keys. group_vars come from lab/group_vars.
# It is named `docker`, which ansible-core redirects to community.docker.docker and which
# Mitogen (ansible.cfg) takes over; under the full name Mitogen would leave it to stock Ansible.
. "$(dirname "$0")/lib.sh"

out=$LAB_INVENTORY
mkdir -p "$out"
ln -sfn "$ROOT/lab/group_vars" "$out/group_vars"

hosts_in() {
  docker ps --filter "label=$LAB_LABEL=1" --filter "label=$LAB_LABEL.group=$1" \
    --filter "network=$LAB_NAME" --format "{{.Label \"$LAB_LABEL.host\"}}" | sort -V
}

{
  echo "# Written by lab/inventory.sh from the running lab; \`make lab\` rewrites it."
  echo "all:"
  echo "  vars:"
  echo "    ansible_connection: docker"
  echo "    ansible_python_interpreter: /usr/bin/python3"
  echo "  children:"
  for group in brokers loadbalancers pis; do
    echo "    $group:"
    echo "      hosts:"
    for host in $(hosts_in "$group"); do
      echo "        $host:"
      echo "          ansible_host: $LAB_NAME-$host"
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
