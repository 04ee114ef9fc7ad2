"""Event streams: rtnetlink notifications as typed events, with no silent gaps.

:func:`subscribe` opens a netlink socket of its own (never the request socket: pitfall
P1, a subscribed request socket receives multicast copies carrying its own seq), joins
the multicast groups asked for, and yields :class:`RouteAdded`, :class:`RouteRemoved`,
:class:`RuleAdded`, :class:`RuleRemoved`, :class:`NexthopAdded`,
:class:`NexthopRemoved`, :class:`LinkAdded`, :class:`LinkChanged`,
:class:`LinkRemoved` and :class:`Resync`.  Every event carries the kernel's decoded
:class:`~asyncroute.Message` as ``message``, so nothing the kernel said is lost.

Invariants:

- Every change made after ``subscribe()`` has returned is reported, in the kernel's
  order, or a :class:`Resync` follows the point where reports were lost.
- **Overrun.**  netlink(7) multicast is unreliable: when the receive buffer is full the
  kernel drops notifications, sets NETLINK_S_CONGESTED and reports ENOBUFS once, on the
  *next* ``recv``, before the datagrams that were already queued
  (``__skb_try_recv_datagram`` checks ``sk_err`` first).  While congested it drops
  everything, without a second ENOBUFS, until the queue has been read empty
  (``netlink_rcv_wake``).  So the gap lies *after* the queued datagrams, somewhere
  before the first empty read.  The stream therefore keeps reading after ENOBUFS until
  the socket is empty (EAGAIN), yields the events it read, and only then yields
  :class:`Resync`: every event after a Resync is part of a gap-free sequence.
  NETLINK_NO_ENOBUFS is deliberately not set; we want to know.
- A datagram that cannot be decoded, or that was truncated, is a gap too: Resync.
- Reading is cancellation safe: a message leaves the internal queue only once its
  events have been built without awaiting anything, so a cancelled ``__anext__`` loses
  nothing, and the stream can be iterated again afterwards.

What the kernel does *not* announce (verified on Linux 6.18 with ``ip monitor``; see
``tests/kernel/test_events.py``):

- **Nexthop deletion.**  ``ip nexthop del id N`` sends RTM_DELNEXTHOP for N and, for
  each group holding N, RTM_NEWNEXTHOP with the smaller group or RTM_DELNEXTHOP when N
  was its last member.  The routes using N (or an emptied group) are removed by
  ``__remove_nexthop_fib`` with **no RTM_DELROUTE for IPv4** (``fib_flush`` does not
  notify); IPv6 routes get RTM_DELROUTE only while ``net.ipv4.nexthop_compat_mode``
  is 1 (the default; ``ip6_del_rt(..., skip_notify = !compat_mode)``).  Routes via a
  group that keeps members survive.
- **Device down, carrier loss, device deletion.**  ``nexthop_flush_dev`` removes every
  nexthop object on the device (except blackholes) with no notification at all (it
  passes no ``nlinfo``): neither RTM_DELNEXTHOP, nor group updates, nor IPv4
  RTM_DELROUTE for the routes that used them.
- IPv4 routes through a device that is set down or deleted are removed by
  ``fib_flush`` without RTM_DELROUTE too, nexthop objects or not.  The stream does
  **not** synthesize those (it would have to track every IPv4 route): subscribe with
  ``links=True`` and treat a :class:`LinkChanged` whose link lost IFF_UP, or a
  :class:`LinkRemoved`, as the removal of the IPv4 routes through that device.

Nexthop tracking (``track_nexthops=True``, the default when routes are subscribed)
makes up for the first two: from the route and nexthop events it has seen (and one dump
of nexthops, plus routes when nexthops exist, when the stream opens and after every
Resync), the stream knows which routes use which nexthop id, which groups hold which
ids, and which device each nexthop is on.  When the kernel deletes a nexthop — announced,
or implied by a device going down — the stream yields :class:`RouteRemoved` (with
``implied_by`` set) for each route that used it, and :class:`NexthopRemoved` for the
nexthops the kernel removed without saying so.  The IPv6 RTM_DELROUTE that the kernel
may still send afterwards is recognised and not reported twice.

Cost of tracking: only routes that use a nexthop object are kept, about 1.2 KiB each
(the Route, its message and two dictionary entries; measured: 20,000 tracked routes took
23 MiB); nexthops cost a few hundred bytes each, the device-name cache about 100 bytes
per device, and routes without RTA_NH_ID nothing.  The dumps, at open and after each
Resync, are one link dump and one nexthop dump; only when nexthop objects exist also a
dump of every route of both families (about 1.2 s per 100,000 routes, measured), since
the kernel cannot filter a route dump by RTA_NH_ID.  ``track_nexthops=False`` turns it
all off: no nexthop or route dumps, and routes removed with their nexthop are not
reported.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import anyio
import anyio.lowlevel

from . import _links
from ._codec import decode_datagram
from ._socket import open_netlink_socket
from .connection import DUMP_RETRIES, NetlinkConnection
from .constants import AF_INET6, NLM_F, RTM, RTM_F, RTNLGRP, SOL_NETLINK, NetlinkOption
from .errors import ConnectionClosed, DecodeError, KernelError, NotFoundError
from .messages import LinkMessage, Message, NexthopMessage, RouteMessage, RuleMessage
from .route import Route, _from_message
from .rule import Rule, _rule_from_message

__all__ = [
    "DEFAULT_EVENT_RCVBUF",
    "Event",
    "EventStream",
    "LinkAdded",
    "LinkChanged",
    "LinkRemoved",
    "NexthopAdded",
    "NexthopRemoved",
    "Resync",
    "RouteAdded",
    "RouteRemoved",
    "RuleAdded",
    "RuleRemoved",
    "subscribe",
]

#: Receive buffer an event stream asks for (bytes; the kernel doubles it).  A queued
#: route notification takes about 840 bytes of it (skb truesize, measured), so the
#: default holds roughly 20,000 unread notifications.
DEFAULT_EVENT_RCVBUF = 8 * 1024 * 1024

# ---------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class RouteAdded:
    """RTM_NEWROUTE: a route was added, or replaced (see :attr:`replaced`).

    ``route`` is the message as a :class:`~asyncroute.Route` (device names resolved);
    ``message`` is the kernel's message, with everything Route cannot hold.
    """

    route: Route
    message: Message

    @property
    def replaced(self) -> bool:
        """True if the kernel flagged the notification NLM_F_REPLACE: the route took the
        place of another with the same key (``ip route replace``, or a nexthop object
        it uses was replaced).  The kernel's flag, not a comparison: IPv6 also sets it
        when a replace request creates a new multipath route (Linux 6.18, measured)."""
        return bool(self.message.flags & NLM_F.REPLACE)


@dataclass(frozen=True, slots=True)
class RouteRemoved:
    """A route is gone.

    Normally ``message`` is the kernel's RTM_DELROUTE and ``implied_by`` is None.  When
    the kernel removed the route without a notification (its nexthop object was deleted,
    or that nexthop's device went down), ``message`` is the last RTM_NEWROUTE seen for
    the route and ``implied_by`` the message that implies the removal (RTM_DELNEXTHOP,
    or RTM_NEWLINK/RTM_DELLINK).
    """

    route: Route
    message: Message
    implied_by: Message | None = None


@dataclass(frozen=True, slots=True)
class RuleAdded:
    """RTM_NEWRULE.  ``rule`` is the whole rule, as :meth:`~asyncroute.Connection.list_rules`
    yields it (every selector and action; the selectors' exact addresses); ``family`` is
    AF_INET or AF_INET6; ``message.body`` is the :class:`~asyncroute.RuleMessage`."""

    rule: Rule
    family: int
    message: Message


@dataclass(frozen=True, slots=True)
class RuleRemoved:
    """RTM_DELRULE; fields as in :class:`RuleAdded`."""

    rule: Rule
    family: int
    message: Message


@dataclass(frozen=True, slots=True)
class NexthopAdded:
    """RTM_NEWNEXTHOP: nexthop object ``id`` was added or changed (replaced, or a group
    that lost a member).  ``message.body`` is the decoded
    :class:`~asyncroute.NexthopMessage`."""

    id: int
    message: Message


@dataclass(frozen=True, slots=True)
class NexthopRemoved:
    """Nexthop object ``id`` is gone.

    ``message`` is the kernel's RTM_DELNEXTHOP; or, when the kernel removed the object
    silently (its device went down, lost carrier or was deleted; or it was a group whose
    members all went that way), the last RTM_NEWNEXTHOP seen for it, with ``implied_by``
    set to the link message that implies the removal.
    """

    id: int
    message: Message
    implied_by: Message | None = None


@dataclass(frozen=True, slots=True)
class LinkAdded:
    """RTM_NEWLINK for a new device (the kernel sets ``ifi_change`` to all ones)."""

    link: LinkMessage
    message: Message


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """RTM_NEWLINK for an existing device: flags, name, MTU, carrier… changed."""

    link: LinkMessage
    message: Message


@dataclass(frozen=True, slots=True)
class LinkRemoved:
    """RTM_DELLINK: the device is gone."""

    link: LinkMessage
    message: Message


@dataclass(frozen=True, slots=True)
class Resync:
    """Notifications were lost (``reason`` says why, e.g. an overrun: ENOBUFS).

    Events before it are real, but changes between them may be missing.  Events after
    it form a gap-free sequence that starts no later than this Resync: read the state
    again (a dump), then apply the events that follow; some may repeat what the dump
    already shows (an add of a route that is there, a removal of one that is gone).
    """

    reason: str


#: Any event an :class:`EventStream` yields.
Event = (
    RouteAdded
    | RouteRemoved
    | RuleAdded
    | RuleRemoved
    | NexthopAdded
    | NexthopRemoved
    | LinkAdded
    | LinkChanged
    | LinkRemoved
    | Resync
)

# ---------------------------------------------------------------------------- wire details

# linux/if.h
_IFF_UP = 0x1
_IFF_RUNNING = 0x40
_IFF_LOWER_UP = 0x10000
# register_netdevice/unregister announce a device with ifi_change = ~0U.
_ALL_CHANGED = 0xFFFFFFFF
_AF_UNSPEC = 0
_SOL_NETLINK = SOL_NETLINK
_ADD_MEMBERSHIP = int(NetlinkOption.ADD_MEMBERSHIP)
_RECV_BUFFER = 256 * 1024
_MSG_TRUNC = socket.MSG_TRUNC
# Datagrams read per wake-up before other tasks get a turn.
_MAX_DRAIN = 256
# Names of deleted devices kept for late route notifications (IPv6 removes routes after
# the device is unregistered).
_GONE_NAMES = 1024
# IPv6 removals reported on the kernel's behalf whose RTM_DELROUTE may still come.
_IMPLIED_LIMIT = 65536
_LOOKUP_RCVBUF = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _NexthopInfo:
    """What tracking keeps per nexthop object."""

    message: Message
    oif: int | None
    members: tuple[int, ...] | None  # a group's member ids; None for a single nexthop
    blackhole: bool


def _nexthop_fields(body: object) -> tuple[int | None, tuple[int, ...] | None, int | None, bool]:
    """``(id, group member ids or None, oif, blackhole)`` of a nexthop message body."""
    if not isinstance(body, NexthopMessage):
        raise DecodeError(f"expected a nexthop message, got {type(body).__name__}")
    members = tuple(member for member, _ in body.group) if body.group else None
    return body.id, members, body.oif, body.blackhole


# A route's identity for tracking: what the kernel matches a replace on, without the
# nexthop (several IPv4 aliases may differ only in it; they are kept apart by nhid).
_RouteKey = tuple[int, int, int, object, int, object, int, int]


def _route_key(body: RouteMessage) -> _RouteKey:
    return (
        body.family,
        body.table_number,
        body.dst_len,
        body.dst,
        body.src_len,
        body.src,
        body.tos,
        body.priority or 0,
    )


def _hop_indexes(body: RouteMessage) -> list[int]:
    indexes = [body.oif] if body.oif else []
    indexes += [hop.ifindex for hop in body.multipath or () if hop.ifindex]
    return indexes


def _usable(flags: int) -> bool:
    """Whether nexthops may live on a device with these ``ifi_flags``: up, and running
    or with carrier.  ``nh_netdev_event`` flushes them on NETDEV_DOWN, and on
    NETDEV_CHANGE when ``dev_get_flags`` has neither IFF_RUNNING nor IFF_LOWER_UP."""
    return bool(flags & _IFF_UP) and bool(flags & (_IFF_RUNNING | _IFF_LOWER_UP))


class _Gap:
    """Marks, in the queue of received messages, where a Resync belongs."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


# ---------------------------------------------------------------------------- the stream


class EventStream:
    """An async iterator of :data:`Event` s from one netlink socket.

    Made by :func:`subscribe` (use that).  Iterate it from one task at a time;
    :meth:`aclose` (or leaving ``subscribe``'s block) closes the socket and ends the
    iteration.  A cancelled ``__anext__`` loses nothing: iterate again to continue.
    """

    def __init__(
        self,
        sock: socket.socket,
        rcvbuf: int,
        lookup: NetlinkConnection | None,
        *,
        routes: bool,
        rules: bool,
        nexthops: bool,
        links: bool,
        track: bool,
    ) -> None:
        self._sock = sock
        self._rcvbuf = rcvbuf
        self._lookup = lookup
        self._want_routes = routes
        self._want_rules = rules
        self._want_nexthops = nexthops
        self._want_links = links
        self._track = track
        self._buffer = bytearray(_RECV_BUFFER)
        self._view = memoryview(self._buffer)
        self._raw: deque[Message | _Gap] = deque()
        self._events: deque[Event] = deque()
        self._overrun = False
        self._overruns = 0
        self._closed = False
        self._reading = False
        # ifindex -> name; deleted devices' names linger in _gone for late messages.
        self._names: dict[int, str] = {}
        self._gone: OrderedDict[int, str] = OrderedDict()
        # Tracking (see the module docstring).
        self._usable: dict[int, bool] = {}
        self._nexthops: dict[int, _NexthopInfo] = {}
        self._groups_of: dict[int, set[int]] = {}
        self._routes: dict[_RouteKey, dict[int, tuple[Route, Message]]] = {}
        # nexthop id -> the keys of the routes using it, in the order they were added.
        self._users: dict[int, dict[_RouteKey, None]] = {}
        self._implied: OrderedDict[tuple[_RouteKey, int], None] = OrderedDict()

    # ------------------------------------------------------------------ properties

    @property
    def rcvbuf(self) -> int:
        """The receive buffer the kernel granted (bytes, read back; twice what was asked)."""
        return self._rcvbuf

    @property
    def overruns(self) -> int:
        """How many times the kernel reported ENOBUFS on this stream."""
        return self._overruns

    @property
    def tracked_routes(self) -> int:
        """How many routes via nexthop objects the stream is tracking."""
        return sum(len(by_nh) for by_nh in self._routes.values())

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run."""
        return self._closed

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the socket (and the private lookup connection); iteration ends.

        A task waiting in ``__anext__`` is woken and gets StopAsyncIteration.
        """
        if not self._closed:
            self._closed = True
            if self._sock.fileno() >= 0:
                # Wake a task blocked on the fd before its number can be reused.
                with contextlib.suppress(Exception):
                    anyio.notify_closing(self._sock)
                self._sock.close()
            lookup, self._lookup = self._lookup, None
            if lookup is not None:
                await lookup.aclose()
        await anyio.lowlevel.checkpoint()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self._reading:
            raise RuntimeError("another task is already iterating this event stream")
        self._reading = True
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
            while not self._events:
                if self._closed:
                    raise StopAsyncIteration
                if self._raw:
                    await self._process_next()
                else:
                    await self._read()
            return self._events.popleft()
        except (anyio.ClosedResourceError, ConnectionClosed):
            if self._closed:
                raise StopAsyncIteration from None
            raise
        except OSError as exc:
            if self._closed and exc.errno == errno.EBADF:
                raise StopAsyncIteration from None
            raise
        finally:
            self._reading = False

    # ------------------------------------------------------------------ reading

    async def _read(self) -> None:
        """Fill ``_raw`` with at least one item, waiting for the socket if need be."""
        waited = False
        while True:
            if self._drain():
                if not waited:
                    # Data was already there: still let other tasks run once per batch.
                    await anyio.lowlevel.checkpoint()
                return
            await anyio.wait_readable(self._sock)
            waited = True

    def _drain(self) -> bool:
        """Read datagrams until EAGAIN (or _MAX_DRAIN); True if anything was queued.

        After ENOBUFS the gap is behind the datagrams still queued, and lasts until the
        queue has been read empty (see the module docstring), so the Resync marker is
        queued at the first EAGAIN after it, not at the error.
        """
        sock, view, raw = self._sock, self._view, self._raw
        size = len(self._buffer)
        before = len(raw)
        for _ in range(_MAX_DRAIN):
            try:
                length, (sender, _groups) = sock.recvfrom_into(self._buffer, size, _MSG_TRUNC)
            except BlockingIOError:
                if self._overrun:
                    self._overrun = False
                    raw.append(_Gap("overrun: the kernel dropped notifications (ENOBUFS)"))
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self._overrun = True
                    self._overruns += 1
                    continue
                raise
            if sender != 0:
                continue  # not from the kernel: rtnetlink multicast comes from port 0
            if length > size:
                raw.append(_Gap(f"a {length}-byte notification did not fit in {size} bytes"))
                continue
            try:
                raw.extend(decode_datagram(view[:length]))
            except DecodeError as exc:
                raw.append(_Gap(f"undecodable notification: {exc}"))
        return len(raw) > before

    # ------------------------------------------------------------------ processing

    async def _process_next(self) -> None:
        """Turn the oldest queued item into events.  Awaits (device-name lookups, the
        tracking dump after a gap) happen *before* the item is taken off the queue, so
        a cancellation loses nothing."""
        item = self._raw[0]
        if isinstance(item, _Gap):
            if self._lookup is not None:
                await self._seed()
            self._raw.popleft()
            self._events.append(Resync(item.reason))
            return
        body = item.body
        if isinstance(body, RouteMessage) and self._want_routes and not body.flags & RTM_F.CLONED:
            for index in _hop_indexes(body):
                if index not in self._names and index not in self._gone:
                    await self._resolve(index)
        self._raw.popleft()
        try:
            self._apply(item)
        except ValueError as exc:  # DecodeError included
            # A message we cannot interpret is a change we cannot report: a gap, handled
            # like an overrun (after it, a fresh dump when tracking).
            self._raw.appendleft(_Gap(f"uninterpretable notification (type {item.type}): {exc}"))

    async def _resolve(self, index: int) -> None:
        """Learn device ``index``'s name with RTM_GETLINK ("" if it is gone)."""
        lookup = self._lookup
        if lookup is None:
            return
        try:
            name = await _links.device_name(lookup, index)
        except NotFoundError:
            name = ""  # replaced when an RTM_NEWLINK for it arrives
        self._names[index] = name

    def _name(self, index: int | None) -> str:
        if not index:
            return ""
        name = self._names.get(index)
        if name is None:
            name = self._gone.get(index, "")
        return name

    def _route(self, body: RouteMessage) -> Route:
        hops = body.multipath
        try:
            if hops:
                names = {index: self._name(index) for index in _hop_indexes(body)}
                return _from_message(body, self._name(body.oif), hop_devices=names)
            return _from_message(body, self._name(body.oif))
        except ValueError:
            # Something Route cannot hold (e.g. an IPv4 route via an IPv6 hop, RTA_VIA):
            # the prefix and header fields; the message has the rest.
            dst = body.dst
            prefix = f"{dst}/{body.dst_len}" if dst is not None else (
                f"0.0.0.0/{body.dst_len}" if body.family != AF_INET6 else f"::/{body.dst_len}"
            )  # fmt: skip
            return Route(
                prefix,
                proto=body.protocol,
                scope=body.scope,
                table=body.table_number,
                type=body.type,
                priority=body.priority or 0,
            )

    def _apply(self, message: Message) -> None:
        """Append the events ``message`` means, and update the caches (no awaits)."""
        kind = message.type
        body = message.body
        if kind in (RTM.NEWROUTE, RTM.DELROUTE) and isinstance(body, RouteMessage):
            if self._want_routes and not body.flags & RTM_F.CLONED:
                self._on_route(message, body, kind == RTM.NEWROUTE)
        elif kind in (RTM.NEWRULE, RTM.DELRULE) and isinstance(body, RuleMessage):
            if self._want_rules:
                event = RuleAdded if kind == RTM.NEWRULE else RuleRemoved
                self._events.append(event(_rule_from_message(body), body.family, message))
        elif kind in (RTM.NEWNEXTHOP, RTM.DELNEXTHOP):
            self._on_nexthop(message, kind == RTM.NEWNEXTHOP)
        elif (
            kind in (RTM.NEWLINK, RTM.DELLINK)
            and isinstance(body, LinkMessage)
            # AF_BRIDGE messages on the same group describe bridge ports, not devices.
            and body.family == _AF_UNSPEC
        ):
            self._on_link(message, body, kind == RTM.NEWLINK)

    def _on_route(self, message: Message, body: RouteMessage, added: bool) -> None:
        nh_id = body.nexthop_id if self._track else None
        key = _route_key(body) if self._track else None
        if added:
            route = self._route(body)
            self._events.append(RouteAdded(route, message))
            if key is not None:
                if message.flags & NLM_F.REPLACE:
                    self._untrack(key, None)
                if nh_id is not None:
                    self._implied.pop((key, nh_id), None)
                    self._routes.setdefault(key, {})[nh_id] = (route, message)
                    self._users.setdefault(nh_id, {})[key] = None
            return
        if key is not None and nh_id is not None:
            if (key, nh_id) in self._implied:
                # Already reported when its nexthop went; this is the kernel's late
                # RTM_DELROUTE (IPv6 with nexthop_compat_mode=1).
                del self._implied[(key, nh_id)]
                return
            self._untrack(key, nh_id)
        self._events.append(RouteRemoved(self._route(body), message))

    def _untrack(self, key: _RouteKey, nh_id: int | None) -> None:
        """Forget route ``key`` via ``nh_id`` (every nexthop if None)."""
        by_nh = self._routes.get(key)
        if by_nh is None:
            return
        for number in list(by_nh) if nh_id is None else [nh_id]:
            if by_nh.pop(number, None) is not None:
                users = self._users.get(number)
                if users is not None:
                    users.pop(key, None)
                    if not users:
                        del self._users[number]
        if not by_nh:
            del self._routes[key]

    def _on_nexthop(self, message: Message, added: bool) -> None:
        nh_id, members, oif, blackhole = _nexthop_fields(message.body)
        if nh_id is None:
            return
        if self._want_nexthops:
            event = NexthopAdded(nh_id, message) if added else NexthopRemoved(nh_id, message)
            self._events.append(event)
        if not self._track:
            return
        if added:
            old = self._nexthops.get(nh_id)
            self._set_members(nh_id, old.members if old else None, members)
            self._nexthops[nh_id] = _NexthopInfo(message, oif, members, blackhole)
        else:
            # The kernel announces groups that lose their last member itself; this
            # stream drops them at once anyway, so an emptied group's routes go now.
            self._drop_nexthop(nh_id, message, silent=False)

    def _set_members(
        self, group: int, old: tuple[int, ...] | None, new: tuple[int, ...] | None
    ) -> None:
        for member in old or ():
            groups = self._groups_of.get(member)
            if groups is not None:
                groups.discard(group)
                if not groups:
                    del self._groups_of[member]
        for member in new or ():
            self._groups_of.setdefault(member, set()).add(group)

    def _drop_nexthop(self, nh_id: int, cause: Message, *, silent: bool) -> None:
        """The kernel deleted nexthop ``nh_id``: report the routes that went with it.

        ``silent``: the kernel sent nothing (``nexthop_flush_dev``), so the nexthop's own
        removal and that of groups it emptied are reported here too.
        """
        info = self._nexthops.pop(nh_id, None)
        if info is not None:
            if silent and self._want_nexthops:
                self._events.append(NexthopRemoved(nh_id, info.message, implied_by=cause))
            self._set_members(nh_id, info.members, None)
        for key in self._users.pop(nh_id, {}):
            by_nh = self._routes.get(key)
            entry = by_nh.pop(nh_id, None) if by_nh is not None else None
            if by_nh is not None and not by_nh:
                del self._routes[key]
            if entry is None:
                continue
            route, added = entry
            self._events.append(RouteRemoved(route, added, implied_by=cause))
            if key[0] == AF_INET6:
                # With nexthop_compat_mode=1 the kernel's own RTM_DELROUTE follows.
                self._implied[(key, nh_id)] = None
                if len(self._implied) > _IMPLIED_LIMIT:
                    self._implied.popitem(last=False)
        # Groups holding nh_id lose it (remove_nh_grp_entry); an emptied group is
        # deleted, and the routes using it with it.
        for group in sorted(self._groups_of.pop(nh_id, ())):
            ginfo = self._nexthops.get(group)
            if ginfo is None or ginfo.members is None:
                continue
            rest = tuple(member for member in ginfo.members if member != nh_id)
            if rest:
                self._nexthops[group] = _NexthopInfo(
                    ginfo.message, ginfo.oif, rest, ginfo.blackhole
                )
            else:
                self._drop_nexthop(group, cause, silent=silent)

    def _on_link(self, message: Message, body: LinkMessage, added: bool) -> None:
        index = body.index
        if added:
            if body.name is not None:
                self._names[index] = body.name
                self._gone.pop(index, None)
            if self._want_links:
                event = LinkAdded if body.change == _ALL_CHANGED else LinkChanged
                self._events.append(event(body, message))
            usable = _usable(body.flags)
            was = self._usable.get(index, True)
            self._usable[index] = usable
            if self._track and was and not usable:
                self._flush_device(index, message)
            return
        name = self._names.pop(index, None)
        if name is not None:
            self._gone[index] = name
            if len(self._gone) > _GONE_NAMES:
                self._gone.popitem(last=False)
        self._usable.pop(index, None)
        if self._want_links:
            self._events.append(LinkRemoved(body, message))
        if self._track:
            self._flush_device(index, message)

    def _flush_device(self, index: int, cause: Message) -> None:
        """``nexthop_flush_dev``: every nexthop on the device except blackholes goes,
        without a notification."""
        doomed = [
            nh_id
            for nh_id, info in self._nexthops.items()
            if info.oif == index and not info.blackhole and info.members is None
        ]
        for nh_id in doomed:
            if nh_id in self._nexthops:
                self._drop_nexthop(nh_id, cause, silent=True)

    # ------------------------------------------------------------------ tracking state

    async def _seed(self) -> None:
        """Rebuild the caches from dumps, replacing them only when all dumps are in.

        The groups were joined before, so every change after the dumps started is
        queued on the socket; applying those (absolute: "R exists", "R is gone") on top
        of the dumped state converges to the kernel's.
        """
        lookup = self._lookup
        assert lookup is not None
        names: dict[int, str] = {}
        usable: dict[int, bool] = {}
        async for reply in lookup.dump(
            Message(RTM.GETLINK, 0, LinkMessage()), retry_interrupted=DUMP_RETRIES
        ):
            link = reply.body
            if isinstance(link, LinkMessage):
                names[link.index] = link.name or ""
                usable[link.index] = _usable(link.flags)
        self._names.update(names)
        if not self._track:
            return
        nexthops: dict[int, _NexthopInfo] = {}
        try:
            async for reply in lookup.dump(
                Message(RTM.GETNEXTHOP, 0, NexthopMessage()), retry_interrupted=DUMP_RETRIES
            ):
                nh_id, members, oif, blackhole = _nexthop_fields(reply.body)
                if nh_id is not None:
                    nexthops[nh_id] = _NexthopInfo(reply, oif, members, blackhole)
        except KernelError as exc:
            # A kernel without nexthop objects (before 5.3) refuses the dump; there is
            # nothing to track then.
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.EAFNOSUPPORT):
                raise
            nexthops = {}
        routes: dict[_RouteKey, dict[int, tuple[Route, Message]]] = {}
        if nexthops:
            # Without nexthops at dump time, any route using one was added later, and
            # its notification is queued: the route dumps can be skipped.
            for family in (socket.AF_INET, socket.AF_INET6):
                async for reply in lookup.dump(
                    Message(RTM.GETROUTE, 0, RouteMessage(family=family)),
                    retry_interrupted=DUMP_RETRIES,
                ):
                    body = reply.body
                    if not isinstance(body, RouteMessage) or body.flags & RTM_F.CLONED:
                        continue
                    nh_id = body.nexthop_id
                    if nh_id is None:
                        continue
                    for index in _hop_indexes(body):
                        if index not in self._names:
                            await self._resolve(index)
                    routes.setdefault(_route_key(body), {})[nh_id] = (self._route(body), reply)
        # All dumps are in: swap (a cancellation above left the old state intact).
        self._usable = usable
        self._nexthops = nexthops
        self._groups_of = {}
        for group, info in nexthops.items():
            self._set_members(group, None, info.members)
        self._routes = routes
        self._users = {}
        for key, by_nh in routes.items():
            for nh_id in by_nh:
                self._users.setdefault(nh_id, {})[key] = None
        self._implied.clear()


def _groups(routes: bool, rules: bool, nexthops: bool, links: bool, track: bool) -> list[int]:
    groups: list[int] = []
    if routes:
        groups += [RTNLGRP.IPV4_ROUTE, RTNLGRP.IPV6_ROUTE]
    if rules:
        groups += [RTNLGRP.IPV4_RULE, RTNLGRP.IPV6_RULE]
    if nexthops or track:
        groups.append(RTNLGRP.NEXTHOP)
    # Device names of routes, and the device events that flush nexthops, come from here.
    if links or routes:
        groups.append(RTNLGRP.LINK)
    return [int(group) for group in groups]


def _open_socket(
    netns: str | os.PathLike[str] | None, rcvbuf: int, groups: Iterable[int], optional: int | None
) -> tuple[socket.socket, int]:
    """Open the socket and join ``groups``; failing to join ``optional`` is tolerated.

    Blocking: runs on a worker thread.  The socket belongs to the namespace it was
    created in (``netlink_create``), whichever thread reads it later.
    """
    sock, info = open_netlink_socket(netns, rcvbuf=rcvbuf, sndbuf=64 * 1024)
    try:
        for group in groups:
            try:
                sock.setsockopt(_SOL_NETLINK, _ADD_MEMBERSHIP, group)
            except OSError as exc:
                # Before Linux 5.3 there is no RTNLGRP_NEXTHOP (EINVAL: past the
                # family's ngroups), and no nexthop objects to track either.
                if group != optional or exc.errno != errno.EINVAL:
                    raise
    except BaseException:
        sock.close()
        raise
    return sock, info.rcvbuf


async def _open_stream(
    netns: str | os.PathLike[str] | None = None,
    *,
    routes: bool = True,
    rules: bool = True,
    nexthops: bool = True,
    links: bool = False,
    rcvbuf: int = DEFAULT_EVENT_RCVBUF,
    track_nexthops: bool = True,
) -> EventStream:
    """Open an :class:`EventStream`; the caller must :meth:`~EventStream.aclose` it.
    Arguments as for :func:`subscribe`."""
    if rcvbuf <= 0:
        raise ValueError(f"rcvbuf must be positive, got {rcvbuf}")
    track = track_nexthops and routes
    groups = _groups(routes, rules, nexthops, links, track)
    # The nexthop group is optional when only tracking needs it.
    optional = None if nexthops else int(RTNLGRP.NEXTHOP)
    # Shielded: a cancellation during the worker thread must not drop the socket it
    # returns (anyio waits for the thread, then would discard the result).
    with anyio.CancelScope(shield=True):
        sock, granted = await anyio.to_thread.run_sync(
            lambda: _open_socket(netns, rcvbuf, groups, optional)
        )
    lookup: NetlinkConnection | None = None
    try:
        if routes:
            lookup = await NetlinkConnection.open(netns, rcvbuf=_LOOKUP_RCVBUF)
        stream = EventStream(
            sock,
            granted,
            lookup,
            routes=routes,
            rules=rules,
            nexthops=nexthops,
            links=links,
            track=track,
        )
        if lookup is not None:
            await stream._seed()
    except BaseException:
        sock.close()
        if lookup is not None:
            with anyio.CancelScope(shield=True):
                await lookup.aclose()
        raise
    return stream


@contextlib.asynccontextmanager
async def subscribe(
    netns: str | os.PathLike[str] | None = None,
    *,
    routes: bool = True,
    rules: bool = True,
    nexthops: bool = True,
    links: bool = False,
    rcvbuf: int = DEFAULT_EVENT_RCVBUF,
    track_nexthops: bool = True,
) -> AsyncIterator[EventStream]:
    """Receive route, rule, nexthop and link notifications for an ``async with`` block.

    Args:
        netns: a namespace name under ``/run/netns`` or a path; None for the caller's
            own namespace.  The socket is made on a short-lived thread inside it.
        routes: IPv4 and IPv6 route events (RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE).
            Routes the kernel clones (RTM_F_CLONED) are skipped.
        rules: IPv4 and IPv6 policy-rule events.
        nexthops: nexthop-object events (RTNLGRP_NEXTHOP).
        links: device events.  (The device group is joined anyway when ``routes`` is
            set, for device names and nexthop flushes, but yields nothing then.)
        rcvbuf: receive buffer to ask for, in bytes (SO_RCVBUFFORCE when privileged,
            else SO_RCVBUF capped at ``net.core.rmem_max``; the kernel doubles it).
            Too small a buffer means more :class:`Resync` events under load.
        track_nexthops: report the routes the kernel removes silently with their
            nexthop object (see the module docstring for what is tracked and its cost).

    When the block is entered the groups are joined (and, with tracking, the state is
    dumped): every change after that is reported.  With ``routes`` a second, private
    netlink connection resolves device names and makes those dumps.

    Example::

        async with subscribe("blue", links=True) as events:
            async for event in events:
                if isinstance(event, RouteRemoved):
                    print("gone:", event.route)
                elif isinstance(event, Resync):
                    ...  # re-read the routes, then keep applying events
    """
    stream = await _open_stream(
        netns,
        routes=routes,
        rules=rules,
        nexthops=nexthops,
        links=links,
        rcvbuf=rcvbuf,
        track_nexthops=track_nexthops,
    )
    try:
        yield stream
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
