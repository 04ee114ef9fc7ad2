"""Route and rule changes from iproute2 batch lines and ``ip -json`` objects.

No I/O: this module turns text into :class:`RouteChange` / :class:`RuleChange` objects,
each of which knows the exact request iproute2 would send for the same input
(``iproute_modify()`` in ``ip/iproute.c``, ``iprule_modify()`` in ``ip/iprule.c``), so
that ``asyncroute apply`` leaves the kernel in the state ``ip -batch`` leaves it in:

- ``route add`` is RTM_NEWROUTE with NLM_F_CREATE|NLM_F_EXCL, ``replace``
  CREATE|REPLACE, ``change`` REPLACE, ``prepend`` CREATE, ``append`` CREATE|APPEND,
  ``test`` EXCL, ``del`` RTM_DELROUTE.  Unlike :meth:`asyncroute.Connection.upsert`, no
  ``NH dev X scope link`` route is installed first.
- Header defaults are iproute2's: table main (local for the types local, broadcast,
  nat and anycast), protocol boot, type unicast and scope universe for changes; for a
  delete, protocol and type 0 ("any") and scope nowhere ("any") unless given.  IPv4
  unicast routes without a gateway get scope link; IPv6 routes always scope universe.
- Only what the line says is sent (gateway, metric, preferred source, MTU), so a
  delete matches exactly what ``ip route del`` matches.
- Keywords are matched the way ``ip`` matches them (``matches()``: any prefix of the
  keyword, tried in ``ip``'s order), numbers are parsed like C ``strtoul(s, 0)``
  (``0x`` hex, leading ``0`` octal), names come from iproute2's tables and
  ``/etc/iproute2/rt_tables``, ``rt_protos`` and ``rt_scopes``.

Multipath routes (``nexthop via GW [dev D] [weight W] [onlink]``, repeated, to the end of
the line), routes via a nexthop object (``nhid N``) and ``onlink`` are sent as ``ip``
sends them (RTA_MULTIPATH, RTA_NH_ID, RTNH_F_ONLINK in ``rtm_flags``).  Keywords ``ip``
knows but asyncroute cannot send (``encap``, ``from``, ``tos`` on routes, metrics other
than ``mtu`` …) are a :class:`ParseError` naming the keyword, never silently dropped.

Extensions over ``ip -batch``: a line may start with ``-4`` or ``-6`` (``ip`` 6.1
rejects that with 'Object "-6" is unknown'), and a rule takes its family from its
``from``/``to`` prefix (``ip rule add from 2001:db8::/32`` without ``-6`` is an error
in ``ip``).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from .. import ip_route_words as words
from .._codec import encode_body, pack_route_body
from ..constants import AF_INET, AF_INET6, AF_UNSPEC, FR_ACT, NLM_F, RT_TABLE, RTM, RTN
from ..constants import RTNH_F as _RTNH_F
from ..constants import RTPROT as _RTPROT
from ..encap import Encap
from ..iproute2 import (
    ParseError,
    default_scope,
    default_table,
    ip_protocol_number,
    matches,
    protocol_name,
    protocol_number,
    scope_name,
    scope_number,
    strtoul,
    table_name,
    table_number,
    type_name,
    type_number,
)
from ..messages import MultipathHop, RouteMessage, RuleMessage
from ..multipath import hop_attributes
from ..route_attributes import NO_ATTRIBUTES, RouteAttributes

__all__ = [
    "Change",
    "HopChange",
    "ParseError",
    "RouteChange",
    "RuleChange",
    "change_from_json",
    "iter_batch_lines",
    "iter_json",
    "join_line",
    "looks_like_json",
    "matches",
    "parse_address",
    "parse_command",
    "parse_prefix",
    "parse_route",
    "parse_rule",
    "protocol_name",
    "protocol_number",
    "route_from_json",
    "rule_from_json",
    "scope_name",
    "scope_number",
    "split_args",
    "strtoul",
    "table_name",
    "table_number",
    "type_name",
    "type_number",
]

#: The largest value of a 32-bit field (table ids, metrics, marks).
U32_MAX = 2**32 - 1
_MAX_PLEN = {AF_INET: 32, AF_INET6: 128}
_ADDRESS_SIZE = {AF_INET: 4, AF_INET6: 16}


def _ipv4(text: str) -> bytes | None:
    """iproute2's ``get_addr_ipv4()``: up to four ``strtoul(…, 0)`` parts, each ≤ 255,
    missing parts zero (``10`` is 10.0.0.0, ``0x0b.010.1`` 11.8.1.0)."""
    parts = text.split(".")
    if len(parts) > 4:
        return None
    octets = bytearray(4)
    for index, part in enumerate(parts):
        try:
            octets[index] = strtoul(part, "address", 255)
        except ParseError:
            return None
    return bytes(octets)


def parse_address(text: str, family: int, what: str) -> tuple[int, bytes]:
    """``(family, packed)`` of an address as ``get_addr()`` reads it in ``family``
    (AF_UNSPEC: either)."""
    if ":" in text:
        if family not in (AF_UNSPEC, AF_INET6):
            raise ParseError(f'{what}: an IPv4 address is expected rather than "{text}"')
        try:
            return AF_INET6, socket.inet_pton(socket.AF_INET6, text)
        except OSError:
            raise ParseError(f'{what}: invalid IPv6 address "{text}"') from None
    if family not in (AF_UNSPEC, AF_INET):
        raise ParseError(f'{what}: an IPv6 address is expected rather than "{text}"')
    packed = _ipv4(text)
    if packed is None:
        raise ParseError(f'{what}: invalid address "{text}"')
    return AF_INET, packed


def _prefix_length(text: str, family: int, what: str) -> int:
    maximum = _MAX_PLEN[family]
    if family == AF_INET and "." in text:
        # A dotted netmask (get_netmask): it must be contiguous ones.
        mask = _ipv4(text)
        if mask is not None:
            value = int.from_bytes(mask, "big")
            length = bin(value).count("1")
            if value == (U32_MAX << (32 - length)) & U32_MAX:
                return length
        raise ParseError(f'{what}: invalid netmask "{text}"')
    return strtoul(text, "prefix length", maximum)


def parse_prefix(text: str, family: int, what: str) -> tuple[int, bytes, int]:
    """``(family, packed, prefix length)`` as ``get_prefix()`` reads a prefix:
    ``default``/``any``/``all`` (family ``family``, length 0), ``ADDR`` (a host
    route) or ``ADDR/LEN`` (host bits are left for the kernel to judge)."""
    if text in ("default", "any", "all"):
        return family, b"", 0
    address, slash, length = text.partition("/")
    family, packed = parse_address(address, family, what)
    plen = _prefix_length(length, family, what) if slash else _MAX_PLEN[family]
    return family, packed, plen


def _family_word(text: str) -> int | None:
    return {"inet": AF_INET, "inet6": AF_INET6, "ipv4": AF_INET, "ipv6": AF_INET6}.get(text)


def _address_text(family: int, packed: bytes) -> str:
    return socket.inet_ntop(family, packed)


# ------------------------------------------------------------------ route changes

#: ``ip route`` verbs in ``do_iproute()``'s order: (name, message type, flags).
_ROUTE_VERBS: tuple[tuple[str, int, int], ...] = (
    ("add", RTM.NEWROUTE, NLM_F.CREATE | NLM_F.EXCL),
    ("change", RTM.NEWROUTE, NLM_F.REPLACE),
    ("replace", RTM.NEWROUTE, NLM_F.CREATE | NLM_F.REPLACE),
    ("prepend", RTM.NEWROUTE, NLM_F.CREATE),
    ("append", RTM.NEWROUTE, NLM_F.CREATE | NLM_F.APPEND),
    ("test", RTM.NEWROUTE, NLM_F.EXCL),
    ("delete", RTM.DELROUTE, 0),
)


def _route_verb(word: str) -> tuple[str, int, int]:
    if word == "chg":
        word = "change"
    for name, msg_type, flags in _ROUTE_VERBS:
        if matches(word, name):
            return name, int(msg_type), int(flags)
    if any(matches(word, w) for w in ("list", "show", "lst", "get", "flush", "save", "restore")):
        raise ParseError(f'"route {word}" changes nothing; apply takes add/replace/del …')
    raise ParseError(f'unknown route command "{word}"')


_ONLINK = int(_RTNH_F.ONLINK)


@dataclass(frozen=True, slots=True)
class HopChange:
    """One ``nexthop via GW [dev D] [weight W] [onlink]`` of a multipath route, as
    ``parse_one_nh()`` reads it: ``flags`` are RTNH_F_* (RTNH_F_ONLINK)."""

    gateway: bytes | None = None
    device: str | None = None
    weight: int = 1
    flags: int = 0
    realms: int = 0
    encap: Encap | None = None

    def ip_args(self, family: int) -> list[str]:
        """``nexthop [encap …] via GW [realms R] dev D weight W [onlink]`` (what ``ip
        route show`` prints)."""
        argv = ["nexthop"]
        if self.encap is not None:
            argv += words.encap_words(self.encap)
        if self.gateway is not None:
            argv += ["via", *_via_text(family, self.gateway)]
        if self.realms:
            argv += words.realms_text(self.realms)
        if self.device is not None:
            argv += ["dev", self.device]
        argv += ["weight", str(self.weight)]
        if self.flags & _ONLINK:
            argv.append("onlink")
        return argv


@dataclass(frozen=True, slots=True)
class RouteChange:
    """One RTM_NEWROUTE/RTM_DELROUTE request, with every header field resolved the way
    ``ip route`` resolves it.  ``gateway``, ``priority``, ``prefsrc``, ``mtu``, ``hops``
    (RTA_MULTIPATH) and ``nhid`` (RTA_NH_ID) are sent only when set; ``rtm_flags`` is
    the header's flags byte (RTNH_F_ONLINK for ``onlink``).  Device names (``device``
    and each hop's) are resolved to ifindexes when the request is sent.
    """

    verb: str
    msg_type: int
    flags: int
    family: int
    dst: bytes
    dst_len: int
    table: int
    protocol: int
    scope: int
    type: int
    gateway: bytes | None = None
    priority: int | None = None
    prefsrc: bytes | None = None
    mtu: int = 0
    device: str | None = None
    hops: tuple[HopChange, ...] = ()
    nhid: int | None = None
    rtm_flags: int = 0
    attributes: RouteAttributes | None = None

    def devices(self) -> list[str]:
        """The device names the request needs, ``device`` first, then the hops'."""
        names = [] if self.device is None else [self.device]
        names += [hop.device for hop in self.hops if hop.device is not None]
        return names

    def body(self, oif: int, hop_oifs: Sequence[int] = ()) -> bytes:
        """The request body (``struct rtmsg`` and attributes) with output device ``oif``
        (0: none) and the hops' ifindexes ``hop_oifs`` (one per hop with a device, in
        order)."""
        table = self.table
        if not (self.hops or self.nhid is not None or self.rtm_flags or self.attributes):
            return pack_route_body(
                self.family,
                self.dst_len,
                table if table < 256 else RT_TABLE.UNSPEC,
                self.protocol,
                self.scope,
                self.type,
                self.dst or bytes(_ADDRESS_SIZE[self.family]),
                oif,
                self.gateway,
                self.priority,
                self.prefsrc,
                self.mtu,
                table if table >= 256 else None,
            )
        # The rarer shapes go through the general encoder.  RTA_DST stays the first
        # attribute (apply's templates rely on it); RTA_OIF is left out when there is no
        # device, as ip does.
        indexes = list(hop_oifs)
        if len(indexes) != sum(hop.device is not None for hop in self.hops):
            names = [hop.device for hop in self.hops if hop.device is not None]
            raise ValueError(f"{len(indexes)} ifindexes for the hops' devices {names}")
        indexes.reverse()
        hops = tuple(
            MultipathHop(
                indexes.pop() if hop.device is not None else 0,
                None if hop.gateway is None else ip_address(hop.gateway),
                hop.weight - 1,
                hop.flags,
                hop_attributes(hop.realms, hop.encap),
            )
            for hop in self.hops
        )
        gateway = None if self.gateway is None else ip_address(self.gateway)
        fields = (self.attributes or NO_ATTRIBUTES).message_fields(gateway, self.mtu)
        fields["flags"] |= self.rtm_flags
        return encode_body(
            RouteMessage(
                family=self.family,
                dst_len=self.dst_len,
                table=table if table < 256 else RT_TABLE.UNSPEC,
                protocol=self.protocol,
                scope=self.scope,
                type=self.type,
                dst=ip_address(self.dst or bytes(_ADDRESS_SIZE[self.family])),
                oif=oif or None,
                priority=self.priority,
                prefsrc=None if self.prefsrc is None else ip_address(self.prefsrc),
                multipath=hops or None,
                table_id=table if table >= 256 else None,
                nexthop_id=self.nhid,
                **fields,
            )
        )

    @property
    def prefix(self) -> str:
        """The destination as ``ip`` prints it: ``default``, ``ADDR`` or ``ADDR/LEN``."""
        if self.dst_len == 0 and not any(self.dst):
            return "default"
        address = _address_text(self.family, self.dst or bytes(_ADDRESS_SIZE[self.family]))
        return address if self.dst_len == _MAX_PLEN[self.family] else f"{address}/{self.dst_len}"

    def ip_args(self) -> list[str]:
        """The ``ip`` arguments that send exactly this request: ``[-6] route VERB …``,
        with the type, table, protocol and scope only where they differ from what ``ip``
        would choose itself, and the nexthops last."""
        argv = ["-6"] if self.family == AF_INET6 else []
        argv += ["route", "del" if self.verb == "delete" else self.verb]
        deleting = self.msg_type == RTM.DELROUTE
        if self.type != (RTN.UNSPEC if deleting else RTN.UNICAST):
            argv.append(type_name(self.type))
        argv.append(self.prefix)
        argv += words.head_words(self.attributes)
        if self.nhid is not None:
            argv += ["nhid", str(self.nhid)]
        if self.gateway is not None:
            argv += ["via", *_via_text(self.family, self.gateway)]
        if self.device is not None:
            argv += ["dev", self.device]
        if self.rtm_flags & _ONLINK:
            argv.append("onlink")
        if self.table != default_table(self.type):
            argv += ["table", table_name(self.table)]
        if self.protocol != (0 if deleting else RTPROT_BOOT):
            argv += ["proto", protocol_name(self.protocol)]
        default = default_scope(self.msg_type, self.family, self.type, self._has_nexthop())
        if self.scope != default:
            argv += ["scope", scope_name(self.scope)]
        if self.priority is not None:
            argv += ["metric", str(self.priority)]
        if self.prefsrc is not None:
            argv += ["src", _address_text(self.family, self.prefsrc)]
        tail = words.tail_words(self.attributes, self.mtu, for_add=True)
        argv += [word for word in tail if not (word == "onlink" and self.rtm_flags & _ONLINK)]
        for hop in self.hops:  # ip reads nexthops up to the end of the line
            argv += hop.ip_args(self.family)
        return argv

    def _has_nexthop(self) -> bool:
        return self.gateway is not None or bool(self.hops) or self.nhid is not None


#: The protocol ``ip`` gives the routes it adds (``proto boot``).
RTPROT_BOOT = int(_RTPROT.BOOT)


def _via_text(family: int, gateway: bytes) -> list[str]:
    """``GW``, or ``inet6 GW`` for a gateway of the other family (RTA_VIA)."""
    other = len(gateway) != _ADDRESS_SIZE[family]
    gateway_family = AF_INET6 if len(gateway) == 16 else AF_INET
    text = _address_text(gateway_family, gateway)
    return ["inet6" if gateway_family == AF_INET6 else "inet", text] if other else [text]


def _unsupported(word: str, what: str) -> ParseError:
    return ParseError(f'unsupported keyword "{word}": asyncroute cannot send {what}')


def _next(args: Sequence[str], index: int, word: str) -> str:
    if index >= len(args):
        raise ParseError(f'"{word}" needs an argument')
    return args[index]


def parse_route(verb: str, args: Sequence[str], family: int = AF_UNSPEC) -> tuple[RouteChange, int]:
    """A route change from ``ip route VERB ARGS…``; also the index in ``args`` of the
    prefix token (-1 when it came after ``to`` or a type word).

    ``family`` is ``-4``/``-6`` (AF_INET/AF_INET6) or AF_UNSPEC: the first address
    decides, as in ``ip``.
    """
    name, msg_type, flags = _route_verb(verb)
    deleting = msg_type == RTM.DELROUTE
    dst: bytes | None = None
    dst_len = 0
    prefix_index = -1
    gateway: bytes | None = None
    prefsrc: bytes | None = None
    priority: int | None = None
    mtu = 0
    device: str | None = None
    table: int | None = None
    protocol: int | None = None
    scope: int | None = None
    rtype: int | None = None
    hops: tuple[HopChange, ...] = ()
    nhid: int | None = None
    rtm_flags = 0
    via = False
    attributes = words.AttributeParser(family)
    index = 0
    count = len(args)
    while index < count:
        word = args[index]
        consumed = attributes.parse(args, index)
        if consumed is not None:
            index = consumed + 1
            continue
        if word == "nexthop":
            # iproute_modify() stops at "nexthop": the rest of the line is nexthops.
            family, hops = _parse_nexthops(args[index:], family)
            break
        if word == "src":
            index += 1
            family, prefsrc = parse_address(_next(args, index, word), family, "src")
        elif word == "via":
            if gateway is not None:
                raise ParseError('"via" twice: use nexthop syntax to specify multiple via')
            index += 1
            text = _next(args, index, word)
            via_family = _family_word(text)
            if via_family is not None:
                index += 1
                text = _next(args, index, word)
            elif text in ("link", "ipx", "dnet", "mpls", "bridge"):
                raise _unsupported(text, f"a {text} gateway")
            via_family, gateway = parse_address(text, via_family or family, "via")
            if family == AF_INET and via_family == AF_INET6:
                via = True  # an IPv4 route via an IPv6 gateway: RTA_VIA
            elif family not in (AF_UNSPEC, via_family):
                raise _unsupported("via", "an IPv6 route via an IPv4 gateway")
            else:
                family = via_family
        elif word in ("as", "ttl-propagate"):
            raise _unsupported(word, "this attribute")
        elif matches(word, "metric") or matches(word, "priority") or word == "preference":
            index += 1
            priority = strtoul(_next(args, index, word), '"metric" value')
        elif word == "scope":
            index += 1
            scope = scope_number(_next(args, index, word))
        elif matches(word, "protocol"):
            index += 1
            protocol = protocol_number(_next(args, index, word))
        elif matches(word, "table"):
            index += 1
            table = table_number(_next(args, index, word))
        elif matches(word, "vrf"):
            raise _unsupported(word, "a VRF")
        elif word in ("dev", "oif"):
            index += 1
            device = _device_name(_next(args, index, word))
        elif word == "nhid":
            index += 1
            nhid = strtoul(_next(args, index, word), '"id" value')
        elif word == "onlink":
            rtm_flags |= _ONLINK
        else:
            at = index
            if word == "to":
                index += 1
                word = _next(args, index, "to")
                at = -1
            if not ("0" <= word[:1] <= "9"):
                kind = type_number(word)
                if kind is not None:
                    rtype = kind
                    index += 1
                    word = _next(args, index, "route type")
                    at = -1
            if matches(word, "help"):
                raise ParseError('"help" is not a route')
            if dst is not None:
                raise ParseError(f'either "to" is duplicate, or "{word}" is garbage')
            prefix_index = -1 if word in ("default", "any", "all") else at
            family, dst, dst_len = parse_prefix(word, family, "prefix")
        index += 1
    if dst is None:
        raise ParseError("no destination prefix")
    if family == AF_UNSPEC:
        family = AF_INET
    mtu = attributes.mtu
    if "mtu" in attributes.metrics or (mtu == 0 and "mtu" in attributes.locked):
        raise _unsupported("mtu 0", "an explicit zero MTU")
    attributes.family = family
    route_attributes = attributes.attributes(via=via)
    if not dst:
        dst = bytes(_ADDRESS_SIZE[family])
    if rtype is None:
        rtype = RTN.UNSPEC if deleting else RTN.UNICAST
    if table is None:
        table = default_table(rtype)
    if protocol is None:
        protocol = 0 if deleting else RTPROT_BOOT
    if scope is None:
        nexthop = gateway is not None or bool(hops) or nhid is not None
        scope = default_scope(msg_type, family, rtype, nexthop)
    change = RouteChange(
        name,
        msg_type,
        flags,
        family,
        dst,
        dst_len,
        table,
        protocol,
        scope,
        int(rtype),
        gateway,
        priority,
        prefsrc,
        mtu,
        device,
        hops,
        nhid,
        rtm_flags,
        route_attributes,
    )
    return change, prefix_index


def _parse_nexthops(args: Sequence[str], family: int) -> tuple[int, tuple[HopChange, ...]]:
    """``parse_nexthops()``: ``nexthop [via [FAMILY] GW] [dev D] [weight W] [onlink]``,
    repeated to the end of ``args``; the family (the first gateway settles it if the
    prefix did not) and the hops."""
    hops: list[HopChange] = []
    index, count = 0, len(args)
    while index < count:
        if args[index] != "nexthop":
            raise ParseError(f'"nexthop" or end of line is expected instead of "{args[index]}"')
        if index + 1 >= count:
            raise ParseError('unexpected end of line after "nexthop"')
        gateway: bytes | None = None
        device: str | None = None
        weight, flags, realms = 1, 0, 0
        encap: Encap | None = None
        index += 1
        while index < count:
            word = args[index]
            if word == "via":
                index += 1
                text = _next(args, index, word)
                via_family = _family_word(text)
                if via_family is not None:
                    index += 1
                    text = _next(args, index, word)
                via_family, gateway = parse_address(text, via_family or family, "via")
                if family not in (AF_UNSPEC, via_family):
                    raise _unsupported("via", "a gateway of another family (RTA_VIA)")
                family = via_family
            elif word == "dev":
                index += 1
                device = _device_name(_next(args, index, word))
            elif word == "weight":
                index += 1
                text = _next(args, index, word)
                try:
                    weight = strtoul(text, '"weight"', 256)
                except ParseError:
                    weight = 0
                if weight == 0:
                    raise ParseError(f'"weight" is invalid: "{text}" (1..256)')
            elif word == "onlink":
                flags |= _ONLINK
            elif word in ("realm", "realms"):
                index += 1
                realms = words.parse_realms(_next(args, index, word))
            elif word == "encap":
                encap, index = words.parse_encap(args, index + 1)
            elif word == "as":
                raise _unsupported(word, "this nexthop attribute")
            else:
                break
            index += 1
        hops.append(HopChange(gateway, device, weight, flags, realms, encap))
    return family, tuple(hops)


def _device_name(text: str) -> str:
    if not 0 < len(text.encode()) < 16 or "/" in text or " " in text:
        raise ParseError(f'"{text}" is not a valid device name')
    return text


# ------------------------------------------------------------------ rule changes

#: ``fib_rule_hdr.flags`` bit of ``ip rule … not …`` (``linux/fib_rules.h``).
FIB_RULE_INVERT = 0x2
_RULE_ACTIONS = {
    "nop": FR_ACT.NOP,
    "blackhole": FR_ACT.BLACKHOLE,
    "unreachable": FR_ACT.UNREACHABLE,
    "prohibit": FR_ACT.PROHIBIT,
}


@dataclass(frozen=True, slots=True)
class RuleChange:
    """One RTM_NEWRULE/RTM_DELRULE request as ``ip rule`` builds it.

    ``exists_ok``: an EEXIST answer counts as success (``apply`` of JSON rules, which
    describe a state rather than a command).
    """

    verb: str
    msg_type: int
    flags: int
    message: RuleMessage
    exists_ok: bool = False

    @property
    def family(self) -> int:
        """AF_INET or AF_INET6."""
        return self.message.family

    def ip_args(self) -> list[str]:
        """The ``ip`` arguments that send this request: ``[-6] rule VERB …``."""
        m = self.message
        argv = ["-6"] if m.family == AF_INET6 else []
        argv += ["rule", self.verb]
        if m.flags & FIB_RULE_INVERT:
            argv.append("not")
        if m.src is not None:
            argv += ["from", f"{m.src}/{m.src_len}"]
        if m.dst is not None:
            argv += ["to", f"{m.dst}/{m.dst_len}"]
        if m.tos:
            argv += ["tos", f"{m.tos:#x}"]
        if m.fwmark is not None:
            mark = f"{m.fwmark:#x}"
            argv += ["fwmark", mark if m.fwmask is None else f"{mark}/{m.fwmask:#x}"]
        if m.priority is not None:
            argv += ["priority", str(m.priority)]
        if m.rule_protocol is not None:
            argv += ["protocol", protocol_name(m.rule_protocol)]
        argv += _rule_selector_args(m)
        if m.action == FR_ACT.GOTO:
            argv += ["goto", str(m.goto or 0)]
        elif m.action in (FR_ACT.TO_TBL, FR_ACT.UNSPEC):
            table = m.table_number
            adding = self.msg_type == RTM.NEWRULE
            if table and not (adding and table == RT_TABLE.MAIN):
                argv += ["table", table_name(table)]
        else:
            argv.append(FR_ACT(m.action).name.lower())
        return argv


def _rule_selector_args(m: RuleMessage) -> list[str]:
    """``ip rule`` words for a rule's selectors beyond from/to/tos/fwmark."""
    argv: list[str] = []
    for word, name in (("iif", m.iifname), ("oif", m.oifname)):
        if name is not None:
            argv += [word, name]
    if m.l3mdev:
        argv.append("l3mdev")
    if m.uid_range is not None:
        argv += ["uidrange", f"{m.uid_range[0]}-{m.uid_range[1]}"]
    if m.ip_proto is not None:
        argv += ["ipproto", str(m.ip_proto)]
    for word, ports in (("sport", m.sport_range), ("dport", m.dport_range)):
        if ports is not None:
            argv += [word, f"{ports[0]}-{ports[1]}"]
    if m.tun_id is not None:
        argv += ["tun_id", str(m.tun_id)]
    if m.suppress_prefixlen is not None and m.suppress_prefixlen != U32_MAX:
        argv += ["suppress_prefixlength", str(m.suppress_prefixlen)]
    if m.suppress_ifgroup is not None and m.suppress_ifgroup != U32_MAX:
        argv += ["suppress_ifgroup", str(m.suppress_ifgroup)]
    if m.flow:
        argv += ["realms", f"{m.flow >> 16}/{m.flow & 0xFFFF}"]
    return argv


# NAT rules were removed from the kernel in 2.6.
_UNSUPPORTED_RULE = frozenset(("nat",))


def _range(text: str, what: str, maximum: int) -> tuple[int, int]:
    """``N`` or ``N-M`` (iproute2's uidrange, sport and dport)."""
    start, dash, end = text.partition("-")
    first = strtoul(start, what, maximum)
    last = strtoul(end, what, maximum) if dash else first
    return first, last


def _realms(text: str) -> int:
    """``[FROM/]TO`` realms as FRA_FLOW holds them: FROM in the high 16 bits."""
    source, slash, target = text.rpartition("/")
    to = strtoul(target, "realm", 0xFFFF)
    return (strtoul(source, "realm", 0xFFFF) << 16 | to) if slash else to


def parse_rule(verb: str, args: Sequence[str], family: int = AF_UNSPEC) -> RuleChange:
    """A rule change from ``ip rule VERB ARGS…`` (``add`` or ``del``)."""
    if matches(verb, "add"):
        name, msg_type, flags = "add", RTM.NEWRULE, int(NLM_F.CREATE | NLM_F.EXCL)
    elif matches(verb, "delete"):
        name, msg_type, flags = "del", RTM.DELRULE, 0
        if not args:
            raise ParseError('"ip rule del" requires arguments')
    else:
        raise ParseError(f'"rule {verb}": apply takes rule add and rule del')
    fields: dict[str, Any] = {}
    src = dst = None
    table: int | None = None
    action: int | None = None
    index = 0
    while index < len(args):
        word = args[index]
        if word == "not":
            fields["flags"] = FIB_RULE_INVERT
        elif word in ("from", "to"):
            index += 1
            parsed = parse_prefix(_next(args, index, word), family, word)
            if parsed[0] != AF_UNSPEC:
                family = parsed[0]
            if word == "from":
                src = parsed
            else:
                dst = parsed
        elif matches(word, "preference") or matches(word, "order") or matches(word, "priority"):
            index += 1
            fields["priority"] = strtoul(_next(args, index, word), "preference")
        elif word == "tos" or matches(word, "dsfield"):
            index += 1
            fields["tos"] = strtoul(_next(args, index, word), "TOS", 255)
        elif word == "fwmark":
            index += 1
            mark, slash, mask = _next(args, index, word).partition("/")
            fields["fwmark"] = strtoul(mark, "fwmark")
            if slash:
                fields["fwmask"] = strtoul(mask, "fwmask")
        elif matches(word, "realms"):
            index += 1
            fields["flow"] = _realms(_next(args, index, word))
        elif matches(word, "protocol"):
            index += 1
            fields["rule_protocol"] = protocol_number(_next(args, index, word))
        elif matches(word, "table") or word == "lookup":
            index += 1
            table = table_number(_next(args, index, word))
        elif matches(word, "suppress_prefixlength") or word == "sup_pl":
            index += 1
            fields["suppress_prefixlen"] = strtoul(_next(args, index, word), "prefix length")
        elif matches(word, "suppress_ifgroup") or word == "sup_group":
            index += 1
            text = _next(args, index, word)
            fields["suppress_ifgroup"] = 0 if text == "default" else strtoul(text, "group")
        elif word in ("dev", "iif"):
            index += 1
            fields["iifname"] = _next(args, index, word)
        elif word == "oif":
            index += 1
            fields["oifname"] = _next(args, index, word)
        elif word == "l3mdev":
            fields["l3mdev"] = 1
            table = table if table is not None else 0
        elif word == "uidrange":
            index += 1
            fields["uid_range"] = _range(_next(args, index, word), "uidrange", U32_MAX)
        elif word == "ipproto":
            index += 1
            fields["ip_proto"] = ip_protocol_number(_next(args, index, word))
        elif word in ("sport", "dport"):
            index += 1
            fields[f"{word}_range"] = _range(_next(args, index, word), word, 0xFFFF)
        elif word == "tun_id":
            index += 1
            fields["tun_id"] = strtoul(_next(args, index, word), "tun_id", 2**64 - 1)
        elif matches(word, "goto"):
            index += 1
            fields["goto"] = strtoul(_next(args, index, word), "goto target")
            action, table = FR_ACT.GOTO, table if table is not None else 0
        elif word in _UNSUPPORTED_RULE or matches(word, "map-to"):
            raise _unsupported(word, "this rule selector or action")
        else:
            if word == "type":
                index += 1
                word = _next(args, index, word)
            if matches(word, "nop"):
                action = FR_ACT.NOP
            else:
                kind = type_number(word)
                if kind is None or (kind not in _RULE_ACTIONS.values() and kind != RTN.UNICAST):
                    raise ParseError(f'unknown rule keyword or type "{word}"')
                action = kind
            table = table if table is not None else 0
        index += 1
    if family == AF_UNSPEC:
        family = AF_INET
    for selector, key in ((src, "src"), (dst, "dst")):
        if selector is not None:
            sel_family, packed, plen = selector
            if sel_family not in (AF_UNSPEC, family):
                raise ParseError("from and to are of different families")
            if packed:
                fields[key] = socket.inet_ntop(family, packed)
                fields[f"{key}_len"] = plen
    if table is None:
        table = RT_TABLE.MAIN if msg_type == RTM.NEWRULE else 0
    if action is None:
        action = FR_ACT.TO_TBL if msg_type == RTM.NEWRULE else FR_ACT.UNSPEC
    message = _rule_message(family, table, int(action), fields)
    return RuleChange(name, int(msg_type), flags, message)


def _rule_message(family: int, table: int, action: int, fields: dict[str, Any]) -> RuleMessage:
    from ipaddress import ip_address

    for key in ("src", "dst"):
        if key in fields:
            fields[key] = ip_address(fields[key])
    return RuleMessage(
        family=family,
        table=table if table < 256 else RT_TABLE.UNSPEC,
        table_id=table if table >= 256 else None,
        action=action,
        **fields,
    )


# ------------------------------------------------------------------ lines and commands

#: What one command asks for.
Change = RouteChange | RuleChange


def split_args(line: str) -> list[str]:
    """The words of one command as iproute2's ``makeargs()`` splits them: at spaces,
    tabs, CR and LF; a word that starts with ``"`` or ``'`` runs to the matching quote.
    Comments are gone already (see :func:`join_line`)."""
    if '"' not in line and "'" not in line:
        return line.split(None) if line.isascii() else _split_plain(line)
    words: list[str] = []
    position, length = 0, len(line)
    while position < length:
        while position < length and line[position] in _WHITESPACE:
            position += 1
        if position >= length:
            break
        quote = line[position]
        if quote in "\"'":
            end = line.find(quote, position + 1)
            if end < 0:
                raise ParseError("unterminated quoted string")
            words.append(line[position + 1 : end])
            position = end + 1
        else:
            end = position
            while end < length and line[end] not in _WHITESPACE:
                end += 1
            words.append(line[position:end])
            position = end + 1
    return words


_WHITESPACE = " \t\r\n"


def _split_plain(line: str) -> list[str]:
    # str.split() also splits at Unicode spaces; makeargs() does not.
    for char in " \t\r":
        line = line.replace(char, "\n")
    return [word for word in line.split("\n") if word]


def join_line(lines: Sequence[str], index: int) -> tuple[str, int]:
    """The command that starts at ``lines[index]``, as iproute2's ``getcmdline()`` reads
    it: ``#`` starts a comment, and a backslash that ends a line (with no comment)
    joins the next line on.  Returns the command and the index after its last line,
    which is also the 1-based number ``ip`` reports for it.
    """
    line = lines[index]
    index += 1
    if "#" in line:
        return line.split("#", 1)[0], index
    while line.endswith("\\") and index < len(lines):
        following = lines[index]
        index += 1
        if "#" in following:
            return line[:-1] + following.split("#", 1)[0], index
        line = line[:-1] + following
    return line, index


def parse_command(words: Sequence[str]) -> tuple[Change, int]:
    """The change one batch line (split into ``words``) asks for, and the index in
    ``words`` of its route prefix (-1 if none can be templated).

    ``[-4|-6] route VERB ARGS…`` or ``[-4|-6] rule VERB ARGS…``; the objects may be
    abbreviated as in ``ip`` (``r``, ``ro``, ``ru``).
    """
    family = AF_UNSPEC
    start = 0
    while start < len(words) and words[start] in ("-4", "-6", "-f", "-family"):
        option = words[start]
        if option in ("-f", "-family"):
            value = _next(words, start + 1, option)
            chosen = _family_word(value)
            if chosen is None:
                raise ParseError(f'unsupported family "{value}"')
            family = chosen
            start += 2
        else:
            family = AF_INET if option == "-4" else AF_INET6
            start += 1
    if start >= len(words):
        raise ParseError("no command")
    obj = words[start]
    if len(words) < start + 2:
        raise ParseError(f'"{obj}" needs a command (add, replace, del …)')
    verb, args = words[start + 1], words[start + 2 :]
    if matches(obj, "route"):
        change, at = parse_route(verb, args, family)
        return change, (at + start + 2 if at >= 0 else -1)
    if matches(obj, "rule"):
        return parse_rule(verb, args, family), -1
    if obj.startswith("-"):
        raise ParseError(f'option "{obj}" is not supported in a batch line')
    raise ParseError(f'object "{obj}" is not supported (route and rule are)')


def iter_batch_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, command)`` for every command of a batch file, comments removed
    and continued lines joined (see :func:`join_line`); blank commands are skipped."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        command, index = join_line(lines, index)
        if command and not command.isspace():
            yield index, command


# ------------------------------------------------------------------ ip -json objects

_IGNORED_ROUTE_KEYS = frozenset(("flags", "cache", "cacheinfo", "family"))
_STATUS_FLAGS = frozenset(
    ("dead", "linkdown", "offload", "trap", "offload_failed", "pervasive", "notify", "unresolved")
)
_ROUTE_KEYS = frozenset(
    (
        "type",
        "dst",
        "nhid",
        "gateway",
        "dev",
        "table",
        "protocol",
        "scope",
        "metric",
        "prefsrc",
        "via",
        "nexthops",
        *words.JSON_KEYS,
    )
)
_HOP_KEYS = frozenset(("gateway", "dev", "weight", "flags", "flow", "encap"))
_RULE_KEYS = frozenset(
    (
        "priority",
        "not",
        "src",
        "srclen",
        "dst",
        "dstlen",
        "tos",
        "fwmark",
        "fwmask",
        "table",
        "protocol",
        "action",
        "nop",
        "family",
        "iif",
        "oif",
        "l3mdev",
        "uid_start",
        "uid_end",
        "ipproto",
        "sport",
        "sport_start",
        "sport_end",
        "dport",
        "dport_start",
        "dport_end",
        "tun_id",
        "suppress_prefixlen",
        "suppress_ifgroup",
        "flow_from",
        "flow_to",
        "goto",
        # State the kernel reports, not part of what is added: a device that does not
        # exist (yet), a goto whose target rule does not.
        "iif_detached",
        "oif_detached",
        "unresolved",
    )
)


def _json_text(value: object, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParseError(f'"{key}": expected a string or a number, got {value!r}')
    return str(value)


def _json_family(obj: Mapping[str, Any]) -> int:
    value = obj.get("family")
    if value is None:
        return AF_UNSPEC
    if value in (AF_INET, AF_INET6):
        return int(value)
    chosen = _family_word(str(value))
    if chosen is None:
        raise ParseError(f'"family": unsupported family {value!r}')
    return chosen


def _json_flags(obj: Mapping[str, Any], what: str) -> int:
    """RTNH_F_ONLINK if ``"flags"`` holds ``"onlink"``; status flags are ignored."""
    flags = obj.get("flags") or []
    if not isinstance(flags, list) or any(f not in _STATUS_FLAGS and f != "onlink" for f in flags):
        raise ParseError(
            f"unsupported {what} flags {flags!r} (onlink is sent, status flags are ignored)"
        )
    return _ONLINK if "onlink" in flags else 0


def _json_hops(obj: Mapping[str, Any], family: int) -> tuple[int, tuple[HopChange, ...]]:
    items = obj.get("nexthops")
    if not isinstance(items, list) or not items:
        raise ParseError(f'"nexthops": expected a list of nexthop objects, got {items!r}')
    hops = []
    for item in items:
        if not isinstance(item, dict):
            raise ParseError(f'"nexthops": expected a nexthop object, got {item!r}')
        if isinstance(item.get("encap"), str):
            words.encap_from_json(item["encap"])
        unknown = item.keys() - _HOP_KEYS
        if unknown:
            raise ParseError(f"unsupported nexthop field(s): {', '.join(sorted(unknown))}")
        gateway = None
        if "gateway" in item:
            text = _json_text(item["gateway"], "gateway")
            family, gateway = parse_address(text, family, "nexthops: gateway")
        device = item.get("dev")
        if device is not None:
            if not isinstance(device, str):
                raise ParseError(f'"nexthops": "dev": expected a device name, got {device!r}')
            device = _device_name(device)
        weight = strtoul(_json_text(item.get("weight", 1), "weight"), '"weight"', 256)
        if weight == 0:
            raise ParseError('"nexthops": "weight" must be 1..256')
        realms = words.realms_from_json(item["flow"]) if "flow" in item else 0
        encap = words.encap_from_json(item["encap"]) if "encap" in item else None
        flags = _json_flags(item, "nexthop")
        hops.append(HopChange(gateway, device, weight, flags, realms, encap))
    return family, tuple(hops)


def route_from_json(obj: Mapping[str, Any]) -> RouteChange:
    """A ``route replace`` from one object of ``ip -json route show``: absent fields
    mean what ``ip`` leaves out (table main, protocol boot, scope universe, type
    unicast, no metric), so replacing a listed route recreates it exactly.  An optional
    ``"family": "inet6"`` settles ``"dst": "default"`` without a gateway.

    ``"nexthops"`` is a multipath route; ``"onlink"`` in ``"flags"`` is sent.  A route
    with ``"nhid"`` uses that nexthop object: its ``"gateway"``, ``"dev"``,
    ``"nexthops"`` and ``onlink`` are the object's (``ip`` shows them with
    ``net.ipv4.nexthop_compat_mode``, the default) and are not sent."""
    if isinstance(obj.get("encap"), str):  # ip -json's flat form: say why it cannot be read
        words.encap_from_json(obj["encap"])
    unknown = obj.keys() - _ROUTE_KEYS - _IGNORED_ROUTE_KEYS
    if unknown:
        raise ParseError(f"unsupported route field(s): {', '.join(sorted(unknown))}")
    rtm_flags = _json_flags(obj, "route")
    family = _json_family(obj)
    if "dst" not in obj:
        raise ParseError('a route object needs "dst"')
    nhid = None
    if "nhid" in obj:
        nhid = strtoul(_json_text(obj["nhid"], "nhid"), '"nhid"')
        obj = {k: v for k, v in obj.items() if k not in ("gateway", "dev", "nexthops")}
        rtm_flags = 0
    # An address settles the family before "default" needs it.
    for key in ("gateway", "prefsrc"):
        if key in obj and family == AF_UNSPEC:
            family = parse_address(_json_text(obj[key], key), AF_UNSPEC, key)[0]
    hops: tuple[HopChange, ...] = ()
    if "nexthops" in obj:
        family, hops = _json_hops(obj, family)
    family, dst, dst_len = parse_prefix(_json_text(obj["dst"], "dst"), family, "dst")
    if family == AF_UNSPEC:
        family = AF_INET
    if not dst:
        dst = bytes(_ADDRESS_SIZE[family])
    rtype = int(RTN.UNICAST)
    if "type" in obj:
        kind = type_number(_json_text(obj["type"], "type"))
        if kind is None:
            raise ParseError(f'"type": unknown route type {obj["type"]!r}')
        rtype = kind
    gateway = prefsrc = None
    if "gateway" in obj:
        gateway = parse_address(_json_text(obj["gateway"], "gateway"), family, "gateway")[1]
    via = False
    if "via" in obj:  # a gateway of the other family: {"family": "inet6", "host": ADDR}
        value = obj["via"]
        if gateway is not None or not isinstance(value, dict) or "host" not in value:
            raise ParseError(f'"via": expected {{"family": …, "host": …}} alone, got {value!r}')
        gateway_family = _json_family(value)
        gateway = parse_address(_json_text(value["host"], "via"), gateway_family, "via")[1]
        via = len(gateway) != _ADDRESS_SIZE[family]
        if via and family != AF_INET:
            raise _unsupported("via", "an IPv6 route via an IPv4 gateway")
    if "prefsrc" in obj:
        prefsrc = parse_address(_json_text(obj["prefsrc"], "prefsrc"), family, "prefsrc")[1]
    attributes, mtu = words.attributes_from_json(obj, family, via=via)
    device = obj.get("dev")
    if device is not None and not isinstance(device, str):
        raise ParseError(f'"dev": expected a device name, got {device!r}')
    return RouteChange(
        "replace",
        int(RTM.NEWROUTE),
        int(NLM_F.CREATE | NLM_F.REPLACE),
        family,
        dst,
        dst_len,
        table_number(_json_text(obj.get("table", "main"), "table")),
        protocol_number(_json_text(obj.get("protocol", "boot"), "protocol")),
        scope_number(_json_text(obj.get("scope", "global"), "scope")),
        rtype,
        gateway,
        None if "metric" not in obj else strtoul(_json_text(obj["metric"], "metric"), "metric"),
        prefsrc,
        mtu,
        device,
        hops,
        nhid,
        rtm_flags,
        attributes,
    )


def rule_from_json(obj: Mapping[str, Any]) -> RuleChange:
    """A ``rule add`` (EEXIST counts as success) from one object of ``ip -json rule
    show``."""
    unknown = obj.keys() - _RULE_KEYS
    if unknown:
        raise ParseError(f"unsupported rule field(s): {', '.join(sorted(unknown))}")
    family = _json_family(obj)
    fields: dict[str, Any] = {}
    for key in ("src", "dst"):
        value = obj.get(key, "all")
        text = _json_text(value, key)
        if text in ("all", "default", "any"):
            continue
        length = obj.get(f"{key}len")
        if length is not None:
            text = f"{text}/{_json_text(length, key + 'len')}"
        fam, packed, plen = parse_prefix(text, family, key)
        family = fam
        fields[key] = socket.inet_ntop(fam, packed)
        fields[f"{key}_len"] = plen
    if family == AF_UNSPEC:
        family = AF_INET
    if "not" in obj:
        fields["flags"] = FIB_RULE_INVERT
    if "priority" in obj:
        fields["priority"] = strtoul(_json_text(obj["priority"], "priority"), "priority")
    if "tos" in obj:
        fields["tos"] = strtoul(_json_text(obj["tos"], "tos"), "tos", 255)
    if "fwmark" in obj:
        fields["fwmark"] = strtoul(_json_text(obj["fwmark"], "fwmark"), "fwmark")
    if "fwmask" in obj:
        fields["fwmask"] = strtoul(_json_text(obj["fwmask"], "fwmask"), "fwmask")
    if "protocol" in obj:
        fields["rule_protocol"] = protocol_number(_json_text(obj["protocol"], "protocol"))
    fields.update(_rule_json_selectors(obj))
    action: int = FR_ACT.TO_TBL
    table = table_number(_json_text(obj.get("table", "main"), "table"))
    if "l3mdev" in obj:
        table = 0 if "table" not in obj else table
    if "goto" in obj:
        action, table = FR_ACT.GOTO, 0
    elif "nop" in obj:
        action, table = FR_ACT.NOP, 0
    elif "action" in obj:
        name = _json_text(obj["action"], "action")
        if name not in _RULE_ACTIONS:
            raise ParseError(f'"action": asyncroute cannot send rule action {name!r}')
        action, table = _RULE_ACTIONS[name], 0
    message = _rule_message(family, table, int(action), fields)
    return RuleChange("add", int(RTM.NEWRULE), int(NLM_F.CREATE | NLM_F.EXCL), message, True)


def _rule_json_selectors(obj: Mapping[str, Any]) -> dict[str, Any]:
    """RuleMessage fields from the keys of ``ip -json rule show`` that ``ip rule add``
    takes one for one (iif, oif, l3mdev, uidrange, ipproto, ports, tun_id, suppress_*,
    realms, goto)."""
    fields: dict[str, Any] = {}

    def text(key: str) -> str:
        return _json_text(obj[key], key)

    if "iif" in obj:
        fields["iifname"] = text("iif")
    if "oif" in obj:
        fields["oifname"] = text("oif")
    if "l3mdev" in obj:
        fields["l3mdev"] = 1
    if "uid_start" in obj:
        end = "uid_end" if "uid_end" in obj else "uid_start"
        fields["uid_range"] = (strtoul(text("uid_start"), "uid"), strtoul(text(end), "uid"))
    if "ipproto" in obj:
        fields["ip_proto"] = ip_protocol_number(text("ipproto"))
    for port in ("sport", "dport"):
        if port in obj:
            number = strtoul(text(port), port, 0xFFFF)
            fields[f"{port}_range"] = (number, number)
        elif f"{port}_start" in obj:
            first = strtoul(text(f"{port}_start"), port, 0xFFFF)
            last = strtoul(text(f"{port}_end"), port, 0xFFFF) if f"{port}_end" in obj else first
            fields[f"{port}_range"] = (first, last)
    if "tun_id" in obj:
        fields["tun_id"] = strtoul(text("tun_id"), "tun_id", 2**64 - 1)
    if "suppress_prefixlen" in obj:
        fields["suppress_prefixlen"] = strtoul(text("suppress_prefixlen"), "prefix length")
    if "suppress_ifgroup" in obj:
        group = text("suppress_ifgroup")
        fields["suppress_ifgroup"] = 0 if group == "default" else strtoul(group, "group")
    if "flow_to" in obj:
        realms = text("flow_to")
        if "flow_from" in obj:
            realms = f"{text('flow_from')}/{realms}"
        fields["flow"] = _realms(realms)
    if "goto" in obj:
        fields["goto"] = strtoul(text("goto"), "goto target")
    return fields


def change_from_json(obj: object) -> Change:
    """A change from one ``ip -json`` object: a rule if it has ``priority`` (``ip
    -json rule show``), else a route (``ip -json route show``, which says ``metric``)."""
    if not isinstance(obj, dict):
        raise ParseError(f"expected a JSON object, got {type(obj).__name__}")
    if "priority" in obj or "srclen" in obj or "action" in obj or "nop" in obj:
        return rule_from_json(obj)
    return route_from_json(obj)


def iter_json(text: str) -> Iterator[tuple[int, int, object]]:
    """``(line number, item number, object)`` for every object in ``text``: one JSON
    array (``ip -json`` output), one object, or JSON lines (one object per line).

    Raises :class:`ParseError` (with the line) where the text stops being JSON; the
    objects before it have been yielded.
    """
    decoder = json.JSONDecoder()
    length = len(text)
    counted = 0  # newlines are counted up to here
    line = 1

    def line_at(position: int) -> int:
        nonlocal counted, line
        line += text.count("\n", counted, position)
        counted = position
        return line

    def skip(position: int) -> int:
        while position < length and text[position] in " \t\r\n":
            position += 1
        return position

    def decode(position: int) -> tuple[object, int]:
        try:
            return decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ParseError(f"line {exc.lineno}: invalid JSON: {exc.msg}") from None

    def fail(position: int, what: str) -> ParseError:
        return ParseError(f"line {line_at(position)}: invalid JSON: {what}")

    item = 0
    position = skip(0)
    if position < length and text[position] == "[":
        position = skip(position + 1)
        first = True
        while position < length and text[position] != "]":
            if not first:
                if text[position] != ",":
                    raise fail(position, "expected ',' or ']'")
                position = skip(position + 1)
            first = False
            start = position
            obj, position = decode(position)
            item += 1
            yield line_at(start), item, obj
            position = skip(position)
        if position >= length:
            raise fail(position, "unterminated array")
        position = skip(position + 1)
        if position < length:
            raise fail(position, "text after the array")
        return
    while position < length:
        start = position
        obj, position = decode(position)
        items = obj if isinstance(obj, list) else [obj]
        for inner in items:
            item += 1
            yield line_at(start), item, inner
        position = skip(position)


def looks_like_json(text: str) -> bool:
    """True if ``text`` starts (after whitespace) with ``[`` or ``{``."""
    stripped = text.lstrip()
    return stripped[:1] in ("[", "{")
