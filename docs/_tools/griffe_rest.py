"""A griffe extension: read asyncroute's reST-flavoured docstrings as Markdown.

asyncroute's docstrings are Google-style sections (``Args:``, ``Raises:``) written with
a few reST habits that griffe's Google parser and Markdown do not know.  This extension
(named in mkdocs.yml under the python handler's ``extensions``) rewrites them when the
package has been loaded, before mkdocstrings renders anything:

- ``Text::`` followed by an indented block (a reST literal block) becomes ``Text:`` and
  a fenced Python code block; a paragraph that is only ``Example::`` becomes
  ``**Example**``.
- ``:class:`X```, ``:meth:`X```, ``:func:`X```, ``:attr:`X```, ``:data:`X```,
  ``:mod:`X``` and ``:exc:`X``` become a cross-reference to ``X`` when griffe can find
  it (relative to the object, its parents, or the package) and an optional one, so that
  a name the reference does not render is plain code and never a broken link;
  ``~a.b.C`` shows ``C``.  Other roles (``:doc:``) become plain code.
- Attributes documented Sphinx-style, by ``#:`` comment lines right above the
  assignment, get that text as their docstring; a module constant computed at import
  (``MAIN_TABLE = int(RT_TABLE.MAIN)``) also gets its value.
- An enum class gets a table of its members (name, value, the comment above it) in its
  docstring, to be rendered with ``members: false`` instead of a heading per member.

The source files are not changed; ``help()`` and editors still show the reST.
"""

from __future__ import annotations

import html
import importlib
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?P<role>[a-z]+):`(?P<target>[^`]+)`")
_XREF_ROLES = {"class", "meth", "func", "attr", "data", "mod", "exc", "obj"}


def _literal_blocks(text: str) -> str:
    """Turn reST ``::`` literal blocks into fenced code blocks."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if not stripped.endswith("::") or stripped.endswith(":::"):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        # The block: after blank lines, every line indented deeper than the "::" line.
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        block_start = j
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            j += 1
        while j > block_start and not lines[j - 1].strip():
            j -= 1
        if block_start == j:  # no indented block follows: not a literal block
            out.append(line)
            i += 1
            continue
        head = stripped[:-2].rstrip()
        prefix = " " * indent
        if not head.strip():
            pass  # a lone "::" introduces the block and disappears
        elif head.strip() in {"Example", "Examples", "Use", "Usage"}:
            out.append(f"{prefix}**{head.strip()}**")
        else:
            out.append(f"{head}:")
        body = textwrap.dedent("\n".join(lines[block_start:j]))
        out.append("")
        out.append(f"{prefix}```python")
        out.extend(f"{prefix}{code}" if code else "" for code in body.split("\n"))
        out.append(f"{prefix}```")
        out.append("")
        i = j
    return "\n".join(out)


def _find(scope: griffe.Object | griffe.Alias, dotted: str) -> griffe.Object | griffe.Alias | None:
    current: Any = scope
    for part in dotted.split("."):
        try:
            members = current.members
        except Exception:  # an alias that cannot be resolved
            return None
        if part not in members:
            return None
        current = members[part]
    return current


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The canonical path of ``target`` as seen from ``obj``, or None."""
    scopes: list[Any] = []
    scope: Any = obj
    while scope is not None:
        scopes.append(scope)
        scope = scope.parent
    package = scopes[-1]
    if target.startswith(package.name + "."):
        found = _find(package, target[len(package.name) + 1 :])
        scopes = []
    else:
        found = None
    for scope in scopes:
        found = _find(scope, target)
        if found is not None:
            break
    if found is None:
        return None
    try:
        return str(found.canonical_path)
    except Exception:
        return str(found.path)


def _roles(obj: griffe.Object, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        role, target = match.group("role"), match.group("target").strip()
        shown = target.lstrip("~.")
        if target.startswith("~"):
            shown = shown.rsplit(".", 1)[-1]
        if role in {"meth", "func"} and not shown.endswith(")"):
            shown += "()"
        code = f"<code>{html.escape(shown)}</code>"
        path = _resolve(obj, target.lstrip("~.")) if role in _XREF_ROLES else None
        if path is None:
            return f"`{shown}`"
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    return _ROLE.sub(replace, text)


_ENUM_BASES = {"Enum", "IntEnum", "Flag", "IntFlag", "StrEnum"}


def _comment_above(lines: list[str], lineno: int, marker: str) -> list[str]:
    """The comment lines starting with ``marker`` right above line ``lineno`` (1-based)."""
    found: list[str] = []
    index = lineno - 2
    while index >= 0:
        line = lines[index].strip()
        if not line.startswith(marker) or (marker == "#" and line.startswith("#:")):
            break
        found.append(line[len(marker) :].strip())
        index -= 1
    return found[::-1]


def _comment_docstring(attr: griffe.Attribute) -> str | None:
    """The ``#:`` comment lines right above an attribute's assignment."""
    lines = attr.module.lines
    if not lines or attr.lineno is None:
        return None
    return "\n".join(_comment_above(lines, attr.lineno, "#:")) or None


def _is_enum(cls: griffe.Class) -> bool:
    return any(str(base).rsplit(".", 1)[-1] in _ENUM_BASES for base in cls.bases)


def _enum_table(cls: griffe.Class) -> str:
    lines = cls.module.lines
    flags = any(str(base).endswith("Flag") for base in cls.bases)
    rows = ["| member | value | |", "|---|---|---|"]
    for member in cls.members.values():
        if member.is_alias or not isinstance(member, griffe.Attribute):
            continue
        if member.name.startswith("_") or member.value is None:
            continue
        if member.docstring is not None:
            note = member.docstring.value.replace("\n", " ")
        else:
            lineno = member.lineno or 0
            note = " ".join(
                _comment_above(lines, lineno, "#:") or _comment_above(lines, lineno, "#")
            )
        value = str(member.value)
        if flags and value.isdigit():
            value = f"{int(value):#x}"
        rows.append(f"| `{member.name}` | `{value}` | {note} |")
    return "\n".join(rows)


def _runtime_value(attr: griffe.Attribute) -> str | None:
    """``repr`` of a module constant's value when the source shows an expression."""
    if not isinstance(attr.parent, griffe.Module) or attr.value is None:
        return None
    try:
        value = getattr(importlib.import_module(attr.parent.path), attr.name)
    except Exception:
        return None
    if type(value) not in (int, float, str) or repr(value) == str(attr.value):
        return None
    return repr(value)


class ReSTDocstrings(griffe.Extension):
    """Rewrite reST literal blocks, roles and ``#:`` comments for Markdown rendering."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._visit(pkg, seen=set())

    def _visit(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if isinstance(obj, griffe.Attribute):
            if obj.docstring is None:
                text = _comment_docstring(obj)
                if text is not None:
                    obj.docstring = griffe.Docstring(text, parent=obj, lineno=obj.lineno)
            value = _runtime_value(obj)
            if value is not None:
                text = obj.docstring.value if obj.docstring is not None else ""
                text = f"{text}\n\nValue: `{value}`." if text else f"Value: `{value}`."
                obj.docstring = griffe.Docstring(text, parent=obj, lineno=obj.lineno)
        if isinstance(obj, griffe.Class) and _is_enum(obj):
            text = obj.docstring.value if obj.docstring is not None else ""
            obj.docstring = griffe.Docstring(
                f"{text}\n\n{_enum_table(obj)}", parent=obj, lineno=obj.lineno
            )
        if obj.docstring is not None:
            value = _literal_blocks(obj.docstring.value)
            obj.docstring.value = _roles(obj, value)
        for member in obj.members.values():
            if not member.is_alias:
                self._visit(member, seen)
