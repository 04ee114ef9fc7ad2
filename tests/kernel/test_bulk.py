"""Kernel tests of the bulk API: upsert_many/delete_many against a real namespace.

Every test runs in a fresh namespace from the ``netns`` fixture (veth ``v0``/``v1`` up,
``192.0.2.2/24`` and ``2001:db8::2/64`` on ``v0``).  Prefixes come from the benchmarking
range 198.18.0.0/15 and 2001:db8::/32; gateways are ``192.0.2.1``, ``192.0.2.10`` to ``.19``
and ``2001:db8::1``, on-link and held by no interface.  What the kernel holds is read
back through :mod:`tests.oracle` (``ip -json``), never through asyncroute.

Private attribute used: ``conn._sock`` (its inode), to check that each connection is
inside its test namespace before it writes anything.
"""

from __future__ import annotations

import errno
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from ipaddress import IPv6Network
from typing import Any

import pytest

from asyncroute import KernelError, NotFoundError, RetryPolicy, Route
from asyncroute.testing import Namespace
from tests import oracle
from tests.kernel.guard import connect_in

pytestmark = [pytest.mark.kernel, pytest.mark.anyio]

TABLE = 100
NH = "192.0.2.1"
NH6 = "2001:db8::1"
GATEWAYS = [f"192.0.2.{10 + n}" for n in range(10)]


# --------------------------------------------------------------------------- helpers


def v4_prefix(i: int) -> str:
    return f"198.18.{i >> 8}.{i & 255}/32"


def v4_routes(count: int, nexthop: str = NH, table: int = TABLE) -> Iterator[Route]:
    return (Route(v4_prefix(i), nexthop=nexthop, device="v0", table=table) for i in range(count))


async def v4_routes_async(count: int, table: int = TABLE) -> AsyncIterator[Route]:
    for route in v4_routes(count, table=table):
        yield route


def summary(results: list[bool | BaseException]) -> Counter[str]:
    """Outcomes by kind (``True`` or the exception's class and errno), for messages."""
    return Counter(
        "True" if r is True else f"{type(r).__name__}({getattr(r, 'errno', '')})" for r in results
    )


def assert_all_true(results: list[bool | BaseException], count: int) -> None:
    assert len(results) == count
    assert all(r is True for r in results), summary(results)


def nexthop_entries(ns: Namespace, table: int | str, family: int = 4) -> list[dict[str, Any]]:
    """The routes of ``table`` without a gateway: the nexthop routes here."""
    return [r for r in oracle.routes(ns.name, table=table, family=family) if "gateway" not in r]


# =========================================================================== IPv4, 20,000


async def test_upsert_and_delete_20000_routes(netns: Namespace) -> None:
    count = 20_000
    expected = {v4_prefix(i) for i in range(count)}
    async with connect_in(netns) as conn:
        assert_all_true(await conn.upsert_many(v4_routes(count)), count)
        assert oracle.route_dsts(netns.name, table=TABLE) == expected | {f"{NH}/32"}
        shown = oracle.routes(netns.name, table=TABLE)
        assert len(shown) == count + 1  # nothing twice
        assert nexthop_entries(netns, TABLE) == [
            {"dst": NH, "dev": "v0", "scope": "link", "flags": []}
        ]
        assert all(r.get("gateway") == NH and r["dev"] == "v0" for r in shown if r["dst"] != NH)

        assert_all_true(await conn.delete_many(v4_routes(count)), count)
        assert oracle.route_dsts(netns.name, table=TABLE) == {f"{NH}/32"}

        again = await conn.delete_many(v4_routes(count))
        assert len(again) == count
        assert all(isinstance(r, NotFoundError) for r in again), summary(again)
        assert conn.stats.overruns == 0, conn.stats
    assert oracle.route_dsts(netns.name) == {"192.0.2.0/24"}  # main untouched


# =========================================================================== IPv6


async def test_upsert_and_delete_5000_ipv6_routes(netns: Namespace) -> None:
    count = 5_000
    prefixes = [str(IPv6Network(f"2001:db8:1:{i:x}::/64")) for i in range(count)]
    baseline = oracle.route_dsts(netns.name, family=6)
    assert not baseline & set(prefixes)

    def routes() -> Iterator[Route]:
        return (Route(p, nexthop=NH6, device="v0") for p in prefixes)

    async with connect_in(netns) as conn:
        assert_all_true(await conn.upsert_many(routes()), count)
        after = oracle.route_dsts(netns.name, family=6)
        assert after == baseline | set(prefixes) | {f"{NH6}/128"}
        shown = [r for r in oracle.routes(netns.name, family=6) if r["dst"] in set(prefixes)]
        assert len(shown) == count
        assert all(r["gateway"] == NH6 and r["dev"] == "v0" for r in shown)

        assert_all_true(await conn.delete_many(routes()), count)
        assert oracle.route_dsts(netns.name, family=6) == baseline | {f"{NH6}/128"}
        again = await conn.delete_many(routes())
        assert all(isinstance(r, NotFoundError) for r in again), summary(again)
        assert conn.stats.overruns == 0, conn.stats


# =========================================================================== shared nexthops


async def test_2000_routes_via_10_gateways_share_10_nexthop_routes(netns: Namespace) -> None:
    count = 2_000

    def routes() -> Iterator[Route]:
        return (
            Route(v4_prefix(i), nexthop=GATEWAYS[i % 10], device="v0", table=TABLE)
            for i in range(count)
        )

    async with connect_in(netns) as conn:
        assert_all_true(await conn.upsert_many(routes()), count)
        shown = oracle.routes(netns.name, table=TABLE)
        assert len(shown) == count + 10
        nexthops = nexthop_entries(netns, TABLE)
        assert sorted((r["dst"], r["dev"], r.get("scope")) for r in nexthops) == sorted(
            (gw, "v0", "link") for gw in GATEWAYS
        )
        gateway_of = {r["dst"]: r.get("gateway") for r in shown}
        for i in range(count):
            assert gateway_of[v4_prefix(i).removesuffix("/32")] == GATEWAYS[i % 10]

        # Upserting them again replaces in place: still one route each, 10 nexthop routes.
        assert_all_true(await conn.upsert_many(routes()), count)
        assert len(oracle.routes(netns.name, table=TABLE)) == count + 10


# =========================================================================== async input


async def test_async_generator_input(netns: Namespace) -> None:
    count = 3_000
    table = 200
    expected = {v4_prefix(i) for i in range(count)}
    async with connect_in(netns) as conn:
        assert_all_true(await conn.upsert_many(v4_routes_async(count, table=table)), count)
        assert oracle.route_dsts(netns.name, table=table) == expected | {f"{NH}/32"}
        assert_all_true(await conn.delete_many(v4_routes_async(count, table=table)), count)
        assert oracle.route_dsts(netns.name, table=table) == {f"{NH}/32"}


# =========================================================================== small buffer


async def test_small_receive_buffer_respects_the_window(netns: Namespace) -> None:
    count = 5_000
    async with connect_in(netns, rcvbuf=64 * 1024) as conn:
        assert conn.rcvbuf <= 256 * 1024, conn.rcvbuf  # the buffer really is small
        assert_all_true(await conn.upsert_many(v4_routes(count)), count)
        assert len(oracle.routes(netns.name, table=TABLE)) == count + 1
        assert_all_true(await conn.delete_many(v4_routes(count)), count)
        assert conn.stats.overruns == 0, conn.stats
    assert oracle.route_dsts(netns.name, table=TABLE) == {f"{NH}/32"}


# =========================================================================== rollback


async def test_rollback_removes_only_the_nexthop_routes_this_call_created(
    netns: Namespace,
) -> None:
    """Routes the kernel refuses (prefsrc 198.51.100.77 is not local: EINVAL, retried
    until the policy gives up): the nexthop route they created is deleted again; one
    that was there before the call stays."""
    count = 50
    netns.ip("route", "add", f"{GATEWAYS[1]}/32", "dev", "v0", "scope", "link", "table", "100")

    async def no_sleep(seconds: float) -> None:
        pass

    def refused(gateway: str) -> Iterator[Route]:
        return (
            Route(v4_prefix(i), nexthop=gateway, local="198.51.100.77", device="v0", table=TABLE)
            for i in range(count)
        )

    async with connect_in(netns) as conn:
        policy = RetryPolicy(max_tries=3, sleep=no_sleep)
        for gateway in GATEWAYS[:2]:
            results = await conn.upsert_many(refused(gateway), retry=policy)
            assert all(type(r) is KernelError and r.errno == errno.EINVAL for r in results), (
                summary(results)
            )
    # GATEWAYS[0]'s nexthop route was created by the call and removed; GATEWAYS[1]'s stays.
    assert oracle.route_dsts(netns.name, table=TABLE) == {f"{GATEWAYS[1]}/32"}


async def test_progress_is_reported_while_a_fast_load_runs(netns: Namespace) -> None:
    """A load that never waits for the window still reports progress as it goes (the
    producer reports each time it yields to the event loop), rising, ending at the total."""
    count = 50_000
    seen: list[int] = []
    async with connect_in(netns) as conn:
        results = await conn.upsert_many(v4_routes(count), progress=seen.append)
        assert_all_true(results, count)
        assert await conn.delete_many(v4_routes(count)) == [True] * count
    assert seen[-1] == count
    assert seen == sorted(seen)
    # 50,000 routes take tens of milliseconds at least; progress comes every 3 ms of it.
    assert len(set(seen)) >= 5, seen
