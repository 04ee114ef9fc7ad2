"""Kernel tests of :mod:`asyncroute.events`: what a subscriber sees of changes made by
another process (``ip``), in a fresh namespace per test, on asyncio and on trio.

Changes are made with iproute2 (a separate process, as the events must come from the
kernel's multicast and not from our own requests); the kernel's state afterwards is read
back with ``ip -json`` (:mod:`tests.oracle`), never through asyncroute.

Kernel behaviour these tests pin down (Linux 6.18, verified with ``ip monitor``):

- ``ip nexthop del id N`` announces RTM_DELNEXTHOP N (and RTM_NEWNEXTHOP for a group
  that keeps other members, RTM_DELNEXTHOP for a group N was the last member of), but
  removes the IPv4 routes using N without any RTM_DELROUTE; IPv6 routes get one
  (``nexthop_compat_mode`` = 1).
- When a device loses carrier or is deleted, its nexthops (and their routes) are removed
  with no notification at all.
- An overrun reports ENOBUFS once, before the datagrams still queued; the stream turns
  it into a :class:`Resync` after them.

Markers: a test that needs to know "everything before this has been read" adds a route
``203.0.113.<n>/32`` in table 200 afterwards and reads until its RouteAdded arrives
(notifications keep the kernel's order).
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import threading
from collections.abc import Iterable
from ipaddress import ip_network

import anyio
import pytest

from asyncroute import NLM_F, RTM, Route, Rule
from asyncroute.events import (
    Event,
    EventStream,
    LinkAdded,
    LinkChanged,
    LinkRemoved,
    NexthopAdded,
    NexthopRemoved,
    Resync,
    RouteAdded,
    RouteRemoved,
    RuleAdded,
    RuleRemoved,
    subscribe,
)
from asyncroute.testing import Namespace
from tests import oracle
from tests.kernel.guard import netlink_inodes

pytestmark = [pytest.mark.kernel, pytest.mark.anyio]

ROUTES = 10_000
TABLE = 100
MARKER_TABLE = 200


def prefixes(count: int) -> list[str]:
    """``count`` /32s from 198.18.0.0/15 (RFC 2544 benchmarking space)."""
    return [f"198.18.{i >> 8}.{i & 255}/32" for i in range(count)]


def batch(verb: str, nets: Iterable[str]) -> str:
    return "".join(f"route {verb} {net} via 192.0.2.1 dev v0 table {TABLE}\n" for net in nets)


async def ip(ns: Namespace, *args: str, stdin: str | None = None) -> None:
    """Run ``ip -n NS ARGS`` as another process, without blocking the event loop."""
    await anyio.run_process(
        ["ip", "-n", ns.name, *args], input=None if stdin is None else stdin.encode()
    )


def assert_in_namespace(events: EventStream, ns: Namespace) -> None:
    """The kernel lists the stream's socket in ``ns``, not in our namespace (private
    ``_sock``: the inode is the only handle the kernel's listing shares with it)."""
    inode = os.fstat(events._sock.fileno()).st_ino
    assert inode in netlink_inodes(ns.name)
    assert inode not in netlink_inodes(None)


def key(event: Event) -> tuple[str, str]:
    assert isinstance(event, RouteAdded | RouteRemoved)
    return ("add" if isinstance(event, RouteAdded) else "del", str(event.route.prefix))


class Markers:
    """Adds ``203.0.113.<n>/32`` routes in table 200 and recognises their events."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.count = 0

    async def add(self) -> str:
        self.count += 1
        net = f"203.0.113.{self.count}/32"
        await ip(self.ns, "route", "add", net, "dev", "v0", "table", str(MARKER_TABLE))
        return net

    @staticmethod
    def is_marker(event: Event, net: str | None = None) -> bool:
        return (
            isinstance(event, RouteAdded)
            and event.route.table == MARKER_TABLE
            and (net is None or str(event.route.prefix) == net)
        )


async def read_until_marker(events: EventStream, markers: Markers) -> list[Event]:
    """Add a marker and return every event before it (markers left out)."""
    net = await markers.add()
    seen: list[Event] = []
    with anyio.fail_after(10):
        async for event in events:
            if Markers.is_marker(event, net):
                return seen
            if not Markers.is_marker(event):
                seen.append(event)
    raise AssertionError("the stream ended before the marker arrived")


# ---------------------------------------------------------------------------- bulk


async def test_sees_all_20000_changes_in_order(netns: Namespace) -> None:
    """10,000 adds then 10,000 deletes by ``ip -batch``: every one, in order, no Resync."""
    nets = prefixes(ROUTES)
    expected = [("add", n) for n in nets] + [("del", n) for n in nets]
    seen: list[tuple[str, str]] = []
    # 32 MiB asked, 64 MiB granted: room for ~80,000 unread notifications, so the
    # subscriber may fall behind `ip` without losing anything.
    async with subscribe(netns.name, rules=False, nexthops=False, rcvbuf=32 << 20) as events:
        assert_in_namespace(events, netns)
        assert events.rcvbuf >= 32 << 20
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: ip(netns, "-batch", "-", stdin=batch("add", nets) + batch("del", nets))
            )
            with anyio.fail_after(30):
                async for event in events:
                    assert not isinstance(event, Resync), event
                    if isinstance(event, RouteAdded | RouteRemoved) and event.route.table == TABLE:
                        seen.append(key(event))
                        if len(seen) == len(expected):
                            break
        assert events.overruns == 0
    assert seen == expected
    assert oracle.routes(netns.name, table=TABLE) == []


async def test_overrun_yields_resync_after_the_gap_and_keeps_working(netns: Namespace) -> None:
    """A tiny buffer overflows: a Resync follows every gap, and the stream goes on.

    Checked on the sequence the subscriber saw: route events never repeat or go
    backwards; wherever one is missing, a Resync comes later in the stream; the events
    after the last Resync are contiguous; and a marker added afterwards arrives.
    """
    nets = prefixes(ROUTES)
    expected = [("add", n) for n in nets] + [("del", n) for n in nets]
    position = {item: i for i, item in enumerate(expected)}
    stream: list[Event] = []
    done = anyio.Event()
    async with subscribe(netns.name, rules=False, nexthops=False, rcvbuf=4096) as events:
        assert events.rcvbuf <= 16384

        async def produce() -> None:
            await ip(netns, "-batch", "-", stdin=batch("add", nets) + batch("del", nets))
            # A marker may itself be dropped while the socket is congested: keep adding
            # until one gets through.
            markers = Markers(netns)
            while not done.is_set():
                await markers.add()
                await anyio.sleep(0.05)

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            with anyio.fail_after(30):
                async for event in events:
                    if Markers.is_marker(event):
                        done.set()
                        break
                    if isinstance(event, Resync) or (
                        isinstance(event, RouteAdded | RouteRemoved) and event.route.table == TABLE
                    ):
                        stream.append(event)
        assert events.overruns >= 1
    resyncs = [i for i, event in enumerate(stream) if isinstance(event, Resync)]
    assert resyncs, "a 4 KiB buffer cannot hold 20,000 notifications: expected a Resync"
    assert all("ENOBUFS" in stream[i].reason for i in resyncs)  # type: ignore[union-attr]
    # (stream position, expected index) of each route event; -1 stands for "before all".
    indexed = [(-1, -1)] + [
        (i, position[key(event)]) for i, event in enumerate(stream) if not isinstance(event, Resync)
    ]
    for (pos_a, a), (_, b) in itertools.pairwise(indexed):
        assert b > a, f"event {expected[b]} after {expected[a]}: repeated or out of order"
        if b != a + 1:
            assert any(r > pos_a for r in resyncs), f"silent gap after {expected[a]}"
    # After the last Resync nothing may be missing: any loss there would have been
    # followed by another Resync.  (A Resync placed at the ENOBUFS, before the datagrams
    # still queued, fails here: the gap lies after those.)
    tail = [index for pos, index in indexed if pos > resyncs[-1]]
    if tail:
        assert tail == list(range(tail[0], tail[-1] + 1)), "silent gap after the last Resync"
        assert tail[-1] == len(expected) - 1, "changes lost after the last Resync"
    assert oracle.routes(netns.name, table=TABLE) == []


# ---------------------------------------------------------------------------- nexthops


def kernel_route_dsts(ns: Namespace) -> set[str]:
    """Every route destination in every table, both families (``ip -json``)."""
    dsts: set[str] = set()
    for family in (4, 6):
        for entry in oracle.routes(ns.name, table="all", family=family):
            dst = entry["dst"]
            if dst != "default" and "/" not in dst:
                dst += "/32" if family == 4 else "/128"
            dsts.add(dst)
    return dsts


def removed(events: list[Event], table: int | None = None) -> list[str]:
    """Prefixes of the RouteRemoved events (in ``table``, if given), in order."""
    return [
        str(e.route.prefix)
        for e in events
        if isinstance(e, RouteRemoved) and (table is None or e.route.table == table)
    ]


async def test_nexthop_deletion_reports_the_routes_the_kernel_removed(
    netns: Namespace,
) -> None:
    """Routes via a deleted nexthop object are reported removed, once each, both
    families, whether the stream learned them from its opening dump or from events."""
    ns = netns
    await ip(ns, "nexthop", "add", "id", "1", "via", "192.0.2.1", "dev", "v0")
    await ip(ns, "-6", "nexthop", "add", "id", "2", "via", "2001:db8::1", "dev", "v0")
    before = {
        "198.51.100.0/24": ("nhid", "1"),
        "198.18.5.0/24": ("nhid", "1", "table", str(TABLE)),
        "198.18.6.0/24": ("nhid", "1", "metric", "10"),
        "2001:db8:5::/64": ("nhid", "2"),
        "2001:db8:6::/64": ("nhid", "2", "table", str(TABLE)),
    }
    for net, spec in before.items():
        await ip(ns, "route", "add", net, *spec)
    # Not via a nexthop object: must survive.
    await ip(ns, "route", "add", "198.51.100.128/25", "via", "192.0.2.1", "dev", "v0")
    markers = Markers(ns)
    async with subscribe(ns.name) as events:
        assert events.tracked_routes == len(before)
        await ip(ns, "nexthop", "del", "id", "1")
        await ip(ns, "nexthop", "del", "id", "2")
        seen = await read_until_marker(events, markers)
        gone = removed(seen)
        assert sorted(gone) == sorted(before)  # each exactly once (IPv6 is not doubled)
        for event in seen:
            if isinstance(event, RouteRemoved):
                assert event.implied_by is not None
                assert event.implied_by.type == RTM.DELNEXTHOP
                assert event.message.type == RTM.NEWROUTE  # the route as it was added
                assert event.route.nexthop_id in (1, 2)
        deleted_ids = [e.id for e in seen if isinstance(e, NexthopRemoved)]
        assert deleted_ids == [1, 2]
        # No RouteRemoved before the NexthopRemoved that implies it.
        assert isinstance(seen[0], NexthopRemoved)
        assert not any(isinstance(e, LinkAdded | LinkChanged | LinkRemoved) for e in seen)
        assert events.tracked_routes == 0
        assert not set(before) & kernel_route_dsts(ns), "the kernel kept a route"
        assert "198.51.100.128/25" in kernel_route_dsts(ns)

        # Routes learned from events (added after subscribing).
        await ip(ns, "nexthop", "add", "id", "3", "via", "192.0.2.1", "dev", "v0")
        await ip(ns, "route", "add", "198.18.7.0/24", "nhid", "3")
        await ip(ns, "-6", "nexthop", "add", "id", "4", "via", "2001:db8::1", "dev", "v0")
        await ip(ns, "-6", "route", "add", "2001:db8:7::/64", "nhid", "4")
        seen = await read_until_marker(events, markers)
        assert [e.id for e in seen if isinstance(e, NexthopAdded)] == [3, 4]
        added = [e for e in seen if isinstance(e, RouteAdded)]
        assert [str(e.route.prefix) for e in added] == ["198.18.7.0/24", "2001:db8:7::/64"]
        await ip(ns, "nexthop", "del", "id", "3")
        await ip(ns, "nexthop", "del", "id", "4")
        seen = await read_until_marker(events, markers)
        gone_events = [e for e in seen if isinstance(e, RouteRemoved)]
        assert [e.route for e in gone_events] == [e.route for e in added]
        assert not {"198.18.7.0/24", "2001:db8:7::/64"} & kernel_route_dsts(ns)


async def test_nexthop_groups(netns: Namespace) -> None:
    """A group that loses one member keeps its routes; a group that loses its last
    member, or is deleted, takes them with it."""
    ns = netns
    for nh_id, gateway in (("1", "192.0.2.1"), ("2", "192.0.2.3"), ("3", "192.0.2.4")):
        await ip(ns, "nexthop", "add", "id", nh_id, "via", gateway, "dev", "v0")
    await ip(ns, "nexthop", "add", "id", "10", "group", "1/2")
    await ip(ns, "nexthop", "add", "id", "11", "group", "3")
    await ip(ns, "route", "add", "198.51.100.0/24", "nhid", "10")
    await ip(ns, "route", "add", "198.51.100.0/25", "nhid", "10", "table", str(TABLE))
    await ip(ns, "route", "add", "203.0.113.128/25", "nhid", "11")
    await ip(ns, "route", "add", "198.18.1.0/24", "nhid", "1")
    markers = Markers(ns)
    async with subscribe(ns.name) as events:
        assert events.tracked_routes == 4

        # Member 1 of group 10 goes: only the route via 1 itself goes with it.
        await ip(ns, "nexthop", "del", "id", "1")
        seen = await read_until_marker(events, markers)
        assert removed(seen) == ["198.18.1.0/24"]
        nexthop_events = [e for e in seen if isinstance(e, NexthopAdded | NexthopRemoved)]
        assert [(type(e).__name__, e.id) for e in nexthop_events] == [
            ("NexthopRemoved", 1),
            ("NexthopAdded", 10),  # the kernel's update: group 10 is now just 2
        ]
        kernel = kernel_route_dsts(ns)
        assert "198.18.1.0/24" not in kernel
        assert {"198.51.100.0/24", "198.51.100.0/25", "203.0.113.128/25"} <= kernel

        # Group 11's only member goes: the kernel deletes group 11 and its route.
        await ip(ns, "nexthop", "del", "id", "3")
        seen = await read_until_marker(events, markers)
        assert removed(seen) == ["203.0.113.128/25"]
        assert [e.id for e in seen if isinstance(e, NexthopRemoved)] == [3, 11]
        assert "203.0.113.128/25" not in kernel_route_dsts(ns)

        # Group 10 itself goes.
        await ip(ns, "nexthop", "del", "id", "10")
        seen = await read_until_marker(events, markers)
        assert sorted(removed(seen)) == ["198.51.100.0/24", "198.51.100.0/25"]
        assert not {"198.51.100.0/24", "198.51.100.0/25"} & kernel_route_dsts(ns)
        assert events.tracked_routes == 0


async def test_device_loss_removes_its_nexthops_silently(netns: Namespace) -> None:
    """Carrier loss and device deletion flush nexthops without a notification; the
    stream reports the nexthops, emptied groups and routes that went."""
    ns = netns
    for a, b, address in (("v2", "v3", "198.51.100.2/24"), ("v4", "v5", "198.18.200.2/24")):
        await ip(ns, "link", "add", a, "type", "veth", "peer", "name", b)
        await ip(ns, "address", "add", address, "dev", a)
        await ip(ns, "link", "set", a, "up")
        await ip(ns, "link", "set", b, "up")
    await ip(ns, "nexthop", "add", "id", "5", "via", "198.51.100.1", "dev", "v2")
    await ip(ns, "nexthop", "add", "id", "6", "via", "198.18.200.1", "dev", "v4")
    await ip(ns, "nexthop", "add", "id", "7", "via", "192.0.2.1", "dev", "v0")
    await ip(ns, "nexthop", "add", "id", "12", "group", "5")
    await ip(ns, "nexthop", "add", "id", "13", "group", "6/7")
    routes = {
        "203.0.113.0/25": "5",
        "203.0.113.128/25": "12",
        "198.18.100.0/24": "6",
        "198.18.101.0/24": "13",
    }
    for net, nh_id in routes.items():
        await ip(ns, "route", "add", net, "nhid", nh_id, "table", str(TABLE))
    async with subscribe(ns.name, links=True) as events:
        assert events.tracked_routes == 4

        async def collect(until: set[str], link_gone: str = "") -> list[Event]:
            # Link notifications come from linkwatch, possibly after a marker: wait for
            # the expected removals instead.
            seen: list[Event] = []
            with anyio.fail_after(10):
                async for event in events:
                    seen.append(event)
                    link_done = not link_gone or any(
                        isinstance(e, LinkRemoved) and e.link.name == link_gone for e in seen
                    )
                    if link_done and until <= set(removed(seen, TABLE)):
                        return seen
            raise AssertionError("stream ended")

        # v3 down: v2 loses carrier (NETDEV_CHANGE): nexthop 5 and group 12 go.
        await ip(ns, "link", "set", "v3", "down")
        seen = await collect({"203.0.113.0/25", "203.0.113.128/25"})
        gone_nh = [e for e in seen if isinstance(e, NexthopRemoved)]
        assert [e.id for e in gone_nh] == [5, 12]
        gone_routes = [e for e in seen if isinstance(e, RouteRemoved) and e.route.table == TABLE]
        implied: list[NexthopRemoved | RouteRemoved] = [*gone_nh, *gone_routes]
        assert len(implied) == 4
        for event in implied:
            assert event.implied_by is not None and event.implied_by.type == RTM.NEWLINK
        assert not {"203.0.113.0/25", "203.0.113.128/25"} & kernel_route_dsts(ns)
        nexthop_ids = {entry["id"] for entry in ns.ip_json("nexthop")}
        assert nexthop_ids == {6, 7, 13}

        # v4 deleted: nexthop 6 goes; group 13 keeps 7, so its route stays.  (The
        # kernel first announces v4 down, RTM_NEWLINK, then RTM_DELLINK; the flush is
        # reported at the first.)
        await ip(ns, "link", "del", "v4")
        seen = await collect({"198.18.100.0/24"}, link_gone="v4")
        assert [e.id for e in seen if isinstance(e, NexthopRemoved)] == [6]
        assert removed(seen, TABLE) == ["198.18.100.0/24"]
        kernel = kernel_route_dsts(ns)
        assert "198.18.100.0/24" not in kernel and "198.18.101.0/24" in kernel
        assert {entry["id"] for entry in ns.ip_json("nexthop")} == {7, 13}
        assert events.tracked_routes == 1


async def test_tracking_off(netns: Namespace) -> None:
    """``track_nexthops=False``: no dumps, no tracking, only what the kernel says."""
    ns = netns
    await ip(ns, "nexthop", "add", "id", "1", "via", "192.0.2.1", "dev", "v0")
    await ip(ns, "route", "add", "198.51.100.0/24", "nhid", "1")
    markers = Markers(ns)
    async with subscribe(ns.name, track_nexthops=False) as events:
        assert events.tracked_routes == 0
        await ip(ns, "nexthop", "del", "id", "1")
        seen = await read_until_marker(events, markers)
        assert [type(e) for e in seen] == [NexthopRemoved]


# ---------------------------------------------------------------------------- rules, links


async def test_rule_events(netns: Namespace) -> None:
    ns = netns
    async with subscribe(ns.name, routes=False, nexthops=False) as events:
        assert events._lookup is None  # no routes: no second socket
        await ip(ns, "rule", "add", "fwmark", "0x10/0xff", "table", "100", "pref", "100")
        await ip(ns, "-6", "rule", "add", "from", "2001:db8:1::/48", "table", "100", "pref", "101")
        await ip(ns, "rule", "del", "pref", "100")
        await ip(ns, "-6", "rule", "del", "pref", "101")
        seen: list[Event] = []
        with anyio.fail_after(10):
            async for event in events:
                seen.append(event)
                if len(seen) == 4:
                    break
    v4 = Rule(priority=100, mark=0x10, mask=0xFF, table=100)
    v6 = Rule(priority=101, src=ip_network("2001:db8:1::/48"), table=100)
    assert seen == [
        RuleAdded(v4, socket.AF_INET, seen[0].message),  # type: ignore[union-attr]
        RuleAdded(v6, socket.AF_INET6, seen[1].message),  # type: ignore[union-attr]
        RuleRemoved(v4, socket.AF_INET, seen[2].message),  # type: ignore[union-attr]
        RuleRemoved(v6, socket.AF_INET6, seen[3].message),  # type: ignore[union-attr]
    ]
    assert [e.message.type for e in seen] == [RTM.NEWRULE, RTM.NEWRULE, RTM.DELRULE, RTM.DELRULE]  # type: ignore[union-attr]


async def test_link_events(netns: Namespace) -> None:
    ns = netns
    async with subscribe(ns.name, routes=False, rules=False, nexthops=False, links=True) as events:
        await ip(ns, "link", "add", "v6", "type", "veth", "peer", "name", "v7")
        await ip(ns, "link", "set", "v6", "up")
        await ip(ns, "link", "del", "v6")
        seen: list[Event] = []
        with anyio.fail_after(10):
            async for event in events:
                seen.append(event)
                if sum(isinstance(e, LinkRemoved) for e in seen) == 2:
                    break
    added = {e.link.name for e in seen if isinstance(e, LinkAdded)}
    assert added == {"v6", "v7"}
    changed = [e for e in seen if isinstance(e, LinkChanged) and e.link.name == "v6"]
    assert any(e.link.flags & 0x1 for e in changed)  # IFF_UP
    assert {e.link.name for e in seen if isinstance(e, LinkRemoved)} == {"v6", "v7"}
    assert all(e.message.type == RTM.DELLINK for e in seen if isinstance(e, LinkRemoved))


async def test_replace_is_flagged(netns: Namespace) -> None:
    ns = netns
    markers = Markers(ns)
    async with subscribe(ns.name, rules=False, nexthops=False) as events:
        await ip(ns, "route", "add", "198.51.100.0/24", "via", "192.0.2.1", "dev", "v0")
        await ip(ns, "route", "replace", "198.51.100.0/24", "via", "192.0.2.3", "dev", "v0")
        seen = await read_until_marker(events, markers)
    assert [(e.replaced, e.route) for e in seen if isinstance(e, RouteAdded)] == [
        (False, Route("198.51.100.0/24", "192.0.2.1", device="v0", proto=3, table=254, type=1)),
        (True, Route("198.51.100.0/24", "192.0.2.3", device="v0", proto=3, table=254, type=1)),
    ]
    assert seen[1].message.flags & NLM_F.REPLACE  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- lifecycle


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def library_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("asyncroute")]


async def test_close_and_cancel_leave_nothing_open(netns: Namespace) -> None:
    ns = netns
    markers = Markers(ns)
    fds_before = open_fds()
    async with subscribe(ns.name, links=True) as events:
        # A cancelled wait loses nothing: the next iteration goes on.
        with anyio.move_on_after(0.1) as scope:
            async for _ in events:
                pytest.fail("nothing happened, yet an event came")
        assert scope.cancelled_caught
        await ip(ns, "route", "add", "198.51.100.0/24", "via", "192.0.2.1", "dev", "v0")
        seen = await read_until_marker(events, markers)
        assert removed(seen) == [] and [key(e) for e in seen] == [("add", "198.51.100.0/24")]

        # aclose from another task ends a waiting iteration cleanly.
        ended = anyio.Event()

        async def consume() -> None:
            async for _ in events:
                pass
            ended.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.05)
            await events.aclose()
            with anyio.fail_after(5):
                await ended.wait()
        assert events.closed
        with pytest.raises(StopAsyncIteration):
            await events.__anext__()

    # Cancelled while opening (inside the seeding dumps or the thread).
    for delay in (0, 0.001, 0.005):
        with anyio.move_on_after(delay):
            async with subscribe(ns.name, links=True):
                await anyio.sleep(1)
    assert open_fds() == fds_before
    assert library_threads() == []


async def test_missing_namespace() -> None:
    with pytest.raises(FileNotFoundError) as info:
        async with subscribe("asyncroute-no-such-namespace"):
            pass
    assert info.value.errno == errno.ENOENT


async def test_connection_subscribe_uses_the_connections_namespace(netns: Namespace) -> None:
    """``Connection.subscribe()`` opens its socket where the connection lives, and
    sees a change the connection itself makes."""
    from tests.kernel.guard import connect_in

    async with connect_in(netns) as conn, conn.subscribe(rules=False, nexthops=False) as events:
        assert_in_namespace(events, netns)
        route = Route("198.51.100.0/24", nexthop="192.0.2.1", device="v0", table=TABLE)
        await conn.upsert(route)
        with anyio.fail_after(10):
            async for event in events:
                if isinstance(event, RouteAdded) and event.route == route.replace(proto=3, type=1):
                    break
