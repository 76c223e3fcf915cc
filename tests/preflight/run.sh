#!/usr/bin/env bash
# The preflight play against small inventories of local hosts: it must pass the good one
# and stop each bad one with the sentence that names the problem.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0
failed=0

# case INVENTORY EXPECTED_RC MESSAGE [ARGS...]: run preflight (with ARGS, e.g. --limit),
# compare exit code and error message.
case_() {
  local inv=$1 want_rc=$2 message=$3 rc=0
  shift 3
  (cd "$root" && ansible-playbook -i "$here/$inv" \
    -e ansible_connection=local -e ansible_python_interpreter="$(command -v python3)" \
    playbooks/preflight.yml "$@") >"$out/log" 2>&1 || rc=$?
  if [ "$rc" -eq "$want_rc" ] && grep -qF -- "$message" "$out/log"; then
    passed=$((passed + 1)); echo "ok   $inv $*"
  else
    failed=$((failed + 1)); echo "FAIL $inv $*: rc=$rc, wanted $want_rc and '$message'"
    tail -n 5 "$out/log"
  fi
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
