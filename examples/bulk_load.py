"""Bulk loading: 100,000 routes through ``upsert_many`` with progress, then ``delete_many``.

Shows a generator of routes streamed through the connection's window (no task per
route), a ``progress`` callback (a rich progress bar when rich is installed and stderr
is a terminal, else a plain text line on stderr), the rate, a check of every result, and
the kernel's count from a filtered listing.  Run as root, with the name of a network
namespace that has veth ``v0`` up with 192.0.2.2/24 (the layout ``asyncroute.testing``'s
``netns`` fixture makes); without an argument it makes a throwaway one::

    python examples/bulk_load.py NETNS [COUNT]
"""

import sys
import time

import anyio

import asyncroute
from asyncroute import AF_INET, RT_SCOPE, Route
from asyncroute.netns import namespace

try:
    from rich.console import Console
    from rich.progress import Progress
except ImportError:  # rich is optional
    Progress = None

COUNT = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000  # at most 131,072: 198.18.0.0/15


def routes():
    for i in range(COUNT):  # 198.18.0.0/32, 198.18.0.1/32, ... via 192.0.2.1 in table 100
        prefix = f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32"
        yield Route(prefix, nexthop="192.0.2.1", device="v0", table=100)


def show(label: str, done: int) -> None:
    """The plain progress line, redrawn in place."""
    print(f"\r{label}: {done:,}/{COUNT:,} ({100 * done // COUNT}%)", end="", file=sys.stderr)


async def timed(label: str, bulk_call) -> None:
    """Run ``bulk_call(routes(), progress=...)``; print the rate and the failures."""
    start = time.perf_counter()
    if Progress is not None and sys.stderr.isatty():
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(label, total=COUNT)
            results = await bulk_call(routes(), progress=lambda n: bar.update(task, completed=n))
    else:
        results = await bulk_call(routes(), progress=lambda n: show(label, n))
        print(file=sys.stderr)
    elapsed = time.perf_counter() - start
    failed = [result for result in results if result is not True]  # else the exception
    print(f"{label} {len(results):,} routes, {COUNT / elapsed:,.0f} routes/s, {len(failed)} failed")


async def count(conn: asyncroute.Connection) -> int:
    """Our routes in table 100 (scope universe: not the nexthop route, scope link)."""
    listing = conn.list_routes(AF_INET, table=100, scope=RT_SCOPE.UNIVERSE)
    return sum([1 async for _ in listing])


async def main(netns: str) -> None:
    async with asyncroute.connect(netns) as conn:
        await timed("upserted", conn.upsert_many)
        print(f"table 100 holds {await count(conn):,} routes")
        await timed("deleted", conn.delete_many)
        print(f"table 100 holds {await count(conn):,} routes")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        anyio.run(main, sys.argv[1])
    else:  # a throwaway namespace: veth v0/v1, 192.0.2.2/24 on v0; always deleted
        with namespace("asyncroute-example") as ns:
            anyio.run(main, ns.name)
