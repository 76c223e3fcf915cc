"""A certificate's expiry with cryptography 42+ and with Debian 12's cryptography 38."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from cryptography import x509

from roost.security.tls import not_after

from .certs import issue, make_ca


def test_not_after_of_a_real_certificate(tmp_path: Path) -> None:
    # Whichever cryptography runs the test (42+ from PyPI, or 38 from Debian 12).
    end = dt.datetime(2030, 1, 1, 12, 30, tzinfo=dt.UTC)
    server = issue(make_ca(tmp_path), "localhost", server=True, not_after=end)
    assert not_after(server.cert) == end.timestamp()


def test_not_after_without_not_valid_after_utc_takes_the_naive_one_as_utc() -> None:
    # What cryptography 38 (Debian 12's python3-cryptography) offers: a naive UTC datetime.
    old = cast(x509.Certificate, SimpleNamespace(not_valid_after=dt.datetime(2030, 1, 1)))
    assert not_after(old) == dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp()
