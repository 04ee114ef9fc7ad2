"""The public connection: the engine plus Cilium's route API, and the casual functions.

``asyncroute.connect()`` gives a :class:`Connection`; its methods are Cilium's package
functions.  The module-level coroutines (``asyncroute.upsert(route)`` …) share one
connection per event loop for the current namespace.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from . import bulk as _bulk
from . import events as _events
from . import listing as _listing
from . import nexthop as _nexthop
from . import route as _route
from . import rule as _rule
from ._retry import RetryPolicy
from .connection import DEFAULT_TIMEOUT, NetlinkConnection
from .constants import AF_INET, AF_INET6
from .nexthop import NexthopGroup, NexthopObject
from .route import Route
from .rule import Rule

if TYPE_CHECKING:  # mtu reads the default connection from here: typing only
    from .mtu import Configuration

__all__ = [
    "Connection",
    "connect",
    "default_connection",
    "delete",
    "delete_rule",
    "delete_rule_ipv6",
    "lookup",
    "replace_rule",
    "replace_rule_ipv6",
    "upsert",
]

_DEFAULT_RETRY = RetryPolicy()


class Connection(NetlinkConnection):
    """An rtnetlink connection with Cilium's route API.

    Many calls may run at once from many tasks; they share the socket, and requests made
    in the same loop iteration go out in one ``send``.
    """

    async def upsert(
        self,
        route: Route,
        mtu_config: Configuration | None = None,
        *,
        retry: RetryPolicy = _DEFAULT_RETRY,
    ) -> bool:
        """Install ``route``, replacing a route with the same key (Cilium's ``Upsert``).

        With a nexthop, ``NH/32 dev X`` (scope link for IPv4; ``/128`` for IPv6) is
        replaced first in the route's table, then the prefix route is replaced
        (NLM_F_CREATE|NLM_F_REPLACE), retried per ``retry`` (default: 10 tries, 0.1 s
        apart, transient errors only).  If it finally fails, the nexthop route is
        deleted again — only if this call created it.  With ``mtu_config``, the MTU is
        the device MTU when the prefix contains ``route.local``, else the route MTU.

        If the call is cancelled or times out, nothing is rolled back: the kernel may
        have applied the prefix route (OutcomeUnknown, TimeoutError), so the nexthop
        route stays.

        Returns True (Cilium's "replaced" flag is always true on success).

        Raises:
            ValueError: the route has no device.
            NotFoundError: no device of that name.
            KernelError: the kernel refused the route.

        Example::

            await conn.upsert(Route("198.51.100.0/24", nexthop="192.0.2.1", device="v0"))
        """
        return await _route.upsert(self, route, mtu_config, retry=retry)

    async def upsert_many(
        self,
        routes: Iterable[Route] | AsyncIterable[Route],
        mtu_config: Configuration | None = None,
        *,
        retry: RetryPolicy = _DEFAULT_RETRY,
        return_exceptions: bool = True,
        progress: Callable[[int], object] | None = None,
        nexthop_routes: bool = True,
    ) -> list[bool | BaseException]:
        """Upsert many routes, streamed through the window without a task per route.

        ``routes`` (any iterable or async iterable) is consumed lazily: at most twice the
        window is held at once.  Each device name is resolved once, and each nexthop
        route once per call (then shared by every route via that nexthop).  Transient
        failures are retried as a group per ``retry``; a nexthop route this call created
        is removed again if no route using it succeeded.

        Returns one entry per route, in input order: True, or the exception for that
        route.  With ``return_exceptions=False`` the first failure is raised once every
        request has settled.  ``progress`` is called with the number of routes answered
        so far.  An item that is not a Route raises TypeError at once; requests already
        sent may have been applied (nothing is rolled back then).

        ``nexthop_routes=False`` writes the routes exactly as given, without Cilium's
        ``NH dev X scope link`` route before each route via NH: the way to write back a
        listing (``list_routes`` holds the nexthop routes it found, if any).

        Example::

            routes = (Route(f"198.18.{i >> 8}.{i & 255}/32", nexthop="192.0.2.1",
                            device="v0", table=100) for i in range(65536))
            results = await conn.upsert_many(routes)
        """
        return await _bulk.upsert_many(
            self,
            routes,
            mtu_config,
            retry=retry,
            return_exceptions=return_exceptions,
            progress=progress,
            nexthop_routes=nexthop_routes,
        )

    async def delete_many(
        self,
        routes: Iterable[Route] | AsyncIterable[Route],
        *,
        return_exceptions: bool = True,
        progress: Callable[[int], object] | None = None,
    ) -> list[bool | BaseException]:
        """Delete many routes, streamed like :meth:`upsert_many`; NotFoundError in the
        results for routes that were not there.

        Example::

            results = await conn.delete_many(routes)
        """
        return await _bulk.delete_many(
            self, routes, return_exceptions=return_exceptions, progress=progress
        )

    async def delete(self, route: Route) -> Route:
        """Delete ``route``, matched by table, prefix, metric and device (and scope for
        IPv4).

        The metric is part of the kernel's key: ``priority=20`` deletes the metric-20
        route and no other.  IPv6 ``priority=0`` means 1024, the metric the kernel gave
        a route upserted without one.  IPv4 ``priority=0`` cannot be sent as such: the
        kernel removes the lowest metric of the prefix on the device (the metric-0
        route when there is one).

        Returns the route the kernel removed, as it held it (NLM_F_ECHO): every field
        filled in, which may say more than ``route`` did.

        Raises NotFoundError if there is no such route (or device).

        Example::

            removed = await conn.delete(Route("198.51.100.0/24", device="v0"))
        """
        return await _route.delete(self, route)

    async def lookup(self, route: Route) -> Route:
        """The installed route matching ``route``'s table, prefix, metric, device and
        gateway (and scope for IPv4), with every field filled in (proto, table, type,
        priority too).

        The metric is matched exactly (IPv6 ``priority=0``: 1024, the kernel's default).

        In the main table one RTM_GETROUTE with RTM_F_FIB_MATCH usually answers; else a
        dump that the kernel filters by table and device.

        Raises NotFoundError (errno ESRCH, ``seq`` None) if there is none.

        Example::

            found = await conn.lookup(Route("198.51.100.0/24", nexthop="192.0.2.1", device="v0"))
        """
        return await _route.lookup(self, route)

    async def replace_rule(self, rule: Rule) -> bool:
        """Ensure the IPv4 ``rule`` exists (Cilium's ``ReplaceRule``): add it unless
        one matches.  Despite the name, nothing is ever replaced or removed.

        Adds it (NLM_F_CREATE|NLM_F_EXCL) unless a rule already matches on priority,
        src, dst, mark, mask (each only when set), table and every field beyond
        Cilium's (``iif``, ``action``, ``sport``, …: equal, set or not; a selector's
        exact address included).  Returns True if it was added, False if a matching
        rule was there.  IPv6 selectors are a ValueError.

        Example::

            await conn.replace_rule(Rule(priority=1, mark=0xF00, mask=0xF00, table=123))
        """
        return await _rule.replace_rule(self, rule, AF_INET)

    async def replace_rules(
        self, rules: Iterable[Rule], *, family: int | None = None
    ) -> list[bool | BaseException]:
        """Ensure many rules exist: one listing per family, then one batch of adds.

        The family of each rule is that of its selectors (IPv4 when it has none), or
        ``family`` (AF_INET/AF_INET6) for all.  Returns one entry per rule, in order:
        True, or the exception for that rule.  The rules of a :meth:`list_rules`
        listing make the same kernel rules (give ``family``: rules without selectors
        are IPv4 otherwise).

        Example::

            await conn.replace_rules(
                Rule(priority=100 + i, mark=i, mask=0xFF, table=100) for i in range(1, 200)
            )
        """
        return await _rule.replace_rules(self, rules, family)

    async def delete_rules(
        self, rules: Iterable[Rule], *, family: int | None = None
    ) -> list[bool | BaseException]:
        """Delete many rules through one batch; NotFoundError in place of absent ones.

        Each is named as :meth:`delete_rule` names it; the rules of a
        :meth:`list_rules` listing, deleted in the listing's order, remove exactly those
        rules (give ``family`` for rules without selectors, which are IPv4 otherwise).

        Example::

            await conn.delete_rules(rules)
        """
        return await _rule.delete_rules(self, rules, family)

    async def replace_rule_ipv6(self, rule: Rule) -> bool:
        """:meth:`replace_rule` for IPv6 rules; IPv4 selectors are a ValueError."""
        return await _rule.replace_rule(self, rule, AF_INET6)

    async def delete_rule(self, rule: Rule) -> Rule:
        """Delete the IPv4 ``rule`` (Cilium's ``DeleteRule``): the kernel removes the
        first rule matching its priority, selectors (their exact addresses), mark, mask,
        table and each field beyond Cilium's (``iif``, ``sport``, …), each only when set
        (the action only when not TO_TBL).  It does not compare ``invert`` or the goto
        target: of two rules of one priority that differ only in those, the first goes.
        Returns the rule it removed (NLM_F_ECHO).

        Raises NotFoundError if none matches.
        """
        return await _rule.delete_rule(self, rule, AF_INET)

    async def delete_rule_ipv6(self, rule: Rule) -> Rule:
        """:meth:`delete_rule` for IPv6 rules."""
        return await _rule.delete_rule(self, rule, AF_INET6)

    # ------------------------------------------------------------------ nexthop objects

    async def replace_nexthop(self, nexthop: NexthopObject | NexthopGroup) -> None:
        """Create or replace a kernel nexthop object or group (RTM_NEWNEXTHOP with
        NLM_F_CREATE|NLM_F_REPLACE); routes use it with ``Route(..., nexthop_id=ID)``.

        Example::

            await conn.replace_nexthop(NexthopObject(1, gateway="192.0.2.1", device="v0"))
            await conn.replace_nexthop(NexthopGroup(10, [(1, 3), 2]))
            await conn.upsert(Route("203.0.113.0/24", nexthop_id=10))
        """
        await _nexthop.replace_nexthop(self, nexthop)

    async def delete_nexthop(self, id: int) -> None:
        """Delete nexthop object ``id``.  The kernel also removes it from its groups and
        silently drops the routes that used it (see :doc:`events`).  NotFoundError if
        there is none.

        Example::

            await conn.delete_nexthop(10)
        """
        await _nexthop.delete_nexthop(self, id)

    async def get_nexthop(self, id: int) -> NexthopObject | NexthopGroup:
        """The nexthop object or group ``id``; NotFoundError if there is none.

        Example::

            group = await conn.get_nexthop(10)
        """
        return await _nexthop.get_nexthop(self, id)

    def list_nexthops(
        self, *, family: int | None = None, device: str | None = None, groups_only: bool = False
    ) -> AsyncGenerator[NexthopObject | NexthopGroup, None]:
        """Iterate over the nexthop objects and groups, filtered by the kernel (a family
        or a device leaves groups out; ``groups_only`` lists only groups).

        Example::

            ids = [nh.id async for nh in conn.list_nexthops(device="v0")]
        """
        return _nexthop.list_nexthops(self, family=family, device=device, groups_only=groups_only)

    # ------------------------------------------------------------------ events

    def subscribe(
        self,
        *,
        routes: bool = True,
        rules: bool = True,
        nexthops: bool = True,
        links: bool = False,
        rcvbuf: int = _events.DEFAULT_EVENT_RCVBUF,
        track_nexthops: bool = True,
    ) -> AbstractAsyncContextManager[_events.EventStream]:
        """An event stream of route, rule, nexthop and link changes in this
        connection's namespace, on a socket of its own (see
        :func:`asyncroute.events.subscribe`).  An overrun is a :class:`Resync` event,
        never a silent gap; a deleted nexthop object also yields :class:`RouteRemoved`
        for the routes the kernel silently dropped with it.

        Example::

            async with conn.subscribe(links=True) as events:
                async for event in events:
                    if isinstance(event, asyncroute.Resync):
                        ...  # list again
        """
        return _events.subscribe(
            self.netns,
            routes=routes,
            rules=rules,
            nexthops=nexthops,
            links=links,
            rcvbuf=rcvbuf,
            track_nexthops=track_nexthops,
        )

    # ------------------------------------------------------------------ listings

    def list_routes(
        self,
        family: int | None = None,
        *,
        table: int | None = None,
        protocol: int | None = None,
        device: str | None = None,
        type: int | None = None,
        scope: int | None = None,
    ) -> AsyncGenerator[Route, None]:
        """Iterate over the installed routes matching every filter given.

        One dump that the kernel filters by table, protocol, type and device
        (NETLINK_GET_STRICT_CHK); scope is filtered here.  Filter values are the
        kernel's (main is 254, boot 3, unicast 1).  Multipath routes come whole, with
        their :attr:`Route.nexthops`; a route via a nexthop object with its
        :attr:`Route.nexthop_id`.  See :func:`asyncroute.listing.list_routes`.

        Example::

            async for route in conn.list_routes(AF_INET, table=100, device="v0"):
                print(route.prefix, route.nexthop)
        """
        return _listing.list_routes(
            self, family, table=table, protocol=protocol, device=device, type=type, scope=scope
        )

    def list_rules(self, family: int, filter: Rule | None = None) -> AsyncGenerator[Rule, None]:
        """Iterate over the rules of ``family`` that match ``filter`` (Cilium's
        ``ListRules``: each non-zero field of the filter must match; the kernel cannot
        filter rule dumps, so this is done here).

        Example::

            async for rule in conn.list_rules(AF_INET, Rule(table=100)):
                print(rule)
        """
        return _listing.list_rules(self, family, filter)

    async def delete_route_table(self, table: int, family: int | None = None) -> int:
        """Delete every route of ``table`` (Cilium's ``DeleteRouteTable``); returns how
        many were deleted.  Keeps going after a failure and raises the first at the end.

        Example::

            await conn.delete_route_table(100, AF_INET)
        """
        return await _listing.delete_route_table(self, table, family)

    async def node_device_with_default_route(self, ipv4: bool = True, ipv6: bool = True) -> str:
        """The device of the main table's default route (lowest metric) for the enabled
        families (Cilium's ``NodeDeviceWithDefaultRoute``).  NotFoundError if none.

        Example::

            device = await conn.node_device_with_default_route(ipv6=False)
        """
        return await _listing.node_device_with_default_route(self, ipv4, ipv6)


@asynccontextmanager
async def connect(
    netns: str | os.PathLike[str] | None = None,
    *,
    rcvbuf: int | None = None,
    max_in_flight: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> AsyncIterator[Connection]:
    """Open a :class:`Connection` for the duration of an ``async with`` block.

    ``netns`` is a name under ``/run/netns`` or a path; None means the caller's own
    namespace.  The other arguments are those of :meth:`NetlinkConnection.open`.
    Leaving the block closes the connection: callers still waiting get
    ConnectionClosed.

    Example::

        async with asyncroute.connect("blue") as conn:
            await conn.upsert(Route("198.51.100.0/24", device="v0"))
    """
    conn = await Connection.open(netns, rcvbuf=rcvbuf, max_in_flight=max_in_flight, timeout=timeout)
    try:
        yield conn
    finally:
        await conn.aclose()


# One shared connection per event loop (asyncio loop or trio run).  It is closed when
# the loop finalizes its async generators (asyncio.Runner and trio.run both do, before
# the loop ends): a suspended "keeper" generator per connection closes it then.
_shared: dict[Any, tuple[Connection, AsyncGenerator[None, None]]] = {}


def _loop_key() -> Any:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        import trio

        return trio.lowlevel.current_trio_token()


async def _keeper(key: Any, conn: Connection) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if _shared.get(key, (None,))[0] is conn:
            del _shared[key]
        await conn.aclose()


async def default_connection() -> Connection:
    """The connection the module-level functions share in this event loop.

    Opened on first use, in the current namespace; closed when the event loop shuts
    down (``asyncio.run``/``anyio.run``/``trio.run`` finalize it with their async
    generators).
    """
    key = _loop_key()
    entry = _shared.get(key)
    if entry is not None:
        if not entry[0].closed:
            return entry[0]
        del _shared[key]
        await entry[1].aclose()  # finish the old keeper rather than leave it to the GC
    conn = await Connection.open()
    keeper = _keeper(key, conn)
    await keeper.asend(None)  # first iteration: the loop now tracks it for shutdown
    _shared[key] = (conn, keeper)
    return conn


async def upsert(route: Route, mtu_config: Configuration | None = None) -> bool:
    """:meth:`Connection.upsert` on the shared connection."""
    return await (await default_connection()).upsert(route, mtu_config)


async def delete(route: Route) -> Route:
    """:meth:`Connection.delete` on the shared connection."""
    return await (await default_connection()).delete(route)


async def lookup(route: Route) -> Route:
    """:meth:`Connection.lookup` on the shared connection."""
    return await (await default_connection()).lookup(route)


async def replace_rule(rule: Rule) -> bool:
    """:meth:`Connection.replace_rule` on the shared connection."""
    return await (await default_connection()).replace_rule(rule)


async def replace_rule_ipv6(rule: Rule) -> bool:
    """:meth:`Connection.replace_rule_ipv6` on the shared connection."""
    return await (await default_connection()).replace_rule_ipv6(rule)


async def delete_rule(rule: Rule) -> Rule:
    """:meth:`Connection.delete_rule` on the shared connection."""
    return await (await default_connection()).delete_rule(rule)


async def delete_rule_ipv6(rule: Rule) -> Rule:
    """:meth:`Connection.delete_rule_ipv6` on the shared connection."""
    return await (await default_connection()).delete_rule_ipv6(rule)
