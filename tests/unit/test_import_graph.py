"""The package's import graph keeps the layering docs/architecture.md describes (its
table of layers is written out here: :data:`LAYERS`, :data:`TOOLS`).

Every import counts, at module level or inside a function (a lazy import is still a
dependency), except those under ``if TYPE_CHECKING:``.  The graph must have no cycle;
each library module imports only from its own layer or a lower one; no library module
imports a tool (the command line, the batch parser and ``apply``, the benchmark, the
test helpers).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "asyncroute"

#: The layers, lowest first.  A module may import from its own layer and those below.
LAYERS: list[tuple[str, frozenset[str]]] = [
    ("L0 vocabulary", frozenset({"constants", "errors"})),
    ("L1 wire codec", frozenset({"_frame", "_codec", "messages"})),
    ("L2 sans-I/O core", frozenset({"_protocol"})),
    ("L3 I/O", frozenset({"_socket", "_flight", "_gil", "connection"})),
    (
        "L4 API",
        frozenset(
            [
                "_values",
                "_links",
                "_retry",
                "encap",
                "route_attributes",
                "iproute2",
                "ip_route_words",
                "route",
                "multipath",
                "bulk",
                "rule",
                "mtu",
                "listing",
                "nexthop",
                "events",
                "client",
                "__init__",
            ]
        ),
    ),
]
#: The tools: they may import anything; nothing in the library imports them.
TOOLS = frozenset(
    [
        "__main__",
        "cli",
        "cli.common",
        "cli.route",
        "cli.rule",
        "cli.nexthop",
        "cli.monitor",
        "cli.apply",
        "cli.applier",
        "cli.batchfile",
        "bench",
        "bench.measure",
        "bench.phases",
        "bench.report",
        "netns",
        "testing",
        "testing.fake_kernel",
    ]
)


def _module_names() -> dict[str, Path]:
    """Every module of the package by dotted name below it (``route``, ``cli.route``;
    a subpackage by its own name, ``cli``)."""
    names: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = _module_names()


def _imports(name: str) -> set[str]:
    """The package modules ``name`` imports (lazy imports included, typing-only not)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            typing_only.update(id(child) for child in ast.walk(node))
    # The package a relative import starts from: the module's own for an __init__.
    here = (
        name.split(".")
        if path.name == "__init__.py" and name != "__init__"
        else name.split(".")[:-1]
    )
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
        if node.module is None:  # from . import x
            candidates = [".".join([*base, alias.name]) for alias in node.names]
        else:
            target = [*base, *node.module.split(".")]
            candidates = [".".join(target[:i]) for i in range(len(target), 0, -1)][:1]
            candidates += [".".join([*target, alias.name]) for alias in node.names]
        found.update(c for c in candidates if c in MODULES)
    found.discard(name)
    return found


GRAPH = {name: _imports(name) for name in sorted(MODULES)}


def test_every_module_has_a_place() -> None:
    placed = set(TOOLS).union(*(members for _, members in LAYERS))
    assert set(GRAPH) == placed, (
        f"unplaced: {sorted(set(GRAPH) - placed)}; gone: {sorted(placed - set(GRAPH))}"
    )


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in GRAPH:
        if name not in state:
            visit(name)


@pytest.mark.parametrize("layer", range(len(LAYERS)), ids=[title for title, _ in LAYERS])
def test_a_layer_imports_only_itself_and_below(layer: int) -> None:
    allowed = set().union(*(members for _, members in LAYERS[: layer + 1]))
    title, members = LAYERS[layer]
    wrong = {
        name: sorted(GRAPH[name] - allowed) for name in sorted(members) if GRAPH[name] - allowed
    }
    assert not wrong, f"{title}: imports from a higher layer or a tool: {wrong}"


def test_the_check_sees_imports() -> None:
    """The graph is not vacuous: known dependencies are found, lazy ones included."""
    assert "_codec" in GRAPH["route"]
    assert "client" in GRAPH["mtu"]  # a function-level import
    assert "mtu" not in GRAPH["client"]  # typing-only
