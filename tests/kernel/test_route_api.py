"""Kernel tests of the route API: Cilium's privileged checklist, an oracle comparison, load.

Cilium's ``route_linux_test.go`` (cilium-route-spec §12) runs on ``lo`` in the host's
namespace.  Here every test runs in a fresh namespace from the ``netns`` fixture (veth
``v0``/``v1`` up, ``192.0.2.2/24`` and ``2001:db8::2/64`` on ``v0`` only) and asyncroute
programs it; what the kernel holds is read back through :mod:`tests.oracle` or plain
``ip -json`` (never through asyncroute).

Mapping of Cilium's vectors to documentation prefixes (RFC 5737 / RFC 3849 / RFC 2544):

=========================================  ==================================================
Cilium                                     here
=========================================  ==================================================
device ``lo``                              device ``v0``
nexthop ``1.2.3.4`` (/32 nexthop route)    ``192.0.2.1`` (on v0's subnet) and
                                           ``198.51.100.4`` (off-subnet: only the nexthop
                                           route makes it reachable, as with Cilium's)
nexthop ``f00d::a02:100:0:815b``           ``2001:db8::1`` and ``2001:db8:ffff::4``
prefix ``2.2.0.0/16``                      ``198.18.0.0/16``
prefix ``f00d::a02:200:0:0/96``            ``2001:db8:2::/96``
rule selector ``10.10.0.0/16``             ``198.18.0.0/16``
rule selector ``beef::/48``                ``2001:db8:beef::/48``
=========================================  ==================================================

``192.0.2.1`` and ``2001:db8::1`` are on-link gateways that no interface holds (IPv6
refuses a local gateway).  Routes are only programmed; no packet is ever sent.

Private attribute used: ``conn._sock`` (its inode), to check that each connection is
inside its test namespace before it writes anything, so that a namespace bug in
asyncroute fails a test instead of changing the host's routes.

The tests named ``test_to_ip_command_*`` reproduce bugs found while writing this file;
``test_oracle_comparison`` fails for the same reasons until they are fixed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import re
import subprocess
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

import anyio
import pytest

from asyncroute import (
    RTN,
    RTN_LOCAL,
    Connection,
    Encap,
    KernelError,
    Nexthop,
    NotFoundError,
    RetryPolicy,
    Route,
    Rule,
)
from asyncroute.mtu import Configuration
from asyncroute.testing import Namespace, namespace
from tests import oracle
from tests.kernel.guard import connect_in

pytestmark = pytest.mark.kernel

SCOPE_LINK = 253
SCOPE_HOST = 254
RTPROT_BOOT = 3
RTN_UNICAST = 1
IPV6_DEFAULT_METRIC = 1024  # the kernel's metric for an IPv6 route added with none


# --------------------------------------------------------------------------- helpers


def _ip_dst(prefix: IPv4Network | IPv6Network | str) -> str:
    """A prefix as ``ip -json`` prints it: host routes without their length."""
    net = ip_network(prefix)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _strip(entry: dict[str, Any]) -> dict[str, Any]:
    """An ``ip -json`` route without ``flags`` (always ``[]`` here), protocol 192 by one
    name whatever iproute2's protocol table says."""
    out = {k: v for k, v in entry.items() if k != "flags"}
    if out.get("protocol") == "192":
        out["protocol"] = "eigrp"
    return out


_TABLE_NAMES = {253: "default", 254: "main", 255: "local"}  # iproute2's rt_tables


def _entries(ns: Namespace, dst: str, *, table: int | str, family: int) -> list[dict[str, Any]]:
    """The routes to ``dst`` in one table, stripped (and without ``table``).

    Read from ``table all``: for IPv6, ``ip route show table main`` hides routes of type
    local and ``table local`` shows them wherever they are (iproute2's emulation of
    kernels that kept IPv6 local routes in main), so a per-table listing would lie.
    """
    name = _TABLE_NAMES.get(table, str(table)) if isinstance(table, int) else table
    return [
        {k: v for k, v in _strip(r).items() if k != "table"}
        for r in oracle.routes(ns.name, table="all", family=family)
        if r["dst"] == dst and r.get("table", "main") == name
    ]


def _tables_holding(ns: Namespace, dst: str, family: int) -> list[str]:
    """The names of the tables that hold a route to ``dst``."""
    shown = oracle.routes(ns.name, table="all", family=family)
    return sorted(r.get("table", "main") for r in shown if r["dst"] == dst)


def _family(route: Route) -> int:
    return route.prefix.version


# =========================================================================== 1. nexthop route
# Cilium TestReplaceNexthopRoute: the nexthop route NH/32 dev X scope link (NH/128 for
# IPv6) is installed in the route's table; installing it again keeps one; deleting it
# needs scope link for IPv4.


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("prefix", "nexthop"),
    [
        ("198.18.0.0/16", "192.0.2.1"),
        ("198.18.0.0/16", "198.51.100.4"),
        ("2001:db8:2::/96", "2001:db8::1"),
        ("2001:db8:2::/96", "2001:db8:ffff::4"),
    ],
    ids=["v4-onlink", "v4-offsubnet", "v6-onlink", "v6-offsubnet"],
)
async def test_replace_nexthop_route(netns: Namespace, prefix: str, nexthop: str) -> None:
    route = Route(prefix, nexthop=nexthop, device="v0", table=10)
    family = _family(route)
    host_len = 32 if family == 4 else 128
    nh_dst = _ip_dst(f"{nexthop}/{host_len}")

    def nexthop_routes() -> list[dict[str, Any]]:
        return [r for r in _entries(netns, nh_dst, table=10, family=family) if "gateway" not in r]

    async with connect_in(netns) as conn:
        assert await conn.upsert(route) is True
        expected_nh: dict[str, Any] = {"dst": nh_dst, "dev": "v0"}
        expected_nh |= {"scope": "link"} if family == 4 else {"metric": IPV6_DEFAULT_METRIC}
        if family == 6:
            expected_nh["pref"] = "medium"
        assert nexthop_routes() == [expected_nh]
        # The nexthop route goes into the route's table, not main (Cilium since 2019-06).
        assert f"{nexthop}/{host_len}" not in oracle.route_dsts(netns.name, family=family)

        # "Always replaced": a second upsert keeps exactly one nexthop and one prefix route.
        assert await conn.upsert(route) is True
        assert nexthop_routes() == [expected_nh]
        prefix_routes = _entries(netns, _ip_dst(prefix), table=10, family=family)
        assert [(r["gateway"], r["dev"]) for r in prefix_routes] == [(nexthop, "v0")]

        nh_route = Route(f"{nexthop}/{host_len}", device="v0", table=10, scope=SCOPE_LINK)
        if family == 4:
            # IPv4 deletes only a route of the exact scope (fib_table_delete): the
            # universe-scope spec misses the scope-link nexthop route.
            with pytest.raises(NotFoundError):
                await conn.delete(nh_route.replace(scope=0))
            assert nexthop_routes() == [expected_nh]
        await conn.delete(nh_route)
        assert nexthop_routes() == []
        with pytest.raises(NotFoundError):
            await conn.delete(nh_route)


# =========================================================================== 2. routes
# Cilium TestReplaceRoute, extended: IPv6 lookups, tables 100 and 1000, direct, local and
# fully attributed routes.  Each case: delete of an absent route is NotFoundError;
# upsert → True; the oracle shows exactly the expected entry; lookup returns the whole
# installed route; delete → gone; lookup and delete again → NotFoundError.


@dataclasses.dataclass(frozen=True)
class RouteCase:
    id: str
    route: Route
    #: the route as ``ip -json route show table T`` prints it (without ``flags``)
    shown: dict[str, Any]
    #: what lookup must return
    found: Route


def _route_cases() -> list[RouteCase]:
    cases: list[RouteCase] = []

    def add(case_id: str, route: Route, shown: dict[str, Any], **found_overrides: Any) -> None:
        found = route.replace(
            proto=route.proto or RTPROT_BOOT,
            table=route.table_id,
            type=route.type or RTN_UNICAST,
            **found_overrides,
        )
        if route.prefix.version == 6 and not route.priority:
            found = found.replace(priority=IPV6_DEFAULT_METRIC)
        cases.append(RouteCase(case_id, route, {"dst": _ip_dst(route.prefix), **shown}, found))

    v6_tail = {"metric": IPV6_DEFAULT_METRIC, "pref": "medium"}
    for table in (0, 100, 1000):
        suffix = f"-table{table}" if table else "-main"
        add(
            "v4-via" + suffix,
            Route("198.18.0.0/16", nexthop="192.0.2.1", device="v0", table=table),
            {"gateway": "192.0.2.1", "dev": "v0"},
        )
        add(
            "v6-via" + suffix,
            Route("2001:db8:2::/96", nexthop="2001:db8::1", device="v0", table=table),
            {"gateway": "2001:db8::1", "dev": "v0", **v6_tail},
        )
    # A direct route: upsert keeps scope universe (where `ip` would pick link).
    add("v4-direct", Route("203.0.113.0/24", device="v0"), {"dev": "v0"})
    add("v6-direct", Route("2001:db8:3::/64", device="v0"), {"dev": "v0", **v6_tail})
    add(
        "v4-direct-scope-link",
        Route("203.0.113.0/24", device="v0", scope=SCOPE_LINK),
        {"dev": "v0", "scope": "link"},
    )
    # Type local: scope host is implied for IPv4; IPv6 routes report scope universe.
    add(
        "v4-local-type",
        Route("198.51.100.7/32", device="v0", type=RTN_LOCAL),
        {"type": "local", "dev": "v0", "scope": "host"},
        scope=SCOPE_HOST,
    )
    add(
        "v6-local-type",
        Route("2001:db8:7::7/128", device="v0", type=RTN_LOCAL),
        {"type": "local", "dev": "v0", **v6_tail},
    )
    # local → prefsrc, mtu → metrics, priority → metric, proto 192 (Cilium's
    # EncryptRouteProtocol, which iproute2 names "eigrp").
    add(
        "v4-attributes",
        Route(
            "198.18.0.0/16",
            nexthop="192.0.2.1",
            local="192.0.2.2",
            device="v0",
            mtu=1400,
            priority=50,
            proto=192,
        ),
        {
            "gateway": "192.0.2.1",
            "dev": "v0",
            "protocol": "eigrp",
            "prefsrc": "192.0.2.2",
            "metric": 50,
            "metrics": [{"mtu": 1400}],
        },
    )
    add(
        "v6-attributes",
        Route(
            "2001:db8:2::/96",
            nexthop="2001:db8::1",
            local="2001:db8::2",
            device="v0",
            mtu=1400,
            priority=50,
            proto=192,
        ),
        {
            "gateway": "2001:db8::1",
            "dev": "v0",
            "protocol": "eigrp",
            "prefsrc": "2001:db8::2",
            "metric": 50,
            "metrics": [{"mtu": 1400}],
            "pref": "medium",
        },
    )
    return cases


ROUTE_CASES = _route_cases()


@pytest.mark.anyio
@pytest.mark.parametrize("case", ROUTE_CASES, ids=[c.id for c in ROUTE_CASES])
async def test_replace_route(netns: Namespace, case: RouteCase) -> None:
    route = case.route
    family = _family(route)
    dst = _ip_dst(route.prefix)

    def shown() -> list[dict[str, Any]]:
        # Only this prefix's route itself, not the nexthop route.
        return _entries(netns, dst, table=route.table_id, family=family)

    async with connect_in(netns) as conn:
        with pytest.raises(NotFoundError):  # Cilium's pre-clean; nothing is there yet
            await conn.delete(route)
        assert await conn.upsert(route) is True
        assert shown() == [case.shown]
        assert await conn.lookup(route) == case.found
        # A second upsert replaces in place: still one route.
        assert await conn.upsert(route) is True
        assert shown() == [case.shown]

        await conn.delete(route)
        assert shown() == []
        with pytest.raises(NotFoundError):
            await conn.lookup(route)
        with pytest.raises(NotFoundError):
            await conn.delete(route)


@pytest.mark.anyio
async def test_upsert_replaces_attributes_in_place(netns: Namespace) -> None:
    """IPv4 replace keys on (table, dst, tos, priority): a new gateway, MTU or prefsrc
    replaces the route instead of adding a second one."""
    first = Route("198.18.0.0/16", nexthop="192.0.2.1", device="v0", table=100)
    second = Route(
        "198.18.0.0/16", nexthop="192.0.2.3", local="192.0.2.2", mtu=1300, device="v0", table=100
    )
    async with connect_in(netns) as conn:
        await conn.upsert(first)
        await conn.upsert(second)
        assert _entries(netns, "198.18.0.0/16", table=100, family=4) == [
            {
                "dst": "198.18.0.0/16",
                "gateway": "192.0.2.3",
                "dev": "v0",
                "prefsrc": "192.0.2.2",
                "metrics": [{"mtu": 1300}],
            }
        ]
        # Both nexthop routes stay: upsert never removes a nexthop route it succeeded with.
        assert {"192.0.2.1/32", "192.0.2.3/32"} <= oracle.route_dsts(netns.name, table=100)
        assert (await conn.lookup(second)).nexthop == ip_address("192.0.2.3")
        with pytest.raises(NotFoundError):  # lookup matches the gateway
            await conn.lookup(first)


@pytest.mark.anyio
async def test_upsert_with_mtu_configuration(netns: Namespace) -> None:
    """Cilium v1.6 passes an ``mtu.Configuration``: routes that leave the node get the
    route MTU, routes whose prefix holds ``local`` get the device MTU."""
    netns.ip("link", "set", "v0", "mtu", "1400")
    netns.ip("route", "add", "default", "via", "192.0.2.1", "dev", "v0")
    async with connect_in(netns) as conn:
        cfg = await Configuration.create(encap=True, conn=conn)  # detects v0's 1400
        assert (cfg.get_device_mtu(), cfg.get_route_mtu()) == (1400, 1350)
        away = Route("198.18.0.0/16", nexthop="192.0.2.1", device="v0", mtu=9000)
        home = Route("192.0.2.0/25", local="192.0.2.2", device="v0")
        await conn.upsert(away, cfg)
        await conn.upsert(home, cfg)
    (away_shown,) = _entries(netns, "198.18.0.0/16", table="main", family=4)
    (home_shown,) = _entries(netns, "192.0.2.0/25", table="main", family=4)
    assert away_shown["metrics"] == [{"mtu": 1350}]  # route MTU; route.mtu is overridden
    assert home_shown["metrics"] == [{"mtu": 1400}]  # device MTU


@pytest.mark.anyio
async def test_missing_device_is_named(netns: Namespace) -> None:
    route = Route("198.18.0.0/16", nexthop="192.0.2.1", device="nosuchdev0")
    async with connect_in(netns) as conn:
        for call in (conn.upsert, conn.delete, conn.lookup):
            with pytest.raises(NotFoundError, match="nosuchdev0"):
                await call(route)
    assert "198.18.0.0/16" not in oracle.route_dsts(netns.name)


@pytest.mark.anyio
async def test_rollback_deletes_only_a_nexthop_route_it_created(netns: Namespace) -> None:
    """IPv6 refuses a local gateway with EINVAL, which the retry policy treats as
    transient: all 10 attempts fail.  The nexthop route goes again only if this call
    created it (Cilium would delete a pre-existing one too)."""
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    policy = RetryPolicy(interval=0.5, sleep=record)
    route = Route("2001:db8:5::/64", nexthop="2001:db8::2", device="v0", table=100)
    async with connect_in(netns) as conn:
        with pytest.raises(KernelError) as info:
            await conn.upsert(route, retry=policy)
        assert info.value.errno == 22
        assert sleeps == [0.5] * 9  # 10 attempts, no sleep after the last
        assert oracle.routes(netns.name, table=100, family=6) == []

        netns.ip("-6", "route", "add", "2001:db8::2/128", "dev", "v0", "table", "100")
        with pytest.raises(KernelError):
            await conn.upsert(route, retry=policy)
    assert oracle.route_dsts(netns.name, table=100, family=6) == {"2001:db8::2/128"}


# =========================================================================== 3. rules
# Cilium TestReplaceRule / TestReplaceRule6: four (mark, from, to, table) cases each.

RULE_CASES_V4 = [
    (0xF00, None, None, 123),
    (0xF00, "198.18.0.0/16", None, 124),
    (0, None, "198.18.0.0/16", 125),
    (0, "198.18.0.0/16", "198.18.0.0/16", 126),
    (0xF00, "198.18.0.0/16", "198.18.0.0/16", 1000),  # not Cilium's: FRA_TABLE
]
RULE_CASES_V6 = [
    (0xF00, None, None, 123),
    (0xF00, "2001:db8:beef::/48", None, 124),
    (0, None, "2001:db8:beef::/48", 125),
    (0, "2001:db8:beef::/48", "2001:db8:beef::/48", 126),
    (0xF00, "2001:db8:beef::/48", "2001:db8:beef::/48", 1000),
]


def _expected_rule(rule: Rule) -> dict[str, Any]:
    """``rule`` as ``ip -json rule show`` prints it."""
    shown: dict[str, Any] = {"priority": rule.priority, "src": "all"}
    if rule.src is not None:
        shown |= {"src": str(rule.src.network_address), "srclen": rule.src.prefixlen}
    if rule.dst is not None:
        shown |= {"dst": str(rule.dst.network_address), "dstlen": rule.dst.prefixlen}
    if rule.mark:
        shown |= {"fwmark": hex(rule.mark), "fwmask": hex(rule.mask)}
    shown["table"] = str(rule.table)
    return shown


def _rule_ops(conn: Connection, family: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    if family == 4:
        return conn.replace_rule, conn.delete_rule
    return conn.replace_rule_ipv6, conn.delete_rule_ipv6


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("family", "mark", "src", "dst", "table"),
    [(4, *c) for c in RULE_CASES_V4] + [(6, *c) for c in RULE_CASES_V6],
    ids=[f"v4-table{c[3]}" for c in RULE_CASES_V4] + [f"v6-table{c[3]}" for c in RULE_CASES_V6],
)
async def test_replace_rule(
    netns: Namespace, family: int, mark: int, src: str | None, dst: str | None, table: int
) -> None:
    rule = Rule(priority=1, mark=mark, mask=0xF00 if mark else 0, src=src, dst=dst, table=table)

    def priority_one() -> list[dict[str, Any]]:
        return [r for r in oracle.rules(netns.name, family) if r["priority"] == 1]

    async with connect_in(netns) as conn:
        replace, delete = _rule_ops(conn, family)
        with contextlib.suppress(NotFoundError):  # Cilium's pre-clean
            await delete(rule)
        assert priority_one() == []
        await replace(rule)
        assert priority_one() == [_expected_rule(rule)]
        await replace(rule)  # found by the listing: no second add
        assert priority_one() == [_expected_rule(rule)]
        # The other family is untouched.
        assert all(r["priority"] != 1 for r in oracle.rules(netns.name, 6 if family == 4 else 4))
        await delete(rule)
        assert priority_one() == []
        with pytest.raises(NotFoundError):
            await delete(rule)


@pytest.mark.anyio
async def test_concurrent_replace_rule_adds_one(netns: Namespace) -> None:
    """20 tasks replace the same rule at once on one connection.  Tasks whose listing
    ran before the first add also add; the kernel answers those with EEXIST, which
    replace_rule counts as success.  Exactly one rule results."""
    rule = Rule(priority=7, mark=0x100, mask=0xF00, table=77)
    async with connect_in(netns) as conn, anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(conn.replace_rule, rule)
    assert [r for r in oracle.rules(netns.name) if r["priority"] == 7] == [_expected_rule(rule)]
    # This kernel refuses an identical exclusive add (older kernels added a duplicate).
    again = netns.ip(
        "rule", "add", "pref", "7", "fwmark", "0x100/0xf00", "table", "77", check=False
    )
    assert again.returncode != 0
    assert "File exists" in again.stderr


# =========================================================================== 4. load
# 1,000 concurrent upserts on one connection, via 10 shared nexthops.


@pytest.mark.anyio
async def test_concurrent_upserts_shared_nexthops(netns: Namespace) -> None:
    count, table = 1000, 100
    # .10 … .19: on-link, and neither v0's own .2 nor the usual gateway .1.
    nexthops = [f"192.0.2.{10 + n}" for n in range(10)]
    routes = [
        Route(
            f"198.18.{i // 256}.{i % 256}/32",
            nexthop=nexthops[i % 10],
            device="v0",
            table=table,
        )
        for i in range(count)
    ]
    results: list[bool] = []

    async def one(route: Route) -> None:
        results.append(await conn.upsert(route))

    async with connect_in(netns) as conn, anyio.create_task_group() as tg:
        for route in routes:
            tg.start_soon(one, route)
    assert results == [True] * count

    shown = [_strip(r) for r in oracle.routes(netns.name, table=table)]
    via = [r for r in shown if "gateway" in r]
    direct = [r for r in shown if "gateway" not in r]
    assert len(via) == count
    assert {r["dst"]: r["gateway"] for r in via} == {
        _ip_dst(r.prefix): str(r.nexthop) for r in routes
    }
    assert sorted(direct, key=lambda r: ip_address(r["dst"])) == [
        {"dst": nh, "dev": "v0", "scope": "link"} for nh in nexthops
    ]


# =========================================================================== 5. oracle
# The same shapes through iproute2 (to_ip_commands) in namespace A and through upsert in
# namespace B must leave identical `ip -json route show table all` output.

ORACLE_SHAPES: list[Route] = [
    # IPv4, main table
    Route("198.18.0.0/24", device="v0"),
    Route("198.18.1.0/24", nexthop="192.0.2.1", device="v0"),
    Route("198.18.6.0/24", nexthop="192.0.2.1", device="v0", mtu=1300),
    Route("198.18.7.0/24", device="v0", local="192.0.2.2"),
    Route("198.18.8.0/24", nexthop="192.0.2.1", device="v0", local="192.0.2.2", proto=4),
    Route("198.18.9.0/24", device="v0", proto=192, priority=50),
    Route("198.18.10.0/24", device="v0", scope=SCOPE_LINK),
    Route("198.18.11.0/24", device="v0", scope=SCOPE_HOST),
    Route("198.18.12.0/24", nexthop="192.0.2.3", device="v0", priority=7, mtu=1450),
    Route("198.51.100.7/32", device="v0", type=RTN_LOCAL),
    # IPv4, tables 100 and 1000
    Route("198.18.2.0/24", nexthop="192.0.2.1", device="v0", table=100),
    Route("198.18.3.0/24", nexthop="192.0.2.1", device="v0", table=1000),
    Route("198.18.4.0/24", device="v0", table=100),
    Route("198.18.5.0/24", device="v0", table=1000, mtu=1400),
    Route("198.18.13.0/24", device="v0", table=100, scope=SCOPE_LINK, proto=4),
    Route("198.51.100.8/32", device="v0", type=RTN_LOCAL, table=100),
    # IPv6, main table
    Route("2001:db8:10::/64", device="v0"),
    Route("2001:db8:11::/64", nexthop="2001:db8::1", device="v0"),
    Route("2001:db8:14::/64", device="v0", local="2001:db8::2", proto=4),
    Route("2001:db8:15::/64", device="v0", priority=50, proto=192),
    Route("2001:db8:16::7/128", device="v0", type=RTN_LOCAL),
    Route("2001:db8:17::/64", nexthop="2001:db8::1", local="2001:db8::2", device="v0"),
    Route("2001:db8:1a::/64", nexthop="2001:db8::1", device="v0", priority=7, mtu=1280),
    # IPv6, tables 100 and 1000
    Route("2001:db8:12::/64", nexthop="2001:db8::1", device="v0", table=100),
    Route("2001:db8:13::/64", nexthop="2001:db8::1", device="v0", table=1000, mtu=1400),
    Route("2001:db8:18::/64", device="v0", table=1000, proto=4),
    Route("2001:db8:19::7/128", device="v0", type=RTN_LOCAL, table=100),
    # Every attribute beyond Cilium's fields, IPv4 and IPv6.
    Route("198.18.20.0/24", nexthop="192.0.2.1", device="v0", tos=0x10),
    Route("198.18.21.0/24", nexthop="192.0.2.1", device="v0", mtu=1400, table=100,
          locked=["mtu", "window", "congctl", "rto_min"],
          metrics={"window": 1000, "rtt": 800, "rttvar": 200, "ssthresh": 10, "cwnd": 20,
                   "advmss": 1300, "reordering": 5, "hoplimit": 32, "initcwnd": 10,
                   "features": 1, "rto_min": 200, "initrwnd": 20, "quickack": 1,
                   "congctl": "reno", "fastopen_no_cookie": 1}),
    Route("198.18.22.0/24", nexthop="203.0.113.1", device="v0", onlink=True),
    Route("198.18.23.0/24", device="v0", realms=3 << 16 | 4, table=1000),
    Route("198.18.24.0/24", nexthop="fe80::1", device="v0"),
    Route("198.18.25.0/24", device="v0", encap=Encap.ip(id=5, dst="192.0.2.9", ttl=10)),
    Route("198.18.26.0/24", type=RTN.BLACKHOLE, priority=5),
    Route("198.18.27.0/24", type=RTN.UNREACHABLE, table=100),
    Route("198.18.28.0/24", type=RTN.PROHIBIT, table=1000, priority=9),
    Route("198.18.29.0/24", type=RTN.THROW, table=100),
    Route("198.18.30.0/24", table=100, nexthops=[
        Nexthop("192.0.2.1", "v0", realms=7),
        Nexthop("192.0.2.5", "v0", encap=Encap.ip(id=9, dst="192.0.2.10")),
    ]),
    Route("2001:db8:20::/64", nexthop="2001:db8::1", device="v0", source="2001:db8:99::/64"),
    Route("2001:db8:21::/64", nexthop="2001:db8::1", device="v0", pref=1, table=100),
    Route("2001:db8:22::/64", nexthop="2001:db8::1", device="v0", expires=300),
    Route("2001:db8:23::/64", nexthop="2001:db8::1", device="v0", locked=["hoplimit"],
          metrics={"hoplimit": 5, "advmss": 1200, "congctl": "cubic"}),
    Route("2001:db8:24::/64", device="v0", encap=Encap.ip6(id=7, dst="2001:db8::9", hoplimit=3)),
    Route("2001:db8:25::/64", type=RTN.BLACKHOLE, priority=5, table=1000),
    Route("2001:db8:26::/64", nexthop="2001:db8:aa::1", device="v0", onlink=True),
]  # fmt: skip

#: ``ip -json`` route fields that may differ between two namespaces for the same route.
_VOLATILE_FIELDS = frozenset({"expires", "cache"})


def _table_text(ns_name: str) -> list[str]:
    """``ip -d route show table all`` of both families: the JSON leaves out lock bits,
    the text has them.  ``expires Nsec`` counts down and is checked, then dropped."""
    lines = []
    for family in ("-4", "-6"):
        out = subprocess.run(
            ["ip", "-n", ns_name, family, "-d", "route", "show", "table", "all"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        for line in out.splitlines():
            match = re.search(r" expires (\d+)sec", line)
            assert match is None or 290 <= int(match.group(1)) <= 300, line
            lines.append(re.sub(r" expires \d+sec", "", line))
    return sorted(lines)


def _table_all(ns_name: str) -> list[str]:
    """Every route of both families in every table, normalised, as sorted JSON lines."""
    shown = oracle.routes(ns_name, table="all", family=4)
    shown += oracle.routes(ns_name, table="all", family=6)
    return sorted(
        json.dumps({k: v for k, v in r.items() if k not in _VOLATILE_FIELDS}, sort_keys=True)
        for r in shown
    )


def _run_ip_commands(ns_name: str, routes: list[Route]) -> list[str]:
    """Run every route's ``to_ip_commands()`` in ``ns_name``; the failures, as text.

    A nexthop route shared by several shapes is added once: ``ip route add`` of an
    existing route fails, while upsert replaces it.
    """
    done: set[tuple[str, ...]] = set()
    failures: list[str] = []
    for route in routes:
        for argv in route.to_ip_commands():
            if tuple(argv) in done:
                continue
            done.add(tuple(argv))
            assert argv[0] == "ip"
            proc = subprocess.run(
                ["ip", "-n", ns_name, *argv[1:]], capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                failures.append(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return failures


@pytest.mark.anyio
async def test_oracle_comparison(netns: Namespace) -> None:
    assert len(ORACLE_SHAPES) >= 20
    assert len({(r.prefix, r.table_id) for r in ORACLE_SHAPES}) == len(ORACLE_SHAPES)
    with namespace() as by_ip:
        failures = _run_ip_commands(by_ip.name, ORACLE_SHAPES)
        async with connect_in(netns) as conn:
            for route in ORACLE_SHAPES:
                assert await conn.upsert(route) is True
        expected, actual = _table_all(by_ip.name), _table_all(netns.name)
        expected += _table_text(by_ip.name)
        actual += _table_text(netns.name)
    diff = list(
        difflib.unified_diff(
            expected, actual, "ip (to_ip_commands)", "asyncroute (upsert)", n=0, lineterm=""
        )
    )
    report = "\n".join(
        [f"{len(failures)} ip commands failed:", *failures, *diff] if failures else diff
    )
    assert not failures and expected == actual, report


# =========================================================================== bugs
# Minimal reproductions of to_ip_command bugs (see the report in the module docstring).


def test_to_ip_command_direct_route_scope_is_accepted_by_ip(netns: Namespace) -> None:
    """Regression: an IPv4 direct route got ``scope universe``, which iproute2 rejects
    ('argument "universe" is wrong: invalid "scope" value'); ``ip`` spells scope 0
    ``global`` (or ``0``)."""
    route = Route("198.18.0.0/24", device="v0")
    argv = route.to_ip_command()
    proc = netns.ip(*argv[1:], check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr.strip()}"
    # What upsert installs: scope universe, which `ip -json` shows by omitting "scope".
    assert _entries(netns, "198.18.0.0/24", table="main", family=4) == [
        {"dst": "198.18.0.0/24", "dev": "v0"}
    ]


@pytest.mark.parametrize(
    "route",
    [
        Route("198.51.100.7/32", device="v0", type=RTN_LOCAL),
        Route("2001:db8:16::7/128", device="v0", type=RTN_LOCAL),
    ],
    ids=["v4", "v6"],
)
def test_to_ip_command_local_route_stays_in_main(netns: Namespace, route: Route) -> None:
    """Regression: for a local (or nat) route without ``table``, iproute2 picks table local
    (iproute_modify), while upsert installs it in main; the command must say
    ``table main``."""
    argv = route.to_ip_command()
    netns.ip(*argv[1:])
    family = _family(route)
    dst = _ip_dst(route.prefix)
    assert _tables_holding(netns, dst, family) == ["main"], f"after {' '.join(argv)}"
