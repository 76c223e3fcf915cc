"""Compile each Jinja template once, not once per task worker and run.

ansible-core 2.19 keeps no compiled templates: every forked task worker lexes, parses
and generates Python for each `when:`, task argument and role variable it touches, then
exits and forgets it. That was about a third of a worker's CPU. This plugin keeps the
compiled code objects on disk, in a private directory under ANSIBLE_HOME
(roost/jinja/<ansible-core, Jinja and Python versions>): the first worker that compiles
a template stores it, later workers and later runs load it. A re-run compiles nothing.

The code object depends only on the source text and on settings that are fixed for a
run (delimiters, extensions, backslash escaping), so those form the key. It wraps two
methods of ansible-core's internal Jinja environment; with another ansible-core (other
internals) it does nothing and templates compile as before.
"""

from __future__ import annotations

import contextvars
import hashlib
import marshal
import os
import shutil
import sys
import types
import typing as t

import jinja2
from ansible import constants as C  # type: ignore[import-untyped]
from ansible.plugins.callback import CallbackBase  # type: ignore[import-untyped]
from ansible.release import __version__ as ansible_version  # type: ignore[import-untyped]
from ansible.utils.display import Display  # type: ignore[import-untyped]

try:
    from ansible._internal._templating._jinja_bits import (  # type: ignore[import-untyped]
        AnsibleEnvironment,
        _TemplateCompileContext,
    )
    from ansible._internal._templating._jinja_common import (  # type: ignore[import-untyped]
        _TemplateConfig,
    )
    from jinja2 import nodes
    from jinja2.environment import TemplateExpression
except ImportError:  # another ansible-core: leave templating alone
    AnsibleEnvironment = None

DOCUMENTATION = """
name: roost_jinja_cache
type: aggregate
short_description: share compiled Jinja templates between the task workers of one run
description:
  - Stores each Jinja template's compiled code in a private directory of the playbook run,
    so that forked task workers load it instead of compiling the template again.
  - Does nothing on an ansible-core whose internal Jinja environment it does not know.
requirements:
  - enabled in ansible.cfg (callbacks_enabled = roost_jinja_cache)
"""

display = Display()
USUAL = "templates compile as usual"

# The code object jinja's compile_expression builds from its parsed node, picked up on
# its way through compile() so it can be stored under the expression's text.
_captured: contextvars.ContextVar[list[types.CodeType] | None] = contextvars.ContextVar(
    "roost_jinja_captured", default=None
)


class CodeCache:
    """Code objects in files named by key; written whole (rename), so readers see all or nothing."""

    def __init__(self, path: str) -> None:
        self.path = path

    @classmethod
    def open(cls, path: str, limit: int = 20000, parents: int = 2) -> CodeCache | None:
        """The cache in `path`, made private if new; None if others could write to it.

        Loading code from a directory others can write runs their code: `path` must be
        this user's and closed to others, and its `parents` nearest parents (which could
        swap it) this user's and closed to others' writes.
        """
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.stat(path)
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            return None
        parent = path
        for _ in range(parents):
            parent = os.path.dirname(parent)
            info = os.stat(parent)
            if info.st_uid != os.geteuid() or info.st_mode & 0o022:
                return None
        # Templates edited over months leave entries nobody asks for: start afresh.
        if len(os.listdir(path)) > limit:
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path, mode=0o700, exist_ok=True)
        return cls(path)

    def get(self, key: str) -> types.CodeType | None:
        try:
            with open(os.path.join(self.path, key), "rb") as f:
                # Only this user can write here (open() checks): our own dumps.
                code = marshal.load(f)  # noqa: S302
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return code if isinstance(code, types.CodeType) else None

    def put(self, key: str, code: types.CodeType) -> None:
        final = os.path.join(self.path, key)
        temp = f"{final}.{os.getpid()}"
        try:
            with open(temp, "wb") as f:
                marshal.dump(code, f)
            os.replace(temp, final)
        except OSError:
            pass  # a full or vanished directory only costs a compile next time


def cache_key(env: t.Any, kind: str, source: str, *extra: object) -> str | None:
    """The key of `source` compiled by `env`, or None when the result cannot be shared."""
    if callable(env.autoescape) or env.is_async or env._debuggable_template_source:
        return None
    compile_context = _TemplateCompileContext.current(optional=True)
    settings = (
        type(env).__qualname__,
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        env.optimized,
        bool(env.autoescape),
        tuple(sorted(env.extensions)),
        _TemplateConfig.allow_embedded_templates,
        bool(compile_context and compile_context.escape_backslashes),
        kind,
        extra,
    )
    digest = hashlib.blake2b(repr(settings).encode(), digest_size=20)
    digest.update(b"\0")
    # The text only: a template string may carry ansible's data tags (origin, trust),
    # which do not reach the generated code.
    digest.update(source.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class _State:
    active: CodeCache | None = None  # None: compile as usual
    wrapped = False


def install(cache: CodeCache | None) -> None:
    """Send AnsibleEnvironment.compile and .compile_expression through `cache` from now on."""
    _State.active = cache
    if not _State.wrapped:
        _wrap()
        _State.wrapped = True


def _wrap() -> None:
    original_compile = AnsibleEnvironment.compile
    original_compile_expression = AnsibleEnvironment.compile_expression

    # jinja's own signature, positional arguments and all.
    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):  # type: ignore[no-untyped-def]  # noqa: PLR0917
        if raw or not isinstance(source, str):
            code = original_compile(self, source, name, filename, raw, defer_init)
            captured = _captured.get()
            if not raw and isinstance(source, nodes.Template) and captured is not None:
                captured.append(code)
            return code
        cache = _State.active
        key = cache_key(self, "template", source, name, filename, defer_init) if cache else None
        code = cache.get(key) if cache and key else None
        if code is None:
            code = original_compile(self, source, name, filename, raw, defer_init)
            if cache and key:
                cache.put(key, code)
        return code

    def compile_expression(self, source, undefined_to_none=True):  # type: ignore[no-untyped-def]
        cache = _State.active
        key = cache_key(self, "expression", source) if cache and isinstance(source, str) else None
        if cache is None or key is None:
            return original_compile_expression(self, source, undefined_to_none)
        code = cache.get(key)
        if code is not None:
            # What jinja's compile_expression builds, from the stored code.
            template = self.template_class.from_code(self, code, self.make_globals(None), None)
            return TemplateExpression(template, undefined_to_none)
        captured: list[types.CodeType] = []
        token = _captured.set(captured)
        try:
            expression = original_compile_expression(self, source, undefined_to_none)
        finally:
            _captured.reset(token)
        if len(captured) == 1:
            cache.put(key, captured[0])
        return expression

    AnsibleEnvironment.compile = compile
    AnsibleEnvironment.compile_expression = compile_expression


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "roost_jinja_cache"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook: t.Any) -> None:
        if AnsibleEnvironment is None:
            display.vv(f"{self.CALLBACK_NAME}: not this ansible-core's templating; {USUAL}")
            return
        python = sys.implementation.cache_tag
        versions = f"ansible-core-{ansible_version}_jinja-{jinja2.__version__}_{python}"
        path = os.path.join(C.config.get_config_value("ANSIBLE_HOME"), "roost", "jinja", versions)
        try:
            cache = CodeCache.open(path)
        except OSError as error:
            display.warning(f"{self.CALLBACK_NAME}: {error}; {USUAL}")
            return
        if cache is None:
            display.warning(f"{self.CALLBACK_NAME}: {path} is not private to this user; {USUAL}")
            return
        install(cache)
