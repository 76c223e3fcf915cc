"""Client certificates for the scale run's simulated devices and its probe, signed by the
lab's CA on the controller (roles/pki keeps it in ~/.roost/pki/<inventory name>) with the
chaos run's issue_cert: CN = client id, clientAuth, ECDSA P-256, key 0600.

They are cached in a directory named after the CA certificate's digest, so a rerun signs
nothing and a new lab CA gets new ones; certificates older than REUSE are signed again
(issue_cert makes them valid for a day).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from chaos.lab import ca_dir, issue_cert

REUSE = 12 * 3600  # seconds


def issue(inventory: Path, cache: Path,
          names: list[str]) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    """-> (the CA certificate, each name's (certificate, key))."""
    ca = ca_dir(inventory)
    out = cache / ("certs-" + hashlib.sha256((ca / "ca.crt").read_bytes()).hexdigest()[:16])
    paths = {n: (out / f"{n}.crt", out / f"{n}.key") for n in names}
    fresh = time.time() - REUSE
    for n, (crt, key) in paths.items():
        if not (key.exists() and crt.exists() and crt.stat().st_mtime > fresh):
            issue_cert(ca, out, n)
    return ca / "ca.crt", paths
