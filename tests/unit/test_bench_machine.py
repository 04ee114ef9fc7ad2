"""The benchmark names the commit it measured (the revision beside every figure)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from asyncroute.bench.measure import _git_revision

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (ROOT / ".git").exists() or shutil.which("git") is None,
    reason="not a git checkout (an unpacked sdist): no revision to report",
)
def test_revision_is_the_checkouts_head() -> None:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    revision = _git_revision()
    assert revision is not None and revision.removesuffix("+changes") == head
