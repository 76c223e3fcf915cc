"""Load Jinja plugins and collection metadata once, in the controller, before any worker forks.

Every task run is a forked worker. ansible-core 2.19 loads the Jinja filter and test
plugins (and, for Mitogen's module planner, the metadata of every installed collection)
lazily, in whichever process first needs them; the controller itself rarely does, so each
worker loaded them again and threw them away. Loaded here, every worker inherits them.
Only ansible-core's public loaders are called; nothing is patched.
"""

from __future__ import annotations

import typing as t

from ansible.collections.list import list_collection_dirs  # type: ignore[import-untyped]
from ansible.plugins.callback import CallbackBase  # type: ignore[import-untyped]
from ansible.plugins.loader import filter_loader, test_loader  # type: ignore[import-untyped]

DOCUMENTATION = """
name: roost_warmup
type: aggregate
short_description: load Jinja plugins and collection metadata once per run, before workers fork
description:
  - Loads the builtin Jinja filter and test plugins and imports every installed
    collection's package in the controller at the start of a playbook run, so that
    forked task workers inherit them instead of loading them again.
requirements:
  - enabled in ansible.cfg (callbacks_enabled = roost_warmup)
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "roost_warmup"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook: t.Any) -> None:
        for loader in (filter_loader, test_loader):
            for _ in loader.all():
                pass
        for _ in list_collection_dirs():
            pass
