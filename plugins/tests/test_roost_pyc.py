"""plugins/callback/roost_pyc.py against ansible-core's real collection importer."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib
import py_compile
import sys
import typing as t

import pytest
from ansible.utils.collection_loader._collection_finder import (  # type: ignore[import-untyped]
    _AnsibleCollectionFinder,
    _AnsibleCollectionPkgLoaderBase,
)

PLUGIN = pathlib.Path(__file__).resolve().parents[1] / "callback" / "roost_pyc.py"
spec = importlib.util.spec_from_file_location("roost_pyc", PLUGIN)
assert spec and spec.loader
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)

COLLECTION = "ansible_collections.roosttest.pyc.plugins.module_utils"


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[pathlib.Path]:
    """An empty collection roosttest.pyc found by a finder of its own (one per module: the
    finder and sys.modules keep the first path they see, so each test uses its own name)."""
    root = tmp_path_factory.mktemp("collections")
    utils = root / COLLECTION.replace(".", "/")
    utils.mkdir(parents=True)
    previous = _AnsibleCollectionFinder._find_existing_finder()
    # Modules an earlier finder imported would hide this one's path: set them aside.
    ours = [m for m in sys.modules if m.startswith("ansible_collections")]
    before = {m: sys.modules.pop(m) for m in ours}
    _AnsibleCollectionFinder(paths=[str(root)], scan_sys_paths=False)._install()
    yield utils
    _AnsibleCollectionFinder._remove()
    for name in [m for m in sys.modules if m.startswith("ansible_collections")]:
        del sys.modules[name]
    sys.modules.update(before)
    if previous is not None:
        previous._install()


@pytest.fixture
def wrapped() -> t.Iterator[None]:
    original = _AnsibleCollectionPkgLoaderBase.get_code
    assert plugin.install()
    yield
    _AnsibleCollectionPkgLoaderBase.get_code = original


def stale_source(utils: pathlib.Path, name: str, compiled: str, source: str) -> pathlib.Path:
    """A module whose bytecode says `compiled` and whose source says `source`, with the same
    size and mtime, so only a loader that reads the .pyc sees `compiled`."""
    path = utils / f"{name}.py"
    path.write_text(compiled)
    py_compile.compile(str(path), doraise=True)
    stamp = path.stat().st_mtime_ns
    path.write_text(source)
    os.utime(path, ns=(stamp, stamp))
    return path


def load(name: str) -> t.Any:
    return importlib.import_module(f"{COLLECTION}.{name}")


@pytest.mark.usefixtures("wrapped")
def test_module_comes_from_its_bytecode(collections: pathlib.Path) -> None:
    path = stale_source(collections, "first", "VALUE = 2\n", "VALUE = 1\n")
    module = load("first")
    assert module.VALUE == 2
    assert module.__file__ == str(path)
    assert module.__loader__.get_code(module.__name__).co_filename == str(path)


def test_without_the_plugin_ansible_compiles_the_source(collections: pathlib.Path) -> None:
    stale_source(collections, "second", "VALUE = 2\n", "VALUE = 1\n")
    assert load("second").VALUE == 1


@pytest.mark.usefixtures("wrapped")
def test_bytecode_of_an_edited_source_is_not_used(collections: pathlib.Path) -> None:
    path = stale_source(collections, "third", "VALUE = 2\n", "VALUE = 1\n")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    assert load("third").VALUE == 1


@pytest.mark.usefixtures("wrapped")
def test_module_without_bytecode_names_its_source_in_tracebacks(collections: pathlib.Path) -> None:
    path = collections / "fourth.py"
    path.write_text("def fail():\n    raise ValueError('here')\n")
    with pytest.raises(ValueError, match="here") as error:
        load("fourth").fail()
    assert error.traceback[-1].path == path


@pytest.mark.usefixtures("wrapped")
def test_install_twice_wraps_once() -> None:
    wrapper = _AnsibleCollectionPkgLoaderBase.get_code
    assert plugin.install()
    assert _AnsibleCollectionPkgLoaderBase.get_code is wrapper
