"""Event streams without a kernel: the overrun drain, nexthop message fields, and the
nexthop tracking rules, driven with hand-made messages.

The kernel tests (``tests/kernel/test_events.py``) show the behaviour end to end; these
pin the parts a kernel run reaches only by luck (where exactly ENOBUFS falls) or not at
all (a nexthop notification that does not decode as one).
"""

from __future__ import annotations

import errno
import socket
from collections import deque
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import anyio
import pytest

from asyncroute import NLM_F, RTM, DecodeError, LinkMessage, Message, NexthopMessage, RouteMessage
from asyncroute._codec import encode_message
from asyncroute.events import (
    Event,
    EventStream,
    LinkChanged,
    NexthopAdded,
    NexthopRemoved,
    Resync,
    RouteAdded,
    RouteRemoved,
    _Gap,
    _nexthop_fields,
)

IFF_UP_RUNNING = 0x1 | 0x40 | 0x10000
IFF_UP_NO_CARRIER = 0x1


def nhmsg(
    nh_id: int, *, oif: int | None = None, group: tuple[int, ...] = (), blackhole: bool = False
) -> NexthopMessage:
    """A decoded nhmsg: NHA_ID, then NHA_GROUP (weight 1 each) / NHA_BLACKHOLE / NHA_OIF."""
    return NexthopMessage(
        id=nh_id, group=tuple((member, 1) for member in group), blackhole=blackhole, oif=oif
    )


def test_nexthop_fields() -> None:
    assert _nexthop_fields(nhmsg(7, oif=3)) == (7, None, 3, False)
    assert _nexthop_fields(nhmsg(10, group=(1, 2))) == (10, (1, 2), None, False)
    assert _nexthop_fields(nhmsg(9, blackhole=True)) == (9, None, None, True)
    assert _nexthop_fields(NexthopMessage()) == (None, None, None, False)


def test_a_body_that_is_not_a_nexthop_message_is_a_decode_error() -> None:
    # The stream turns it into a gap (Resync), never a wrong event.
    with pytest.raises(DecodeError):
        _nexthop_fields(bytes(8))


# ---------------------------------------------------------------------------- the drain


class ScriptedSocket:
    """``recvfrom_into`` returns datagrams and raises errors in a given order."""

    def __init__(self, script: list[bytes | int | tuple[int, bytes]]) -> None:
        self.script = deque(script)

    def recvfrom_into(self, buffer: bytearray, size: int, flags: int) -> tuple[int, Any]:
        if not self.script:
            raise BlockingIOError(errno.EAGAIN, "empty")
        item = self.script.popleft()
        if isinstance(item, int):
            raise OSError(item, "scripted")
        sender, data = item if isinstance(item, tuple) else (0, item)
        buffer[: len(data)] = data
        return len(data), (sender, 1)

    def fileno(self) -> int:
        return -1


def route_datagram(last_octet: int, msg_type: int = RTM.NEWROUTE) -> bytes:
    body = RouteMessage(
        family=socket.AF_INET,
        dst_len=32,
        table=100,
        dst=IPv4Address(f"198.18.0.{last_octet}"),
        oif=3,
    )
    return encode_message(Message(msg_type, 0, body), 0, 0)


def make_stream(sock: Any, **options: bool) -> EventStream:
    wanted = {"routes": True, "rules": True, "nexthops": True, "links": True, "track": True}
    wanted.update(options)
    stream = EventStream(sock, 0, None, **wanted)
    stream._names[3] = "v0"
    return stream


def queued(stream: EventStream) -> list[str]:
    out = []
    for item in stream._raw:
        if isinstance(item, _Gap):
            out.append("gap")
        else:
            assert isinstance(item.body, RouteMessage)
            out.append(str(item.body.dst))
    return out


def test_resync_goes_after_the_datagrams_queued_before_enobufs() -> None:
    # The kernel reports ENOBUFS before the datagrams it had queued; the gap is after
    # them (it lasts until the queue is empty), so the marker goes at EAGAIN.
    sock = ScriptedSocket([route_datagram(1), errno.ENOBUFS, route_datagram(2), route_datagram(3)])
    stream = make_stream(sock)
    assert stream._drain()
    assert queued(stream) == ["198.18.0.1", "198.18.0.2", "198.18.0.3", "gap"]
    assert stream.overruns == 1


def test_enobufs_on_an_empty_queue_is_still_a_gap() -> None:
    stream = make_stream(ScriptedSocket([errno.ENOBUFS]))
    assert stream._drain()
    assert queued(stream) == ["gap"]


def test_foreign_senders_are_ignored_and_bad_datagrams_are_gaps() -> None:
    truncated = route_datagram(5)[:-4]
    sock = ScriptedSocket([(1234, route_datagram(4)), truncated])
    stream = make_stream(sock)
    assert stream._drain()
    assert queued(stream) == ["gap"]
    assert isinstance(stream._raw[0], _Gap)
    assert "undecodable" in stream._raw[0].reason


def test_other_socket_errors_propagate() -> None:
    stream = make_stream(ScriptedSocket([errno.EBADF]))
    with pytest.raises(OSError) as info:
        stream._drain()
    assert info.value.errno == errno.EBADF


# ---------------------------------------------------------------------------- tracking


def v4_route(net: str, nh_id: int, flags: int = 0, msg_type: int = RTM.NEWROUTE) -> Message:
    address, length = net.split("/")
    body = RouteMessage(
        family=socket.AF_INET,
        dst_len=int(length),
        table=254,
        protocol=3,
        type=1,
        dst=IPv4Address(address),
        oif=3,
        nexthop_id=nh_id,
    )
    return Message(msg_type, flags, body)


def v6_route(net: str, nh_id: int, msg_type: int = RTM.NEWROUTE) -> Message:
    address, length = net.split("/")
    body = RouteMessage(
        family=socket.AF_INET6,
        dst_len=int(length),
        table=254,
        protocol=3,
        type=1,
        dst=IPv6Address(address),
        oif=3,
        priority=1024,
        nexthop_id=nh_id,
    )
    return Message(msg_type, 0, body)


def nexthop(nh_id: int, *, added: bool = True, **fields: Any) -> Message:
    kind = RTM.NEWNEXTHOP if added else RTM.DELNEXTHOP
    return Message(kind, 0, nhmsg(nh_id, **fields))


def link(index: int, flags: int, msg_type: int = RTM.NEWLINK) -> Message:
    return Message(msg_type, 0, LinkMessage(index=index, flags=flags, name=f"if{index}"))


def feed(stream: EventStream, *messages: Message) -> list[Event]:
    for message in messages:
        stream._apply(message)
    events = list(stream._events)
    stream._events.clear()
    return events


def summary(events: list[Event]) -> list[tuple[str, object, bool]]:
    out: list[tuple[str, object, bool]] = []
    for event in events:
        if isinstance(event, RouteAdded | RouteRemoved):
            implied = isinstance(event, RouteRemoved) and event.implied_by is not None
            out.append((type(event).__name__, str(event.route.prefix), implied))
        elif isinstance(event, NexthopAdded | NexthopRemoved):
            implied = isinstance(event, NexthopRemoved) and event.implied_by is not None
            out.append((type(event).__name__, event.id, implied))
        elif not isinstance(event, LinkChanged):
            out.append((type(event).__name__, None, False))
    return out


def test_group_member_deletion_keeps_the_group_routes() -> None:
    stream = make_stream(ScriptedSocket([]), links=False)
    feed(
        stream,
        nexthop(1, oif=3),
        nexthop(2, oif=3),
        nexthop(10, group=(1, 2)),
        nexthop(11, group=(2,)),
        v4_route("198.51.100.0/24", 10),
        v4_route("198.51.100.128/25", 11),
        v4_route("203.0.113.0/24", 1),
    )
    assert stream.tracked_routes == 3
    # Deleting 1: its own route goes; group 10 keeps 2, so its route stays.
    assert summary(feed(stream, nexthop(1, added=False))) == [
        ("NexthopRemoved", 1, False),
        ("RouteRemoved", "203.0.113.0/24", True),
    ]
    # Deleting 2 empties both groups: their routes go (the kernel's own RTM_DELNEXTHOP
    # for the groups follows, and then reports nothing more).
    assert summary(feed(stream, nexthop(2, added=False))) == [
        ("NexthopRemoved", 2, False),
        ("RouteRemoved", "198.51.100.0/24", True),
        ("RouteRemoved", "198.51.100.128/25", True),
    ]
    assert summary(feed(stream, nexthop(10, added=False), nexthop(11, added=False))) == [
        ("NexthopRemoved", 10, False),
        ("NexthopRemoved", 11, False),
    ]
    assert stream.tracked_routes == 0


def test_ipv6_removal_is_not_reported_twice() -> None:
    stream = make_stream(ScriptedSocket([]))
    feed(stream, nexthop(2, oif=3), v6_route("2001:db8:5::/64", 2))
    assert summary(feed(stream, nexthop(2, added=False))) == [
        ("NexthopRemoved", 2, False),
        ("RouteRemoved", "2001:db8:5::/64", True),
    ]
    # nexthop_compat_mode=1: the kernel's RTM_DELROUTE comes after; already reported.
    assert feed(stream, v6_route("2001:db8:5::/64", 2, RTM.DELROUTE)) == []
    # A later delete of the same route, re-added, is real.
    feed(stream, nexthop(2, oif=3), v6_route("2001:db8:5::/64", 2))
    assert summary(feed(stream, v6_route("2001:db8:5::/64", 2, RTM.DELROUTE))) == [
        ("RouteRemoved", "2001:db8:5::/64", False)
    ]


def test_ipv4_route_replaced_onto_another_nexthop() -> None:
    stream = make_stream(ScriptedSocket([]))
    feed(stream, nexthop(1, oif=3), nexthop(2, oif=3), v4_route("198.51.100.0/24", 1))
    events = feed(stream, v4_route("198.51.100.0/24", 2, flags=NLM_F.REPLACE))
    assert isinstance(events[0], RouteAdded) and events[0].replaced
    assert summary(feed(stream, nexthop(1, added=False))) == [("NexthopRemoved", 1, False)]
    assert summary(feed(stream, nexthop(2, added=False))) == [
        ("NexthopRemoved", 2, False),
        ("RouteRemoved", "198.51.100.0/24", True),
    ]


def test_device_going_down_flushes_its_nexthops() -> None:
    stream = make_stream(ScriptedSocket([]))
    feed(
        stream,
        link(4, IFF_UP_RUNNING),
        nexthop(5, oif=4),
        nexthop(6, blackhole=True),
        nexthop(7, oif=3),
        nexthop(12, group=(5,)),
        nexthop(13, group=(5, 7)),
        v4_route("203.0.113.0/25", 5),
        v4_route("203.0.113.128/25", 12),
        v4_route("198.18.1.0/24", 13),
    )
    # An unrelated change while usable flushes nothing.
    assert summary(feed(stream, link(4, IFF_UP_RUNNING))) == []
    assert summary(feed(stream, link(4, IFF_UP_NO_CARRIER))) == [
        ("NexthopRemoved", 5, True),
        ("RouteRemoved", "203.0.113.0/25", True),
        ("NexthopRemoved", 12, True),
        ("RouteRemoved", "203.0.113.128/25", True),
    ]
    # Group 13 survives with 7; the blackhole is never on a device.
    assert sorted(stream._nexthops) == [6, 7, 13]
    assert stream._nexthops[13].members == (7,)
    # Still down: a further message flushes nothing (the kernel only acts on the event).
    assert summary(feed(stream, link(4, IFF_UP_NO_CARRIER))) == []


def test_resync_event_for_a_gap() -> None:
    stream = make_stream(ScriptedSocket([]))
    stream._raw.append(_Gap("overrun"))
    anyio.run(stream._process_next)  # no lookup connection: no dump, just the event
    assert list(stream._events) == [Resync("overrun")]
