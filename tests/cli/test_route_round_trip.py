"""Routes made with ``ip``, listed with ``asyncroute route list --json`` (or
``Connection.list_routes``) and applied with ``asyncroute apply`` (or
``Connection.upsert_many``) into a fresh namespace, come out as the same kernel routes.

The listing must never turn a route into a different one: a lost ``tos`` makes two
routes one, a lost source prefix widens a route to every source, a lost lock lets TCP
move a metric the route pinned, a lost encap sends packets unencapsulated.  The kernel is
the oracle: ``ip -d -j route show table all`` (and the text form, which alone shows lock
bits) of both namespaces, both families, must be equal.

Every route of every table is listed and applied.  Those the kernel made itself
(``proto kernel``: connected, local, broadcast, ``fe80::/64``, ``ff00::/8``) cannot be
written back exactly, not even with ``ip route replace``: an IPv6 replace matches prefix
and metric only, so ``fe80::/64 dev v1 metric 256`` replaces ``fe80::/64 dev v0 metric
256`` (likewise ``ff00::/8``), and IPv6 metric 0 (the local table's ``local`` routes) is
added at 1024, next to the kernel's.  ``apply`` therefore does not write them: the second
namespace made the same ones from the same layout, and ``apply`` counts them as
unchanged.  The library test leaves them out of what it writes, for the same reason.

Both namespaces get the same extra layout first (:data:`LAYOUT`): addresses on ``v1``
(gateways ``198.19.255.1`` and ``2001:db8:ff::1``) and fixed link-local addresses, so
that the ``local fe80::…`` routes of the local table, which follow the veths' random MAC
addresses, are the same in both.

Shapes this kernel (6.18: no MPLS routing, no seg6/rpl/ioam6 lwtunnels) refuses, and
that are therefore not here: ``encap mpls`` and ``encap seg6`` ("lwt encapsulation type
not supported"), ``nat`` routes ("Invalid scope": route NAT left the kernel in 2.6),
IPv6 routes ``via inet`` an IPv4 gateway ("IPv6 does not support RTA_VIA attribute").
``dsfield`` is ``tos``'s synonym.  The ``geneve_opts``/``vxlan_opts``/``erspan_opts``
options of ``encap ip``/``ip6`` are never used: they hit a kernel bug that can wedge
rtnetlink.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from asyncroute.constants import AF_INET, AF_INET6, RTPROT
from asyncroute.testing import Namespace
from tests.cli.conftest import run_cli
from tests.kernel.guard import connect_in

pytestmark = pytest.mark.kernel

#: ``ip`` commands run in both namespaces before the corpus: ``v1`` gets addresses (its
#: on-link gateways are ``198.19.255.1`` and ``2001:db8:ff::1``, held by nobody), and the
#: veths' link-local addresses (made from random MAC addresses, so different in every
#: namespace, and each with a ``local`` route in the local table) are replaced by fixed
#: ones.  ``fe80::1`` stays a gateway nobody holds.
LAYOUT: tuple[tuple[str, ...], ...] = (
    ("address", "add", "198.19.255.2/24", "dev", "v1"),
    ("address", "add", "2001:db8:ff::2/64", "dev", "v1", "nodad"),
    ("-6", "address", "flush", "dev", "v0", "scope", "link"),
    ("-6", "address", "flush", "dev", "v1", "scope", "link"),
    ("address", "add", "fe80::2/64", "dev", "v0", "nodad"),
    ("address", "add", "fe80::3/64", "dev", "v1", "nodad"),
)

#: ``ip -4 route add`` arguments: every metric (and lock), tos, realms, onlink, RTA_VIA,
#: lwtunnel encap, every route type, metric, prefsrc, protocol, scope and multipath,
#: in tables main, 100, 300 and 70000.
ROUTE_SHAPES_V4 = [
    "198.51.100.0/24 via 192.0.2.1 dev v0 mtu 1400",
    "198.51.100.0/25 via 192.0.2.1 dev v0 table 100 mtu lock 1400",
    "198.51.100.128/25 via 192.0.2.1 dev v0 table 100 window 65535",
    "198.51.100.16/28 via 192.0.2.1 dev v0 table 300 window lock 1000",
    "198.18.1.0/24 via 192.0.2.1 dev v0 rtt 100ms rttvar 50ms",
    "198.18.2.0/24 via 192.0.2.1 dev v0 ssthresh 10 cwnd 20",
    "198.18.3.0/24 via 192.0.2.1 dev v0 table 100 advmss 1300 reordering 5",
    "198.18.4.0/24 via 192.0.2.1 dev v0 table 300 hoplimit 32 initcwnd 10 initrwnd 20",
    "198.18.5.0/24 via 192.0.2.1 dev v0 features ecn rto_min 200ms",  # ip locks rto_min
    "198.18.6.0/24 via 192.0.2.1 dev v0 quickack 1 congctl cubic",
    "198.18.7.0/24 via 192.0.2.1 dev v0 table 70000 congctl lock reno fastopen_no_cookie 1",
    "198.18.8.0/24 tos 0x10 via 192.0.2.1 dev v0",  # the same prefix twice: tos is key
    "198.18.8.0/24 tos 0x08 via 192.0.2.1 dev v0",
    "198.18.9.0/24 via 203.0.113.1 dev v0 onlink",
    "198.18.10.0/24 via 192.0.2.1 dev v0 realms 5",
    "198.18.11.0/24 via 192.0.2.1 dev v0 table 100 realm 3/4",
    "198.18.12.0/24 via inet6 fe80::1 dev v0",  # RTA_VIA
    "198.18.13.0/24 encap ip id 5 dst 192.0.2.9 ttl 10 dev v0",
    "198.18.14.0/24 encap ip6 id 6 dst 2001:db8::9 hoplimit 10 dev v0 table 100",
    "blackhole 198.18.20.0/24 metric 5",
    "unreachable 198.18.21.0/24 table 100 metric 6",
    "prohibit 198.18.22.0/24 table 300 metric 7",
    "throw 198.18.23.0/24 table 70000 metric 8",
    "local 198.18.24.1 dev v0 table 100",
    "broadcast 198.18.25.255 dev v0 table 100",
    "multicast 224.1.0.0/16 dev v0 table 300",
    "198.18.30.0/24 via 192.0.2.1 dev v0 metric 10",  # the same prefix at two metrics
    "198.18.30.0/24 via 198.19.255.1 dev v1 metric 20",
    "198.18.31.0/24 via 192.0.2.1 dev v0 src 192.0.2.2",
    "198.18.32.0/24 via 192.0.2.1 dev v0 proto static",
    "198.18.33.0/24 via 192.0.2.1 dev v0 table 100 proto 99",
    "198.18.34.0/24 dev v0 scope link",
    "198.18.35.1 dev v0 table 100 scope host",
    "198.18.36.0/24 nexthop via 192.0.2.1 dev v0 weight 3 nexthop via 198.19.255.1 dev v1",
    "198.18.37.0/24 table 100 nexthop via 203.0.113.1 dev v0 onlink"
    " nexthop via 198.19.255.1 dev v1 weight 2",
    "default via 192.0.2.1 dev v0 table 300",
    "198.18.38.0/24 via inet6 2001:db8::1 dev v0 table 70000",
    "198.18.39.0/24 via 192.0.2.1 dev v0 rtt 3",  # raw kernel units (1/8 ms): shown as 0ms
    "198.18.40.0/24 table 70000 metric 9 nexthop via 192.0.2.1 dev v0"
    " nexthop via 198.19.255.1 dev v1",
    "198.18.41.0/24 nexthop via 192.0.2.1 dev v0 realms 7"
    " nexthop encap ip id 9 dst 192.0.2.10 via 198.19.255.1 dev v1",
    "198.18.42.0/24 via 192.0.2.1 dev v0 table 300 metric 50 proto static mtu 1280 advmss 1240",
    "unreachable default table 300 metric 4278198272",
]

#: ``ip -6 route add`` arguments: the same, plus source prefixes, pref and expires.
ROUTE_SHAPES_V6 = [
    "2001:db8:1::/64 via 2001:db8::1 dev v0 mtu 1300",
    "2001:db8:2::/64 via 2001:db8::1 dev v0 table 100 hoplimit 40 advmss 1200",
    "2001:db8:3::/64 via 2001:db8::1 dev v0 pref high",
    "2001:db8:4::/64 via 2001:db8::1 dev v0 table 300 pref low",
    "2001:db8:5::/64 from 2001:db8:99::/64 via 2001:db8::1 dev v0",  # same dst, two from
    "2001:db8:5::/64 from 2001:db8:98::/64 via 2001:db8::1 dev v0",
    "2001:db8:6::/64 via 2001:db8::1 dev v0 expires 300",
    "2001:db8:7::/64 via 2001:db8::1 dev v0 metric 10",  # the same prefix at two metrics
    "2001:db8:7::/64 via 2001:db8:ff::1 dev v1 metric 20",
    "blackhole 2001:db8:8::/64 metric 5",
    "unreachable 2001:db8:9::/64 table 100 metric 6",
    "prohibit 2001:db8:a::/64 table 300 metric 7",
    "throw 2001:db8:b::/64 table 70000 metric 8",
    "local 2001:db8:c::1 dev v0 table 100",
    "anycast 2001:db8:d::/64 dev v0 table 100",
    "multicast ff0e::/16 dev v0 table 300",
    "2001:db8:e::/64 encap ip6 id 7 dst 2001:db8::9 hoplimit 5 dev v0",
    "2001:db8:f::/64 encap ip id 8 dst 192.0.2.9 ttl 3 dev v0 table 100",
    "2001:db8:10::/64 via 2001:db8::1 dev v0 src 2001:db8::2",
    "2001:db8:11::/64 via 2001:db8::1 dev v0 proto static",
    "2001:db8:12::/64 via 2001:db8::1 dev v0 table 100 proto 99",
    "2001:db8:13::/64 nexthop via 2001:db8::1 dev v0 weight 3 nexthop via 2001:db8:ff::1 dev v1",
    "2001:db8:14::/64 via 2001:db8:aa::1 dev v0 onlink",
    "2001:db8:15::/64 table 70000 nexthop via 2001:db8:aa::1 dev v0 onlink"
    " nexthop via 2001:db8:ff::1 dev v1",
    "2001:db8:16::/64 via 2001:db8::1 dev v0 table 70000"
    " quickack 1 congctl lock cubic initcwnd 10 initrwnd 20",
    "2001:db8:17::/64 via 2001:db8::1 dev v0"
    " features ecn rto_min 50ms window 30000 cwnd 12 ssthresh 8 reordering 4",
    "2001:db8:18::/64 via fe80::1 dev v0 rtt 20ms rttvar 10ms fastopen_no_cookie 1",
    "default via 2001:db8::1 dev v0 table 300 metric 100",
    "2001:db8:19::/64 dev v1 metric 1",
    "2001:db8:1a::1/128 dev v0 table 300 mtu lock 1280",
]

#: ``expires 300`` counts down: both namespaces must show 300 - 10 .. 300.
EXPIRES = range(290, 301)


def build(ns: Namespace, *, corpus: bool) -> None:
    """The extra layout in ``ns``, and with ``corpus`` every route shape."""
    for command in LAYOUT:
        ns.ip(*command)
    if corpus:
        for family, shapes in (("-4", ROUTE_SHAPES_V4), ("-6", ROUTE_SHAPES_V6)):
            for shape in shapes:
                ns.ip(family, "route", "add", *shape.split())


class _Object(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, duplicate keys kept: ip prints an encap's
    ``dst`` (and IPv4 ``tos``) as second keys of the same name in the route's object,
    which a dict would merge."""


def _without_expires(row: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    kept = []
    for key, value in row:
        if key == "expires":
            assert value in EXPIRES, row
        else:
            kept.append((key, value))
    return kept


def routes_json(ns: Namespace, family: str) -> list[list[tuple[str, Any]]]:
    """``ip -d -j route show table all``, each route as its :class:`_Object` of (key,
    value) pairs (duplicate keys kept).  ``expires`` is checked to lie in
    :data:`EXPIRES` and dropped (it counts down, so it differs by a second or so between
    the namespaces); nothing else is changed."""
    out = ns.ip(family, "-d", "-j", "route", "show", "table", "all").stdout
    rows: list[list[tuple[str, Any]]] = json.loads(out or "[]", object_pairs_hook=_Object)
    return [_without_expires(row) for row in rows]


def _expires_text(match: re.Match[str]) -> str:
    assert int(match.group(1)) in EXPIRES, match.string
    return ""


def routes_text(ns: Namespace, family: str) -> list[str]:
    """``ip -d route show table all``: ip's JSON leaves out lock bits (``mtu lock 1400``
    and ``mtu 1400`` have the same JSON), so the text is compared too, with ``expires
    Nsec`` checked and dropped as in :func:`routes_json`."""
    out = ns.ip(family, "-d", "route", "show", "table", "all").stdout
    return [re.sub(r" expires (\d+)sec", _expires_text, line) for line in out.splitlines()]


def assert_same_routes(ns: Namespace, ns2: Namespace) -> None:
    for family in ("-4", "-6"):
        assert routes_json(ns2, family) == routes_json(ns, family)
        assert routes_text(ns2, family) == routes_text(ns, family)


def test_routes_round_trip_through_list_json_and_apply(
    netns: Namespace, netns2: Namespace, tmp_path: Any
) -> None:
    assert len(ROUTE_SHAPES_V4) + len(ROUTE_SHAPES_V6) >= 40
    build(netns, corpus=True)
    build(netns2, corpus=False)
    for family in ("-4", "-6"):
        listed = run_cli("route", "list", family, "table", "all", "--json", "--netns", netns.name)
        assert listed.returncode == 0, listed.stderr
        path = tmp_path / f"routes{family}.json"
        path.write_text(listed.stdout)
        applied = run_cli("apply", str(path), "--json", "--netns", netns2.name)
        assert applied.returncode == 0, applied.stderr
        summary = json.loads(applied.stdout)
        kernel_made = sum(r["protocol"] == "kernel" for r in json.loads(listed.stdout))
        assert kernel_made > 0 and summary["unchanged"] == kernel_made, summary
    assert_same_routes(netns, netns2)


@pytest.mark.anyio
async def test_routes_round_trip_through_list_routes_and_upsert_many(
    netns: Namespace, netns2: Namespace
) -> None:
    build(netns, corpus=True)
    build(netns2, corpus=False)
    failures = []
    for family in (AF_INET, AF_INET6):
        async with connect_in(netns) as conn:
            listed = [route async for route in conn.list_routes(family)]
        routes = [route for route in listed if route.proto != RTPROT.KERNEL]  # see above
        async with connect_in(netns2) as conn2:
            # nexthop_routes=False: the routes as listed, no implied NH/32 routes added.
            results = await conn2.upsert_many(routes, nexthop_routes=False)
        failures += [(r, x) for r, x in zip(routes, results, strict=True) if x is not True]
    assert failures == []
    assert_same_routes(netns, netns2)


def test_apply_does_not_write_a_kernel_route_that_is_missing(
    netns: Namespace, tmp_path: Any
) -> None:
    """A listed route the kernel made itself is not written: where the kernel does not
    hold it (its address is missing), apply says so instead of faking it."""
    path = tmp_path / "kernel.json"
    path.write_text(
        '[{"type": "unicast", "dst": "198.18.99.0/24", "dev": "v0", "table": "main",'
        ' "protocol": "kernel", "scope": "link", "prefsrc": "198.18.99.1"}]'
    )
    applied = run_cli("apply", str(path), "--netns", netns.name)
    assert applied.returncode == 1
    assert "kernel makes itself" in applied.stderr + applied.stdout
    assert not [r for r in netns.ip_json("route", "show") if r["dst"] == "198.18.99.0/24"]
