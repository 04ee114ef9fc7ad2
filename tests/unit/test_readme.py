"""The README's benchmark table is what a `make bench` run printed.

The README names the run's JSON file (benchmarks/results/<date>.json); every table line
with a routes/s figure must show that run's median rate for the row with the same
label, in the same order, and the header's date and kernel must be the run's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
_TABLE = re.compile(r"```text\n(asyncroute bench\n.*?)```", re.S)
_JSON = re.compile(r"benchmarks/results/(\d{8}T\d{6}Z)\.json")
# "  asyncroute upsert_many      100,000    305,768      1.98x ..."
_ROW = re.compile(r"^  (\S.*?)\s{2,}([\d,]+)\s+([\d,]+)\s", re.M)


def _run() -> dict[str, object]:
    match = _JSON.search(README)
    assert match, "the README names no benchmarks/results/<date>.json"
    path = ROOT / "benchmarks" / "results" / f"{match.group(1)}.json"
    result: dict[str, object] = json.loads(path.read_text())
    return result


def test_table_header_is_the_runs() -> None:
    table = _TABLE.search(README)
    assert table, "the README has no `asyncroute bench` output block"
    machine = _run()["machine"]
    assert isinstance(machine, dict)
    text = table.group(1)
    assert f"  date      {machine['date']}\n" in text
    assert f"  kernel    {machine['kernel']}\n" in text
    assert f"  machine   {machine['cpu']}, {machine['cpus']} CPUs" in text


def test_table_rows_are_the_runs_medians() -> None:
    table = _TABLE.search(README)
    assert table
    rows = _run()["rows"]
    assert isinstance(rows, list)
    printed = [
        (label, int(rate.replace(",", ""))) for label, _, rate in _ROW.findall(table.group(1))
    ]
    assert len(printed) >= 10, printed
    # The JSON rows in the order the table prints them (labels repeat across sections).
    remaining = [(row["label"], round(row["median"]["rate"])) for row in rows if row["median"]]
    for label, rate in printed:
        index = next(i for i, (name, _) in enumerate(remaining) if name == label.strip())
        assert remaining[index][1] == rate, (label, rate, remaining[index])
        remaining = remaining[index + 1 :]
