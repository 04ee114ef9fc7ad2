"""One million routes from a generator through ``upsert_many`` (``make bench-1m``).

Issue 4 asks that 1,000,000 routes stream through ``upsert_many``: every route acked and
present afterwards, peak RSS under 150 MB.  Documentation prefixes hold 131,072 /32s
(198.18.0.0/15), so the run uses them in 8 tables (100-107): 1,048,576 routes via
192.0.2.1 dev v0, built lazily from strings in the generator, in a throwaway namespace.
Then ``delete_many`` removes them all.  Prints what it measured beside the machine.

Needs root.  Run: ``.venv/bin/python benchmarks/million.py`` (or ``make bench-1m``).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

import anyio

import asyncroute
from asyncroute import Route
from asyncroute.bench import machine_info
from asyncroute.netns import namespace

TABLES = range(100, 108)
PER_TABLE = 2 * 65536  # 198.18.0.0/15
TOTAL = len(TABLES) * PER_TABLE
RSS_LIMIT_MIB = 150


def routes() -> Iterator[Route]:
    for table in TABLES:
        for i in range(PER_TABLE):
            yield Route(
                f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32",
                nexthop="192.0.2.1",
                device="v0",
                table=table,
            )


def status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


def count_prefix_routes(ns: str, table: int) -> int:
    """Routes in 198.18.0.0/15 in ``table`` (not the nexthop route), counted by ip."""
    out = subprocess.run(
        ["ip", "-n", ns, "-4", "route", "show", "table", str(table), "root", "198.18.0.0/15"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sum(1 for line in out.splitlines() if line.strip())


async def run(ns: str) -> dict[str, object]:
    progress_every = TOTAL // 8

    def progress(done: int) -> None:
        nonlocal next_report
        if done >= next_report:
            print(f"  {done:>9,} / {TOTAL:,} answered", file=sys.stderr, flush=True)
            next_report += progress_every

    async with asyncroute.connect(ns) as conn:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS (proc(5))
        rss_before = status_mib("VmRSS")
        next_report = progress_every
        start = time.perf_counter()
        results = await conn.upsert_many(routes(), progress=progress)
        add_seconds = time.perf_counter() - start
        peak = status_mib("VmHWM")
        failed = [r for r in results if r is not True]
        counts = {table: count_prefix_routes(ns, table) for table in TABLES}
        next_report = progress_every
        start = time.perf_counter()
        deleted = await conn.delete_many(routes(), progress=progress)
        del_seconds = time.perf_counter() - start
        left = sum(count_prefix_routes(ns, table) for table in TABLES)
        stats = conn.stats
    return {
        "routes": TOTAL,
        "results": len(results),
        "failed": len(failed),
        "first_failure": repr(failed[0]) if failed else None,
        "present_per_table": counts,
        "present": sum(counts.values()),
        "add_seconds": round(add_seconds, 2),
        "add_rate": round(TOTAL / add_seconds),
        "rss_before_mib": round(rss_before, 1),
        "peak_rss_mib": round(peak, 1),
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "delete_failed": sum(1 for r in deleted if r is not True),
        "delete_seconds": round(del_seconds, 2),
        "delete_rate": round(TOTAL / del_seconds),
        "left_after_delete": left,
        "overruns": stats.overruns,
    }


def main() -> int:
    info = machine_info("asyncio")
    print(f"asyncroute one-million-route run, {info['date']}")
    print(f"  {info['cpu']}, {info['cpus']} CPUs; {info['kernel']}; {info['python']}")
    print(f"  asyncroute {info['asyncroute']} ({info['git']}), anyio {info['anyio']}")
    with namespace("asyncroute-million") as ns:
        result = anyio.run(run, ns.name)
    ok = (
        result["failed"] == 0
        and result["present"] == TOTAL
        and result["delete_failed"] == 0
        and result["left_after_delete"] == 0
        and float(result["peak_rss_mib"]) < RSS_LIMIT_MIB  # type: ignore[arg-type]
    )
    print(json.dumps(result, indent=2))
    print(
        f"upsert_many {TOTAL:,} routes: {result['add_rate']:,}/s, "
        f"{result['present']:,} present, {result['failed']} failed; "
        f"peak RSS {result['peak_rss_mib']} MiB (limit {RSS_LIMIT_MIB}); "
        f"delete_many {result['delete_rate']:,}/s, {result['left_after_delete']} left"
    )
    print("[met]" if ok else "[below target]", "1,000,000 routes through upsert_many")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
