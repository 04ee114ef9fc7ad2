"""Benchmark: program routes in bulk in a throwaway namespace; report routes/s.

Each round, in one fresh namespace, interleaved (A B A B …):
- asyncroute: ``upsert_many`` of N routes built from strings inside the timed generator
  (``Route(f"198.18.x.y/32", nexthop="192.0.2.1", device="v0", table=100)``), then
  ``delete_many`` of them;
- ``ip -batch`` (iproute2) from a generated file: ``route replace`` of the same N routes,
  then ``route del``.
After every phase the kernel's table is counted (``ip route show``): a figure for routes
that were not installed would be worthless.  Medians of the rounds are printed beside
the machine, kernel, Python and iproute2 versions, with the ratio to ``ip -batch``
measured in the same run.

Usage: python benchmarks/smoke.py [--routes N] [--rounds R]   (needs root)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import anyio

import asyncroute
from asyncroute import Route
from asyncroute.testing import Namespace, namespace

TABLE = 100
GATEWAY = "192.0.2.1"


def machine() -> str:
    """One line naming CPU, cores, kernel, Python and iproute2."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    iproute2 = subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip()
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {iproute2}"
    )


def prefix(i: int) -> str:
    """The i-th /32 in 198.18.0.0/15."""
    return f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32"


def count_routes(ns: Namespace) -> int:
    out = subprocess.run(
        ["ip", "-n", ns.name, "-4", "route", "show", "table", str(TABLE)],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    # The nexthop route upsert installs (192.0.2.1 dev v0 scope link) is not counted.
    return sum(1 for line in out.splitlines() if " via " in line)


def expect(ns: Namespace, who: str, n: int) -> None:
    found = count_routes(ns)
    if found != n:
        raise SystemExit(f"{who}: expected {n} routes in table {TABLE}, found {found}")


async def asyncroute_round(ns: Namespace, n: int) -> tuple[float, float]:
    def routes() -> Iterator[Route]:
        for i in range(n):
            yield Route(prefix(i), nexthop=GATEWAY, device="v0", table=TABLE)

    async with asyncroute.connect(ns.name) as conn:
        started = time.perf_counter()
        results = await conn.upsert_many(routes())
        add = time.perf_counter() - started
        failed = [r for r in results if r is not True]
        if failed:
            raise SystemExit(f"asyncroute: {len(failed)} upserts failed, e.g. {failed[0]!r}")
        expect(ns, "asyncroute upsert_many", n)
        started = time.perf_counter()
        results = await conn.delete_many(routes())
        delete = time.perf_counter() - started
        if any(r is not True for r in results):
            raise SystemExit("asyncroute: some deletes failed")
        expect(ns, "asyncroute delete_many", 0)
        return add, delete


def ip_batch_round(ns: Namespace, n: int) -> tuple[float, float]:
    def run(verb: str) -> float:
        with tempfile.NamedTemporaryFile("w", suffix=".batch") as batch:
            for i in range(n):
                batch.write(f"route {verb} {prefix(i)} via {GATEWAY} dev v0 table {TABLE}\n")
            batch.flush()
            started = time.perf_counter()
            subprocess.run(["ip", "-n", ns.name, "-batch", batch.name], check=True)
            return time.perf_counter() - started

    add = run("replace")
    expect(ns, "ip -batch replace", n)
    delete = run("del")
    expect(ns, "ip -batch del", 0)
    return add, delete


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--routes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make bench needs root: it creates a network namespace")
    n = args.routes
    if not 0 < n <= 2 * 65536:
        sys.exit("--routes must be in 1..131072 (198.18.0.0/15 holds that many /32s)")
    runners: dict[str, Callable[[Namespace], tuple[float, float]]] = {
        "asyncroute": lambda ns: anyio.run(asyncroute_round, ns, n),
        "ip -batch": lambda ns: ip_batch_round(ns, n),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    print(f"machine: {machine()}")
    print(f"job: {n:,} IPv4 /32 routes via {GATEWAY} dev v0 in table {TABLE}: add, then "
          f"delete; {args.rounds} rounds, interleaved", flush=True)  # fmt: skip
    with namespace("asyncroute-bench") as ns:
        for round_number in range(1, args.rounds + 1):
            for name, runner in runners.items():
                add, delete = runner(ns)
                results[name].append((add, delete))
                print(f"  round {round_number} {name:<10} add {n / add:>9,.0f}/s  "
                      f"delete {n / delete:>9,.0f}/s", flush=True)  # fmt: skip
    base_add = statistics.median(a for a, _ in results["ip -batch"])
    base_delete = statistics.median(d for _, d in results["ip -batch"])
    print("\nmedian routes/s        add     delete   add vs ip -batch   delete vs ip -batch")
    for name, runs in results.items():
        add = statistics.median(a for a, _ in runs)
        delete = statistics.median(d for _, d in runs)
        print(f"  {name:<12} {n / add:>9,.0f}  {n / delete:>9,.0f}   {base_add / add:>13.2f}x"
              f"   {base_delete / delete:>18.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
