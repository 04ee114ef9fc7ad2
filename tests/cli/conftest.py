"""Helpers for the ``asyncroute`` command's tests: run the installed command as a
subprocess, and a second namespace for comparisons with ``ip``."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from asyncroute.testing import Namespace


def asyncroute_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("asyncroute")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "asyncroute"]


#: Compiled bytecode for the commands the tests run, outside the source tree: with
#: PYTHONDONTWRITEBYTECODE (set here) every run would compile asyncroute again (~40 ms).
PYCACHE = Path(tempfile.gettempdir()) / f"asyncroute-cli-tests-pycache-{os.getuid()}"


def cli_env() -> dict[str, str]:
    """The environment the commands run in: ours, with a bytecode cache of their own."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(COLUMNS="100", PYTHONPYCACHEPREFIX=str(PYCACHE))
    return env


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
        env=cli_env(),
    )


def run_json(*args: str, input: str | None = None) -> Any:
    """Run ``asyncroute ARGS… --json``, check exit 0 and return the parsed stdout."""
    proc = run_cli(*args, "--json", input=input)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


class Background:
    """``asyncroute ARGS…`` running in the background (``monitor``): started by
    :meth:`start`, which returns once the command printed its first stderr line (the
    "listening" line: it is subscribed)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*asyncroute_command(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        self.ready = ""

    @classmethod
    def start(cls, *args: str, timeout: float = 30) -> Background:
        """Start ``asyncroute ARGS…`` and wait for its first line on stderr."""
        job = cls(*args)
        assert job.proc.stderr is not None
        ready, _, _ = select.select([job.proc.stderr], [], [], timeout)
        if not ready:
            job.proc.kill()
            job.proc.communicate()
            pytest.fail(f"asyncroute {' '.join(args)}: nothing on stderr in {timeout} s")
        job.ready = job.proc.stderr.readline()
        return job

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        """Wait for the command to end: (exit status, stdout, rest of stderr); killed and
        failed if it runs past ``timeout``."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail(f"still running after {timeout} s; stdout so far: {out!r}")
        return self.proc.returncode, out, err


def kernel_state(ns: Namespace) -> list[str]:
    """Every route of every table, both families (link-local routes, which follow the
    veths' random MAC addresses, left out), the rules and the nexthop objects, as ``ip
    -json`` shows them, canonically sorted."""
    rows: list[Any] = []
    for family in ("-4", "-6"):
        out = subprocess.run(
            ["ip", "-n", ns.name, family, "-json", "route", "show", "table", "all"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows += [r for r in json.loads(out or "[]") if not str(r.get("dst", "")).startswith("fe80")]
        rows += json.loads(ns.ip("-json", family, "rule", "show").stdout or "[]")
    rows += json.loads(ns.ip("-json", "nexthop", "show").stdout or "[]")
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


def ip_batch(ns: Namespace, path: Path, *, force: bool = False) -> subprocess.CompletedProcess[str]:
    """``ip -n NS [-force] -batch PATH`` (not checked)."""
    argv = ["ip", "-n", ns.name, *(["-force"] if force else []), "-batch", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
