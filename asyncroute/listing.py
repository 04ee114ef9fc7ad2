"""Listings: routes the kernel filters for us, Cilium's ``ListRules``, and the helpers
built on them (``DeleteRouteTable``, ``NodeDeviceWithDefaultRoute``).

Route dumps are filtered by the kernel wherever it can (the socket sets
NETLINK_GET_STRICT_CHK; ``ip_valid_fib_dump_req`` in ``net/ipv4/fib_frontend.c``, used
by IPv4, IPv6 and the multicast families alike):

- table (rtm_table, or RTA_TABLE for ids ≥ 256), protocol (rtm_protocol), type
  (rtm_type) and output device (RTA_OIF) are filtered in the kernel.  0 in any of these
  means "no filter" there, so a filter on protocol 0 or type 0 is applied here only.
- rtm_scope, rtm_dst_len, rtm_src_len and rtm_tos must be 0 in a dump request (EINVAL
  "Invalid values in header for FIB dump request"): scope is filtered here.
- A dump for one family naming a table that does not exist fails with ENOENT ("ipv4:
  FIB table does not exist", "ipv6: FIB table does not exist"); an AF_UNSPEC dump skips
  it (``filter.dump_all_families``).  Both mean "no routes" here.
- An AF_UNSPEC dump runs every family's dump (``rtnl_dump_all``): IPv4, IPv6, and also
  RTNL_FAMILY_IPMR/IP6MR multicast routes, which are dropped here.
- Without RTM_F_CLONED in the request no exceptions (cached clones) are dumped; cloned
  routes are skipped here all the same.
- The device filter keeps a multipath route if any of its hops uses the device
  (``fib_info_nh_uses_dev``, ``fib6_info_uses_dev``); the re-check here does the same
  (Cilium's netlink compares RTA_OIF only).

Everything the kernel filters is checked again here, so results are right on kernels
that ignore a filter (before 4.20 none is applied).

Rule dumps cannot be filtered: ``fib_valid_dumprule_req`` (``net/core/fib_rules.c``)
rejects any non-zero header field or attribute in a strict dump request with EINVAL.
:func:`list_rules` filters in Python, as Cilium's ``ListRules`` does through
``netlink.RuleListFiltered``.
"""

from __future__ import annotations

import builtins
import errno
from collections.abc import AsyncGenerator

from ._links import device_index, device_name
from ._values import U32_MAX, IPNetwork, check_device, check_uint
from .connection import DUMP_RETRIES, NetlinkConnection
from .constants import AF_INET, AF_INET6, AF_UNSPEC, RT_TABLE, RTM, RTM_F
from .errors import AsyncrouteError, NotFoundError
from .messages import Address, Message, RouteMessage, RuleMessage
from .route import MAIN_TABLE, Route, _from_message
from .rule import _UNSET, Rule, _rule_from_message

__all__ = [
    "delete_route_table",
    "list_routes",
    "list_rules",
    "node_device_with_default_route",
]

_typeof = builtins.type  # `type` is a parameter of list_routes
_IP_FAMILIES = (AF_INET, AF_INET6)


# --------------------------------------------------------------------------- validation


def _route_family(family: int | None) -> int:
    """AF_INET, AF_INET6, or AF_UNSPEC for both (None or AF_UNSPEC)."""
    if family is None:
        return AF_UNSPEC
    if _typeof(family) is not int and not isinstance(family, int):
        raise TypeError(f"family must be an int or None, got {family!r}")
    if family not in (AF_UNSPEC, AF_INET, AF_INET6):
        raise ValueError(f"family must be AF_INET, AF_INET6 or None (both), not {family!r}")
    return int(family)


def _check_table(table: int) -> int:
    table = check_uint(table, "table", U32_MAX)
    if table == 0:
        # RT_TABLE_UNSPEC is "every table" in the kernel's dump filter, never a table.
        raise ValueError("table 0 is not a table; pass None for every table, 254 for main")
    return table


def _check_byte(value: int | None, field: str) -> int | None:
    return None if value is None else check_uint(value, field, 255)


# --------------------------------------------------------------------------- routes


async def _route_messages(
    conn: NetlinkConnection,
    family: int,
    *,
    table: int | None = None,
    protocol: int | None = None,
    oif: int | None = None,
    type: int | None = None,
    scope: int | None = None,
) -> list[RouteMessage]:
    """One dump of the routes matching every filter given (validated by the caller).

    ``family`` is AF_INET, AF_INET6 or AF_UNSPEC (both).  The kernel filters what it
    can; every filter is applied again here (see the module docstring).
    """
    query = RouteMessage(
        family=family,
        table=0 if table is None else (table if table < 256 else RT_TABLE.UNSPEC),
        protocol=protocol or 0,
        type=type or 0,
        oif=oif,
        table_id=table if table is not None and table >= 256 else None,
    )
    dump = conn.dump(Message(RTM.GETROUTE, 0, query), retry_interrupted=DUMP_RETRIES)
    try:
        # With retry_interrupted the replies arrive only once the dump completed
        # consistently, so collecting them costs no extra memory.
        replies = [reply async for reply in dump]
    except NotFoundError as exc:
        # inet_dump_fib / inet6_dump_fib: a one-family dump naming a table that was
        # never created fails with ENOENT.  No table, no routes.
        if table is not None and exc.errno == errno.ENOENT:
            return []
        raise
    families = _IP_FAMILIES if family == AF_UNSPEC else (family,)
    found = []
    for reply in replies:
        body = reply.body
        if (
            _typeof(body) is not RouteMessage
            or body.family not in families  # AF_UNSPEC: also IPMR/IP6MR routes
            or body.flags & RTM_F.CLONED
            or (table is not None and body.table_number != table)
            or (protocol is not None and body.protocol != protocol)
            or (type is not None and body.type != type)
            or (scope is not None and body.scope != scope)
            or (oif is not None and not _uses_device(body, oif))
        ):
            continue
        found.append(body)
    return found


def _uses_device(route: RouteMessage, oif: int) -> bool:
    """The kernel's device filter (``fib_info_nh_uses_dev``, ``fib6_info_uses_dev``): the
    route's RTA_OIF, or any of its multipath hops, is the device."""
    if route.oif == oif:
        return True
    return route.multipath is not None and any(hop.ifindex == oif for hop in route.multipath)


async def list_routes(
    conn: NetlinkConnection,
    family: int | None = None,
    *,
    table: int | None = None,
    protocol: int | None = None,
    device: str | None = None,
    type: int | None = None,
    scope: int | None = None,
) -> AsyncGenerator[Route, None]:
    """Yield the kernel's routes that match every filter given, as :class:`Route`.

    Args:
        family: AF_INET, AF_INET6, or None for both.
        table: a table id (254 is main); None for every table.  0 is a ValueError.
        protocol: rtm_protocol (3 is boot: what a route added with proto 0 reads back as).
        device: only routes through this device (RTA_OIF or a multipath hop).
        type: rtm_type (1 is unicast).  scope: rtm_scope.

    One dump, filtered by the kernel by table, protocol, type and device
    (NETLINK_GET_STRICT_CHK); scope is filtered here, the kernel refuses it.  Values are
    the kernel's, not Route's defaults: ``table`` reads 254 for main, ``proto`` 3 for
    boot, ``type`` 1 for unicast.  Cached clones are skipped.

    ``device`` keeps a multipath route if any hop uses the device, as the kernel's
    filter does (Cilium's netlink compares RTA_OIF only).  A route without an output
    device of its own (IPv4 blackhole, unreachable, prohibit; multipath, whose hops
    carry theirs; a route via a nexthop object) has ``device == ""``.  Device names are
    looked up once per ifindex per call; a route whose device disappeared meanwhile is
    skipped (the kernel removes such routes with the device).

    Raises ValueError for bad filters before any request, NotFoundError for an unknown
    ``device``, KernelError if the dump fails, DumpInterrupted if it kept being
    interrupted.
    """
    code = _route_family(family)
    table = None if table is None else _check_table(table)
    protocol = _check_byte(protocol, "protocol")
    type = _check_byte(type, "type")
    scope = _check_byte(scope, "scope")
    if device is not None:
        device = check_device(device)
        if not device:
            raise ValueError("device must be a device name or None, not ''")
    names: dict[int, str | None] = {}
    oif = None
    if device is not None:
        oif = await device_index(conn, device)
        names[oif] = device

    async def name_of(index: int) -> str | None:
        if index not in names:
            try:
                names[index] = await device_name(conn, index)
            except NotFoundError:
                names[index] = None  # gone since the dump, and its routes with it
        return names[index]

    found = await _route_messages(
        conn, code, table=table, protocol=protocol, oif=oif, type=type, scope=scope
    )
    for body in found:
        name = "" if body.oif is None else await name_of(body.oif)
        hops = {h.ifindex: await name_of(h.ifindex) for h in body.multipath or () if h.ifindex}
        if name is None or None in hops.values():
            continue  # a device that disappeared since the dump took the route with it
        yield _from_message(body, name, {i: n for i, n in hops.items() if n is not None})


# --------------------------------------------------------------------------- rules


def _selector_equal(
    address: Address | None, length: int, wanted: IPNetwork, wanted_address: Address | None
) -> bool:
    """netlink's ``ruleIPNetEqual``: no selector and any /0 are all "all"; otherwise the
    prefix length and the address (as the kernel holds it, host bits included: the
    filter's exact address) must be equal."""
    found_all = address is None or length == 0
    wanted_all = wanted.prefixlen == 0
    if found_all or wanted_all:
        return found_all and wanted_all
    return length == wanted.prefixlen and address == wanted_address


def _rule_matches(spec: Rule, found: RuleMessage) -> bool:
    """Cilium's ``ListRules`` filter: a field of ``spec`` takes part only if non-zero
    (or, for the fields beyond Cilium's, only if set: not its default)."""
    if spec.src is not None and not _selector_equal(
        found.src, found.src_len, spec.src, spec._src_address
    ):
        return False
    if spec.dst is not None and not _selector_equal(
        found.dst, found.dst_len, spec.dst, spec._dst_address
    ):
        return False
    if spec._extra != _UNSET and not _extra_matches(spec, _rule_from_message(found)):
        return False
    if spec.table and found.table_number != spec.table:
        return False
    # fib_nl_fill_rule omits FRA_PRIORITY for preference 0 and FRA_FWMARK for mark 0
    # (netlink reads both as 0), and FRA_FWMASK when mark and mask are both 0 (netlink
    # reads no mask, which equals no non-zero filter mask).
    if spec.priority and (found.priority or 0) != spec.priority:
        return False
    if spec.mark and (found.fwmark or 0) != spec.mark:
        return False
    return not spec.mask or found.fwmask == spec.mask


def _extra_matches(spec: Rule, found: Rule) -> bool:
    """Every field beyond Cilium's that ``spec`` sets is equal in ``found``."""
    return all(
        value in (unset, value_found)
        for value, unset, value_found in zip(spec._extra, _UNSET, found._extra, strict=True)
    )


async def list_rules(
    conn: NetlinkConnection, family: int, filter: Rule | None = None
) -> AsyncGenerator[Rule, None]:
    """Yield the family's policy rules that match ``filter``: Cilium's ``ListRules``.

    ``filter`` None yields every rule of ``family`` (AF_INET or AF_INET6), in the
    kernel's order (ascending preference; rules of equal preference in the order they
    were added).  Otherwise a field of ``filter`` takes part only if it is non-zero (or
    not None): ``src``/``dst`` equal prefix length and address (``0.0.0.0/0`` or
    ``::/0`` matches a rule without that selector, as in netlink's
    ``ruleIPNetEqual``; a selector's host bits count, so a filter names a rule with
    host bits by an ``ip_interface``), ``table``, ``priority``, ``mark`` and ``mask``
    equal.  Each field beyond Cilium's (``iif``, ``action``, ``sport``, …) takes part
    when it is set (not its default) and must then be equal; a filter cannot ask for
    the defaults themselves (``action`` TO_TBL, no ``iif``, …).  A filter of another
    family than ``family`` matches nothing.

    The kernel cannot filter rule dumps (``fib_valid_dumprule_req``), so this is one
    dump of the family and a filter here.  Yielded rules carry everything the kernel
    reports: preference (0 when the kernel omits it), mark, mask, table, the selectors
    (their exact addresses kept: :meth:`~asyncroute.Connection.delete_rules` of a
    listing removes exactly those rules), and every other selector and action, so that
    :meth:`~asyncroute.Connection.replace_rules` of a listing makes the same rules.
    """
    if family not in _IP_FAMILIES:
        raise ValueError(f"family must be AF_INET or AF_INET6, not {family!r}")
    query = Message(RTM.GETRULE, 0, RuleMessage(family=family))
    replies = [reply async for reply in conn.dump(query, retry_interrupted=DUMP_RETRIES)]
    for reply in replies:
        body = reply.body
        if _typeof(body) is not RuleMessage or body.family != family:
            continue
        if filter is None or _rule_matches(filter, body):
            yield _rule_from_message(body)


# --------------------------------------------------------------------------- helpers


def _delete_request(found: RouteMessage) -> Message:
    """RTM_DELROUTE for a dumped route, naming it by what the kernel compares.

    ``fib_table_delete`` (IPv4) matches tos, table, priority, type, scope, prefsrc,
    protocol and the nexthop (``fib_nh_match``: oif, gateway, nexthop id);
    ``ip6_route_del`` matches table, oif, gateway, metric and protocol.  Metrics are
    left out (IPv4 would compare them, cilium#41811), and so are multipath hops: without
    them IPv4 deletes the first route otherwise equal, IPv6 all the siblings.  A route
    via a nexthop object is named by its id alone: with it, RTA_OIF and RTA_GATEWAY
    (which ``nexthop_compat_mode`` adds to dumps) are EINVAL, "Nexthop specification
    and nexthop id are mutually exclusive".
    """
    table = found.table_number
    by_id = found.nexthop_id is not None
    return Message(
        RTM.DELROUTE,
        0,
        RouteMessage(
            family=found.family,
            dst_len=found.dst_len,
            tos=found.tos,
            table=table if table < 256 else RT_TABLE.UNSPEC,
            protocol=found.protocol,
            scope=found.scope,
            type=found.type,
            dst=found.dst,
            oif=None if by_id else found.oif,
            gateway=None if by_id else found.gateway,
            priority=found.priority,
            prefsrc=found.prefsrc,
            table_id=table,
            nexthop_id=found.nexthop_id,
        ),
    )


async def delete_route_table(conn: NetlinkConnection, table: int, family: int | None = None) -> int:
    """Delete every route of ``table``: Cilium's ``DeleteRouteTable``.  Returns how many
    routes were deleted.

    ``family`` is AF_INET, AF_INET6 or None (both).  One dump filtered by the kernel by
    table, then one RTM_DELROUTE per route as listed, through one batch.  Like Cilium it
    keeps going when a deletion fails; unlike Cilium a route that is already gone
    (NotFoundError) is not a failure.  A table that does not exist has no routes: 0.

    Raises ValueError for table 0 (which the kernel's filter reads as "every table")
    before any request; the dump's error if listing fails; otherwise, after every
    deletion was tried, the first deletion's error, with a note counting the failures.
    """
    table = _check_table(table)
    found = await _route_messages(conn, _route_family(family), table=table)
    if not found:
        return 0
    batch = conn.batch()
    try:
        for body in found:
            if batch.full:
                await batch.pause()
            batch.add(_delete_request(body))
        errors = await batch.finish()
    finally:
        batch.abandon()
    failures = [e for e in errors if e is not None and not isinstance(e, NotFoundError)]
    if failures:
        first = failures[0]
        others = "; ".join(str(e) for e in failures[1:4])
        first.add_note(
            f"{len(failures)} of {len(found)} deletions from table {table} failed"
            + (f"; also: {others}" if others else "")
        )
        raise first
    return sum(1 for e in errors if e is None)


def _describe(route: RouteMessage) -> str:
    gateway = f" via {route.gateway}" if route.gateway is not None else ""
    device = f" oif {route.oif}" if route.oif is not None else ""
    return f"{_from_message(route, '').prefix}{gateway}{device} metric {route.priority or 0}"


async def _default_route(conn: NetlinkConnection, family: int) -> RouteMessage:
    """Cilium's ``lookupDefaultRoute`` (2022+): the main table's route without a
    destination with the lowest metric; an error if there is none, or if two share it."""
    found = [
        route
        for route in await _route_messages(conn, family, table=MAIN_TABLE)
        if route.dst_len == 0
    ]
    if not found:
        raise NotFoundError(errno.ENOENT, message=f"Default route not found for family {family}")
    found.sort(key=lambda route: route.priority or 0)  # stable: kernel order among equals
    if len(found) > 1 and (found[0].priority or 0) == (found[1].priority or 0):
        raise AsyncrouteError(
            "Found multiple default routes with the same priority: "
            f"{_describe(found[0])} vs {_describe(found[1])}"
        )
    return found[0]


async def node_device_with_default_route(
    conn: NetlinkConnection, ipv4: bool = True, ipv6: bool = True
) -> str:
    """The name of the device the default route goes through: Cilium's
    ``NodeDeviceWithDefaultRoute``.

    For each enabled family, the main table's default route with the lowest metric
    (NotFoundError "Default route not found for family N" if there is none;
    AsyncrouteError if the two lowest share a metric).  With both families, an IPv4
    route through a device and an IPv6 route through another is an AsyncrouteError
    ("IPv4/IPv6 have different link indices").  NotFoundError if the chosen route has no
    device (blackhole, multipath).  ValueError if neither family is enabled.
    """
    if not ipv4 and not ipv6:
        raise ValueError("enable at least one of ipv4 and ipv6")
    index = 0
    if ipv4:
        index = (await _default_route(conn, AF_INET)).oif or 0
    if ipv6:
        index6 = (await _default_route(conn, AF_INET6)).oif or 0
        # Cilium compares only when the IPv4 route had a device.
        if index and index != index6:
            raise AsyncrouteError(
                f"IPv4/IPv6 have different link indices: ifindex {index} vs {index6}"
            )
        index = index6
    if not index:
        raise NotFoundError(errno.ENODEV, message="the default route has no output device")
    return await device_name(conn, index)
