"""A three-node mesh shared by the tests that leave it as they found it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .mesh import Mesh

# The in-memory engine harness of tests/broker (a directory of modules, not a package),
# importable as `harness` here too when this directory runs alone.
sys.path.insert(0, str(Path(__file__).parent.parent / "broker"))


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    found = Mesh(Path(tmp_path_factory.mktemp("mesh")), 3)
    try:
        found.start()
        yield found
    finally:
        found.stop()
