"""Kernel tests of ECMP multipath routes and routes via nexthop objects (issue 6 item 2).

Each test runs in a fresh namespace (veth ``v0`` up, ``192.0.2.2/24`` and
``2001:db8::2/64`` on it).  The four gateways ``.1 .3 .4 .5`` (``::1 ::3 ::4 ::5``) are
on v0's subnet and held by no interface.  What the kernel holds is read with
``ip -json`` (never through asyncroute) and compared with what asyncroute upserted and
looked up.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from asyncroute import Connection, Nexthop, NotFoundError, Route
from asyncroute.testing import Namespace
from tests import oracle
from tests.kernel.guard import connect_in

pytestmark = [pytest.mark.kernel, pytest.mark.anyio]

TABLE = 100
BOOT = 3  # RTPROT_BOOT: what the kernel reports for a route added without a protocol
GATEWAYS = {4: ["192.0.2.1", "192.0.2.3", "192.0.2.4", "192.0.2.5"],
            6: ["2001:db8::1", "2001:db8::3", "2001:db8::4", "2001:db8::5"]}  # fmt: skip
PREFIXES = {4: "203.0.113.0/24", 6: "2001:db8:100::/64"}
WEIGHTS = [1, 2, 3, 4]


def multipath_route(version: int, weights: list[int] = WEIGHTS, **fields: Any) -> Route:
    hops = [Nexthop(gw, "v0", weight=w) for gw, w in zip(GATEWAYS[version], weights, strict=True)]
    return Route(PREFIXES[version], nexthops=hops, table=TABLE, **fields)


def as_reported(route: Route) -> Route:
    """``route`` with the defaults the kernel fills in: protocol boot, type unicast, and
    metric 1024 for IPv6 (``IP6_RT_PRIO_USER``)."""
    priority = route.priority or (1024 if route.prefix.version == 6 else 0)
    return route.replace(proto=route.proto or BOOT, type=route.type or 1, priority=priority)


def kernel_hops(ns: Namespace, version: int) -> dict[str, set[tuple[str, str, int]]]:
    """prefix → {(gateway, dev, weight)} of every multipath route in TABLE, per ``ip``."""
    found: dict[str, set[tuple[str, str, int]]] = {}
    for entry in oracle.routes(ns.name, table=TABLE, family=version):
        hops = entry.get("nexthops")
        if hops:
            found[entry["dst"]] = {(h["gateway"], h["dev"], h.get("weight", 1)) for h in hops}
    return found


def our_hops(route: Route) -> set[tuple[str, str, int]]:
    return {(str(h.gateway), h.device, h.weight) for h in route.nexthops}


@pytest.mark.parametrize("version", [4, 6])
async def test_multipath_round_trip(netns: Namespace, version: int) -> None:
    route = multipath_route(version)
    async with connect_in(netns) as conn:
        assert await conn.upsert(route) is True
        assert kernel_hops(netns, version) == {PREFIXES[version]: our_hops(route)}
        found = await conn.lookup(route)
        assert found.nexthops and our_hops(found) == our_hops(route)
        assert found.prefix == route.prefix and found.table_id == TABLE
        assert found.device == "" and found.nexthop is None
        listed = [r async for r in conn.list_routes(table=TABLE)]
        assert [our_hops(r) for r in listed] == [our_hops(route)]  # whole, one route
        assert listed == [found]

        # Replace with other weights: still one route (IPv6: all siblings replaced).
        reweighted = multipath_route(version, [4, 3, 2, 1])
        await conn.upsert(reweighted)
        assert kernel_hops(netns, version) == {PREFIXES[version]: our_hops(reweighted)}
        assert our_hops(await conn.lookup(reweighted)) == our_hops(reweighted)
        with pytest.raises(NotFoundError):
            await conn.lookup(route)  # the old weights are gone

        await conn.delete(reweighted)
        assert oracle.routes(netns.name, table=TABLE, family=version) == []
        with pytest.raises(NotFoundError):
            await conn.lookup(reweighted)


@pytest.mark.parametrize("version", [4, 6])
async def test_multipath_in_main_table_is_found_by_the_fib_probe(
    netns: Namespace, version: int
) -> None:
    route = multipath_route(version).replace(table=0)
    async with connect_in(netns) as conn:
        await conn.upsert(route)
        found = await conn.lookup(route)
        assert our_hops(found) == our_hops(route)
        await conn.delete(route)
        assert PREFIXES[version] not in {
            r["dst"] for r in oracle.routes(netns.name, family=version)
        }


@pytest.mark.parametrize("version", [4, 6])
async def test_ip_command_recreates_the_same_route(netns: Namespace, version: int) -> None:
    """``to_ip_command()`` run by iproute2 gives the state upsert gives, and lookup of a
    route iproute2 made returns the Route that describes it."""
    route = multipath_route(version, mtu=1400, priority=7)
    subprocess.run(["ip", "-n", netns.name, *route.to_ip_command()[1:]], check=True)
    by_ip = oracle.routes(netns.name, table=TABLE, family=version)
    async with connect_in(netns) as conn:
        assert await conn.lookup(route) == as_reported(route)
        await conn.delete(route)
        assert oracle.routes(netns.name, table=TABLE, family=version) == []
        await conn.upsert(route)
    assert oracle.routes(netns.name, table=TABLE, family=version) == by_ip


@pytest.mark.parametrize("version", [4, 6])
async def test_bulk_multipath(netns: Namespace, version: int) -> None:
    """upsert_many/delete_many take multipath routes too (one template per hop set)."""
    base = "198.18.{}.0/24" if version == 4 else "2001:db8:200:{:x}::/64"
    hops = [Nexthop(gw, "v0", weight=w) for gw, w in zip(GATEWAYS[version], WEIGHTS, strict=True)]
    routes = [Route(base.format(i), nexthops=hops, table=TABLE) for i in range(200)]
    async with connect_in(netns) as conn:
        assert await conn.upsert_many(routes) == [True] * 200
        held = kernel_hops(netns, version)
        assert set(held) == {str(r.prefix) for r in routes}
        assert all(h == our_hops(routes[0]) for h in held.values())
        assert await conn.delete_many(routes) == [True] * 200
    assert oracle.routes(netns.name, table=TABLE, family=version) == []


@pytest.mark.parametrize("version", [4, 6])
async def test_route_via_nexthop_object(netns: Namespace, version: int) -> None:
    family = f"-{version}"
    ip = ["ip", "-n", netns.name]
    subprocess.run([*ip, family, "nexthop", "add", "id", "1", "via", GATEWAYS[version][0],
                    "dev", "v0"], check=True)  # fmt: skip
    subprocess.run([*ip, family, "nexthop", "add", "id", "2", "via", GATEWAYS[version][1],
                    "dev", "v0"], check=True)  # fmt: skip
    subprocess.run([*ip, "nexthop", "add", "id", "10", "group", "1,1/2,3"], check=True)
    route = Route(PREFIXES[version], nexthop_id=10, table=TABLE)
    async with connect_in(netns) as conn:
        await conn.upsert(route)
        held = oracle.routes(netns.name, table=TABLE, family=version)
        assert [(r["dst"], r.get("nhid")) for r in held] == [(PREFIXES[version], 10)]
        found = await conn.lookup(route)
        assert found == as_reported(
            route
        )  # the id only, not the object's hops the kernel also reports
        assert route.to_ip_command()[-4:] == ["nhid", "10", "table", str(TABLE)]
        subprocess.run(
            [*ip, family, "route", "del", PREFIXES[version], "table", str(TABLE)], check=True
        )
        subprocess.run([*ip, *route.to_ip_command()[1:]], check=True)
        assert oracle.routes(netns.name, table=TABLE, family=version) == held
        with pytest.raises(NotFoundError):
            await conn.lookup(route.replace(nexthop_id=1))
        await conn.delete(route)
        assert oracle.routes(netns.name, table=TABLE, family=version) == []


async def _upsert_error(conn: Connection, route: Route) -> str:
    with pytest.raises(Exception) as info:
        await conn.upsert(route)
    return str(info.value)


async def test_missing_hop_device_is_named(netns: Namespace) -> None:
    route = Route(
        PREFIXES[4], nexthops=[Nexthop("192.0.2.1", "v0"), Nexthop("192.0.2.3", "nosuch")]
    )
    async with connect_in(netns) as conn:
        message = await _upsert_error(conn, route)
    assert "nosuch" in message
    assert PREFIXES[4] not in {r["dst"] for r in oracle.routes(netns.name, family=4)}
