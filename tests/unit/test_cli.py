"""The ``asyncroute`` command line: help texts, the console script, argument errors.

Nothing here needs root: ``bench`` checks its arguments before it checks privileges.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from asyncroute import bench, cli


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncroute", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_exits_0_with_an_example() -> None:
    proc = _run("--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: asyncroute" in proc.stdout
    assert "examples:" in proc.stdout
    assert "asyncroute bench" in proc.stdout
    assert "bench" in proc.stdout.split("positional arguments:")[1]


def test_bench_help_exits_0_with_examples_and_every_phase() -> None:
    proc = _run("bench", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "examples:" in proc.stdout
    assert "asyncroute bench --routes" in proc.stdout
    options = (
        "--routes",
        "--rounds",
        "--only",
        "--json",
        "--plot",
        "--sweep",
        "--netns",
        "--quiet",
    )
    for option in options:
        assert option in proc.stdout, option
    for phase in bench.PHASES:
        assert f"  {phase} " in proc.stdout, phase


def test_no_subcommand_is_a_usage_error() -> None:
    proc = _run()
    assert proc.returncode == 2
    assert "usage: asyncroute" in proc.stderr


def test_unknown_phase_is_refused_before_anything_runs() -> None:
    proc = _run("bench", "--only", "upsert_many,nonsense", "--quiet")
    assert proc.returncode == 2
    assert "nonsense" in proc.stderr
    assert "upsert_many" in proc.stderr  # the valid names are listed


@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_routes_must_be_a_positive_number(value: str) -> None:
    with pytest.raises(SystemExit) as exc_info:
        cli.build_parser().parse_args(["bench", "--routes", value])
    assert exc_info.value.code == 2


def test_bench_defaults() -> None:
    args = cli.build_parser().parse_args(["bench"])
    assert (args.routes, args.rounds, args.only, args.netns) == (100_000, 3, None, None)
    assert (args.json, args.plot, args.sweep, args.quiet) == (None, None, False, False)
    assert args.tasks_routes is None  # means: --routes


def test_console_script_points_at_cli_main() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (entry,) = [e for e in scripts if e.name == "asyncroute"]
    assert entry.value == "asyncroute.cli:main"
