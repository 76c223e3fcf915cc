"""plugins/callback/roost_jinja_cache.py against ansible-core's real Templar."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import typing as t

import pytest
from ansible.parsing.dataloader import DataLoader  # type: ignore[import-untyped]
from ansible.template import Templar, trust_as_template  # type: ignore[import-untyped]

PLUGIN = pathlib.Path(__file__).resolve().parents[1] / "callback" / "roost_jinja_cache.py"


def load_plugin() -> t.Any:
    spec = importlib.util.spec_from_file_location("roost_jinja_cache", PLUGIN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugin = load_plugin()


@pytest.fixture
def cache_dir(tmp_path: pathlib.Path) -> t.Iterator[pathlib.Path]:
    path = tmp_path / "jinja"
    cache = plugin.CodeCache.open(str(path))
    assert cache is not None
    plugin.install(cache)
    yield path
    plugin.install(None)  # the wrappers stay, but compile as usual again


def render(text: str, variables: dict[str, t.Any] | None = None, **options: t.Any) -> t.Any:
    templar = Templar(loader=DataLoader(), variables=variables or {"x": 41, "name": "pi-1"})
    return templar.template(trust_as_template(text), **options)


def condition(text: str) -> bool:
    templar = Templar(loader=DataLoader(), variables={"x": 41})
    return bool(templar.evaluate_conditional(trust_as_template(text)))


def entries(path: pathlib.Path) -> int:
    return len(os.listdir(path))


def test_a_stored_template_renders_as_a_fresh_one(cache_dir: pathlib.Path) -> None:
    assert render("{{ x + 1 }} on {{ name | upper }}") == "42 on PI-1"
    stored = entries(cache_dir)
    assert stored >= 1
    # Other variables, same text: the stored code is loaded, not compiled again.
    assert render("{{ x + 1 }} on {{ name | upper }}", {"x": 1, "name": "pi-2"}) == "2 on PI-2"
    assert entries(cache_dir) == stored


def test_conditionals_go_through_the_cache(cache_dir: pathlib.Path) -> None:
    assert condition("x > 40 and x is odd") is True
    stored = entries(cache_dir)
    assert stored >= 1
    assert condition("x > 40 and x is odd") is True
    assert condition("x < 40") is False
    assert entries(cache_dir) > stored


def test_backslash_escaping_is_part_of_the_key(cache_dir: pathlib.Path) -> None:
    # Task arguments escape backslashes in string constants, conditionals do not: the same
    # text compiles to different code.
    text = "{{ 'a\\nb' }}"
    escaped = render(text)
    plain = render(text, escape_backslashes=False)
    assert escaped == "a\\nb"
    assert plain == "a\nb"
    assert render(text) == escaped
    assert render(text, escape_backslashes=False) == plain


def test_template_overrides_are_part_of_the_key(cache_dir: pathlib.Path) -> None:
    # The header is stripped before compiling: both compile "[[ x ]]/{{ x }}", with other
    # delimiters.
    assert render("[[ x ]]/{{ x }}") == "[[ x ]]/41"
    header = "#jinja2:variable_start_string:'[[', variable_end_string:']]'\n"
    assert render(header + "[[ x ]]/{{ x }}") == "41/{{ x }}"
    assert render("[[ x ]]/{{ x }}") == "[[ x ]]/41"


def test_a_syntax_error_is_reported_and_not_stored(cache_dir: pathlib.Path) -> None:
    with pytest.raises(Exception, match=r"(?i)syntax|unexpected"):
        render("{{ x + }}")
    assert entries(cache_dir) == 0


def test_a_directory_others_can_write_is_refused(tmp_path: pathlib.Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o775)
    shared.chmod(0o775)
    assert plugin.CodeCache.open(str(shared)) is None
    private = tmp_path / "private"
    assert plugin.CodeCache.open(str(private)) is not None
    assert private.stat().st_mode & 0o777 == 0o700


def test_a_directory_in_a_parent_others_can_write_is_refused(tmp_path: pathlib.Path) -> None:
    # Whoever can write the parent can swap the cache directory for one of their own.
    parent = tmp_path / "open"
    parent.mkdir()
    parent.chmod(0o777)
    assert plugin.CodeCache.open(str(parent / "roost" / "jinja")) is None
    parent.chmod(0o755)
    assert plugin.CodeCache.open(str(parent / "roost" / "jinja")) is not None


def test_a_full_cache_starts_afresh(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "full"
    cache = plugin.CodeCache.open(str(path))
    for n in range(5):
        cache.put(f"k{n}", compile("1", "<t>", "eval"))
    assert plugin.CodeCache.open(str(path), limit=4) is not None
    assert entries(path) == 0


def test_a_damaged_entry_is_a_miss(tmp_path: pathlib.Path) -> None:
    cache = plugin.CodeCache.open(str(tmp_path / "c"))
    (tmp_path / "c" / "broken").write_bytes(b"\x00not marshal")
    assert cache.get("broken") is None
    assert cache.get("absent") is None
