"""Fixtures of the secure suites."""

from __future__ import annotations

import pytest

from .pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA with server, device and revoked-device certificates, one per module."""
    return make_pki(tmp_path_factory.mktemp("pki"))
