"""Kernel tests of :mod:`asyncroute.listing`: filtered route listings, Cilium's ListRules,
DeleteRouteTable and NodeDeviceWithDefaultRoute.

Route listings run against one namespace per module holding 20,000 routes in five
tables (100, 101, 102, main and 1000, so that RTA_TABLE is exercised), installed with
``ip -batch``: 11,980 IPv4 host routes in 198.18.0.0/15, 20 IPv4 multipath routes and
8,000 IPv6 /64s in 2001:db8::/32, mixing gateways on ``v0``, direct routes on ``v1``,
blackhole and unreachable routes, and protocols 77, 78 and static.  Every listing is
compared with ``ip -N -json route show table all`` (never read through asyncroute),
and the dump replies are counted by wrapping ``conn.dump``: when the kernel filters,
it sends exactly the matching routes.

Cilium's TestListRules (cilium-route-spec §12 item 9) runs each of its nine cases in a
fresh namespace for IPv4 and IPv6, with the rules added by ``ip rule`` (not asyncroute).
Cilium's addresses are mapped to documentation prefixes:

=====================================  ===========================================
Cilium                                 here
=====================================  ===========================================
``192.0.2.40/32``, ``192.0.2.60/32``   the same
``fd44:7089:ff32:712b:4000::/64``      ``2001:db8:ff32:712b::/64`` (Cilium's has host
                                       bits set, which asyncroute.Rule refuses)
``fd44:7089:ff32:712b:8000::/96``      ``2001:db8:ff32:712b:8000::/96``
=====================================  ===========================================

Private attributes used: ``conn._sock`` (through :func:`tests.kernel.guard.connect_in`),
and ``conn.dump`` is wrapped per test with ``monkeypatch`` to count dump replies.
"""

from __future__ import annotations

import collections
import errno
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from ipaddress import ip_address, ip_interface, ip_network
from typing import Any

import pytest

from asyncroute import RTN, AsyncrouteError, Connection, Message, NotFoundError, Rule
from asyncroute.constants import AF_INET, AF_INET6
from asyncroute.listing import (
    delete_route_table,
    list_routes,
    list_rules,
    node_device_with_default_route,
)
from asyncroute.testing import Namespace, namespace
from tests.kernel.guard import connect_in

pytestmark = pytest.mark.kernel

TABLES = (100, 101, 102, 254, 1000)
PROTOCOLS = (77, 78, 4)
V4_SINGLE = 11_980
V4_MULTIPATH = 20
V6_ROUTES = 8_000
TOTAL = V4_SINGLE + V4_MULTIPATH + V6_ROUTES

# A route as compared here: (IP version, prefix, table, protocol, type, scope, device,
# gateway, ((hop gateway, hop device), ...)).
Key = tuple[int, str, int, int, int, int, str, str, tuple[tuple[str, str], ...]]


# --------------------------------------------------------------------------- data


def _route_lines() -> list[str]:
    """``ip -batch`` lines for the 20,000 routes (the family follows from the prefix)."""
    lines = []
    base4 = int(ip_address("198.18.0.0"))
    for i in range(V4_SINGLE + V6_ROUTES):
        if i < V4_SINGLE:
            dst = f"{ip_address(base4 + i)}/32"
            gateway = "192.0.2.1"
        else:
            n = i - V4_SINGLE
            dst = f"2001:db8:{n // 256 + 1:x}:{n % 256:x}::/64"
            gateway = "2001:db8::1"
        table = TABLES[i % 5]
        protocol = PROTOCOLS[(i // 7) % 3]
        kind = (i // 5) % 3
        if kind == 0:
            what = f"{dst} via {gateway} dev v0"
        elif kind == 1:
            what = f"{dst} dev v1"
        else:
            what = f"{'blackhole' if (i // 15) % 2 else 'unreachable'} {dst}"
        lines.append(f"route add {what} table {table} proto {protocol}")
    for n in range(V4_MULTIPATH):
        table = TABLES[n % 5]
        lines.append(
            f"route add 198.19.255.{n}/32 table {table} proto 77"
            " nexthop via 192.0.2.1 dev v0 nexthop dev v1"
        )
    return lines


def _settle(ns: Namespace) -> None:
    """Wait until no IPv6 address is tentative: the kernel adds the local route of a
    link-local address only when its DAD completes (~1-2 s after the link came up),
    which would otherwise change the tables between the oracle's look and ours."""
    deadline = time.monotonic() + 10
    while ns.ip_json("-6", "address", "show", "tentative"):
        assert time.monotonic() < deadline, "IPv6 DAD did not finish in 10 s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def big() -> Iterator[Namespace]:
    """The module's namespace with the 20,000 routes (shared by both backends)."""
    with namespace("asyncroute-listing") as ns, tempfile.NamedTemporaryFile("w") as batch:
        batch.write("\n".join(_route_lines()) + "\n")
        batch.flush()
        ns.ip("-batch", batch.name)
        _settle(ns)
        yield ns


# --------------------------------------------------------------------------- oracle


def _prefix(dst: str, version: int) -> str:
    if dst == "default":
        return "0.0.0.0/0" if version == 4 else "::/0"
    return str(ip_network(dst))  # a host route is printed without its length


def _shown(ns: Namespace) -> list[Key]:
    """Every route of both families, as ``ip -N -json route show table all`` prints it
    (numeric table, protocol, type and scope; absent fields take iproute2's defaults)."""
    keys = []
    for version in (4, 6):
        for r in ns.ip_json("-N", f"-{version}", "route", "show", "table", "all"):
            hops = tuple((h.get("gateway", ""), h.get("dev", "")) for h in r.get("nexthops", ()))
            keys.append(
                (
                    version,
                    _prefix(r["dst"], version),
                    int(r.get("table", 254)),
                    int(r.get("protocol", 3)),  # iproute2 omits boot
                    int(r.get("type", 1)),  # and unicast
                    int(r.get("scope", 0)),  # and universe
                    r.get("dev", ""),
                    r.get("gateway", ""),
                    hops,
                )
            )
    return keys


def _key(route: Any) -> Key:
    return (
        route.prefix.version,
        str(route.prefix),
        route.table,
        route.proto,
        route.type,
        route.scope,
        route.device,
        "" if route.nexthop is None else str(route.nexthop),
        tuple(("" if h.gateway is None else str(h.gateway), h.device) for h in route.nexthops),
    )


def _select(
    keys: list[Key],
    *,
    version: int | None = None,
    table: int | None = None,
    protocol: int | None = None,
    device: str | None = None,
    type: int | None = None,
    scope: int | None = None,
) -> list[Key]:
    def uses(key: Key) -> bool:
        return key[6] == device or any(hop_device == device for _, hop_device in key[8])

    return [
        k
        for k in keys
        if (version is None or k[0] == version)
        and (table is None or k[2] == table)
        and (protocol is None or k[3] == protocol)
        and (type is None or k[4] == type)
        and (scope is None or k[5] == scope)
        and (device is None or uses(k))
    ]


@pytest.fixture(scope="module")
def shown(big: Namespace) -> list[Key]:
    return _shown(big)


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> Callable[[Connection], list[Message]]:
    """Wraps a connection's ``dump`` to record every reply the kernel sent to it."""

    def install(conn: Connection) -> list[Message]:
        replies: list[Message] = []
        original = conn.dump

        async def dump(message: Message, **options: Any) -> AsyncIterator[Message]:
            async for reply in original(message, **options):
                replies.append(reply)
                yield reply

        monkeypatch.setattr(conn, "dump", dump)
        return replies

    return install


# --------------------------------------------------------------------------- list_routes


@pytest.mark.anyio
async def test_everything_matches_ip(big: Namespace, shown: list[Key]) -> None:
    async with connect_in(big) as conn:
        listed = [_key(r) async for r in list_routes(conn)]
    assert len(listed) > TOTAL
    assert collections.Counter(listed) == collections.Counter(shown)


FILTERS: list[tuple[str, int | None, dict[str, Any]]] = [
    ("table", None, {"table": 101}),
    ("table-rta_table", None, {"table": 1000}),
    ("table-main-v6", AF_INET6, {"table": 254}),
    ("protocol-v4", AF_INET, {"protocol": 78}),
    ("device", None, {"device": "v1"}),
    ("device-with-multipath", AF_INET, {"device": "v0"}),
    ("type-v6", AF_INET6, {"type": RTN.UNREACHABLE}),
    ("type-v4", AF_INET, {"type": RTN.BLACKHOLE}),
    ("all-four", AF_INET, {"table": 102, "protocol": 77, "device": "v0", "type": RTN.UNICAST}),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("family", "filters"), [f[1:] for f in FILTERS], ids=[f[0] for f in FILTERS]
)
async def test_kernel_filters(
    big: Namespace,
    shown: list[Key],
    received: Callable[[Connection], list[Message]],
    family: int | None,
    filters: dict[str, Any],
) -> None:
    version = {None: None, AF_INET: 4, AF_INET6: 6}[family]
    expected = _select(shown, version=version, **filters)
    assert 0 < len(expected) < TOTAL // 2
    async with connect_in(big) as conn:
        replies = received(conn)
        listed = [_key(r) async for r in list_routes(conn, family, **filters)]
    assert collections.Counter(listed) == collections.Counter(expected)
    # The kernel did the filtering: it sent exactly the matching routes.  (Its
    # NLM_F_DUMP_FILTERED flag proves nothing: fn_trie_dump_leaf sets it on every reply
    # of a strict dump, which leaves out exceptions.)
    assert len(replies) == len(expected)


@pytest.mark.anyio
async def test_scope_is_filtered_here(
    big: Namespace, shown: list[Key], received: Callable[[Connection], list[Message]]
) -> None:
    """The kernel refuses rtm_scope in a dump request (ip_valid_fib_dump_req), so a scope
    filter costs the whole family's dump."""
    expected = _select(shown, version=4, scope=253)
    assert expected
    async with connect_in(big) as conn:
        replies = received(conn)
        listed = [_key(r) async for r in list_routes(conn, AF_INET, scope=253)]
    assert collections.Counter(listed) == collections.Counter(expected)
    assert len(replies) == len(_select(shown, version=4))


@pytest.mark.anyio
@pytest.mark.parametrize("family", [None, AF_INET, AF_INET6], ids=["both", "v4", "v6"])
async def test_missing_table_is_empty(big: Namespace, family: int | None) -> None:
    """A one-family dump of a table never created is ENOENT in the kernel; empty here."""
    async with connect_in(big) as conn:
        assert [r async for r in list_routes(conn, family, table=4242)] == []


@pytest.mark.anyio
async def test_route_objects(big: Namespace) -> None:
    """Routes carry the kernel's values and device names (multipath hops included)."""
    async with connect_in(big) as conn:
        routes = {str(r.prefix): r async for r in list_routes(conn, table=100)}
    first = routes["198.18.0.0/32"]  # i = 0: via 192.0.2.1 dev v0, proto 77
    assert (first.device, str(first.nexthop), first.proto, first.table) == (
        "v0",
        "192.0.2.1",
        77,
        100,
    )
    blackhole_v6 = next(
        r for r in routes.values() if r.prefix.version == 6 and r.type == RTN.BLACKHOLE
    )
    assert blackhole_v6.device == "lo"  # IPv6 reject routes point at lo
    unreachable_v4 = next(
        r for r in routes.values() if r.prefix.version == 4 and r.type == RTN.UNREACHABLE
    )
    assert unreachable_v4.device == "" and unreachable_v4.nexthop is None
    multipath = routes["198.19.255.0/32"]
    assert multipath.device == ""
    assert _key(multipath)[8] == (("192.0.2.1", "v0"), ("", "v1"))


@pytest.mark.anyio
async def test_bad_filters(big: Namespace) -> None:
    async with connect_in(big) as conn:
        for kwargs in (
            {"table": 0},
            {"table": 2**32},
            {"protocol": 256},
            {"type": -1},
            {"scope": 300},
            {"device": ""},
        ):
            with pytest.raises(ValueError):
                [r async for r in list_routes(conn, **kwargs)]
        with pytest.raises(ValueError):
            [r async for r in list_routes(conn, 7)]
        with pytest.raises(NotFoundError):
            [r async for r in list_routes(conn, device="nosuchdev")]


# --------------------------------------------------------------------------- list_rules

IP1 = {4: "192.0.2.40/32", 6: "2001:db8:ff32:712b::/64"}
IP2 = {4: "192.0.2.60/32", 6: "2001:db8:ff32:712b:8000::/96"}


def _add_rules(ns: Namespace, version: int, rules: list[Rule]) -> None:
    for rule in rules:
        argv = [f"-{version}", "rule", "add"]
        argv += ["from", str(rule.src) if rule.src else "all"]
        if rule.dst:
            argv += ["to", str(rule.dst)]
        if rule.mark or rule.mask:
            argv += ["fwmark", f"{rule.mark:#x}/{rule.mask:#x}"]
        argv += ["pref", str(rule.priority), "table", str(rule.table)]
        ns.ip(*argv)


_TABLE_IDS = {"local": 255, "main": 254, "default": 253}
_PROTOCOL_IDS = {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4}


def _rules_shown(ns: Namespace, version: int) -> list[Rule]:
    """``ip -d -json rule show`` as Rule objects (-d: with the protocol, which a listed
    Rule carries: the default rules' is kernel)."""
    bits = 32 if version == 4 else 128

    def selector(r: dict[str, Any], key: str, length: str) -> str | None:
        return None if r.get(key, "all") == "all" else f"{r[key]}/{r.get(length, bits)}"

    rules = []
    for r in ns.ip_json(f"-{version}", "-d", "rule", "show"):
        table = r.get("table", "0")
        rules.append(
            Rule(
                priority=r["priority"],
                mark=int(r.get("fwmark", "0"), 16),
                mask=int(r.get("fwmask", "0"), 16),
                src=selector(r, "src", "srclen"),
                dst=selector(r, "dst", "dstlen"),
                table=_TABLE_IDS.get(table) or int(table),
                protocol=_PROTOCOL_IDS[r.get("protocol", "unspec")],
            )
        )
    return rules


def _rule_cases() -> list[Any]:
    """Cilium's nine TestListRules cases: (id, version, rules to add, filter, expected)."""
    cases = []
    for version in (4, 6):
        ip1, ip2 = IP1[version], IP2[version]
        one = Rule(src=ip1, priority=1, table=1)
        to1 = Rule(dst=ip1, priority=1, table=1)
        to1_from2 = Rule(dst=ip1, src=ip2, priority=1, table=1)
        by_prio = [Rule(src=ip1, priority=5, table=t) for t in (1, 2, 3, 4)]
        table199 = Rule(src=ip1, priority=1, table=199)
        masked = Rule(src=ip1, priority=1, table=1, mask=0x5)
        marked = Rule(src=ip1, priority=1, table=1, mask=0xFF, mark=0xBB)
        for case_id, added, spec, expected in [
            ("all rules", [], None, None),
            ("one by From", [one], Rule(src=ip1), [one]),
            ("one by To", [to1], Rule(dst=ip1), [to1]),
            ("two by To", [to1, to1_from2], Rule(dst=ip1), [to1, to1_from2]),
            ("one by From of two", [to1, to1_from2], Rule(src=ip2), [to1_from2]),
            ("by Priority", by_prio, Rule(priority=5), by_prio),
            ("by Table", [table199], Rule(table=199), [table199]),
            ("by Mask", [masked], Rule(mask=0x5), [masked]),
            ("by Mark", [marked], Rule(mark=0xBB), [marked]),
        ]:
            cases.append(pytest.param(version, added, spec, expected, id=f"v{version}-{case_id}"))
    return cases


@pytest.mark.anyio
@pytest.mark.parametrize(("version", "added", "spec", "expected"), _rule_cases())
async def test_list_rules_cilium(
    netns: Namespace,
    version: int,
    added: list[Rule],
    spec: Rule | None,
    expected: list[Rule] | None,
) -> None:
    _add_rules(netns, version, added)
    family = AF_INET if version == 4 else AF_INET6
    async with connect_in(netns) as conn:
        listed = [r async for r in list_rules(conn, family, spec)]
        if expected is None:  # "returns all rules": nil filter == the unfiltered listing
            assert listed == _rules_shown(netns, version)
            assert [r async for r in list_rules(conn, family, Rule())] == listed
        else:
            assert listed == expected


@pytest.mark.anyio
async def test_list_rules_selectors(netns: Namespace) -> None:
    """A /0 filter matches rules without a selector (netlink's ruleIPNetEqual); the
    kernel keeps host bits, which the listed Rule keeps too (its ``src`` is the network)
    and the filter compares; a filter of the other family matches nothing."""
    netns.ip("-4", "rule", "add", "from", "198.18.0.41/24", "pref", "7", "table", "7")
    async with connect_in(netns) as conn:
        listed = [r async for r in list_rules(conn, AF_INET, Rule(src="0.0.0.0/0"))]
        assert [r.table for r in listed] == [255, 254, 253]
        host_bits = [r async for r in list_rules(conn, AF_INET, Rule(priority=7))]
        assert host_bits == [Rule(src=ip_interface("198.18.0.41/24"), priority=7, table=7)]
        assert host_bits[0].src == ip_network("198.18.0.0/24")
        assert str(host_bits[0]) == "7: from 198.18.0.41/24 to all lookup 7"
        by_exact = Rule(src=ip_interface("198.18.0.41/24"))
        assert [r async for r in list_rules(conn, AF_INET, by_exact)] == host_bits
        assert [r async for r in list_rules(conn, AF_INET, Rule(src="198.18.0.0/24"))] == []
        assert [r async for r in list_rules(conn, AF_INET6, Rule(src="198.18.0.0/24"))] == []
        with pytest.raises(ValueError):
            [r async for r in list_rules(conn, 0)]


# --------------------------------------------------------------------------- delete_route_table


def _table(ns: Namespace, version: int, table: int) -> list[Key]:
    return _select(_shown(ns), version=version, table=table)


@pytest.mark.anyio
async def test_delete_route_table(netns: Namespace) -> None:
    ip = netns.ip
    for line in (
        "route add 198.18.0.0/24 via 192.0.2.1 dev v0 table 100 proto 77",
        "route add 198.18.1.0/24 dev v1 table 100",
        "route add blackhole 198.18.2.0/24 table 100",
        "route add unreachable 198.18.3.0/24 table 100",
        "route add 198.18.4.0/24 via 192.0.2.1 dev v0 table 100 metric 5",
        "route add 198.18.4.0/24 via 192.0.2.1 dev v0 table 100 metric 6",
        "route add 198.18.5.0/24 table 100 nexthop via 192.0.2.1 dev v0 nexthop dev v1",
        "nexthop add id 10 via 192.0.2.1 dev v0",
        "route add 198.18.6.0/24 nhid 10 table 100",
        "route add 198.18.7.0/24 via 192.0.2.1 dev v0 table 101",
        "route add 198.18.8.0/24 via 192.0.2.1 dev v0",
        "-6 route add 2001:db8:1::/64 via 2001:db8::1 dev v0 table 100",
        "-6 route add blackhole 2001:db8:2::/64 table 100",
        "-6 route add 2001:db8:3::/64 dev v0 table 100 metric 5",
        "-6 route add 2001:db8:3::/64 dev v0 table 100 metric 6",
        "-6 route add 2001:db8:4::/64 table 100"
        " nexthop via 2001:db8::1 dev v0 nexthop via 2001:db8::3 dev v0",
        "-6 route add 2001:db8:7::/64 via 2001:db8::1 dev v0 table 101",
    ):
        ip(*line.split())
    v4_100 = len(_table(netns, 4, 100))
    v6_100 = len(_table(netns, 6, 100))
    assert (v4_100, v6_100) == (8, 5)

    def others() -> list[Key]:
        # Table 101 and our main-table route (link-local routes may still be coming).
        return sorted(k for k in _shown(netns) if k[2] == 101 or k[1] == "198.18.8.0/24")

    before = others()
    assert len(before) == 3
    async with connect_in(netns) as conn:
        assert await delete_route_table(conn, 100, AF_INET) == v4_100
        assert _table(netns, 4, 100) == []
        assert len(_table(netns, 6, 100)) == v6_100
        assert await delete_route_table(conn, 100) == v6_100
        assert _table(netns, 6, 100) == []
        assert others() == before
        assert await delete_route_table(conn, 100) == 0
        assert await delete_route_table(conn, 4242, AF_INET) == 0
        with pytest.raises(ValueError):
            await delete_route_table(conn, 0)


@pytest.mark.anyio
async def test_delete_big_route_table(netns: Namespace) -> None:
    """3,000 routes of a table ≥ 256 (RTA_TABLE) through one batch."""
    lines = [
        f"route add 198.18.{i // 256}.{i % 256}/32 via 192.0.2.1 dev v0 table 70000"
        for i in range(3000)
    ]
    with tempfile.NamedTemporaryFile("w") as batch:
        batch.write("\n".join(lines) + "\n")
        batch.flush()
        netns.ip("-batch", batch.name)
    async with connect_in(netns) as conn:
        assert await delete_route_table(conn, 70000, AF_INET) == 3000
    assert _table(netns, 4, 70000) == []


# --------------------------------------------------------------------------- default route


@pytest.mark.anyio
async def test_default_route_device(netns: Namespace) -> None:
    async with connect_in(netns) as conn:
        with pytest.raises(NotFoundError, match="Default route not found for family 2") as info:
            await node_device_with_default_route(conn)
        assert info.value.errno == errno.ENOENT
        with pytest.raises(ValueError):
            await node_device_with_default_route(conn, ipv4=False, ipv6=False)

        netns.ip("route", "add", "default", "via", "192.0.2.1", "dev", "v0", "table", "100")
        with pytest.raises(NotFoundError):  # main table only
            await node_device_with_default_route(conn, ipv6=False)

        netns.ip("route", "add", "default", "via", "192.0.2.1", "dev", "v0")
        assert await node_device_with_default_route(conn, ipv6=False) == "v0"
        with pytest.raises(NotFoundError, match="family 10"):
            await node_device_with_default_route(conn)

        netns.ip("-6", "route", "add", "default", "via", "2001:db8::1", "dev", "v0")
        assert await node_device_with_default_route(conn) == "v0"
        assert await node_device_with_default_route(conn, ipv4=False) == "v0"


@pytest.mark.anyio
async def test_default_route_metric_and_conflicts(netns: Namespace) -> None:
    async with connect_in(netns) as conn:
        # The lowest metric wins.
        netns.ip("route", "add", "default", "via", "192.0.2.1", "dev", "v0", "metric", "5")
        netns.ip("route", "add", "default", "dev", "v1", "metric", "10")
        netns.ip("-6", "route", "add", "default", "via", "2001:db8::1", "dev", "v0", "metric", "5")
        netns.ip("-6", "route", "add", "default", "dev", "v1", "metric", "10")
        assert await node_device_with_default_route(conn) == "v0"

        netns.ip("-6", "route", "add", "default", "dev", "v1", "metric", "1")
        with pytest.raises(AsyncrouteError, match="IPv4/IPv6 have different link indices"):
            await node_device_with_default_route(conn)
        assert await node_device_with_default_route(conn, ipv4=False) == "v1"
        assert await node_device_with_default_route(conn, ipv6=False) == "v0"

        # Two lowest with the same metric: ambiguous.
        netns.ip("route", "append", "default", "dev", "v1", "metric", "5")
        with pytest.raises(AsyncrouteError, match="multiple default routes with the same priority"):
            await node_device_with_default_route(conn, ipv6=False)


@pytest.mark.anyio
async def test_default_route_without_device(netns: Namespace) -> None:
    netns.ip("route", "add", "blackhole", "default")
    async with connect_in(netns) as conn:
        with pytest.raises(NotFoundError, match="no output device") as info:
            await node_device_with_default_route(conn, ipv6=False)
        assert info.value.errno == errno.ENODEV


def test_route_lines_are_documentation_prefixes() -> None:
    """Every prefix the module installs is in 198.18.0.0/15 or 2001:db8::/32."""
    allowed = [ip_network("198.18.0.0/15"), ip_network("2001:db8::/32")]
    lines = _route_lines()
    assert len(lines) == TOTAL
    for line in lines:
        words = line.split()
        dst = ip_network(next(w for w in words if "/" in w))
        assert any(dst.subnet_of(net) for net in allowed if net.version == dst.version), line
