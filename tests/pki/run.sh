#!/usr/bin/env bash
# playbooks/pki.yml on the controller itself (one broker, ansible_connection=local), with
# the CA and the host's files in a temporary directory: numbers given as extra vars
# (-e pki_renew_days=400 arrives as a string) must work, and a value that is not a whole
# number must stop the role at its argument check, naming the variable.
# The role writes /etc/ansible/facts.d/roost_pki.fact on its host: a copy of any existing
# one is put back at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
fact=/etc/ansible/facts.d/roost_pki.fact
if [ -e "$fact" ]; then cp -p "$fact" "$out/fact"; fi
restore() {
  if [ -e "$out/fact" ]; then cp -p "$out/fact" "$fact"; else rm -f "$fact"; fi
  rm -rf "$out"
}
trap restore EXIT

# case_ NAME EXPECTED_RC MESSAGE [ARGS...]: playbooks/pki.yml with ARGS.
case_() {
  expect "$1" "$2" "$3" -i "$here/local.ini" -e pki_ca_dir="$out/ca" -e pki_dir="$out/tls" \
    playbooks/pki.yml "${@:4}"
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
# A key that does not parse (the role skips its key task where the look found the key as
# it left it): remade, and a certificate issued for the new key; the CA is untouched.
ca_before=$(sha256sum "$out/ca/ca.key")
echo "not a key" > "$out/tls/b1.key"
case_ "a garbled host key is remade" 0 "Build the certificate request on the host (other key)" \
  -e pki_renew_days=30
if [ "$(sha256sum "$out/ca/ca.key")" = "$ca_before" ] && [ "$(stat -c %a "$out/tls/b1.key")" = 600 ] &&
   grep -q "BEGIN" "$out/tls/b1.key"; then
  passed=$((passed + 1)); echo "ok   a garbled host key is remade: a key again, 0600, same CA"
else
  failed=$((failed + 1)); echo "FAIL a garbled host key is remade: key or CA not as wanted"
fi
case_ "re-run after the new key" 0 "changed=0" -e pki_renew_days=30
case_ "renew days not a number" 2 "argument 'pki_renew_days' is of type str and we were unable to convert to int" \
  -e pki_renew_days=soon
case_ "CA renew days not a whole number" 2 "argument 'pki_ca_renew_days' is of type str and we were unable to convert to int" \
  -e pki_ca_renew_days=12.5
echo "pki tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
