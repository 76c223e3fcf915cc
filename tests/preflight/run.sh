#!/usr/bin/env bash
# The preflight play against small inventories of local hosts: it must pass the good one
# and stop each bad one with the sentence that names the problem.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
trap 'rm -rf "$out"' EXIT

# case_ INVENTORY EXPECTED_RC MESSAGE [ARGS...]: the preflight play (with ARGS, e.g.
# --limit) against one of the inventories here.
case_() {
  expect "$1 ${*:4}" "$2" "$3" -i "$here/$1" playbooks/preflight.yml "${@:4}"
}

case_ good.ini 0 "failed=0"
case_ monitoring.ini 0 "failed=0"
case_ missing-group.ini 2 "Inventory group 'loadbalancers' is missing or empty"
case_ duplicate-id.ini 2 "More than one Pi uses the client id(s) p1"
# Adding a Pi (--limit): its id is still compared with the whole inventory's.
case_ duplicate-id.ini 2 "More than one Pi uses the client id(s) p1" --limit p2
case_ missing-group.ini 2 "Inventory group 'loadbalancers' is missing or empty" --limit p1
case_ invalid-id.ini 2 "Client id 'a/b' of p1 must be 1-64 letters"
case_ bad-acl-rule.ini 2 'ACL rule(s) "read a/#/b" on p1 are not "ACCESS FILTER"'
case_ bad-dashboard-account.ini 2 "Dashboard account 'p1' of l1 (roost_dashboard_account) must be"
echo "preflight tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
