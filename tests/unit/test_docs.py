"""Every public name is documented: a docstring, and a mention in docs/api.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import asyncroute

API_DOC = (Path(__file__).parents[2] / "docs" / "api.md").read_text()


@pytest.mark.parametrize("name", asyncroute.__all__)
def test_public_name_is_in_api_doc(name: str) -> None:
    assert re.search(rf"\b{re.escape(name)}\b", API_DOC), f"docs/api.md does not mention {name}"


@pytest.mark.parametrize("name", asyncroute.__all__)
def test_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(asyncroute, name)
    if isinstance(obj, int | float):  # plain constants are documented in api.md
        return
    assert inspect.getdoc(obj), f"asyncroute.{name} has no docstring"


def _public_methods(cls: type) -> list[str]:
    return [n for n, v in vars(cls).items() if not n.startswith("_") and callable(v)]


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        (cls, method)
        for cls in (asyncroute.Connection, asyncroute.NetlinkConnection, asyncroute.Route)
        for method in _public_methods(cls)
    ],
)
def test_public_methods_have_docstrings(cls: type, method: str) -> None:
    assert inspect.getdoc(getattr(cls, method)), f"{cls.__name__}.{method} has no docstring"
