# Shared by tests/*/run.sh: each runs playbooks on the controller itself
# (ansible_connection=local) and checks exit codes and messages.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mktemp -d)
passed=0
failed=0

# expect NAME WANT_RC MESSAGE ARGS...: run ansible-playbook ARGS from the repository root on
# the local connection, compare its exit code and look for MESSAGE (a fixed string) in
# its output, kept in $out/log for further checks.
expect() {
  local name=$1 want_rc=$2 message=$3 rc=0
  shift 3
  # ansible_user: the local login, as stock Ansible assumes; Mitogen (ansible.cfg) takes an
  # unset one as other than root and would run `become: true` plays through sudo.
  (cd "$root" && ansible-playbook -e ansible_connection=local -e ansible_user="$(id -un)" \
    -e ansible_python_interpreter="$(command -v python3)" "$@") >"$out/log" 2>&1 || rc=$?
  if [ "$rc" -eq "$want_rc" ] && grep -qF -- "$message" "$out/log"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name: rc=$rc, wanted $want_rc and '$message'"
    tail -n 8 "$out/log"
  fi
}
