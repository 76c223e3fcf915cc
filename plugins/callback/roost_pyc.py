"""Import collection code from its bytecode, not from source in every task worker.

ansible-core's importer for `ansible_collections.*` modules compiles each module from its
source every time a process imports it; it never reads the __pycache__ bytecode that pip
wrote when it installed the `ansible` package. Task workers are forked and import
collection code afresh: pki's certificate checks use community.crypto's filters, which
import 28 of its modules, about 270 ms of CPU per host from source and 130 ms from
bytecode. This plugin has that importer get a module's code the way Python's own import
does (importlib's SourceFileLoader): the .pyc when the source's size and mtime recorded
in it still match, otherwise a fresh compile, written back where Python may write.

It wraps one method of ansible-core's collection loader, in the controller before any
worker forks. Packages without code of their own and redirected modules are left to
ansible-core; with another ansible-core (other internals) the plugin does nothing.
"""

from __future__ import annotations

import importlib.machinery
import types
import typing as t

from ansible.plugins.callback import CallbackBase  # type: ignore[import-untyped]
from ansible.utils.display import Display  # type: ignore[import-untyped]

try:
    from ansible.utils.collection_loader._collection_finder import (  # type: ignore[import-untyped]
        _AnsibleCollectionPkgLoaderBase as Loader,
    )
except ImportError:  # another ansible-core: leave its importer alone
    Loader = None

DOCUMENTATION = """
name: roost_pyc
type: aggregate
short_description: import collection modules from their bytecode in every task worker
description:
  - Makes ansible-core's importer of collection modules use a module's valid __pycache__
    bytecode, as Python's own import does, instead of compiling its source in every
    forked task worker.
  - Does nothing on an ansible-core whose collection loader it does not know.
requirements:
  - enabled in ansible.cfg (callbacks_enabled = roost_pyc)
"""

display = Display()


def install() -> bool:
    """Wrap the collection loader's get_code; True when it is (or already was) wrapped."""
    if Loader is None or not hasattr(Loader, "get_code"):
        return False
    original = Loader.get_code
    if getattr(original, "roost_pyc", False):
        return True

    def get_code(self: t.Any, fullname: str) -> types.CodeType | None:
        path = getattr(self, "_source_code_path", None)
        if getattr(self, "_compiled_code", True) is None and path and path.endswith(".py"):
            # The attribute ansible-core's own get_code fills and returns.
            source = importlib.machinery.SourceFileLoader(fullname, path)
            self._compiled_code = source.get_code(fullname)
        code: types.CodeType | None = original(self, fullname)
        return code

    get_code.roost_pyc = True  # type: ignore[attr-defined]
    Loader.get_code = get_code
    return True


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "roost_pyc"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook: t.Any) -> None:
        if not install():
            display.vv(f"{self.CALLBACK_NAME}: not this ansible-core's loader; compiling as usual")
