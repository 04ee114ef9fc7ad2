"""Smoke benchmark: program 10,000 routes in a throwaway namespace; report routes/s.

Each round, in one fresh namespace, interleaved: asyncroute (one task per route on one
connection) replaces 10,000 routes, then deletes them; ``ip -batch`` does the same from a
generated file.  Medians of the rounds are printed beside the machine, kernel and
Python version, with the ratio to ``ip -batch`` measured in the same run.  The full
benchmark (bulk API, pyroute2, raw floor) comes with the throughput work.

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
from collections.abc import Callable
from ipaddress import IPv4Address

import anyio

import asyncroute
from asyncroute import NLM_F, RTM, LinkMessage, Message, RouteMessage
from asyncroute.testing import Namespace, namespace

TABLE = 100
GATEWAY = IPv4Address("192.0.2.1")
BASE = int(IPv4Address("198.18.0.0"))


def machine() -> str:
    """One line naming CPU, cores, kernel and Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def count_routes(ns: Namespace) -> int:
    out = subprocess.run(
        ["ip", "-n", ns.name, "-4", "route", "show", "table", str(TABLE)],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return len(out.splitlines())


async def asyncroute_round(ns: Namespace, n: int) -> tuple[float, float]:
    async with asyncroute.connect(ns.name) as conn:
        links = [m.body async for m in conn.dump(Message(RTM.GETLINK, body=LinkMessage()))]
        oif = next(b.index for b in links if isinstance(b, LinkMessage) and b.name == "v0")
        routes = [
            RouteMessage(family=2, dst_len=32, table=TABLE, protocol=3, type=1,
                         dst=IPv4Address(BASE + i), gateway=GATEWAY, oif=oif)
            for i in range(n)
        ]  # fmt: skip

        async def run(msg_type: int, flags: int) -> float:
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for route in routes:
                    group.start_soon(conn.request, Message(msg_type, flags, route))
            return time.perf_counter() - started

        add = await run(RTM.NEWROUTE, NLM_F.CREATE | NLM_F.REPLACE)
        if count_routes(ns) != n:
            raise SystemExit(f"asyncroute: expected {n} routes, found {count_routes(ns)}")
        delete = await run(RTM.DELROUTE, 0)
        if count_routes(ns) != 0:
            raise SystemExit("asyncroute: routes left after delete")
        return add, delete


def ip_batch_round(ns: Namespace, n: int) -> tuple[float, float]:
    def run(verb: str) -> float:
        with tempfile.NamedTemporaryFile("w", suffix=".batch") as batch:
            for i in range(n):
                batch.write(f"route {verb} {IPv4Address(BASE + i)}/32 via {GATEWAY} dev v0 "
                            f"table {TABLE}\n")  # fmt: skip
            batch.flush()
            started = time.perf_counter()
            subprocess.run(["ip", "-n", ns.name, "-batch", batch.name], check=True)
            return time.perf_counter() - started

    add = run("replace")
    if count_routes(ns) != n:
        raise SystemExit(f"ip -batch: expected {n} routes, found {count_routes(ns)}")
    delete = run("del")
    return add, delete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make bench needs root: it creates a network namespace")
    n = args.routes
    results: dict[str, list[tuple[float, float]]] = {"asyncroute": [], "ip -batch": []}
    runners: dict[str, Callable[[Namespace], tuple[float, float]]] = {
        "asyncroute": lambda ns: anyio.run(asyncroute_round, ns, n),
        "ip -batch": lambda ns: ip_batch_round(ns, n),
    }
    print(f"machine: {machine()}")
    print(f"job: {n} IPv4 /32 routes via {GATEWAY} dev v0, table {TABLE}, "
          f"replace then delete; {args.rounds} rounds, interleaved", flush=True)  # fmt: skip
    with namespace("asyncroute-bench") as ns:
        for round_number in range(1, args.rounds + 1):
            for name, runner in runners.items():
                add, delete = runner(ns)
                results[name].append((add, delete))
                print(f"  round {round_number} {name:<10} add {n / add:>9,.0f}/s  "
                      f"delete {n / delete:>9,.0f}/s", flush=True)  # fmt: skip
    print("\nmedian routes/s    add        delete    add vs ip -batch")
    base_add = statistics.median(a for a, _ in results["ip -batch"])
    for name, runs in results.items():
        add = statistics.median(a for a, _ in runs)
        delete = statistics.median(d for _, d in runs)
        print(f"  {name:<12} {n / add:>9,.0f}  {n / delete:>9,.0f}     {base_add / add:.2f}x")


if __name__ == "__main__":
    main()
