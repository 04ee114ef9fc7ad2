"""Every runnable example in the docs runs, in a namespace, and prints what the docs say.

A runnable example is a fenced ```` ```python ```` block, in any page under ``docs/``
(guides included), whose first line is ``# example: NAME``; it is a complete program
taking the namespace name as its only argument.  If the next fenced block after it is a
```` ```text ```` block right after an "Output:" line, the program's stdout must equal it.

Pages also include whole files with pymdownx.snippets (``--8<-- "examples/X.py"``, paths
relative to the repository root); those files are run by ``tests/examples``, and here
every included path must exist.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from asyncroute.testing import Namespace

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)
_SNIPPET = re.compile(r'^\s*--8<-- "([^"]+)"\s*$', re.M)


@dataclass(frozen=True)
class Example:
    page: str
    name: str
    code: str
    output: str | None


def examples() -> list[Example]:
    found: list[Example] = []
    for page in sorted(DOCS.glob("**/*.md")):
        text = page.read_text()
        blocks = list(_BLOCK.finditer(text))
        for i, block in enumerate(blocks):
            kind, body = block.group(1), block.group(2)
            first = body.split("\n", 1)[0]
            if kind != "python" or not first.startswith("# example: "):
                continue
            output = None
            if i + 1 < len(blocks):
                following = blocks[i + 1]
                between = text[block.end() : following.start()]
                if following.group(1) == "text" and between.strip() == "Output:":
                    output = following.group(2)
            name = first.removeprefix("# example: ")
            found.append(Example(page.relative_to(DOCS).as_posix(), name, body, output))
    return found


EXAMPLES = examples()


def test_the_docs_have_examples() -> None:
    """Guards against the collector silently finding nothing, here or in subfolders."""
    assert {(e.page, e.name) for e in EXAMPLES} >= {
        ("events.md", "watch"),
        ("events.md", "reconcile"),
        ("guides/reconcile.md", "device-down"),
        ("guides/multipath-nexthops.md", "nexthop-deletion"),
    }


def test_included_files_exist() -> None:
    """Every ``--8<-- "path"`` names a file (the site build fails otherwise, later)."""
    included = {
        (page.relative_to(DOCS).as_posix(), path)
        for page in DOCS.glob("**/*.md")
        for path in _SNIPPET.findall(page.read_text())
    }
    assert ("guides/bulk-loading.md", "examples/bulk_load.py") in included
    assert [(page, path) for page, path in sorted(included) if not (ROOT / path).is_file()] == []


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.page}:{e.name}" for e in EXAMPLES])
def test_example_runs(example: Example, netns: Namespace) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", example.code, netns.name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    if example.output is not None:
        assert proc.stdout == example.output
