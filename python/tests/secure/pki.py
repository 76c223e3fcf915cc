"""The certificates the secure suites share: one test CA per module (conftest's `pki`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from security.certs import Issued, issue, make_ca, make_crl


@dataclass(frozen=True)
class Pki:
    """A CA, the broker's server certificate (localhost), a device (pi-0001), a revoked
    device (pi-0666) and the CRL that names it."""

    ca: Issued
    server: Issued
    device: Issued
    revoked: Issued
    crl: Path


def make_pki(directory: Path) -> Pki:
    ca = make_ca(directory)
    revoked = issue(ca, "pi-0666")
    return Pki(ca, issue(ca, "localhost", server=True), issue(ca, "pi-0001"), revoked,
               make_crl(ca, revoked=[revoked]))
