"""Helpers for the ``asyncroute`` command's tests: run the installed command as a
subprocess, and a second namespace for comparisons with ``ip``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncroute.testing import Namespace, NetnsUnavailable, create_namespace, delete_namespace


def asyncroute_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("asyncroute")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "asyncroute"]


def run_cli(
    *args: str, input: str | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``asyncroute ARGS…``; the finished process (text output, not checked)."""
    return subprocess.run(
        [*asyncroute_command(), *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )


def run_json(*args: str, input: str | None = None) -> Any:
    """Run ``asyncroute ARGS… --json``, check exit 0 and return the parsed stdout."""
    proc = run_cli(*args, "--json", input=input)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def netns2(netns: Namespace) -> Iterator[Namespace]:
    """A second fresh namespace of the same layout (for ``ip``'s side of a comparison);
    deleted afterwards, also when the test fails."""
    try:
        ns = create_namespace()
    except NetnsUnavailable as exc:  # pragma: no cover - the first one worked
        pytest.fail(f"second namespace: {exc}")
    try:
        yield ns
    finally:
        delete_namespace(ns)
