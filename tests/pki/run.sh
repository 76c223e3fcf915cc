#!/usr/bin/env bash
# playbooks/pki.yml on the controller itself (one broker, ansible_connection=local), with
# the CA and the host's files in a temporary directory: numbers given as extra vars
# (-e pki_renew_days=400 arrives as a string) must work, and a value that is not a whole
# number must stop the role at its argument check, naming the variable.
# The role writes /etc/ansible/facts.d/roost_pki.fact on its host: a copy of any existing
# one is put back at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mktemp -d)
fact=/etc/ansible/facts.d/roost_pki.fact
if [ -e "$fact" ]; then cp -p "$fact" "$out/fact"; fi
restore() {
  if [ -e "$out/fact" ]; then cp -p "$out/fact" "$fact"; else rm -f "$fact"; fi
  rm -rf "$out"
}
trap restore EXIT
passed=0
failed=0

# case_ NAME EXPECTED_RC MESSAGE [ARGS...]: run playbooks/pki.yml with ARGS, compare the
# exit code and look for MESSAGE (a fixed string) in its output.
case_() {
  local name=$1 want_rc=$2 message=$3 rc=0
  shift 3
  (cd "$root" && ansible-playbook -i "$here/local.ini" \
    -e ansible_connection=local -e ansible_python_interpreter="$(command -v python3)" \
    -e pki_ca_dir="$out/ca" -e pki_dir="$out/tls" playbooks/pki.yml "$@") >"$out/log" 2>&1 || rc=$?
  if [ "$rc" -eq "$want_rc" ] && grep -qF -- "$message" "$out/log"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name: rc=$rc, wanted $want_rc and '$message'"
    tail -n 8 "$out/log"
  fi
}

case_ "first run" 0 "failed=0"
# The CRL exists now, so this run compares its next_update with now + pki_renew_days
# (crl.yml) as well as the certificate's expiry (inspect.yml): 400 days is past both
# lifetimes (CRL 180, certificate 365), so both are renewed.
case_ "renew days as extra vars" 0 "Build the certificate request on the host (expiring)" \
  -e pki_renew_days=400 -e pki_ca_renew_days=400
if grep -A1 -F "TASK [pki : Sign the CRL with the CA key]" "$out/log" | grep -qF "changed: [b1"; then
  passed=$((passed + 1)); echo "ok   renew days as extra vars: the CRL is re-signed"
else
  failed=$((failed + 1)); echo "FAIL renew days as extra vars: the CRL was not re-signed"
fi
case_ "re-run with the renewed files" 0 "changed=0" -e pki_renew_days=30
case_ "renew days not a number" 2 "argument 'pki_renew_days' is of type str and we were unable to convert to int" \
  -e pki_renew_days=soon
case_ "CA renew days not a whole number" 2 "argument 'pki_ca_renew_days' is of type str and we were unable to convert to int" \
  -e pki_ca_renew_days=12.5
echo "pki tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
