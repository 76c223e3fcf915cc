"""What the pki role and revoke.yml must leave on the hosts and on the controller.

Every check reads the hosts' files with openssl on the hosts themselves; the CA side is
read from the scenario's CA directory on the controller.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
from testinfra.host import Host

TLS = "/etc/roost/tls"
CA_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "pki"
REVOKED = "molecule-pki-pi-1"

# inventory name -> (common name, extended key usage, key owner, CRL expected)
EXPECTED = {
    "molecule-pki-broker-1": (
        "node:molecule-pki-broker-1",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "root",
        True,
    ),
    "molecule-pki-lb-1": (
        "molecule-pki-lb-1",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "root",
        True,
    ),
    "molecule-pki-pi-1": ("greenhouse-north", "TLS Web Client Authentication", "roost", False),
}


def name_of(host: Host) -> str:
    return str(host.ansible.get_variables()["inventory_hostname"])


def openssl(host: Host, args: str) -> str:
    return str(host.check_output(f"openssl {args}"))


def test_key_is_private_to_its_service_user(host: Host) -> None:
    name = name_of(host)
    key = host.file(f"{TLS}/{name}.key")
    owner = EXPECTED[name][2]
    assert (key.user, key.group, key.mode) == (owner, owner, 0o600)
    tls = host.file(TLS)
    assert (tls.user, tls.mode) == ("root", 0o755)


def test_certificate_chains_to_the_ca_and_matches_the_key(host: Host) -> None:
    name = name_of(host)
    for path in (f"{TLS}/{name}.crt", f"{TLS}/ca.crt"):
        assert host.file(path).mode == 0o644
    assert openssl(host, f"verify -CAfile {TLS}/ca.crt {TLS}/{name}.crt").endswith(": OK")
    cert_pub = openssl(host, f"x509 -noout -pubkey -in {TLS}/{name}.crt")
    key_pub = openssl(host, f"pkey -pubout -in {TLS}/{name}.key")
    assert cert_pub == key_pub
    ca_pem = (CA_DIR / "ca.crt").read_text()
    assert host.file(f"{TLS}/ca.crt").content_string == ca_pem


def test_certificate_names_and_usage(host: Host) -> None:
    name = name_of(host)
    common_name, eku, _, _ = EXPECTED[name]
    cert = f"{TLS}/{name}.crt"
    subject = openssl(host, f"x509 -noout -subject -nameopt multiline -in {cert}")
    assert subject.split("commonName", 1)[1].split("=", 1)[1].strip() == common_name
    exts = "extendedKeyUsage,subjectAltName,basicConstraints"
    ext = openssl(host, f"x509 -noout -ext {exts} -in {cert}")
    assert eku in ext
    assert "CA:FALSE" in ext
    if name.startswith("molecule-pki-pi"):
        assert "Subject Alternative Name" not in ext
        return
    address = host.interface.default().addresses[0]
    service = ("DNS:mqtt.roost.test", "IP Address:10.99.0.1")
    for san in (f"DNS:{name}", f"IP Address:{address}", *service):
        assert san in ext, san
    if name.startswith("molecule-pki-broker"):
        # TLS passthrough: the broker answers for the load balancer's name too.
        assert "DNS:molecule-pki-lb-1" in ext


def test_crl_only_where_client_certificates_are_checked(host: Host) -> None:
    crl = host.file(f"{TLS}/crl.pem")
    assert crl.exists == EXPECTED[name_of(host)][3]
    if crl.exists:
        assert crl.mode == 0o644
        assert crl.content_string == (CA_DIR / "crl.pem").read_text()


def test_role_publishes_a_local_fact(host: Host) -> None:
    name = name_of(host)
    fact = host.ansible("setup", "filter=ansible_local")["ansible_facts"]["ansible_local"]
    assert fact["roost_pki"]["common_name"] == EXPECTED[name][0]
    assert fact["roost_pki"]["key"] == f"{TLS}/{name}.key"


def test_revoked_pi_fails_and_others_pass_the_crl_check(host: Host) -> None:
    if not name_of(host).startswith("molecule-pki-broker"):
        pytest.skip("checked on a broker, where the CRL is used")
    revoked = (sorted((CA_DIR / "issued" / REVOKED).glob("*.crt"))[0]).read_text()
    host.check_output(f"printf '%s' {shlex.quote(revoked)} > /tmp/revoked-pi.crt")
    check = f"openssl verify -crl_check -CAfile {TLS}/ca.crt -CRLfile {TLS}/crl.pem"
    result = host.run(f"{check} /tmp/revoked-pi.crt")
    assert result.rc != 0
    assert "certificate revoked" in result.stdout + result.stderr
    own = host.run(f"{check} {TLS}/molecule-pki-broker-1.crt")
    assert own.rc == 0, own.stderr


def test_ca_stays_private_on_the_controller() -> None:
    assert stat.S_IMODE(CA_DIR.stat().st_mode) == 0o700
    assert stat.S_IMODE((CA_DIR / "ca.key").stat().st_mode) == 0o600
    ca = str(CA_DIR / "ca.crt")
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "basicConstraints,keyUsage", "-in", ca],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "critical" in text and "CA:TRUE" in text
    assert "Certificate Sign, CRL Sign" in text
