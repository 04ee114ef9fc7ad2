"""The documentation site's API reference covers every public name.

`make docs` renders docs/reference/*.md, whose ``::: identifier`` directives make
mkdocstrings document an object from its docstring.  A name in ``asyncroute.__all__`` is
covered by a directive for it (``::: asyncroute.Route``) or for the module that holds it
when that directive renders the module's members (``::: asyncroute.events``, unless its
``members:`` option leaves the name out).  A new public name without a reference entry
fails here, before the site is built.
"""

from __future__ import annotations

import importlib
import re
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import asyncroute

ROOT = Path(__file__).parents[2]
REFERENCE = ROOT / "docs" / "reference"
_DIRECTIVE = re.compile(r"^::: *(?P<identifier>[\w.]+) *$")


@dataclass(frozen=True)
class Directive:
    page: str
    identifier: str
    #: None: every public member is rendered; else only these (empty: none).
    members: frozenset[str] | None


def _members_option(block: list[str]) -> frozenset[str] | None:
    """The ``members:`` option of a directive's YAML block (a small subset of YAML)."""
    for index, line in enumerate(block):
        key, _, value = line.strip().partition(":")
        if key != "members":
            continue
        value = value.strip()
        if value.lower() in {"false", "no", "off", "[]"}:
            return frozenset()
        if value.lower() in {"true", "yes", "on"}:
            return None
        if value.startswith("["):
            return frozenset(n.strip().strip("'\"") for n in value.strip("[]").split(",") if n)
        names: list[str] = []
        for item in block[index + 1 :]:
            if not item.strip().startswith("- "):
                break
            names.append(item.strip()[2:].strip().strip("'\""))
        return frozenset(names)
    return None


def _directives() -> list[Directive]:
    found: list[Directive] = []
    for page in sorted(REFERENCE.glob("*.md")):
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines):
            match = _DIRECTIVE.match(line)
            if not match:
                continue
            block: list[str] = []
            for option in lines[number + 1 :]:
                if not option.startswith((" ", "\t")) or not option.strip():
                    break
                block.append(option)
            found.append(Directive(page.name, match["identifier"], _members_option(block)))
    return found


DIRECTIVES = _directives()


def _resolve(identifier: str) -> object:
    """The object a directive names: a module, or an attribute of one."""
    try:
        return importlib.import_module(identifier)
    except ModuleNotFoundError:
        module, _, name = identifier.rpartition(".")
        return getattr(_resolve(module), name)


def _module_renders(directive: Directive, name: str, obj: object) -> bool:
    """Whether ``directive`` renders a module member ``name`` that is ``obj``."""
    if not _is_module(directive.identifier):
        return False
    module = _resolve(directive.identifier)
    if module is asyncroute or getattr(module, name, None) is not obj:
        return False
    if directive.members is not None:
        return name in directive.members
    public = getattr(module, "__all__", None)
    return name in public if public is not None else not name.startswith("_")


def _covering(name: str) -> list[Directive]:
    obj = getattr(asyncroute, name)
    targets = {f"asyncroute.{name}"}
    if isinstance(obj, types.ModuleType):
        targets.add(obj.__name__)
    return [d for d in DIRECTIVES if d.identifier in targets or _module_renders(d, name, obj)]


def test_reference_pages_have_directives() -> None:
    assert DIRECTIVES, f"no ::: directives in {REFERENCE}"


@pytest.mark.parametrize("directive", DIRECTIVES, ids=lambda d: f"{d.page}:{d.identifier}")
def test_directive_names_an_importable_object(directive: Directive) -> None:
    _resolve(directive.identifier)


def _is_module(identifier: str) -> bool:
    try:
        return isinstance(_resolve(identifier), types.ModuleType)
    except (ImportError, AttributeError):  # reported by the test above
        return False


MODULE_DIRECTIVES = [d for d in DIRECTIVES if _is_module(d.identifier)]


@pytest.mark.parametrize("directive", MODULE_DIRECTIVES, ids=lambda d: d.identifier)
def test_module_directive_renders_the_module_all(directive: Directive) -> None:
    # A `members:` list must not fall behind the module's __all__.
    module = _resolve(directive.identifier)
    if directive.members is None or directive.members == frozenset():
        return
    missing = set(getattr(module, "__all__", ())) - directive.members
    assert not missing, f"{directive.page}: `members:` of {directive.identifier} lacks {missing}"


@pytest.mark.parametrize("name", asyncroute.__all__)
def test_public_name_is_in_the_api_reference(name: str) -> None:
    assert _covering(name), (
        f"asyncroute.{name} is not in the API reference: add `::: asyncroute.{name}` to a "
        f"page in docs/reference/ (or render the module that holds it with its members)"
    )


@pytest.mark.parametrize("name", asyncroute.__all__)
def test_public_name_is_rendered_once(name: str) -> None:
    # Twice would give two anchors for one name, and cross-references an arbitrary one.
    covering = _covering(name)
    assert len(covering) <= 1, f"asyncroute.{name} is rendered by {covering}"


@pytest.mark.parametrize(
    "name", [n for n in asyncroute.__all__ if isinstance(getattr(asyncroute, n), int | float)]
)
def test_public_constant_has_a_doc_comment(name: str) -> None:
    """Plain constants have no ``__doc__``; the site reads the ``#:`` comment above them."""
    pattern = re.compile(rf"^#:.*\n(?:#:.*\n)*{re.escape(name)}(?:: [^=]+)? = ", re.MULTILINE)
    sources = [p for p in (ROOT / "asyncroute").glob("*.py") if pattern.search(p.read_text())]
    assert sources, f"asyncroute.{name} has no `#:` comment above its assignment"
