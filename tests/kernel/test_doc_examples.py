"""Every runnable example in the docs runs, in a namespace, and prints what the docs say.

A runnable example is a fenced ```` ```python ```` block whose first line is
``# example: NAME``; it is a complete program taking the namespace name as its only
argument.  If the next fenced block after it is a ```` ```text ```` block right after an
"Output:" line, the program's stdout must equal it.
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

DOCS = Path(__file__).parents[2] / "docs"
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


@dataclass(frozen=True)
class Example:
    page: str
    name: str
    code: str
    output: str | None


def examples() -> list[Example]:
    found: list[Example] = []
    for page in sorted(DOCS.glob("*.md")):
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
            found.append(Example(page.name, first.removeprefix("# example: "), body, output))
    return found


EXAMPLES = examples()


def test_the_docs_have_examples() -> None:
    """Guards against the collector silently finding nothing."""
    assert {(e.page, e.name) for e in EXAMPLES} >= {
        ("events.md", "watch"),
        ("events.md", "reconcile"),
    }


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
