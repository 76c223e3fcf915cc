"""The installed `roost` console script: version, dispatch, and refusal of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from roost import __version__

# The console script pip generated next to this interpreter, as users run it.
ROOST = str(Path(sys.executable).parent / "roost")


def run(*args: str, argv0: tuple[str, ...] = (ROOST,)) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv0, *args], check=False, capture_output=True, text=True, timeout=60)


def test_version_names_the_package_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"roost {__version__}"


def test_module_entry_point_matches_the_script() -> None:
    result = run("--version", argv0=(sys.executable, "-m", "roost"))
    assert (result.returncode, result.stdout) == (0, run("--version").stdout)


@pytest.mark.parametrize("args", [(), ("no-such-component",), ("broker",), ("broker", "nope")])
def test_missing_or_unknown_subcommand_exits_non_zero_with_usage(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "usage: roost" in result.stderr


@pytest.mark.parametrize("component", ["broker", "agent", "fleet"])
def test_every_component_is_registered(component: str) -> None:
    result = run(component, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: roost {component}")
