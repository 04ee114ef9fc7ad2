"""Every ``$ asyncroute …`` line of docs/cli.md runs, in document order, in one fresh
namespace, and exits as documented: 0, or N where the line ends in ``# exit N``.

``--netns NAME`` goes right after the subcommand's words (``asyncroute route upsert
--netns NAME …``), so that shell redirections at the end of a line still work.  Blocks
whose info string is ``text FILE`` are written to FILE in the working directory first.

A line ending in ``&`` (``asyncroute monitor --count 3 &``) runs in the background, as
in a shell: the next line runs once it has printed its first line on stderr (monitor's
"listening" line), and a ``$ wait`` line waits for it and checks its exit status.
"""

from __future__ import annotations

import re
import select
import shlex
import subprocess
from pathlib import Path

import pytest

from asyncroute.testing import Namespace
from tests.cli.conftest import asyncroute_command, cli_env

pytestmark = pytest.mark.kernel

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")
#: how many words name the subcommand (the options go after them)
_WORDS = {"route": 2, "rule": 2, "apply": 1, "bench": 1, "nexthop": 2, "monitor": 1}


def _blocks() -> list[tuple[str, str]]:
    return [(match[1].strip(), match[2]) for match in _FENCE.finditer(DOC.read_text())]


def _commands() -> list[tuple[str, int]]:
    """``(command, exit status)`` of every ``$ asyncroute`` and ``$ wait`` line."""
    commands = []
    for info, body in _blocks():
        if info != "console":
            continue
        for line in body.splitlines():
            if line.startswith("$ asyncroute") or line == "$ wait":
                found = _EXIT.search(line)
                commands.append((line[2:], int(found[1]) if found else 0))
    return commands


def test_the_doc_has_examples_of_every_command() -> None:
    commands = [command for command, _ in _commands()]
    for prefix in (
        "asyncroute route upsert",
        "asyncroute route delete",
        "asyncroute route lookup",
        "asyncroute route list",
        "asyncroute rule replace",
        "asyncroute rule delete",
        "asyncroute rule list",
        "asyncroute apply",
        "asyncroute nexthop replace",
        "asyncroute nexthop delete",
        "asyncroute nexthop show",
        "asyncroute nexthop list",
        "asyncroute monitor",
    ):
        assert any(c.startswith(prefix) for c in commands), prefix
        assert any(c.startswith(prefix) and "--json" in c for c in commands), prefix


def test_every_example_runs_as_documented(netns: Namespace, tmp_path: Path) -> None:
    for info, body in _blocks():
        words = info.split()
        if len(words) == 2 and words[0] == "text":
            (tmp_path / words[1]).write_text(body)
    program = shlex.join(asyncroute_command())
    env = cli_env()
    background: list[tuple[str, int, subprocess.Popen[str]]] = []
    try:
        for command, status in _commands():
            if command == "wait":
                for started, expected, job in background:
                    try:
                        out, err = job.communicate(timeout=30)
                    except subprocess.TimeoutExpired:
                        job.kill()
                        out, err = job.communicate()
                    assert job.returncode == expected, (started, out, err)
                background.clear()
                continue
            words = command.split()
            count = _WORDS.get(words[1], 1)
            if "--help" not in words:
                words[1 + count : 1 + count] = ["--netns", netns.name]
            line = " ".join([program, *words[1:]])
            if _EXIT.sub("", line).rstrip().endswith("&"):
                line = "exec " + _EXIT.sub("", line).rstrip()[:-1]
                job = subprocess.Popen(["bash", "-c", line], cwd=tmp_path, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
                background.append((command, status, job))
                assert job.stderr is not None
                ready, _, _ = select.select([job.stderr], [], [], 30)
                assert ready and job.stderr.readline(), command
                continue
            proc = subprocess.run(
                ["bash", "-c", line],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            assert proc.returncode == status, (command, proc.stdout, proc.stderr)
        assert not background, "a background example without a `$ wait` after it"
    finally:
        for _, _, job in background:  # a failed example left it running
            job.kill()
            job.communicate()
