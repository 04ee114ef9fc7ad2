"""``python -m asyncroute bench`` end to end, small: it runs as a subprocess, its JSON holds
measured, positive figures, and its throwaway namespace is gone afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asyncroute import bench, cli

pytestmark = pytest.mark.kernel

ROUTES = 2000
PHASES = "upsert_many,ip-batch,raw-floor"
#: the rows of those phases: key → kind
ROWS = {
    "asyncroute.upsert_many": "v4-add",
    "asyncroute.delete_many": "v4-del",
    "ip.replace": "v4-add",
    "ip.del": "v4-del",
    "raw.add": "v4-add",
    "raw.del": "v4-del",
}


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture
def root() -> None:
    if os.geteuid() != 0:
        pytest.skip("asyncroute bench needs root (it creates a network namespace)")


def test_bench_quick(root: None, tmp_path: Path) -> None:
    before = _netns_names()
    output = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "asyncroute", "bench", "--routes", str(ROUTES), "--rounds", "1"]
    argv += ["--only", PHASES, "--json", str(output), "--quiet"]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""  # --quiet: no progress output

    data = json.loads(output.read_text())
    namespace = data["config"]["netns"]
    assert namespace.startswith("asyncroute-bench-")
    assert not data["config"]["netns_given"]
    assert namespace not in _netns_names()
    assert not os.path.lexists(f"/run/netns/{namespace}")
    assert _netns_names() <= before  # nothing left behind

    machine = data["machine"]
    for field in ("kernel", "python", "cpu", "cpus", "pyroute2", "iproute2", "date"):
        assert machine[field], field

    rows = {row["key"]: row for row in data["rows"]}
    assert set(rows) == set(ROWS)
    for key, kind in ROWS.items():
        row = rows[key]
        assert row["kind"] == kind
        assert row["errors"] == [], row["errors"]
        (sample,) = row["rounds"]
        assert sample["count"] == ROUTES
        assert sample["seconds"] > 0
        assert sample["rate"] > 0
        assert sample["cpu"] is not None and sample["cpu"] >= 0
        assert row["median"]["rate"] == pytest.approx(sample["rate"])
    # Ratios are measured in the same run, and only between figures that exist.
    for key in ("asyncroute.upsert_many", "asyncroute.delete_many", "raw.add", "raw.del"):
        assert rows[key]["vs_ip_batch"] > 0
    assert rows["ip.replace"]["vs_ip_batch"] is None
    assert rows["asyncroute.upsert_many"]["vs_raw_floor"] > 0
    # The event-loop ticker ran beside the asyncroute phases.
    assert rows["asyncroute.upsert_many"]["rounds"][0]["ticks"] >= 1
    assert rows["asyncroute.upsert_many"]["rounds"][0]["lag_max"] >= 0

    assert "asyncroute upsert_many" in proc.stdout  # the table is printed
    assert data["lookup"] == {} and data["sweep"] == {}


def test_a_failing_phase_reports_its_reason_and_the_rest_still_runs(
    root: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(ctx: bench.Context, round_number: int) -> None:
        raise RuntimeError("simulated failure")

    monkeypatch.setitem(bench.PHASE_RUNNERS, "raw-floor", broken)
    output = tmp_path / "bench.json"
    argv = ["bench", "--routes", "500", "--rounds", "1", "--only", "raw-floor,ip-batch", "--quiet"]
    status = cli.main([*argv, "--json", str(output)])
    assert status == 1
    printed = capsys.readouterr().out
    assert "not measured: RuntimeError: simulated failure" in printed
    data = json.loads(output.read_text())
    rows = {row["key"]: row for row in data["rows"]}
    assert rows["raw.add"]["rounds"] == [] and rows["raw.add"]["median"] is None
    assert rows["raw.add"]["errors"][0]["error"] == "RuntimeError: simulated failure"
    assert rows["ip.replace"]["rounds"][0]["rate"] > 0  # the next phase still ran
    assert rows["ip.replace"]["vs_raw_floor"] is None  # no ratio to a figure not measured
    assert data["config"]["netns"] not in _netns_names()
