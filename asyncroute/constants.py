"""Kernel ABI numbers used by asyncroute, as enums.

These values are part of the stable Linux UAPI (``linux/netlink.h``,
``linux/rtnetlink.h``, ``linux/fib_rules.h``).  They are written out here rather than
imported so that the vocabulary layer has no dependencies; ``tests/unit/test_constants.py``
checks every one of them against pyroute2's definitions.  Attribute numbers and field
layouts are *not* here: the codec derives those from pyroute2's message classes.
"""

from __future__ import annotations

import enum
import socket

__all__ = [
    "AF_INET",
    "AF_INET6",
    "AF_UNSPEC",
    "FR_ACT",
    "NLMSG",
    "NLMSG_MIN_TYPE",
    "NLM_F",
    "RTAX",
    "RTM",
    "RTM_F",
    "RTN",
    "RTNH_F",
    "RTNLGRP",
    "RTPROT",
    "RT_SCOPE",
    "RT_TABLE",
    "SOL_NETLINK",
    "NetlinkOption",
]

#: Either address family (a dump of both; ``socket.AF_UNSPEC`` as a plain int).
AF_UNSPEC = int(socket.AF_UNSPEC)
#: IPv4, for the ``family`` arguments (``socket.AF_INET`` as a plain int).
AF_INET = int(socket.AF_INET)
#: IPv6, for the ``family`` arguments (``socket.AF_INET6`` as a plain int).
AF_INET6 = int(socket.AF_INET6)

#: ``SOL_NETLINK`` socket option level (``linux/socket.h``); Python's socket module lacks it.
SOL_NETLINK = 270


class NetlinkOption(enum.IntEnum):
    """Netlink socket options (``setsockopt(SOL_NETLINK, ...)``, netlink(7))."""

    ADD_MEMBERSHIP = 1
    DROP_MEMBERSHIP = 2
    PKTINFO = 3
    BROADCAST_ERROR = 4
    NO_ENOBUFS = 5
    LISTEN_ALL_NSID = 8
    LIST_MEMBERSHIPS = 9
    CAP_ACK = 10
    EXT_ACK = 11
    GET_STRICT_CHK = 12


class NLMSG(enum.IntEnum):
    """Control message types (``nlmsghdr.nlmsg_type`` below 0x10)."""

    NOOP = 1
    ERROR = 2
    DONE = 3
    OVERRUN = 4


#: Types below this are control messages: the kernel hands them to no family, and acks
#: them when asked (``netlink_rcv_skb``).  A batch's barrier is an acked NLMSG_NOOP.
NLMSG_MIN_TYPE = 0x10


class NLM_F(enum.IntFlag):
    """``nlmsghdr.nlmsg_flags``.  Several bits mean different things per message kind."""

    REQUEST = 0x1
    MULTI = 0x2
    ACK = 0x4
    ECHO = 0x8
    DUMP_INTR = 0x10
    DUMP_FILTERED = 0x20
    # GET requests
    ROOT = 0x100
    MATCH = 0x200
    ATOMIC = 0x400
    DUMP = 0x300
    # NEW requests (same bits as ROOT/MATCH/ATOMIC)
    REPLACE = 0x100
    EXCL = 0x200
    CREATE = 0x400
    APPEND = 0x800
    # ACK messages (same bits again)
    CAPPED = 0x100
    ACK_TLVS = 0x200


class RTM(enum.IntEnum):
    """rtnetlink message types used by asyncroute."""

    NEWLINK = 16
    DELLINK = 17
    GETLINK = 18
    NEWADDR = 20
    DELADDR = 21
    GETADDR = 22
    NEWROUTE = 24
    DELROUTE = 25
    GETROUTE = 26
    NEWRULE = 32
    DELRULE = 33
    GETRULE = 34
    # Nexthop objects (Linux 5.3, ``linux/nexthop.h``); pyroute2 does not define these.
    NEWNEXTHOP = 104
    DELNEXTHOP = 105
    GETNEXTHOP = 106


class RTM_F(enum.IntFlag):
    """``rtmsg.rtm_flags``."""

    NOTIFY = 0x100
    CLONED = 0x200
    EQUALIZE = 0x400
    PREFIX = 0x800
    LOOKUP_TABLE = 0x1000
    FIB_MATCH = 0x2000
    OFFLOAD = 0x4000
    TRAP = 0x8000


class RT_TABLE(enum.IntEnum):
    """Reserved routing table ids.  Ids ≥ 256 only fit in ``RTA_TABLE``."""

    UNSPEC = 0
    COMPAT = 252
    DEFAULT = 253
    MAIN = 254
    LOCAL = 255


class RTPROT(enum.IntEnum):
    """``rtmsg.rtm_protocol``: who installed a route."""

    UNSPEC = 0
    REDIRECT = 1
    KERNEL = 2
    BOOT = 3
    STATIC = 4


class RT_SCOPE(enum.IntEnum):
    """``rtmsg.rtm_scope``."""

    UNIVERSE = 0
    SITE = 200
    LINK = 253
    HOST = 254
    NOWHERE = 255


class RTN(enum.IntEnum):
    """``rtmsg.rtm_type``."""

    UNSPEC = 0
    UNICAST = 1
    LOCAL = 2
    BROADCAST = 3
    ANYCAST = 4
    MULTICAST = 5
    BLACKHOLE = 6
    UNREACHABLE = 7
    PROHIBIT = 8
    THROW = 9
    NAT = 10
    XRESOLVE = 11


class FR_ACT(enum.IntEnum):
    """``fib_rule_hdr.action``."""

    UNSPEC = 0
    TO_TBL = 1
    GOTO = 2
    NOP = 3
    BLACKHOLE = 6
    UNREACHABLE = 7
    PROHIBIT = 8


class RTNLGRP(enum.IntEnum):
    """rtnetlink multicast groups (``enum rtnetlink_groups``): the number to pass to
    NETLINK_ADD_MEMBERSHIP (the legacy bind mask is ``1 << (group - 1)``)."""

    LINK = 1
    IPV4_IFADDR = 5
    IPV4_ROUTE = 7
    IPV4_RULE = 8
    IPV6_IFADDR = 9
    IPV6_ROUTE = 11
    IPV6_RULE = 19
    NEXTHOP = 32


class RTAX(enum.IntEnum):
    """Route metrics: the attributes nested in RTA_METRICS (``linux/rtnetlink.h``).

    ``LOCK`` is a bitmask: bit ``1 << RTAX_X`` locks metric X (``ip route ... mtu lock
    1400``).  ``CC_ALGO`` is a string (the congestion control name); all others are u32.
    """

    LOCK = 1
    MTU = 2
    WINDOW = 3
    RTT = 4
    RTTVAR = 5
    SSTHRESH = 6
    CWND = 7
    ADVMSS = 8
    REORDERING = 9
    HOPLIMIT = 10
    INITCWND = 11
    FEATURES = 12
    RTO_MIN = 13
    INITRWND = 14
    QUICKACK = 15
    CC_ALGO = 16
    FASTOPEN_NO_COOKIE = 17


class RTNH_F(enum.IntFlag):
    """``rtnexthop.rtnh_flags`` (one hop of RTA_MULTIPATH) and ``nhmsg.nh_flags``."""

    DEAD = 0x1
    PERVASIVE = 0x2
    ONLINK = 0x4
    OFFLOAD = 0x8
    LINKDOWN = 0x10
    UNRESOLVED = 0x20
    TRAP = 0x40
