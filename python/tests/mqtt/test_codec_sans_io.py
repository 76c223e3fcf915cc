"""The MQTT package stays sans-IO: no module of it imports the network, TLS, time or asyncio."""

from __future__ import annotations

import ast
from pathlib import Path

import roost.mqtt

FORBIDDEN = {"asyncio", "socket", "ssl", "time", "selectors", "threading"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_no_io_imports() -> None:
    modules = sorted(Path(roost.mqtt.__file__).parent.glob("*.py"))
    assert len(modules) > 5
    offenders = {m.name: _imports(m) & FORBIDDEN for m in modules if _imports(m) & FORBIDDEN}
    assert offenders == {}
