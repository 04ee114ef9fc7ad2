"""Encoders and decoders for the rtnetlink messages asyncroute speaks.

Layouts come from pyroute2's message classes (``rtmsg``, ``fibmsg``, ``ifinfmsg``,
``ifaddrmsg``, ``nlmsgerr``): the fixed-header formats, the attribute numbers and each
attribute's value type are read from them once, at import, and checked against what
this module knows how to pack.  Nothing here uses pyroute2's own marshalling; ``tests/unit`` proves
that the bytes equal pyroute2's ``encode()``.

Invariants:
- Encoding is one ``struct.pack`` per message, with the ``Struct`` for each message
  "shape" (which attributes are present) compiled once and cached.
- Attributes are written in ascending attribute number, then ``other`` in its order.
- Decoding never raises anything but :class:`DecodeError`.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pyroute2.netlink import nlmsgerr
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ._frame import HEADER, NLA_TYPE_MASK, align, iter_attributes, iter_frames
from .constants import NLM_F, NLMSG, RTAX, RTM
from .errors import DecodeError
from .messages import (
    Address,
    AddressMessage,
    Body,
    DoneMessage,
    ErrorMessage,
    LinkMessage,
    Message,
    MultipathHop,
    NexthopMessage,
    RawAttributes,
    RouteMessage,
    RuleMessage,
)

__all__ = [
    "decode_body",
    "decode_datagram",
    "decode_error_payload",
    "encode_body",
    "encode_message",
    "encode_messages",
    "pack_multipath",
    "pack_route_body",
]

# --------------------------------------------------------------------------- layouts


def _attribute_table(cls: Any) -> dict[str, tuple[int, str]]:
    """``{name: (number, pyroute2 type name)}`` from a pyroute2 ``nla_map``.

    pyroute2 numbers attributes by position unless the map gives explicit numbers
    (``fibmsg``); this mirrors ``nlmsg_base.compile_nla``.
    """
    table: dict[str, tuple[int, str]] = {}
    for position, item in enumerate(cls.nla_map):
        if isinstance(item[0], int):
            number, name, kind = item[0], item[1], item[2]
        else:
            number, name, kind = position, item[0], item[1]
        table[name] = (number, kind)
    return table


def _fields_format(cls: Any) -> str:
    return "".join(fmt for _, fmt in cls.fields)


def _expect(table: dict[str, tuple[int, str]], name: str, kinds: tuple[str, ...]) -> int:
    number, kind = table[name]
    if kind not in kinds:  # pragma: no cover - only if pyroute2 changes a definition
        raise ImportError(f"pyroute2 defines {name} as {kind!r}; asyncroute expects {kinds}")
    return number


_RTA = _attribute_table(rtmsg)
_RTAX = _attribute_table(rtmsg.metrics)
_FRA = _attribute_table(fibmsg)
_IFLA = _attribute_table(ifinfmsg)
_ERR = _attribute_table(nlmsgerr)
_IFA = _attribute_table(ifaddrmsg)

_ADDR = ("target", "ipaddr")
RTA_DST = _expect(_RTA, "RTA_DST", _ADDR)
RTA_SRC = _expect(_RTA, "RTA_SRC", _ADDR)
RTA_IIF = _expect(_RTA, "RTA_IIF", ("uint32",))
RTA_OIF = _expect(_RTA, "RTA_OIF", ("uint32",))
RTA_GATEWAY = _expect(_RTA, "RTA_GATEWAY", _ADDR)
RTA_PRIORITY = _expect(_RTA, "RTA_PRIORITY", ("uint32",))
RTA_PREFSRC = _expect(_RTA, "RTA_PREFSRC", _ADDR)
RTA_METRICS = _expect(_RTA, "RTA_METRICS", ("metrics",))
RTA_TABLE = _expect(_RTA, "RTA_TABLE", ("uint32",))
RTA_MULTIPATH = _expect(_RTA, "RTA_MULTIPATH", ("*get_nh",))
#: RTA_NH_ID (Linux 5.3, ``linux/rtnetlink.h``): pyroute2 0.9.7's rtmsg stops at 23.
RTA_NH_ID = 30
RTA_FLOW = _expect(_RTA, "RTA_FLOW", ("uint32",))
RTA_CACHEINFO = _expect(_RTA, "RTA_CACHEINFO", ("cacheinfo",))
RTA_VIA = _expect(_RTA, "RTA_VIA", ("rtvia",))
RTA_PREF = _expect(_RTA, "RTA_PREF", ("uint8",))
RTA_ENCAP_TYPE = _expect(_RTA, "RTA_ENCAP_TYPE", ("uint16",))
RTA_ENCAP = _expect(_RTA, "RTA_ENCAP", ("encap_info",))
RTA_EXPIRES = _expect(_RTA, "RTA_EXPIRES", ("hex",))
RTAX_MTU = _expect(_RTAX, "RTAX_MTU", ("uint32",))
RTAX_CC_ALGO = _expect(_RTAX, "RTAX_CC_ALGO", ("asciiz",))
assert (RTAX_MTU, RTAX_CC_ALGO) == (RTAX.MTU, RTAX.CC_ALGO), "RTAX numbers disagree"
#: NLA_F_NESTED: set on RTA_ENCAP as iproute2 sets it (the kernel accepts it either way).
NLA_F_NESTED = 0x8000
#: ``struct rta_cacheinfo``: clntref, lastuse, expires (signed), error, used, id, ts, tsage.
_CACHEINFO = struct.Struct("=IIiIIIII")

FRA_DST = _expect(_FRA, "FRA_DST", _ADDR)
FRA_SRC = _expect(_FRA, "FRA_SRC", _ADDR)
FRA_PRIORITY = _expect(_FRA, "FRA_PRIORITY", ("uint32",))
FRA_FWMARK = _expect(_FRA, "FRA_FWMARK", ("uint32",))
FRA_FWMASK = _expect(_FRA, "FRA_FWMASK", ("uint32",))
FRA_TABLE = _expect(_FRA, "FRA_TABLE", ("uint32",))
FRA_PROTOCOL = _expect(_FRA, "FRA_PROTOCOL", ("uint8",))
FRA_IIFNAME = _expect(_FRA, "FRA_IIFNAME", ("asciiz",))
FRA_GOTO = _expect(_FRA, "FRA_GOTO", ("uint32",))
FRA_FLOW = _expect(_FRA, "FRA_FLOW", ("uint32",))
FRA_TUN_ID = _expect(_FRA, "FRA_TUN_ID", ("be64",))
FRA_SUPPRESS_IFGROUP = _expect(_FRA, "FRA_SUPPRESS_IFGROUP", ("uint32",))
FRA_SUPPRESS_PREFIXLEN = _expect(_FRA, "FRA_SUPPRESS_PREFIXLEN", ("uint32",))
FRA_OIFNAME = _expect(_FRA, "FRA_OIFNAME", ("asciiz",))
FRA_L3MDEV = _expect(_FRA, "FRA_L3MDEV", ("uint8",))
FRA_UID_RANGE = _expect(_FRA, "FRA_UID_RANGE", ("uid_range",))
FRA_IP_PROTO = _expect(_FRA, "FRA_IP_PROTO", ("uint8",))
FRA_SPORT_RANGE = _expect(_FRA, "FRA_SPORT_RANGE", ("port_range",))
FRA_DPORT_RANGE = _expect(_FRA, "FRA_DPORT_RANGE", ("port_range",))
#: The rule's u32 attributes: (number, RuleMessage field), in the order they are sent.
_RULE_U32 = (
    (FRA_GOTO, "goto"),
    (FRA_FLOW, "flow"),
    (FRA_SUPPRESS_IFGROUP, "suppress_ifgroup"),
    (FRA_SUPPRESS_PREFIXLEN, "suppress_prefixlen"),
)
_RULE_U8 = ((FRA_L3MDEV, "l3mdev"), (FRA_IP_PROTO, "ip_proto"))

IFLA_IFNAME = _expect(_IFLA, "IFLA_IFNAME", ("asciiz",))
IFLA_MTU = _expect(_IFLA, "IFLA_MTU", ("uint32",))
IFLA_OPERSTATE = _expect(_IFLA, "IFLA_OPERSTATE", ("state",))  # a u8 in pyroute2

IFA_ADDRESS = _expect(_IFA, "IFA_ADDRESS", _ADDR)
IFA_LOCAL = _expect(_IFA, "IFA_LOCAL", _ADDR)
IFA_LABEL = _expect(_IFA, "IFA_LABEL", ("asciiz",))
IFA_BROADCAST = _expect(_IFA, "IFA_BROADCAST", _ADDR)
IFA_FLAGS = _expect(_IFA, "IFA_FLAGS", ("uint32",))
IFA_RT_PRIORITY = _expect(_IFA, "IFA_RT_PRIORITY", ("uint32",))
IFA_PROTO = _expect(_IFA, "IFA_PROTO", ("uint8",))


# ``struct nhmsg`` and its attributes (``linux/nexthop.h``), written out in pyroute2's
# declarative form because pyroute2 has no nexthop message: fields, then an nla_map
# with explicit numbers, read by the same helpers as pyroute2's classes.
class _nhmsg:
    fields = (("family", "B"), ("scope", "B"), ("protocol", "B"), ("resvd", "B"), ("flags", "I"))
    nla_map = (
        (0, "NHA_UNSPEC", "none"),
        (1, "NHA_ID", "uint32"),
        (2, "NHA_GROUP", "nh_grp"),  # array of struct nexthop_grp
        (3, "NHA_GROUP_TYPE", "uint16"),
        (4, "NHA_BLACKHOLE", "flag"),
        (5, "NHA_OIF", "uint32"),
        (6, "NHA_GATEWAY", "ipaddr"),
        (7, "NHA_ENCAP_TYPE", "uint16"),
        (8, "NHA_ENCAP", "nested"),
        (9, "NHA_GROUPS", "flag"),  # dump filter: groups only
        (10, "NHA_MASTER", "uint32"),  # dump filter: nexthops on devices of this master
        (11, "NHA_FDB", "flag"),
    )


_NHA = _attribute_table(_nhmsg)
NHA_ID = _expect(_NHA, "NHA_ID", ("uint32",))
NHA_GROUP = _expect(_NHA, "NHA_GROUP", ("nh_grp",))
NHA_GROUP_TYPE = _expect(_NHA, "NHA_GROUP_TYPE", ("uint16",))
NHA_BLACKHOLE = _expect(_NHA, "NHA_BLACKHOLE", ("flag",))
NHA_OIF = _expect(_NHA, "NHA_OIF", ("uint32",))
NHA_GATEWAY = _expect(_NHA, "NHA_GATEWAY", _ADDR)
NHA_GROUPS = _expect(_NHA, "NHA_GROUPS", ("flag",))
NHA_MASTER = _expect(_NHA, "NHA_MASTER", ("uint32",))
NHA_FDB = _expect(_NHA, "NHA_FDB", ("flag",))
#: ``struct nexthop_grp``: id, weight - 1 (low byte), weight_high (Linux 6.12), resvd.
_NEXTHOP_GRP = struct.Struct("=IBBH")
#: ``struct rtnexthop``: rtnh_len, rtnh_flags, rtnh_hops, rtnh_ifindex.
_RTNEXTHOP = struct.Struct("=HBBi")

NLMSGERR_ATTR_MSG = _expect(_ERR, "NLMSGERR_ATTR_MSG", ("asciiz",))
NLMSGERR_ATTR_OFFS = _expect(_ERR, "NLMSGERR_ATTR_OFFS", ("uint32",))

#: The u32 metrics: all but RTAX_CC_ALGO (a string); RTAX_FASTOPEN_NO_COOKIE (17) is
#: newer than pyroute2's table.  A nest holding anything else is kept raw.
_RTAX_U32 = frozenset(int(kind) for kind in RTAX if kind != RTAX.CC_ALGO)

_RTMSG_FORMAT = _fields_format(rtmsg)  # family .. type, flags
_FIBMSG_FORMAT = _fields_format(fibmsg)
_IFINFMSG_FORMAT = _fields_format(ifinfmsg)
_IFADDRMSG_FORMAT = _fields_format(ifaddrmsg)  # family, prefixlen, flags, scope, index
_NHMSG_FORMAT = _fields_format(_nhmsg)
_NLMSGERR_FORMAT = _fields_format(nlmsgerr)  # the int error

_RTMSG = struct.Struct("=" + _RTMSG_FORMAT)
_FIBMSG = struct.Struct("=" + _FIBMSG_FORMAT)
_IFINFMSG = struct.Struct("=" + _IFINFMSG_FORMAT)
_IFADDRMSG = struct.Struct("=" + _IFADDRMSG_FORMAT)
_NHMSG = struct.Struct("=" + _NHMSG_FORMAT)
_ERROR_CODE = struct.Struct("=" + _NLMSGERR_FORMAT)
_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")
_HEADER_FORMAT = HEADER.format.lstrip("=")

# --------------------------------------------------------------------------- encoding
#
# An encoder builds a list of struct format fragments and a list of values, then packs
# them with a Struct cached by its format string.  The header's length is the Struct's
# size, so it is never computed by hand.

_structs: dict[str, struct.Struct] = {}


def _struct_for(fmt: str) -> struct.Struct:
    compiled = _structs.get(fmt)
    if compiled is None:
        compiled = _structs[fmt] = struct.Struct("=" + fmt)
    return compiled


def _pack(fmt: list[str], values: list[Any]) -> bytes:
    compiled = _struct_for("".join(fmt))
    values[0] = compiled.size
    try:
        return compiled.pack(*values)
    except struct.error as exc:
        raise ValueError(f"cannot encode message: {exc}") from None


_ADDRESS_FRAGMENT = {4: "HH4s", 16: "HH16s"}
_U32_ATTR = "HHI"
_U8_ATTR = "HHB3x"


def _add_address(fmt: list[str], values: list[Any], number: int, address: Address) -> None:
    packed = address.packed
    fmt.append(_ADDRESS_FRAGMENT[len(packed)])
    values += (4 + len(packed), number, packed)


def _add_raw(fmt: list[str], values: list[Any], attributes: RawAttributes) -> None:
    for number, value in attributes:
        length = 4 + len(value)
        fmt.append(f"HH{len(value)}s{align(length) - length}x")
        values += (length, number, value)


def _add_string(fmt: list[str], values: list[Any], number: int, text: str) -> None:
    # NUL-terminated, like pyroute2's asciiz and the kernel's nla_put_string; an embedded
    # NUL would silently cut the string short on the other side.
    if "\0" in text:
        raise ValueError(f"string attribute {number} contains a NUL character: {text!r}")
    data = text.encode() + b"\0"
    _add_raw(fmt, values, ((number, data),))


def _encode_route(fmt: list[str], values: list[Any], m: RouteMessage) -> None:
    fmt.append(_RTMSG_FORMAT)
    values += (
        m.family, m.dst_len, m.src_len, m.tos, m.table, m.protocol, m.scope, m.type, m.flags
    )  # fmt: skip
    if m.dst is not None:
        _add_address(fmt, values, RTA_DST, m.dst)
    if m.src is not None:
        _add_address(fmt, values, RTA_SRC, m.src)
    if m.iif is not None:
        fmt.append(_U32_ATTR)
        values += (8, RTA_IIF, m.iif)
    if m.oif is not None:
        fmt.append(_U32_ATTR)
        values += (8, RTA_OIF, m.oif)
    if m.gateway is not None:
        _add_address(fmt, values, RTA_GATEWAY, m.gateway)
    if m.priority is not None:
        fmt.append(_U32_ATTR)
        values += (8, RTA_PRIORITY, m.priority)
    if m.prefsrc is not None:
        _add_address(fmt, values, RTA_PREFSRC, m.prefsrc)
    if m.congctl is not None:
        # A string in the nest: packed on its own, then wrapped like any raw attribute.
        nest_fmt: list[str] = ["I"]
        nest_values: list[Any] = [0]
        for kind, value in m.metrics:
            nest_fmt.append(_U32_ATTR)
            nest_values += (8, kind, value)
        _add_string(nest_fmt, nest_values, RTAX_CC_ALGO, m.congctl)
        _add_raw(fmt, values, ((RTA_METRICS, _pack(nest_fmt, nest_values)[4:]),))
    elif m.metrics:
        fmt.append("HH" + _U32_ATTR * len(m.metrics))
        values += (4 + 8 * len(m.metrics), RTA_METRICS)
        for kind, value in m.metrics:
            values += (8, kind, value)
    if m.multipath is not None:
        _add_raw(fmt, values, ((RTA_MULTIPATH, pack_multipath(m.multipath)),))
    if m.flow is not None:
        fmt.append(_U32_ATTR)
        values += (8, RTA_FLOW, m.flow)
    if m.cacheinfo is not None:
        _add_raw(fmt, values, ((RTA_CACHEINFO, _CACHEINFO.pack(*m.cacheinfo)),))
    if m.table_id is not None:
        fmt.append(_U32_ATTR)
        values += (8, RTA_TABLE, m.table_id)
    if m.via is not None:
        family, address = m.via
        _add_raw(fmt, values, ((RTA_VIA, _U16.pack(family) + address.packed),))
    if m.pref is not None:
        fmt.append(_U8_ATTR)
        values += (5, RTA_PREF, m.pref)
    if m.encap_type is not None:
        fmt.append("HHH2x")
        values += (6, RTA_ENCAP_TYPE, m.encap_type)
    if m.encap is not None:
        _add_raw(fmt, values, ((RTA_ENCAP | NLA_F_NESTED, m.encap),))
    if m.expires is not None:
        fmt.append(_U32_ATTR)
        values += (8, RTA_EXPIRES, m.expires)
    if m.nexthop_id is not None:
        fmt.append(_U32_ATTR)
        values += (8, RTA_NH_ID, m.nexthop_id)
    if m.other:
        _add_raw(fmt, values, m.other)


def pack_multipath(hops: Iterable[MultipathHop]) -> bytes:
    """The value of an RTA_MULTIPATH attribute: one ``struct rtnexthop`` per hop, each
    followed by its RTA_GATEWAY and then its other attributes (``rtnh_len`` covers both).
    """
    parts: list[bytes] = []
    for hop in hops:
        fmt: list[str] = ["HBBi"]
        values: list[Any] = [0, hop.flags, hop.hops, hop.ifindex]
        if hop.gateway is not None:
            _add_address(fmt, values, RTA_GATEWAY, hop.gateway)
        if hop.other:
            _add_raw(fmt, values, hop.other)
        parts.append(_pack(fmt, values))
    return b"".join(parts)


def _encode_nexthop(fmt: list[str], values: list[Any], m: NexthopMessage) -> None:
    fmt.append(_NHMSG_FORMAT)
    values += (m.family, m.scope, m.protocol, 0, m.flags)
    if m.id is not None:
        fmt.append(_U32_ATTR)
        values += (8, NHA_ID, m.id)
    if m.group:
        fmt.append("HH" + "IBBH" * len(m.group))
        values += (4 + _NEXTHOP_GRP.size * len(m.group), NHA_GROUP)
        for member, weight in m.group:
            if not 1 <= weight <= 65536:
                raise ValueError(f"nexthop group weight {weight} is outside 1..65536")
            values += (member, (weight - 1) & 0xFF, (weight - 1) >> 8, 0)
    if m.group_type is not None:
        fmt.append("HHH2x")
        values += (6, NHA_GROUP_TYPE, m.group_type)
    if m.blackhole:
        fmt.append("HH")
        values += (4, NHA_BLACKHOLE)
    if m.oif is not None:
        fmt.append(_U32_ATTR)
        values += (8, NHA_OIF, m.oif)
    if m.gateway is not None:
        _add_address(fmt, values, NHA_GATEWAY, m.gateway)
    if m.dump_groups:
        fmt.append("HH")
        values += (4, NHA_GROUPS)
    if m.dump_master is not None:
        fmt.append(_U32_ATTR)
        values += (8, NHA_MASTER, m.dump_master)
    if m.fdb:
        fmt.append("HH")
        values += (4, NHA_FDB)
    if m.other:
        _add_raw(fmt, values, m.other)


def _encode_rule(fmt: list[str], values: list[Any], m: RuleMessage) -> None:
    fmt.append(_FIBMSG_FORMAT)
    values += (
        m.family, m.dst_len, m.src_len, m.tos, m.table, m.protocol, m.scope, m.action, m.flags
    )  # fmt: skip
    if m.dst is not None:
        _add_address(fmt, values, FRA_DST, m.dst)
    if m.src is not None:
        _add_address(fmt, values, FRA_SRC, m.src)
    for number, value in (
        (FRA_PRIORITY, m.priority),
        (FRA_FWMARK, m.fwmark),
        (FRA_TABLE, m.table_id),
        (FRA_FWMASK, m.fwmask),
    ):
        if value is not None:
            fmt.append(_U32_ATTR)
            values += (8, number, value)
    if m.rule_protocol is not None:
        fmt.append(_U8_ATTR)
        values += (5, FRA_PROTOCOL, m.rule_protocol)
    if m.iifname is not None:
        _add_string(fmt, values, FRA_IIFNAME, m.iifname)
    if m.oifname is not None:
        _add_string(fmt, values, FRA_OIFNAME, m.oifname)
    for number, name in _RULE_U32:
        value = getattr(m, name)
        if value is not None:
            fmt.append(_U32_ATTR)
            values += (8, number, value)
    for number, name in _RULE_U8:
        value = getattr(m, name)
        if value is not None:
            fmt.append(_U8_ATTR)
            values += (5, number, value)
    if m.tun_id is not None:
        fmt.append("HHQ")  # FRA_TUN_ID is big-endian on the wire
        values += (12, FRA_TUN_ID, _byteswap64(m.tun_id))
    if m.uid_range is not None:
        fmt.append("HHII")
        values += (12, FRA_UID_RANGE, *m.uid_range)
    for number, ports in ((FRA_SPORT_RANGE, m.sport_range), (FRA_DPORT_RANGE, m.dport_range)):
        if ports is not None:
            fmt.append("HHHH")
            values += (8, number, *ports)
    if m.other:
        _add_raw(fmt, values, m.other)


def _byteswap64(value: int) -> int:
    # The message is packed in native order; a big-endian u64 is its byte-swapped twin.
    return int.from_bytes(value.to_bytes(8, "big"), sys.byteorder)


def _encode_link(fmt: list[str], values: list[Any], m: LinkMessage) -> None:
    fmt.append(_IFINFMSG_FORMAT)
    values += (m.family, m.link_type, m.index, m.flags, m.change)
    if m.name is not None:
        _add_string(fmt, values, IFLA_IFNAME, m.name)
    if m.mtu is not None:
        fmt.append(_U32_ATTR)
        values += (8, IFLA_MTU, m.mtu)
    if m.operstate is not None:
        fmt.append(_U8_ATTR)
        values += (5, IFLA_OPERSTATE, m.operstate)
    if m.other:
        _add_raw(fmt, values, m.other)


def _encode_address(fmt: list[str], values: list[Any], m: AddressMessage) -> None:
    fmt.append(_IFADDRMSG_FORMAT)
    values += (m.family, m.prefixlen, m.flags, m.scope, m.index)
    if m.address is not None:
        _add_address(fmt, values, IFA_ADDRESS, m.address)
    if m.local is not None:
        _add_address(fmt, values, IFA_LOCAL, m.local)
    if m.label is not None:
        _add_string(fmt, values, IFA_LABEL, m.label)
    if m.broadcast is not None:
        _add_address(fmt, values, IFA_BROADCAST, m.broadcast)
    if m.extended_flags is not None:
        fmt.append(_U32_ATTR)
        values += (8, IFA_FLAGS, m.extended_flags)
    if m.rt_priority is not None:
        fmt.append(_U32_ATTR)
        values += (8, IFA_RT_PRIORITY, m.rt_priority)
    if m.protocol is not None:
        fmt.append(_U8_ATTR)
        values += (5, IFA_PROTO, m.protocol)
    if m.other:
        _add_raw(fmt, values, m.other)


def _add_ext_ack(
    fmt: list[str], values: list[Any], message: str | None, offset: int | None
) -> None:
    if message is not None:
        _add_string(fmt, values, NLMSGERR_ATTR_MSG, message)
    if offset is not None:
        fmt.append(_U32_ATTR)
        values += (8, NLMSGERR_ATTR_OFFS, offset)


def _encode_error(fmt: list[str], values: list[Any], m: ErrorMessage) -> None:
    fmt.append(_NLMSGERR_FORMAT + _HEADER_FORMAT)
    values += (m.error, *m.request_header)
    if m.request_payload:
        _add_raw_bytes(fmt, values, m.request_payload)
    _add_ext_ack(fmt, values, m.message, m.offset)
    if m.other:
        _add_raw(fmt, values, m.other)


def _encode_done(fmt: list[str], values: list[Any], m: DoneMessage) -> None:
    fmt.append(_NLMSGERR_FORMAT)
    values.append(m.error)
    _add_ext_ack(fmt, values, m.message, m.offset)
    if m.other:
        _add_raw(fmt, values, m.other)


def _add_raw_bytes(fmt: list[str], values: list[Any], data: bytes) -> None:
    fmt.append(f"{len(data)}s{align(len(data)) - len(data)}x")
    values.append(data)


_RAW_FRAGMENTS: dict[int, str] = {}


def _encode_bytes(fmt: list[str], values: list[Any], body: bytes) -> None:
    if body:
        size = len(body)
        fragment = _RAW_FRAGMENTS.get(size)
        if fragment is None:
            fragment = _RAW_FRAGMENTS[size] = f"{size}s{align(size) - size}x"
        fmt.append(fragment)
        values.append(body)


# Shape of a route body → its compiled Struct.  A shape says which optional attributes
# are present and how long the addresses are.
_route_bodies: dict[tuple[int, int, bool, int, bool, bool], struct.Struct] = {}


def _route_body_struct(shape: tuple[int, int, bool, int, bool, bool]) -> struct.Struct:
    dst, gateway, priority, prefsrc, mtu, table_id = shape
    fmt = [_RTMSG_FORMAT, _ADDRESS_FRAGMENT[dst], _U32_ATTR]
    if gateway:
        fmt.append(_ADDRESS_FRAGMENT[gateway])
    if priority:
        fmt.append(_U32_ATTR)
    if prefsrc:
        fmt.append(_ADDRESS_FRAGMENT[prefsrc])
    if mtu:
        fmt.append("HH" + _U32_ATTR)
    if table_id:
        fmt.append(_U32_ATTR)
    compiled = _route_bodies[shape] = struct.Struct("=" + "".join(fmt))
    return compiled


def pack_route_body(
    family: int,
    dst_len: int,
    table: int,
    protocol: int,
    scope: int,
    rtype: int,
    dst: bytes,
    oif: int,
    gateway: bytes | None = None,
    priority: int | None = None,
    prefsrc: bytes | None = None,
    mtu: int = 0,
    table_id: int | None = None,
) -> bytes:
    """The body (rtmsg + attributes) of a route change, packed in one call.

    The hot path of route programming.  It writes exactly what :func:`encode_message`
    writes for the equivalent :class:`RouteMessage` (RTA_DST, RTA_OIF, RTA_GATEWAY,
    RTA_PRIORITY, RTA_PREFSRC, RTA_METRICS{RTAX_MTU}, RTA_TABLE, in that order, each only
    when given) without building one; ``tests/unit`` checks the two agree.
    """
    shape = (
        len(dst),
        0 if gateway is None else len(gateway),
        priority is not None,
        0 if prefsrc is None else len(prefsrc),
        mtu != 0,
        table_id is not None,
    )
    compiled = _route_bodies.get(shape) or _route_body_struct(shape)
    values: list[Any] = [family, dst_len, 0, 0, table, protocol, scope, rtype, 0]
    values += (4 + len(dst), RTA_DST, dst, 8, RTA_OIF, oif)
    if gateway is not None:
        values += (4 + len(gateway), RTA_GATEWAY, gateway)
    if priority is not None:
        values += (8, RTA_PRIORITY, priority)
    if prefsrc is not None:
        values += (4 + len(prefsrc), RTA_PREFSRC, prefsrc)
    if mtu:
        values += (12, RTA_METRICS, 8, RTAX_MTU, mtu)
    if table_id is not None:
        values += (8, RTA_TABLE, table_id)
    try:
        return compiled.pack(*values)
    except struct.error as exc:
        raise ValueError(f"cannot encode route: {exc}") from None


def pack_rule_body(
    family: int,
    action: int,
    table: int,
    priority: int,
    fwmark: int,
    fwmask: int,
    src: bytes | None = None,
    src_len: int = 0,
    dst: bytes | None = None,
    dst_len: int = 0,
) -> bytes:
    """The body of a Cilium-shaped rule change (fib_rule_hdr, then FRA_DST, FRA_SRC when
    given, FRA_PRIORITY, FRA_FWMARK, FRA_TABLE for tables ≥ 256, FRA_FWMASK): what
    :func:`encode_message` writes for the equivalent :class:`RuleMessage`, without
    building one (``tests/unit`` checks the two agree).  The hot path of
    ``replace_rules`` and ``delete_rules``."""
    fmt = [_FIBMSG_FORMAT]
    values: list[Any] = [
        family, dst_len, src_len, 0, table if table < 256 else 0, 0, 0, action, 0,
    ]  # fmt: skip
    if dst is not None:
        fmt.append(_ADDRESS_FRAGMENT[len(dst)])
        values += (4 + len(dst), FRA_DST, dst)
    if src is not None:
        fmt.append(_ADDRESS_FRAGMENT[len(src)])
        values += (4 + len(src), FRA_SRC, src)
    fmt.append(_U32_ATTR * 2)
    values += (8, FRA_PRIORITY, priority, 8, FRA_FWMARK, fwmark)
    if table >= 256:
        fmt.append(_U32_ATTR)
        values += (8, FRA_TABLE, table)
    fmt.append(_U32_ATTR)
    values += (8, FRA_FWMASK, fwmask)
    try:
        return _struct_for("".join(fmt)).pack(*values)
    except struct.error as exc:
        raise ValueError(f"cannot encode rule: {exc}") from None


_BODY_ENCODERS: dict[type, Callable[[list[str], list[Any], Any], None]] = {
    RouteMessage: _encode_route,
    RuleMessage: _encode_rule,
    LinkMessage: _encode_link,
    AddressMessage: _encode_address,
    NexthopMessage: _encode_nexthop,
    ErrorMessage: _encode_error,
    DoneMessage: _encode_done,
    bytes: _encode_bytes,
}


def encode_message(
    message: Message, seq: int | None = None, port_id: int | None = None, extra_flags: int = 0
) -> bytes:
    """Encode ``message`` into one netlink frame.

    ``seq``/``port_id`` override the message's own fields (the core assigns seqs);
    ``extra_flags`` are OR-ed into its flags.  Raises ValueError when a field does not
    fit its wire type.
    """
    fmt = [_HEADER_FORMAT]
    values: list[Any] = [
        0,
        message.type,
        message.flags | extra_flags,
        message.seq if seq is None else seq,
        message.port_id if port_id is None else port_id,
    ]
    body = message.body
    try:
        encoder = _BODY_ENCODERS[type(body)]
    except KeyError:
        raise TypeError(f"cannot encode a message body of type {type(body).__name__}") from None
    encoder(fmt, values, body)
    return _pack(fmt, values)


def encode_body(body: Body) -> bytes:
    """The payload :func:`encode_message` writes after the netlink header."""
    return encode_message(Message(0, 0, body))[HEADER.size :]


def encode_messages(messages: Iterable[Message]) -> bytes:
    """Concatenate encoded frames (each already 4-byte aligned) into one datagram."""
    return b"".join(encode_message(m) for m in messages)


# --------------------------------------------------------------------------- decoding


def _address(value: memoryview, what: str) -> Address:
    if len(value) == 4:
        return IPv4Address(bytes(value))
    if len(value) == 16:
        return IPv6Address(bytes(value))
    raise DecodeError(f"{what}: address of {len(value)} bytes")


def _u32(value: memoryview, what: str) -> int:
    if len(value) != 4:
        raise DecodeError(f"{what}: expected 4 bytes, got {len(value)}")
    result: int = _U32.unpack(value)[0]
    return result


def _u8(value: memoryview, what: str) -> int:
    if len(value) != 1:
        raise DecodeError(f"{what}: expected 1 byte, got {len(value)}")
    return value[0]


def _string(value: memoryview, what: str) -> str:
    data = bytes(value)
    end = data.find(b"\0")
    if end < 0:
        raise DecodeError(f"{what}: string without NUL terminator")
    return data[:end].decode("utf-8", "replace")


def _fixed(payload: memoryview, layout: struct.Struct, what: str) -> tuple[Any, ...]:
    if len(payload) < layout.size:
        raise DecodeError(f"{what}: {len(payload)} bytes, header needs {layout.size}")
    return layout.unpack_from(payload)


def _decode_route(payload: memoryview) -> RouteMessage:
    header = _fixed(payload, _RTMSG, "rtmsg")
    fields: dict[str, Any] = {}
    other: list[tuple[int, bytes]] = []
    for nla_type, value in iter_attributes(payload, _RTMSG.size):
        number = nla_type & NLA_TYPE_MASK
        if number == RTA_DST:
            fields["dst"] = _address(value, "RTA_DST")
        elif number == RTA_GATEWAY:
            fields["gateway"] = _address(value, "RTA_GATEWAY")
        elif number == RTA_OIF:
            fields["oif"] = _u32(value, "RTA_OIF")
        elif number == RTA_TABLE:
            fields["table_id"] = _u32(value, "RTA_TABLE")
        elif number == RTA_PRIORITY:
            fields["priority"] = _u32(value, "RTA_PRIORITY")
        elif number == RTA_PREFSRC:
            fields["prefsrc"] = _address(value, "RTA_PREFSRC")
        elif number == RTA_SRC:
            fields["src"] = _address(value, "RTA_SRC")
        elif number == RTA_IIF:
            fields["iif"] = _u32(value, "RTA_IIF")
        elif number == RTA_METRICS and _known_metrics(value):
            metrics = []
            for kind, v in iter_attributes(value):
                if kind & NLA_TYPE_MASK == RTAX_CC_ALGO:
                    fields["congctl"] = _string(v, "RTAX_CC_ALGO")
                else:
                    metrics.append((kind & NLA_TYPE_MASK, _u32(v, "RTA_METRICS")))
            fields["metrics"] = tuple(metrics)
        elif number == RTA_MULTIPATH:
            fields["multipath"] = _decode_multipath(value)
        elif number == RTA_NH_ID:
            fields["nexthop_id"] = _u32(value, "RTA_NH_ID")
        elif number == RTA_FLOW:
            fields["flow"] = _u32(value, "RTA_FLOW")
        elif number == RTA_CACHEINFO and len(value) == _CACHEINFO.size:
            fields["cacheinfo"] = _CACHEINFO.unpack_from(value)
        elif number == RTA_VIA and len(value) in (6, 18):
            fields["via"] = (_U16.unpack_from(value)[0], _address(value[2:], "RTA_VIA"))
        elif number == RTA_PREF:
            fields["pref"] = _u8(value, "RTA_PREF")
        elif number == RTA_ENCAP_TYPE and len(value) >= 2:
            fields["encap_type"] = _U16.unpack_from(value)[0]
        elif number == RTA_ENCAP:
            fields["encap"] = bytes(value)
        elif number == RTA_EXPIRES:
            fields["expires"] = _u32(value, "RTA_EXPIRES")
        else:
            other.append((nla_type, bytes(value)))
    fields["other"] = tuple(other)
    return RouteMessage(*header, **fields)


def _decode_multipath(value: memoryview) -> tuple[MultipathHop, ...]:
    hops: list[MultipathHop] = []
    offset = 0
    end = len(value)
    while offset < end:
        if end - offset < _RTNEXTHOP.size:
            raise DecodeError(f"RTA_MULTIPATH: truncated rtnexthop at byte {offset}")
        length, flags, count, ifindex = _RTNEXTHOP.unpack_from(value, offset)
        if length < _RTNEXTHOP.size or offset + length > end:
            raise DecodeError(f"RTA_MULTIPATH: rtnh_len {length} at byte {offset} does not fit")
        gateway: Address | None = None
        other: list[tuple[int, bytes]] = []
        for nla_type, attribute in iter_attributes(
            value[offset + _RTNEXTHOP.size : offset + length]
        ):
            if nla_type & NLA_TYPE_MASK == RTA_GATEWAY:
                gateway = _address(attribute, "RTA_MULTIPATH gateway")
            else:
                other.append((nla_type, bytes(attribute)))
        hops.append(MultipathHop(ifindex, gateway, count, flags, tuple(other)))
        offset += align(length)
    return tuple(hops)


def _decode_nexthop(payload: memoryview) -> NexthopMessage:
    family, scope, protocol, _, flags = _fixed(payload, _NHMSG, "nhmsg")
    fields: dict[str, Any] = {}
    other: list[tuple[int, bytes]] = []
    for nla_type, value in iter_attributes(payload, _NHMSG.size):
        number = nla_type & NLA_TYPE_MASK
        if number == NHA_ID:
            fields["id"] = _u32(value, "NHA_ID")
        elif number == NHA_GROUP:
            if len(value) % _NEXTHOP_GRP.size:
                raise DecodeError(f"NHA_GROUP: {len(value)} bytes is not a whole number of members")
            fields["group"] = tuple(
                (member, (high << 8 | low) + 1)
                for member, low, high, _ in _NEXTHOP_GRP.iter_unpack(value)
            )
        elif number == NHA_GROUP_TYPE:
            if len(value) < 2:
                raise DecodeError(f"NHA_GROUP_TYPE: {len(value)} bytes")
            fields["group_type"] = _U16.unpack_from(value)[0]
        elif number == NHA_BLACKHOLE:
            fields["blackhole"] = True
        elif number == NHA_OIF:
            fields["oif"] = _u32(value, "NHA_OIF")
        elif number == NHA_GATEWAY:
            fields["gateway"] = _address(value, "NHA_GATEWAY")
        elif number == NHA_GROUPS:
            fields["dump_groups"] = True
        elif number == NHA_MASTER:
            fields["dump_master"] = _u32(value, "NHA_MASTER")
        elif number == NHA_FDB:
            fields["fdb"] = True
        else:
            other.append((nla_type, bytes(value)))
    return NexthopMessage(family, scope, protocol, flags, other=tuple(other), **fields)


def _known_metrics(value: memoryview) -> bool:
    # A nest with a metric this codec does not know (or a second RTAX_CC_ALGO) stays raw
    # in ``other``, so that re-encoding it gives the same bytes.
    algos = 0
    for kind, v in iter_attributes(value):
        number = kind & NLA_TYPE_MASK
        if number == RTAX_CC_ALGO:
            algos += 1
        elif number not in _RTAX_U32 or len(v) != 4:
            return False
    return algos <= 1


def _decode_rule(payload: memoryview) -> RuleMessage:
    header = _fixed(payload, _FIBMSG, "fib_rule_hdr")
    fields: dict[str, Any] = {}
    other: list[tuple[int, bytes]] = []
    for nla_type, value in iter_attributes(payload, _FIBMSG.size):
        number = nla_type & NLA_TYPE_MASK
        if number == FRA_DST:
            fields["dst"] = _address(value, "FRA_DST")
        elif number == FRA_SRC:
            fields["src"] = _address(value, "FRA_SRC")
        elif number == FRA_PRIORITY:
            fields["priority"] = _u32(value, "FRA_PRIORITY")
        elif number == FRA_FWMARK:
            fields["fwmark"] = _u32(value, "FRA_FWMARK")
        elif number == FRA_FWMASK:
            fields["fwmask"] = _u32(value, "FRA_FWMASK")
        elif number == FRA_TABLE:
            fields["table_id"] = _u32(value, "FRA_TABLE")
        elif number == FRA_PROTOCOL:
            fields["rule_protocol"] = _u8(value, "FRA_PROTOCOL")
        elif number == FRA_IIFNAME:
            fields["iifname"] = _string(value, "FRA_IIFNAME")
        elif number == FRA_OIFNAME:
            fields["oifname"] = _string(value, "FRA_OIFNAME")
        elif number in _RULE_U32_FIELDS:
            fields[_RULE_U32_FIELDS[number]] = _u32(value, "rule attribute")
        elif number in _RULE_U8_FIELDS:
            fields[_RULE_U8_FIELDS[number]] = _u8(value, "rule attribute")
        elif number == FRA_TUN_ID:
            fields["tun_id"] = int.from_bytes(_sized(value, 8, "FRA_TUN_ID"), "big")
        elif number == FRA_UID_RANGE:
            fields["uid_range"] = _pair(value, "=II", "FRA_UID_RANGE")
        elif number == FRA_SPORT_RANGE:
            fields["sport_range"] = _pair(value, "=HH", "FRA_SPORT_RANGE")
        elif number == FRA_DPORT_RANGE:
            fields["dport_range"] = _pair(value, "=HH", "FRA_DPORT_RANGE")
        else:
            other.append((nla_type, bytes(value)))
    fields["other"] = tuple(other)
    return RuleMessage(*header, **fields)


_RULE_U32_FIELDS = dict(_RULE_U32)
_RULE_U8_FIELDS = dict(_RULE_U8)


def _sized(value: memoryview, size: int, what: str) -> bytes:
    if len(value) != size:
        raise DecodeError(f"{what}: {len(value)} bytes, expected {size}")
    return bytes(value)


def _pair(value: memoryview, layout: str, what: str) -> tuple[int, int]:
    first, second = struct.unpack(layout, _sized(value, struct.calcsize(layout), what))
    return first, second


def _decode_link(payload: memoryview) -> LinkMessage:
    header = _fixed(payload, _IFINFMSG, "ifinfomsg")
    fields: dict[str, Any] = {}
    other: list[tuple[int, bytes]] = []
    for nla_type, value in iter_attributes(payload, _IFINFMSG.size):
        number = nla_type & NLA_TYPE_MASK
        if number == IFLA_IFNAME:
            fields["name"] = _string(value, "IFLA_IFNAME")
        elif number == IFLA_MTU:
            fields["mtu"] = _u32(value, "IFLA_MTU")
        elif number == IFLA_OPERSTATE:
            fields["operstate"] = _u8(value, "IFLA_OPERSTATE")
        else:
            other.append((nla_type, bytes(value)))
    fields["other"] = tuple(other)
    return LinkMessage(*header, **fields)


def _decode_address(payload: memoryview) -> AddressMessage:
    header = _fixed(payload, _IFADDRMSG, "ifaddrmsg")
    fields: dict[str, Any] = {}
    other: list[tuple[int, bytes]] = []
    for nla_type, value in iter_attributes(payload, _IFADDRMSG.size):
        number = nla_type & NLA_TYPE_MASK
        if number == IFA_ADDRESS:
            fields["address"] = _address(value, "IFA_ADDRESS")
        elif number == IFA_LOCAL:
            fields["local"] = _address(value, "IFA_LOCAL")
        elif number == IFA_LABEL:
            fields["label"] = _string(value, "IFA_LABEL")
        elif number == IFA_FLAGS:
            fields["extended_flags"] = _u32(value, "IFA_FLAGS")
        elif number == IFA_BROADCAST:
            fields["broadcast"] = _address(value, "IFA_BROADCAST")
        elif number == IFA_RT_PRIORITY:
            fields["rt_priority"] = _u32(value, "IFA_RT_PRIORITY")
        elif number == IFA_PROTO:
            fields["protocol"] = _u8(value, "IFA_PROTO")
        else:
            other.append((nla_type, bytes(value)))
    fields["other"] = tuple(other)
    return AddressMessage(*header, **fields)


def _decode_ext_ack(
    payload: memoryview, offset: int
) -> tuple[str | None, int | None, RawAttributes]:
    message: str | None = None
    bad_offset: int | None = None
    other: list[tuple[int, bytes]] = []
    for nla_type, value in iter_attributes(payload, offset):
        number = nla_type & NLA_TYPE_MASK
        if number == NLMSGERR_ATTR_MSG:
            message = _string(value, "NLMSGERR_ATTR_MSG")
        elif number == NLMSGERR_ATTR_OFFS:
            bad_offset = _u32(value, "NLMSGERR_ATTR_OFFS")
        else:
            other.append((nla_type, bytes(value)))
    return message, bad_offset, tuple(other)


def decode_error_payload(payload: memoryview, flags: int) -> ErrorMessage:
    """Decode an NLMSG_ERROR payload.

    The kernel (``netlink_ack``) echoes the request's header, plus the whole request
    unless NLM_F_CAPPED is set; extended-ACK TLVs follow only when NLM_F_ACK_TLVS is set.
    """
    code_size = _ERROR_CODE.size
    if len(payload) < code_size + HEADER.size:
        raise DecodeError(f"NLMSG_ERROR payload of {len(payload)} bytes is too short")
    (error,) = _ERROR_CODE.unpack_from(payload)
    request_header = HEADER.unpack_from(payload, code_size)
    echo_end = code_size + HEADER.size
    request_payload = b""
    if not flags & NLM_F.CAPPED:
        echoed_length = request_header[0]
        if echoed_length < HEADER.size or code_size + echoed_length > len(payload):
            raise DecodeError(f"NLMSG_ERROR echoes a request of {echoed_length} bytes")
        request_payload = bytes(payload[echo_end : code_size + echoed_length])
        echo_end = code_size + echoed_length
    message: str | None = None
    offset: int | None = None
    other: RawAttributes = ()
    if flags & NLM_F.ACK_TLVS:
        message, offset, other = _decode_ext_ack(payload, align(echo_end))
    return ErrorMessage(error, request_header, request_payload, message, offset, other)


def _decode_done(payload: memoryview, flags: int) -> DoneMessage:
    if len(payload) < _ERROR_CODE.size:
        # Some kernel dumps (old or generic netlink) end with an empty DONE.
        return DoneMessage()
    (error,) = _ERROR_CODE.unpack_from(payload)
    if flags & NLM_F.ACK_TLVS:
        message, offset, other = _decode_ext_ack(payload, _ERROR_CODE.size)
        return DoneMessage(error, message, offset, other)
    return DoneMessage(error)


_ROUTE_TYPES = frozenset((RTM.NEWROUTE, RTM.DELROUTE, RTM.GETROUTE))
_RULE_TYPES = frozenset((RTM.NEWRULE, RTM.DELRULE, RTM.GETRULE))
_LINK_TYPES = frozenset((RTM.NEWLINK, RTM.DELLINK, RTM.GETLINK))
_ADDRESS_TYPES = frozenset((RTM.NEWADDR, RTM.DELADDR, RTM.GETADDR))
_NEXTHOP_TYPES = frozenset((RTM.NEWNEXTHOP, RTM.DELNEXTHOP, RTM.GETNEXTHOP))


def decode_body(msg_type: int, flags: int, payload: memoryview) -> Body:
    """Decode the payload of a frame of type ``msg_type`` (raw bytes for unknown types)."""
    try:
        if msg_type in _ROUTE_TYPES:
            return _decode_route(payload)
        if msg_type in _RULE_TYPES:
            return _decode_rule(payload)
        if msg_type in _LINK_TYPES:
            return _decode_link(payload)
        if msg_type in _ADDRESS_TYPES:
            return _decode_address(payload)
        if msg_type in _NEXTHOP_TYPES:
            return _decode_nexthop(payload)
        if msg_type == NLMSG.ERROR:
            return decode_error_payload(payload, flags)
        if msg_type == NLMSG.DONE:
            return _decode_done(payload, flags)
    except (ValueError, struct.error) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(str(exc)) from exc
    return bytes(payload)


def decode_datagram(data: bytes | memoryview) -> list[Message]:
    """Decode every frame of a datagram.  Raises DecodeError on any malformed frame."""
    view = memoryview(data)
    if view.format != "B" or view.itemsize != 1:
        view = view.cast("B")  # lengths on the wire count bytes, not items
    return [
        Message(f.type, f.flags, decode_body(f.type, f.flags, f.payload), f.seq, f.port_id)
        for f in iter_frames(view)
    ]
