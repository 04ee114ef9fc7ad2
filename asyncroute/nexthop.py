"""Nexthop objects (``ip nexthop``, Linux 5.3+): validated values and their operations.

A nexthop object lives in the kernel apart from the routes that use it: routes name it
by id (RTA_NH_ID, ``ip route add … nhid N``), and changing the object changes every such
route at once.  Two kinds exist:

* :class:`NexthopObject` — one nexthop: a gateway and/or a device, or a blackhole (or,
  for VXLAN, an ``fdb`` gateway).
* :class:`NexthopGroup` — a multipath group of other nexthop objects, each with a weight.

The operations take any :class:`~asyncroute.connection.NetlinkConnection` first:
:func:`replace_nexthop` (create or replace, NLM_F_CREATE|NLM_F_REPLACE, like the rest of
the library), :func:`delete_nexthop`, :func:`get_nexthop` and :func:`list_nexthops`.

Kernel behaviour they rely on (``net/ipv4/nexthop.c``; checked on 6.18 by
``tests/kernel/test_nexthop.py``):

* Requests carry ``nh_scope`` 0 and only user flags (RTNH_F_ONLINK): anything else is
  EINVAL ("Invalid values in ancillary header", ``rtm_to_nh_config``).  Replies report
  the scope the kernel chose (link for a gateway, host for a device-only nexthop) and
  state flags (dead, linkdown); neither is part of the values here.
* A nexthop cannot become a group or a group a nexthop by replace (EINVAL "Can not
  replace a nexthop with a nexthop group.", ``replace_nexthop``); nor can a multipath
  group become a resilient one.
* Deleting a nexthop (``remove_nexthop``) removes it from every group that holds it,
  deletes groups left empty, and deletes the routes that use it — or a group deleted
  with it — directly, *without* an RTM_DELROUTE notification (only RTM_DELNEXTHOP for
  the nexthop and the emptied groups, and RTM_NEWNEXTHOP for the shrunk groups).
* Replacing a nexthop keeps its groups and routes, which follow it at once, and announces
  again (RTM_NEWROUTE) every route that uses it, directly or through a group.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass

from ._links import device_index, device_name
from ._values import U32_MAX, IPAddress, check_device, check_uint, parse_address
from .connection import DUMP_RETRIES, NetlinkConnection
from .constants import AF_INET, AF_INET6, NLM_F, RTM, RTNH_F
from .errors import NotFoundError, ProtocolError
from .messages import Message, NexthopMessage

__all__ = [
    "MAX_GROUP_WEIGHT",
    "NexthopGroup",
    "NexthopObject",
    "delete_nexthop",
    "get_nexthop",
    "list_nexthops",
    "nexthop_from_message",
    "replace_nexthop",
]

#: The largest member weight of a :class:`NexthopGroup`.  ``struct nexthop_grp`` carries
#: ``weight - 1`` in a byte plus, since Linux 6.12, a high byte ``weight_high``; the
#: kernel keeps the weight in a u16, so 65536 is EINVAL ("Invalid value for weight").
#: Kernels before 6.12 take 1..256 and reject the rest with EINVAL (the high byte was a
#: reserved field that had to be 0); iproute2 before 6.12 shows only the low byte.
MAX_GROUP_WEIGHT = 65535

_ONLINK = int(RTNH_F.ONLINK)
_REPLACE = int(NLM_F.CREATE | NLM_F.REPLACE)
# NHA_GROUP_TYPE values (linux/nexthop.h).
_GROUP_MPATH = 0
_GROUP_RES = 1
# NHA_GROUP's nla_len is a u16: at most (65535 - 4) // 8 members of 8 bytes each.
_MAX_MEMBERS = (0xFFFF - 4) // 8


def _check_id(value: object, field: str = "id") -> int:
    # Id 0 asks the kernel to allocate one (``nh_find_unused_id``): a replace with it
    # would create a new object each time, so an explicit id is required.
    number = int(check_uint(value, field, U32_MAX))  # an IntEnum becomes a plain int
    if number == 0:
        raise ValueError(f"{field} must be in 1..{U32_MAX}, got 0")
    return number


def _check_flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{field} must be a bool, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, init=False)
class NexthopObject:
    """One nexthop object (``ip nexthop replace id ID via GW dev DEV``).

    Args:
        id: the object's id, 1..2**32-1; routes refer to it by this number.
        gateway: gateway address (string or ipaddress object); None for a device-only
            nexthop (``dev DEV``: the destination is on the link).
        device: output device name; required unless ``blackhole`` or ``fdb`` (the
            kernel: "Device attribute required for non-blackhole and non-fdb
            nexthops").
        blackhole: drop the packets (``blackhole``); excludes gateway, device, onlink
            and fdb.
        onlink: RTNH_F_ONLINK — use the gateway even if no subnet on the device holds
            it; needs a gateway and a device.
        protocol: ``nh_protocol``, who owns the object (0..255; 0 is RTPROT_UNSPEC, what
            ``ip nexthop`` sends without ``proto``).
        family: AF_INET or AF_INET6.  Inferred from the gateway, with which it must
            agree.  A nexthop without a gateway (device-only, blackhole, fdb) still has a
            family; it defaults to AF_INET, as with ``ip nexthop``.  IPv4 routes may use
            IPv6 nexthops (RFC 5549) but IPv6 routes refuse IPv4 ones (EINVAL "IPv6
            routes can not use an IPv4 nexthop"): pass AF_INET6 (``ip -6 nexthop``) for
            one that IPv6 routes will use.  An IPv6 blackhole uses ``lo``, which must be
            up.
        fdb: a VXLAN FDB nexthop (``fdb``): a gateway without a device, for bridge FDB
            entries only (routes cannot use it).

    Immutable, hashable, compared by value.  Bad input raises ValueError (TypeError for
    a wrong type) naming the field.
    """

    id: int
    gateway: IPAddress | None
    device: str
    blackhole: bool
    onlink: bool
    protocol: int
    family: int
    fdb: bool

    def __init__(
        self,
        id: int,
        gateway: str | IPAddress | None = None,
        device: str = "",
        blackhole: bool = False,
        onlink: bool = False,
        protocol: int = 0,
        family: int | None = None,
        fdb: bool = False,
    ) -> None:
        setter = object.__setattr__
        setter(self, "id", _check_id(id))
        address = None if gateway is None else parse_address(gateway, "gateway")
        setter(self, "gateway", address)
        setter(self, "device", check_device(device))
        setter(self, "blackhole", _check_flag(blackhole, "blackhole"))
        setter(self, "onlink", _check_flag(onlink, "onlink"))
        setter(self, "protocol", int(check_uint(protocol, "protocol", 255)))
        setter(self, "fdb", _check_flag(fdb, "fdb"))
        if family is None:
            family = AF_INET if address is None or address.version == 4 else AF_INET6
        elif family not in (AF_INET, AF_INET6) or isinstance(family, bool):
            raise ValueError(f"family must be AF_INET or AF_INET6, got {family!r}")
        elif address is not None and address.version != (4 if family == AF_INET else 6):
            version = 4 if family == AF_INET else 6
            raise ValueError(
                f"gateway: {address} is IPv{address.version} but family is IPv{version}"
            )
        setter(self, "family", int(family))
        # The kernel's own checks (rtm_to_nh_config), made before anything is sent.
        if blackhole:
            if address is not None:
                raise ValueError("gateway: a blackhole nexthop has no gateway")
            if device:
                raise ValueError("device: a blackhole nexthop has no device")
            if onlink:
                raise ValueError("onlink: not with a blackhole nexthop")
            if fdb:
                raise ValueError("fdb: not with a blackhole nexthop")
        elif fdb:
            if device:
                raise ValueError("device: an fdb nexthop has no device")
            if onlink:
                raise ValueError("onlink: not with an fdb nexthop")
        elif not device:
            raise ValueError("device: required unless blackhole or fdb")
        if onlink and address is None:
            raise ValueError("onlink: needs a gateway")

    def _message(self, oif: int | None) -> NexthopMessage:
        return NexthopMessage(
            family=self.family,
            protocol=self.protocol,
            flags=_ONLINK if self.onlink else 0,
            id=self.id,
            blackhole=self.blackhole,
            oif=oif,
            gateway=self.gateway,
            fdb=self.fdb,
        )


@dataclass(frozen=True, slots=True, init=False)
class NexthopGroup:
    """A group of nexthop objects (``ip nexthop replace id ID group A,W/B,W``).

    A route using the group spreads its flows over the members by weight (hash-threshold
    multipath, NHA_GROUP_TYPE 0).  Members are other nexthop objects, not groups; they
    may mix IPv4 and IPv6 gateways, but a blackhole may only be a group's sole member.

    Args:
        id: the group's id, 1..2**32-1.
        members: member ids, each alone (weight 1) or as an ``(id, weight)`` pair; weight
            1..:data:`MAX_GROUP_WEIGHT` (above 256 needs Linux 6.12).  At least one, no
            id twice (the kernel: "Nexthop id can not be used twice in a group"); the
            order is kept, as the kernel keeps it.
        protocol: ``nh_protocol`` (0..255).
        fdb: a group of fdb nexthops (``fdb``).
        resilient: a resilient group (NHA_GROUP_TYPE 1, ``type resilient``), as
            :func:`get_nexthop` reports one.  Only changing the members of an existing
            resilient group works: creating one needs a bucket count (NHA_RES_GROUP),
            which asyncroute cannot send yet, and the kernel refuses the request
            (EINVAL "Number of buckets not specified for nexthop group insertion").

    Immutable, hashable, compared by value; :attr:`members` is a tuple of ``(id, weight)``
    pairs.
    """

    id: int
    members: tuple[tuple[int, int], ...]
    protocol: int
    fdb: bool
    resilient: bool

    def __init__(
        self,
        id: int,
        members: Iterable[int | tuple[int, int]],
        protocol: int = 0,
        fdb: bool = False,
        resilient: bool = False,
    ) -> None:
        setter = object.__setattr__
        setter(self, "id", _check_id(id))
        if isinstance(members, str | bytes):
            raise TypeError(f"members must be ids or (id, weight) pairs, got {members!r}")
        pairs: list[tuple[int, int]] = []
        seen: set[int] = set()
        for member in members:
            if isinstance(member, tuple):
                if len(member) != 2:
                    raise ValueError(f"members: {member!r} is not an (id, weight) pair")
                member_id, weight = member
            else:
                member_id, weight = member, 1
            member_id = _check_id(member_id, "members: id")
            weight = int(check_uint(weight, f"members: weight of {member_id}", MAX_GROUP_WEIGHT))
            if weight == 0:
                raise ValueError(f"members: weight of {member_id} must be in 1..{MAX_GROUP_WEIGHT}")
            if member_id == self.id:
                raise ValueError(f"members: group {member_id} cannot contain itself")
            if member_id in seen:
                raise ValueError(f"members: id {member_id} appears twice")
            seen.add(member_id)
            pairs.append((member_id, weight))
        if not pairs:
            raise ValueError("members: a group needs at least one member")
        if len(pairs) > _MAX_MEMBERS:
            raise ValueError(f"members: {len(pairs)} is more than {_MAX_MEMBERS}")
        setter(self, "members", tuple(pairs))
        setter(self, "protocol", int(check_uint(protocol, "protocol", 255)))
        setter(self, "fdb", _check_flag(fdb, "fdb"))
        setter(self, "resilient", _check_flag(resilient, "resilient"))

    def _message(self) -> NexthopMessage:
        # A group's nh_family is AF_UNSPEC, and iproute2 sends NHA_GROUP_TYPE only for
        # ``type resilient``: the kernel defaults to multipath (NEXTHOP_GRP_TYPE_MPATH).
        return NexthopMessage(
            protocol=self.protocol,
            id=self.id,
            group=self.members,
            group_type=_GROUP_RES if self.resilient else None,
            fdb=self.fdb,
        )


async def replace_nexthop(conn: NetlinkConnection, nexthop: NexthopObject | NexthopGroup) -> None:
    """Create ``nexthop``, or replace the object with its id (NLM_F_CREATE|NLM_F_REPLACE).

    Groups and routes that use the id keep using it and follow the change at once.  The
    kernel refuses to turn a nexthop into a group or back, to add a group's member that
    does not exist, or to put a blackhole in a group of several (KernelError, EINVAL,
    with the kernel's message).  A device name that does not exist is NotFoundError.
    """
    if isinstance(nexthop, NexthopGroup):
        body = nexthop._message()
    elif isinstance(nexthop, NexthopObject):
        oif = await device_index(conn, nexthop.device) if nexthop.device else None
        body = nexthop._message(oif)
    else:
        raise TypeError(f"nexthop must be a NexthopObject or NexthopGroup, got {nexthop!r}")
    await conn.request(Message(RTM.NEWNEXTHOP, _REPLACE, body))


async def delete_nexthop(conn: NetlinkConnection, id: int) -> None:
    """Delete the nexthop object or group ``id``; NotFoundError if there is none.

    The kernel also removes it from every group holding it (deleting groups left empty)
    and deletes the routes that use it directly, without RTM_DELROUTE notifications.
    """
    await conn.request(Message(RTM.DELNEXTHOP, 0, NexthopMessage(id=_check_id(id))))


async def get_nexthop(conn: NetlinkConnection, id: int) -> NexthopObject | NexthopGroup:
    """The nexthop object or group ``id`` as the kernel holds it (RTM_GETNEXTHOP).

    Raises NotFoundError if there is none.  Encapsulation (NHA_ENCAP) and a resilient
    group's bucket settings are not represented.
    """
    reply = await conn.request(Message(RTM.GETNEXTHOP, 0, NexthopMessage(id=_check_id(id))))
    if reply is None or not isinstance(reply.body, NexthopMessage):
        raise ProtocolError(f"RTM_GETNEXTHOP for id {id}: no nexthop in the reply")
    try:
        return await _from_message(conn, reply.body, {})
    except _DeviceGone:
        # The device went away after the reply; the kernel deleted the nexthop with it.
        raise NotFoundError(errno.ENOENT, message=f"nexthop {id}: its device is gone") from None


async def list_nexthops(
    conn: NetlinkConnection,
    *,
    family: int | None = None,
    device: str | None = None,
    groups_only: bool = False,
) -> AsyncGenerator[NexthopObject | NexthopGroup, None]:
    """Yield the nexthop objects and groups, filtered by the kernel (one dump).

    Args:
        family: only nexthops of this family (AF_INET or AF_INET6; ``nh_family`` of the
            dump request).  The kernel leaves groups out of such a dump.
        device: only nexthops whose device is this one (NHA_OIF); groups left out too.
        groups_only: only groups (NHA_GROUPS).  Neither ``family`` nor ``device`` may
            be given with it: the kernel would answer with nothing.

    Each distinct device costs one RTM_GETLINK (its name).  A nexthop whose device
    disappears meanwhile is left out: the kernel deletes it with the device.
    """
    if family is not None and (family not in (AF_INET, AF_INET6) or isinstance(family, bool)):
        raise ValueError(f"family must be AF_INET, AF_INET6 or None, got {family!r}")
    _check_flag(groups_only, "groups_only")
    if groups_only and (family is not None or device is not None):
        raise ValueError("groups_only: a group has no family or device to filter by")
    names: dict[int, str] = {}
    oif = None
    if device is not None:
        name = check_device(device)
        if not name:
            raise ValueError("device: empty name")
        oif = await device_index(conn, name)
        names[oif] = name
    # The dump filters of rtm_dump_nexthop (nh_valid_dump_req, nh_dump_filtered): the
    # family in the header, NHA_OIF, NHA_GROUPS.  Scope, protocol and flags must be 0.
    query = NexthopMessage(family=family or 0, oif=oif, dump_groups=groups_only)
    dump = conn.dump(Message(RTM.GETNEXTHOP, 0, query), retry_interrupted=DUMP_RETRIES)
    # With retry_interrupted the dump has completed before the first reply is yielded,
    # so the RTM_GETLINK requests below never wait behind it.
    async with contextlib.aclosing(dump) as replies:
        async for reply in replies:
            if not isinstance(reply.body, NexthopMessage):
                continue
            try:
                value = await _from_message(conn, reply.body, names)
            except _DeviceGone:
                continue
            yield value


class _DeviceGone(Exception):
    """A dumped nexthop's device no longer exists (nor, then, does the nexthop)."""


def nexthop_from_message(body: NexthopMessage, device: str = "") -> NexthopObject | NexthopGroup:
    """The value a kernel nexthop message describes (``device``: the name of its
    NHA_OIF).  Raises ValueError for what the values cannot hold (no NHA_ID, an unknown
    group type, fields the kernel should never combine)."""
    if body.id is None:
        raise ValueError("nexthop message without NHA_ID")
    if body.group:
        if body.group_type not in (None, _GROUP_MPATH, _GROUP_RES):
            raise ValueError(
                f"nexthop {body.id}: unknown group type {body.group_type} (NHA_GROUP_TYPE)"
            )
        return NexthopGroup(
            body.id,
            body.group,
            protocol=body.protocol,
            fdb=body.fdb,
            resilient=body.group_type == _GROUP_RES,
        )
    return NexthopObject(
        body.id,
        body.gateway,
        device,
        blackhole=body.blackhole,
        onlink=bool(body.flags & _ONLINK),
        protocol=body.protocol,
        family=body.family,
        fdb=body.fdb,
    )


async def _from_message(
    conn: NetlinkConnection, body: NexthopMessage, names: dict[int, str]
) -> NexthopObject | NexthopGroup:
    """The value a kernel reply describes; ``names`` caches ifindex → device name."""
    device = ""
    if body.oif and not body.group:
        cached = names.get(body.oif)
        if cached is None:
            try:
                cached = names[body.oif] = await device_name(conn, body.oif)
            except NotFoundError as exc:
                raise _DeviceGone() from exc
        device = cached
    try:
        return nexthop_from_message(body, device)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"the kernel's nexthop reply is not valid: {exc}") from exc
