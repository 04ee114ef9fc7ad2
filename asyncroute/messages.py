"""Decoded netlink messages: plain frozen dataclasses, no behaviour.

A :class:`Message` is what :meth:`Connection.request` takes and what replies and dumps
yield.  Its ``body`` is one of the typed bodies below, or raw ``bytes`` for a message
type the codec does not know.  Attribute fields are ``None`` when the attribute is
absent; attributes the codec does not model are kept, raw and in order, in ``other``, so
that nothing is lost: decoding what asyncroute encoded gives an equal message, and
re-encoding a decoded message gives the same attributes (in asyncroute's order, which
may differ from the order ``ip`` or the kernel used).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from .constants import RTAX

__all__ = [
    "Address",
    "AddressMessage",
    "Body",
    "DoneMessage",
    "ErrorMessage",
    "LinkMessage",
    "Message",
    "MultipathHop",
    "NexthopMessage",
    "RawAttributes",
    "RouteMessage",
    "RuleMessage",
]

_RTAX_MTU = RTAX.MTU

#: An address attribute: 4 bytes decode as IPv4, 16 as IPv6.
Address = IPv4Address | IPv6Address
#: Attributes kept undecoded: ``(nla_type including flag bits, value bytes)``.
RawAttributes = tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class MultipathHop:
    """One ``struct rtnexthop`` of an RTA_MULTIPATH attribute, with its attributes.

    ``hops`` is the wire field ``rtnh_hops``: the weight minus one (iproute2's
    ``weight``); :attr:`weight` gives the weight.  ``flags`` are ``RTNH_F_*``.
    """

    ifindex: int = 0
    gateway: Address | None = None
    hops: int = 0
    flags: int = 0
    other: RawAttributes = ()

    @property
    def weight(self) -> int:
        """The hop's weight, 1..256 (``rtnh_hops + 1``)."""
        return self.hops + 1


@dataclass(frozen=True, slots=True)
class RouteMessage:
    """``struct rtmsg`` and its attributes (RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE).

    ``table`` is the header byte; ``table_id`` is RTA_TABLE, needed for ids ≥ 256 (see
    :attr:`table_number`).  ``metrics`` holds the u32 metrics of the RTA_METRICS nest as
    ``(RTAX_*, value)`` pairs (RTAX_LOCK included, as the bitmask it is) and ``congctl``
    its one string metric, RTAX_CC_ALGO; :attr:`mtu` reads RTAX_MTU.  ``flow`` is
    RTA_FLOW (realms), ``via`` RTA_VIA as ``(family, address)`` (a gateway of another
    family), ``pref`` RTA_PREF (IPv6 router preference), ``encap_type`` and ``encap``
    RTA_ENCAP_TYPE and the payload of the RTA_ENCAP nest (lightweight tunnel, kept as
    bytes), ``expires`` RTA_EXPIRES (seconds; sent only), ``cacheinfo`` the eight u32
    fields of ``struct rta_cacheinfo`` (the kernel reports an IPv6 route's remaining
    lifetime in its ``rta_expires``, in clock ticks).
    """

    family: int
    dst_len: int = 0
    src_len: int = 0
    tos: int = 0
    table: int = 0
    protocol: int = 0
    scope: int = 0
    type: int = 0
    flags: int = 0
    dst: Address | None = None
    src: Address | None = None
    iif: int | None = None
    oif: int | None = None
    gateway: Address | None = None
    priority: int | None = None
    prefsrc: Address | None = None
    metrics: tuple[tuple[int, int], ...] = ()
    multipath: tuple[MultipathHop, ...] | None = None
    table_id: int | None = None
    nexthop_id: int | None = None
    congctl: str | None = None
    flow: int | None = None
    via: tuple[int, Address] | None = None
    pref: int | None = None
    encap_type: int | None = None
    encap: bytes | None = None
    expires: int | None = None
    cacheinfo: tuple[int, int, int, int, int, int, int, int] | None = None
    other: RawAttributes = ()

    @property
    def table_number(self) -> int:
        """The route's table: RTA_TABLE when present, else the header byte."""
        return self.table if self.table_id is None else self.table_id

    @property
    def mtu(self) -> int | None:
        """RTAX_MTU from :attr:`metrics`, or ``None``."""
        for kind, value in self.metrics:
            if kind == _RTAX_MTU:
                return value
        return None


@dataclass(frozen=True, slots=True)
class RuleMessage:
    """``struct fib_rule_hdr`` and its attributes (RTM_NEWRULE / RTM_DELRULE / RTM_GETRULE).

    ``protocol`` and ``scope`` are the header's reserved bytes ``res1``/``res2``; the
    rule's protocol proper is the FRA_PROTOCOL attribute, :attr:`rule_protocol`.
    ``iifname``/``oifname`` are FRA_IIFNAME/FRA_OIFNAME, ``goto`` FRA_GOTO (a priority),
    ``flow`` FRA_FLOW (realms), ``suppress_ifgroup``/``suppress_prefixlen`` (the kernel
    reports 0xFFFFFFFF for "unset"), ``l3mdev``, ``ip_proto``, ``tun_id`` (FRA_TUN_ID,
    big-endian on the wire), ``uid_range`` and the port ranges as ``(start, end)``.
    """

    family: int
    dst_len: int = 0
    src_len: int = 0
    tos: int = 0
    table: int = 0
    protocol: int = 0
    scope: int = 0
    action: int = 0
    flags: int = 0
    dst: Address | None = None
    src: Address | None = None
    priority: int | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    table_id: int | None = None
    rule_protocol: int | None = None
    iifname: str | None = None
    oifname: str | None = None
    goto: int | None = None
    flow: int | None = None
    suppress_ifgroup: int | None = None
    suppress_prefixlen: int | None = None
    l3mdev: int | None = None
    ip_proto: int | None = None
    tun_id: int | None = None
    uid_range: tuple[int, int] | None = None
    sport_range: tuple[int, int] | None = None
    dport_range: tuple[int, int] | None = None
    other: RawAttributes = ()

    @property
    def table_number(self) -> int:
        """The rule's table: FRA_TABLE when present, else the header byte."""
        return self.table if self.table_id is None else self.table_id


@dataclass(frozen=True, slots=True)
class LinkMessage:
    """``struct ifinfomsg`` with the attributes asyncroute reads (RTM_*LINK)."""

    family: int = 0
    link_type: int = 0
    index: int = 0
    flags: int = 0
    change: int = 0
    name: str | None = None
    mtu: int | None = None
    operstate: int | None = None
    other: RawAttributes = ()


@dataclass(frozen=True, slots=True)
class AddressMessage:
    """``struct ifaddrmsg`` and its attributes (RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR).

    For IPv4, ``local`` (IFA_LOCAL) is the interface's own address and ``address``
    (IFA_ADDRESS) the peer's on a point-to-point link, else the same; IPv6 sends only
    ``address``.  ``flags`` is the header byte, the low 8 ``IFA_F_*`` bits;
    ``extended_flags`` is IFA_FLAGS, all 32 bits, which the kernel sends and prefers.
    ``protocol`` is IFA_PROTO (who added the address), ``rt_priority`` IFA_RT_PRIORITY
    (the metric of its prefix route).  IFA_CACHEINFO and the rest stay in ``other``.
    """

    family: int = 0
    prefixlen: int = 0
    flags: int = 0
    scope: int = 0
    index: int = 0
    address: Address | None = None
    local: Address | None = None
    label: str | None = None
    broadcast: Address | None = None
    extended_flags: int | None = None
    rt_priority: int | None = None
    protocol: int | None = None
    other: RawAttributes = ()


@dataclass(frozen=True, slots=True)
class NexthopMessage:
    """``struct nhmsg`` and its attributes (RTM_NEWNEXTHOP / RTM_DELNEXTHOP /
    RTM_GETNEXTHOP; ``linux/nexthop.h``, Linux 5.3+).  pyroute2 has no such message.

    A nexthop object is either single (``oif`` and/or ``gateway``, or ``blackhole``)
    or a group: ``group`` holds ``(member id, weight)`` pairs, weight 1..65536 on the wire
    (``nexthop_grp.weight`` is the weight minus one; its high byte ``weight_high``
    exists since Linux 6.12); the kernel accepts 1..65535 (1..256 before 6.12).
    ``group_type`` is NHA_GROUP_TYPE (0: multipath, 1: resilient).  ``dump_groups`` and
    ``dump_master`` are the dump filters NHA_GROUPS and NHA_MASTER (an ifindex);
    ``fdb`` is NHA_FDB.
    """

    family: int = 0
    scope: int = 0
    protocol: int = 0
    flags: int = 0
    id: int | None = None
    group: tuple[tuple[int, int], ...] = ()
    group_type: int | None = None
    blackhole: bool = False
    oif: int | None = None
    gateway: Address | None = None
    dump_groups: bool = False
    dump_master: int | None = None
    fdb: bool = False
    other: RawAttributes = ()


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """``NLMSG_ERROR``: an ack (``error == 0``) or an error reply (``error`` = -errno).

    ``request_header`` is the echoed ``nlmsghdr`` of the request (length, type, flags,
    seq, port id); ``request_payload`` the rest of the echoed request, empty when the
    kernel capped it (NETLINK_CAP_ACK, or any ack).  ``message``/``offset`` are the
    extended-ACK TLVs NLMSGERR_ATTR_MSG / NLMSGERR_ATTR_OFFS.
    """

    error: int
    request_header: tuple[int, int, int, int, int]
    request_payload: bytes = b""
    message: str | None = None
    offset: int | None = None
    other: RawAttributes = ()


@dataclass(frozen=True, slots=True)
class DoneMessage:
    """``NLMSG_DONE``: the end of a dump; ``error`` is 0 or -errno."""

    error: int = 0
    message: str | None = None
    offset: int | None = None
    other: RawAttributes = ()


Body = (
    RouteMessage
    | RuleMessage
    | LinkMessage
    | AddressMessage
    | NexthopMessage
    | ErrorMessage
    | DoneMessage
    | bytes
)


@dataclass(frozen=True, slots=True)
class Message:
    """One netlink message: header fields and a body.

    For a request, ``seq`` and ``port_id`` are filled in by the connection; leave them 0.
    ``flags`` of a request should contain ``NLM_F.REQUEST``.
    """

    type: int
    flags: int = 0
    body: Body = b""
    seq: int = 0
    port_id: int = 0
