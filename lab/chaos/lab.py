"""The lab as the chaos run sees it: its hosts (from the inventory), commands in its
containers, playbooks of the kit, and a client certificate for the checker signed by the
lab's CA on this controller. Every command has a time bound."""

from __future__ import annotations

import datetime
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]


class LabError(Exception):
    """Something the run needs is missing or failed; the message says what to do."""


def run(*argv: str, timeout: float = 60, check: bool = True) -> str:
    try:
        # From the repository root, so ansible-playbook reads its ansible.cfg (roles_path).
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=ROOT)
    except subprocess.TimeoutExpired as err:
        raise LabError(f"{' '.join(argv[:4])} ... took over {timeout:.0f} s") from err
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"{' '.join(argv[:4])} ... failed: {tail[0]}")
    return done.stdout


@dataclass
class Lab:
    name: str  # LAB_NAME: network and container prefix
    inventory: Path

    def groups(self) -> dict[str, list[str]]:
        path = self.inventory / "hosts.yml"
        if not path.exists():
            raise LabError(f"no inventory {path}: bring the lab up first "
                           f"(make lab LAB_NAME={self.name} PIS=3)")
        doc = yaml.safe_load(path.read_text())["all"]["children"]
        return {g: sorted((doc.get(g) or {}).get("hosts") or {}) for g in
                ("brokers", "loadbalancers", "pis")}

    def container(self, host: str) -> str:
        return f"{self.name}-{host}"

    def sh(self, host: str, *argv: str, timeout: float = 60, check: bool = True) -> str:
        return run("docker", "exec", self.container(host), *argv, timeout=timeout, check=check)

    def address(self, host: str) -> str:
        fmt = f'{{{{(index .NetworkSettings.Networks "{self.name}").IPAddress}}}}'
        return run("docker", "inspect", "-f", fmt, self.container(host)).strip()

    def journal(self, host: str, unit: str, since: float) -> list[str]:
        return self.sh(host, "journalctl", "-u", unit, "-o", "short-unix", "--no-pager",
                       "--since", f"@{since:.0f}", timeout=60).splitlines()

    def playbook(self, playbook: str, *args: str, timeout: float = 900) -> None:
        run(str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(self.inventory),
            str(ROOT / playbook), *args, timeout=timeout)

    def unit_active(self, host: str, unit: str) -> bool:
        return self.sh(host, "systemctl", "is-active", unit, check=False).strip() == "active"

    def wait_active(self, host: str, unit: str, bound: float) -> float:
        """Poll until the unit is active again; return when that was seen."""
        deadline = time.time() + bound
        while time.time() < deadline:
            if self.unit_active(host, unit):
                return time.time()
            time.sleep(0.5)
        raise LabError(f"{unit} on {host} not active within {bound:.0f} s")

    def ca_dir(self) -> Path:
        return ca_dir(self.inventory)


def ca_dir(inventory: Path) -> Path:
    """roles/pki's default pki_ca_dir for this inventory."""
    return Path.home() / ".roost" / "pki" / inventory.resolve().name


def issue_cert(ca_dir: Path, out: Path, cn: str) -> tuple[Path, Path, Path]:
    """A client certificate for `cn` (1 day, clientAuth) signed by the lab's CA; the key
    is made here and written 0600. Returns (ca, cert, key)."""
    ca_crt, ca_key_path = ca_dir / "ca.crt", ca_dir / "ca.key"
    if not ca_key_path.exists():
        raise LabError(f"no CA key in {ca_dir}: deploy the lab first (make lab LAB_NAME=...)")
    ca_cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise LabError(f"{ca_key_path} is not an EC key as the pki role makes them")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, cert_path = out / f"{cn}.key", out / f"{cn}.crt"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca_crt, cert_path, key_path
