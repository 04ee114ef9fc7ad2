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
        "cli_common",
        "cli_route",
        "cli_rule",
        "cli_nexthop",
        "cli_monitor",
        "cli_apply",
        "batchfile",
        "apply",
        "bench",
        "netns",
        "testing",
        "_fake_kernel",
    ]
)


def _module_names() -> set[str]:
    return {path.stem for path in PACKAGE.glob("*.py")}


def _imports(name: str) -> set[str]:
    """The package modules ``name`` imports (lazy imports included, typing-only not)."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    typing_only: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            typing_only.update(id(child) for child in ast.walk(node))
    modules = _module_names()
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom) or node.level != 1:
            continue
        if node.module is None:  # from . import x
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif node.module.split(".")[0] in modules:
            found.add(node.module.split(".")[0])
    found.discard(name)
    return found


GRAPH = {name: _imports(name) for name in sorted(_module_names())}


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
