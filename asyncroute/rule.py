"""Policy-routing rules: Cilium's fwmark ``Rule``, and every other selector and action
the kernel keeps; validated, its ``String()`` form, replace and delete.

The kernel has no "replace" for rules: :func:`replace_rule` lists the family's rules and
adds one (NLM_F_CREATE|NLM_F_EXCL) only if none matches (cilium-route-spec §7).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from typing import NamedTuple, TypedDict, Unpack

from ._codec import pack_rule_body
from ._values import (
    U32_MAX,
    IPAddress,
    IPNetwork,
    check_attributes,
    check_uint,
    ip_protocol_name,
    parse_network,
)
from .connection import DUMP_RETRIES, NetlinkConnection
from .constants import AF_INET, AF_INET6, FR_ACT, NLM_F, RT_TABLE, RTM, RTPROT
from .errors import AsyncrouteError, ExistsError
from .messages import Address, Message, RawAttributes, RuleMessage

__all__ = ["Rule", "delete_rule", "delete_rules", "replace_rule", "replace_rules"]

#: ``fib_rule_hdr.flags`` bit of ``ip rule add not …`` (``linux/fib_rules.h``).  The
#: kernel's other bits (permanent, unresolved, detached) describe its state, not the rule.
FIB_RULE_INVERT = 0x2
#: FRA_SPORT_MASK / FRA_DPORT_MASK (Linux 6.15+): the kernel reports 0xffff for a single
#: port, which it also sets itself when no mask is sent; a listing leaves that one out.
_FRA_SPORT_MASK, _FRA_DPORT_MASK = 28, 29
_FULL_PORT_MASK = b"\xff\xff"
_U64_MAX = 2**64 - 1
# IFNAMSIZ is 16 including the NUL.  The kernel keeps any such name in a rule (it need
# not be a device that exists, or one dev_valid_name() would accept).
_IFNAMSIZ = 16

Range = tuple[int, int]
_IPInterface = IPv4Interface | IPv6Interface
#: rtm_protocol names (RTPROT_*), as ``ip`` prints the common ones.
_PROTOCOL_NAMES = {int(kind): kind.name.lower() for kind in RTPROT}
_ACTION_WORDS: dict[int, str] = {
    FR_ACT.NOP: "nop",
    FR_ACT.BLACKHOLE: "blackhole",
    FR_ACT.UNREACHABLE: "unreachable",
    FR_ACT.PROHIBIT: "prohibit",
}


class _RuleExtras(NamedTuple):
    """The fields beyond Cilium's, held by a Rule as one value (one store on the path of
    bulk construction; see the properties of :class:`Rule` for their meaning)."""

    iif: str
    oif: str
    tos: int
    invert: bool
    action: int
    goto: int
    protocol: int
    ip_proto: int
    sport: Range | None
    dport: Range | None
    uid_range: Range | None
    l3mdev: bool
    suppress_prefixlen: int | None
    suppress_ifgroup: int | None
    tun_id: int
    realms: int
    other_attributes: RawAttributes


#: The values of the fields beyond Cilium's that mean "not set".
_UNSET = _RuleExtras(
    "", "", 0, False, FR_ACT.TO_TBL, 0, 0, 0, None, None, None, False, None, None, 0, 0, ()
)  # fmt: skip
#: The fields beyond Cilium's, in the order they are compared and shown.
_EXTRA_FIELDS = _RuleExtras._fields


@dataclass(frozen=True, slots=True, init=False, repr=False)
class Rule:
    """A policy-routing rule: Cilium's fields, and keyword-only the kernel's others.

    Args:
        priority: rule preference (0 is a real preference, like the ``local`` rule's).
        mark: fwmark to match (0: any).  mask: fwmask.  Each 0..2**32-1.
        src: source prefix (``from``), None for all.  dst: destination prefix (``to``).
            A string or ipaddress network (host bits must be clear), or an
            ``ipaddress.ip_interface`` such as ``IPv4Interface("198.51.100.1/24")``: the
            kernel keeps a selector's host bits as given and names the rule by them
            (``ip rule add from 198.51.100.1/24``).  ``src``/``dst`` are always the
            networks; the exact address is kept aside and sent (a listed rule keeps it).
        table: the table to look up (0..2**32-1; Cilium never passes 0).

    Keyword-only, everything else a kernel rule holds.  Each defaults to "not set", and
    a rule that sets none of them is Cilium's: sent, compared and printed exactly as
    before these fields existed.

    Keyword Args:
        iif (str): input device name (FRA_IIFNAME, ``iif``); "" for any.  The device
            need not exist (the kernel keeps the name).
        oif (str): output device name (FRA_OIFNAME, ``oif``); "" for any.
        tos (int): the TOS/DSCP byte to match (``tos``); 0 for any.
        invert (bool): FIB_RULE_INVERT: the rule applies to what its selectors do *not*
            match (``not``).
        action (int | None): FR_ACT (``fib_rule_hdr.action``): TO_TBL (look up
            ``table``; the default), GOTO (go on at the rule of priority ``goto``),
            NOP, BLACKHOLE, UNREACHABLE, PROHIBIT; 0..255.  Left out (None), it is GOTO
            when ``goto`` is given, else TO_TBL.
        goto (int): the priority a GOTO rule continues at (FRA_GOTO, ``goto``); 0 for
            none.  Only with action GOTO, and after ``priority`` (the kernel refuses
            backward gotos).
        protocol (int): who added the rule (FRA_PROTOCOL, ``protocol``; 2 is kernel, 4
            static); 0 for unspecified, which is also what the kernel reports then.
        ip_proto (int): the IP protocol to match (FRA_IP_PROTO, ``ipproto``; 6 is tcp);
            0 for any.
        sport (tuple[int, int] | int | None): source port range ``(start, end)``
            (FRA_SPORT_RANGE, ``sport``); an int is a single port; None for any.
            1..65535, start ≤ end.
        dport (tuple[int, int] | int | None): destination port range, as ``sport``
            (FRA_DPORT_RANGE, ``dport``).
        uid_range (tuple[int, int] | int | None): the socket owner uids ``(start, end)``
            to match (FRA_UID_RANGE, ``uidrange``); an int is a single uid; None for
            any.
        l3mdev (bool): look up the table of the packet's L3 master device (VRF;
            FRA_L3MDEV, ``l3mdev``); then ``table`` must be 0.
        suppress_prefixlen (int | None): reject a lookup result whose prefix is this
            long or shorter (``suppress_prefixlength``); None for unset (the kernel
            reports unset as 0xFFFFFFFF).  0..2**32-2.
        suppress_ifgroup (int | None): reject a lookup result through a device of this
            group (``suppress_ifgroup``); None for unset.  0..2**32-2.
        tun_id (int): the tunnel id to match (FRA_TUN_ID, ``tun_id``); 0 for any.
            0..2**64-1.
        realms (int): FRA_FLOW (``realms``): ``to`` realm in the low 16 bits, ``from``
            in the high 16 bits (IPv4 only); 0 for none.
        other_attributes (RawAttributes): ``(FRA_* number, bytes)`` pairs the library
            does not model (a listing keeps what it could not decode, such as a port
            mask), sent exactly as given.

    Rules are immutable, hashable and equal when every field (the exact selector
    addresses included) is equal.  Bad values are a ValueError or TypeError naming the
    field, raised here, before anything is sent.
    """

    priority: int
    mark: int
    mask: int
    src: IPNetwork | None
    dst: IPNetwork | None
    table: int
    # The selectors' addresses as the kernel holds them (host bits kept): what is sent.
    _src_address: IPAddress | None
    _dst_address: IPAddress | None
    # The fields beyond Cilium's, as one value (compared by replace_rule's lookup too).
    _extra: _RuleExtras

    def __init__(
        self,
        priority: int = 0,
        mark: int = 0,
        mask: int = 0,
        src: str | IPNetwork | IPv4Interface | IPv6Interface | None = None,
        dst: str | IPNetwork | IPv4Interface | IPv6Interface | None = None,
        table: int = 0,
        **fields: Unpack[RuleFieldArgs],
    ) -> None:
        setter = object.__setattr__
        setter(self, "priority", check_uint(priority, "priority", U32_MAX))
        setter(self, "mark", check_uint(mark, "mark", U32_MAX))
        setter(self, "mask", check_uint(mask, "mask", U32_MAX))
        source = source_address = target = target_address = None
        if src is not None:
            source, source_address = _parse_selector(src, "src")
        if dst is not None:
            target, target_address = _parse_selector(dst, "dst")
            if source is not None and target is not None and source.version != target.version:
                raise ValueError(f"src {source} and dst {target} are of different families")
        setter(self, "src", source)
        setter(self, "dst", target)
        setter(self, "table", check_uint(table, "table", U32_MAX))
        setter(self, "_src_address", source_address)
        setter(self, "_dst_address", target_address)
        # Cilium's rule (the common case, on the path of bulk replace_rules) has no
        # keyword fields: one test, nothing to check.
        setter(self, "_extra", _rule_extras(priority, table, **fields) if fields else _UNSET)

    # ------------------------------------------------------------------ other fields

    @property
    def iif(self) -> str:
        """Input device name (FRA_IIFNAME, ``iif``); "" for any."""
        return self._extra.iif

    @property
    def oif(self) -> str:
        """Output device name (FRA_OIFNAME, ``oif``); "" for any."""
        return self._extra.oif

    @property
    def tos(self) -> int:
        """The TOS/DSCP byte to match; 0 for any."""
        return self._extra.tos

    @property
    def invert(self) -> bool:
        """FIB_RULE_INVERT (``not``)."""
        return self._extra.invert

    @property
    def action(self) -> int:
        """FR_ACT: TO_TBL (look up ``table``), GOTO, NOP, BLACKHOLE, UNREACHABLE,
        PROHIBIT."""
        return self._extra.action

    @property
    def goto(self) -> int:
        """The priority a GOTO rule continues at; 0 for none."""
        return self._extra.goto

    @property
    def protocol(self) -> int:
        """Who added the rule (FRA_PROTOCOL); 0 for unspecified."""
        return self._extra.protocol

    @property
    def ip_proto(self) -> int:
        """The IP protocol to match (``ipproto``); 0 for any."""
        return self._extra.ip_proto

    @property
    def sport(self) -> Range | None:
        """Source port range ``(start, end)``; None for any."""
        return self._extra.sport

    @property
    def dport(self) -> Range | None:
        """Destination port range ``(start, end)``; None for any."""
        return self._extra.dport

    @property
    def uid_range(self) -> Range | None:
        """Socket owner uids ``(start, end)``; None for any."""
        return self._extra.uid_range

    @property
    def l3mdev(self) -> bool:
        """Look up the table of the packet's L3 master device."""
        return self._extra.l3mdev

    @property
    def suppress_prefixlen(self) -> int | None:
        """``suppress_prefixlength``; None for unset."""
        return self._extra.suppress_prefixlen

    @property
    def suppress_ifgroup(self) -> int | None:
        """``suppress_ifgroup``; None for unset."""
        return self._extra.suppress_ifgroup

    @property
    def tun_id(self) -> int:
        """The tunnel id to match; 0 for any."""
        return self._extra.tun_id

    @property
    def realms(self) -> int:
        """FRA_FLOW: ``to`` realm in the low 16 bits, ``from`` in the high 16 bits."""
        return self._extra.realms

    @property
    def other_attributes(self) -> RawAttributes:
        """``(FRA_* number, bytes)`` pairs the library does not model, sent as given."""
        return self._extra.other_attributes

    # ------------------------------------------------------------------ text

    def __str__(self) -> str:
        """Cilium's ``Rule.String()``: ``"P: from X|all to Y|all lookup main|N[ mark 0x..
        mask 0x..]"``; for a rule with other fields also ``ip rule``'s words for them.

        Other than Cilium: ``not`` before ``from`` for an inverted rule; a selector with
        host bits as the kernel holds it (``from 198.51.100.1/24``); an action other
        than TO_TBL in place of ``lookup N`` (``goto 110``, ``nop``, ``blackhole``,
        ``unreachable``, ``prohibit``, ``action N``; with ``lookup N`` after it when the
        table is not 0); then, in this order, ``tos 0x10``, ``iif NAME``, ``oif NAME``,
        ``l3mdev``, ``uidrange A-B``, ``ipproto NAME``, ``sport A[-B]``, ``dport
        A[-B]``, ``tun_id N``, ``realms [FROM/]TO``, ``suppress_prefixlength N``,
        ``suppress_ifgroup N``, ``proto NAME`` and ``attribute N 0xHEX`` for each
        other attribute.
        """
        source = "all" if self.src is None else f"{self._src_address}/{self.src.prefixlen}"
        target = "all" if self.dst is None else f"{self._dst_address}/{self.dst.prefixlen}"
        table = "main" if self.table == RT_TABLE.MAIN else str(self.table)
        if self.action == FR_ACT.TO_TBL:
            verdict = f"lookup {table}"
        else:
            if self.action == FR_ACT.GOTO:
                verdict = f"goto {self.goto}"
            else:
                verdict = _ACTION_WORDS.get(self.action, f"action {self.action}")
            if self.table:
                verdict += f" lookup {table}"
        invert = "not " if self.invert else ""
        text = f"{self.priority}: {invert}from {source} to {target} {verdict}"
        if self.mark:
            text += f" mark {self.mark:#x} mask {self.mask:#x}"
        return text + "".join(f" {word}" for word in self._extra_words())

    def _extra_words(self) -> list[str]:
        words: list[str] = []
        if self.tos:
            words.append(f"tos {self.tos:#x}")
        if self.iif:
            words.append(f"iif {self.iif}")
        if self.oif:
            words.append(f"oif {self.oif}")
        if self.l3mdev:
            words.append("l3mdev")
        if self.uid_range is not None:
            words.append(f"uidrange {self.uid_range[0]}-{self.uid_range[1]}")
        if self.ip_proto:
            words.append(f"ipproto {ip_protocol_name(self.ip_proto)}")
        for word, ports in (("sport", self.sport), ("dport", self.dport)):
            if ports is not None:
                first, last = ports
                words.append(f"{word} {first}" + (f"-{last}" if last != first else ""))
        if self.tun_id:
            words.append(f"tun_id {self.tun_id}")
        if self.realms:
            origin, to = self.realms >> 16, self.realms & 0xFFFF
            words.append(f"realms {origin}/{to}" if origin else f"realms {to}")
        if self.suppress_prefixlen is not None:
            words.append(f"suppress_prefixlength {self.suppress_prefixlen}")
        if self.suppress_ifgroup is not None:
            words.append(f"suppress_ifgroup {self.suppress_ifgroup}")
        if self.protocol:
            words.append(f"proto {_PROTOCOL_NAMES.get(self.protocol, str(self.protocol))}")
        words += [f"attribute {number} 0x{value.hex()}" for number, value in self.other_attributes]
        return words

    def __repr__(self) -> str:
        """``Rule(...)`` with Cilium's six fields and every other field that is set; a
        selector with host bits shows as the ``ip_interface`` that builds it."""
        parts = [
            f"priority={self.priority!r}",
            f"mark={self.mark!r}",
            f"mask={self.mask!r}",
            f"src={_selector_repr(self.src, self._src_address)}",
            f"dst={_selector_repr(self.dst, self._dst_address)}",
            f"table={self.table!r}",
        ]
        for name, value, unset in zip(_EXTRA_FIELDS, self._extra, _UNSET, strict=True):
            if value != unset:
                shown = f"FR_ACT.{value.name}" if isinstance(value, FR_ACT) else repr(value)
                parts.append(f"{name}={shown}")
        return f"Rule({', '.join(parts)})"

    # ------------------------------------------------------------------ wire

    def _check_family(self, family: int) -> None:
        version = 4 if family == AF_INET else 6
        for field_name, net in (("src", self.src), ("dst", self.dst)):
            if net is not None and net.version != version:
                suffix = "_ipv6" if net.version == 6 else ""
                raise ValueError(
                    f"{field_name}: {net} is IPv{net.version} but the rule is IPv{version}; "
                    f"use replace_rule{suffix}/delete_rule{suffix}"
                )
        if self.realms and family == AF_INET6:
            raise ValueError("realms: IPv6 rules have no realms (FRA_FLOW is IPv4's)")

    def _message(self, family: int, *, delete: bool = False) -> RuleMessage:
        """The RTM_NEWRULE (or, ``delete``, RTM_DELRULE) body for this rule."""
        # Cilium sends FRA_PRIORITY, FRA_FWMARK and FRA_FWMASK even when 0; the table
        # goes in the header below 256, else in FRA_TABLE.  A delete says action UNSPEC
        # (any) for TO_TBL, as Cilium's does; other actions are named.  The kernel
        # compares the selectors' addresses as it holds them: the exact ones are sent.
        extra = self._extra
        action = extra.action
        if delete and action == FR_ACT.TO_TBL:
            action = FR_ACT.UNSPEC
        return RuleMessage(
            family=family,
            dst_len=0 if self.dst is None else self.dst.prefixlen,
            src_len=0 if self.src is None else self.src.prefixlen,
            tos=self.tos,
            table=self.table if self.table < 256 else RT_TABLE.UNSPEC,
            action=action,
            flags=FIB_RULE_INVERT if self.invert else 0,
            dst=self._dst_address,
            src=self._src_address,
            priority=self.priority,
            fwmark=self.mark,
            fwmask=self.mask,
            table_id=self.table if self.table >= 256 else None,
            rule_protocol=self.protocol or None,
            iifname=self.iif or None,
            oifname=self.oif or None,
            goto=self.goto or None,
            flow=self.realms or None,
            suppress_ifgroup=self.suppress_ifgroup,
            suppress_prefixlen=self.suppress_prefixlen,
            l3mdev=1 if self.l3mdev else None,
            ip_proto=self.ip_proto or None,
            tun_id=self.tun_id or None,
            uid_range=self.uid_range,
            sport_range=self.sport,
            dport_range=self.dport,
            other=self.other_attributes,
        )

    def _body(self, family: int, *, delete: bool = False) -> bytes | RuleMessage:
        """What a bulk call sends for this rule: a Cilium rule's body packed in one
        call (the hot path of replace_rules and delete_rules), else its message."""
        if self._extra is not _UNSET:
            return self._message(family, delete=delete)
        src, dst = self._src_address, self._dst_address
        return pack_rule_body(
            family,
            FR_ACT.UNSPEC if delete else FR_ACT.TO_TBL,
            self.table,
            self.priority,
            self.mark,
            self.mask,
            None if src is None else src.packed,
            0 if self.src is None else self.src.prefixlen,
            None if dst is None else dst.packed,
            0 if self.dst is None else self.dst.prefixlen,
        )

    def _matches(self, found: Rule) -> bool:
        """Cilium's lookupRule: priority, mark, mask 0 and src/dst None mean "any"; the
        table must be equal, and so must every field beyond Cilium's (a rule with ``iif
        v0`` is another rule than one without)."""
        if self.priority and found.priority != self.priority:
            return False
        if self.mark and found.mark != self.mark:
            return False
        if self.mask and found.mask != self.mask:
            return False
        if self.src is not None and (
            found.src != self.src or found._src_address != self._src_address
        ):
            return False
        if self.dst is not None and (
            found.dst != self.dst or found._dst_address != self._dst_address
        ):
            return False
        return found.table == self.table and found._extra == self._extra


def _action_name(action: int) -> str:
    return action.name if isinstance(action, FR_ACT) else str(action)


class RuleFieldArgs(TypedDict, total=False):
    """The keyword-only arguments of :class:`Rule` beyond Cilium's fields (documented
    there)."""

    iif: str
    oif: str
    tos: int
    invert: bool
    action: int | None
    goto: int
    protocol: int
    ip_proto: int
    sport: Range | int | None
    dport: Range | int | None
    uid_range: Range | int | None
    l3mdev: bool
    suppress_prefixlen: int | None
    suppress_ifgroup: int | None
    tun_id: int
    realms: int
    other_attributes: RawAttributes


def _rule_extras(
    priority: int,
    table: int,
    *,
    iif: str = "",
    oif: str = "",
    tos: int = 0,
    invert: bool = False,
    action: int | None = None,
    goto: int = 0,
    protocol: int = 0,
    ip_proto: int = 0,
    sport: Range | int | None = None,
    dport: Range | int | None = None,
    uid_range: Range | int | None = None,
    l3mdev: bool = False,
    suppress_prefixlen: int | None = None,
    suppress_ifgroup: int | None = None,
    tun_id: int = 0,
    realms: int = 0,
    other_attributes: RawAttributes = (),
) -> _RuleExtras:
    """The fields beyond Cilium's of a rule of ``priority`` and ``table``, validated."""
    goto = check_uint(goto, "goto", U32_MAX)
    if action is None:
        action = FR_ACT.GOTO if goto else FR_ACT.TO_TBL
    action = check_uint(action, "action", 255)
    with contextlib.suppress(ValueError):
        action = FR_ACT(action)
    if action == FR_ACT.GOTO and not goto:
        raise ValueError("goto: action GOTO needs a target priority (goto=N)")
    if goto and action != FR_ACT.GOTO:
        raise ValueError(f"goto: a goto target needs action GOTO, not {_action_name(action)}")
    if goto and goto <= priority:
        raise ValueError(
            f"goto: target {goto} is not after priority {priority} "
            "(the kernel refuses backward gotos)"
        )
    if type(invert) is not bool:
        raise TypeError(f"invert must be a bool, got {invert!r}")
    if type(l3mdev) is not bool:
        raise TypeError(f"l3mdev must be a bool, got {l3mdev!r}")
    if l3mdev and table:
        raise ValueError("l3mdev: a rule with l3mdev takes its table from the device; "
                         f"table must be 0, not {table}")  # fmt: skip
    uids = _check_range(uid_range, "uid_range", 0, U32_MAX)
    if uids == (0, U32_MAX):
        raise ValueError("uid_range: (0, 2**32-1) is every uid, which the kernel "
                         "reads as unset; use None")  # fmt: skip
    return _RuleExtras(
        _check_name(iif, "iif"),
        _check_name(oif, "oif"),
        check_uint(tos, "tos", 255),
        invert,
        action,
        goto,
        check_uint(protocol, "protocol", 255),
        check_uint(ip_proto, "ip_proto", 255),
        _check_range(sport, "sport", 1, 0xFFFF),
        _check_range(dport, "dport", 1, 0xFFFF),
        uids,
        l3mdev,
        _check_optional(suppress_prefixlen, "suppress_prefixlen"),
        _check_optional(suppress_ifgroup, "suppress_ifgroup"),
        check_uint(tun_id, "tun_id", _U64_MAX),
        check_uint(realms, "realms", U32_MAX),
        check_attributes(other_attributes, "other_attributes"),
    )


def _parse_selector(value: object, name: str) -> tuple[IPNetwork | None, IPAddress | None]:
    """``(network, exact address)`` of a selector; an ip_interface keeps its host bits."""
    if value is None:
        return None, None
    if isinstance(value, _IPInterface):  # before parse_network: an interface is an address
        return value.network, value.ip
    network = parse_network(value, name)
    return network, network.network_address


def _selector_repr(network: IPNetwork | None, address: IPAddress | None) -> str:
    if network is None or address is None or address == network.network_address:
        return repr(network)
    return repr(ip_interface((address, network.prefixlen)))


def _check_name(value: object, name: str) -> str:
    """A device name as a rule holds it (any string of up to 15 bytes; "" unset)."""
    if type(value) is not str:
        raise TypeError(f"{name} must be a str, got {value!r}")
    if len(value.encode()) >= _IFNAMSIZ or "\0" in value:
        raise ValueError(f"{name}: {value!r} is not a device name of at most 15 bytes")
    return value


def _check_range(value: object, name: str, low: int, high: int) -> Range | None:
    """``(start, end)`` with low ≤ start ≤ end ≤ high; an int N is ``(N, N)``."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(f"{name} must be a (start, end) pair, an int or None, got {value!r}")
    start = check_uint(value[0], name, high)
    end = check_uint(value[1], name, high)
    if start < low:
        raise ValueError(f"{name} must be in {low}..{high}, got {start}")
    if start > end:
        raise ValueError(f"{name}: start {start} is after end {end}")
    return start, end


def _check_optional(value: object, name: str) -> int | None:
    """None (unset) or 0..2**32-2 (the kernel's "unset" is 2**32-1)."""
    if value is None:
        return None
    if value == U32_MAX and type(value) is int:
        raise ValueError(f"{name}: {U32_MAX} is the kernel's unset; use None")
    return check_uint(value, name, U32_MAX - 1)


def _selector(address: Address | None, length: int) -> IPv4Interface | IPv6Interface | None:
    # The kernel keeps a selector's host bits (`ip rule add from 192.0.2.41/24` lists as
    # such) and compares them when deleting: the interface keeps them.
    if address is None or length == 0:
        return None
    return ip_interface((address, length))


def _unset(value: int | None) -> int | None:
    return None if value is None or value == U32_MAX else value


def _implied(pair: tuple[int, bytes], found: RuleMessage) -> bool:
    """A port mask the kernel reports for a single port, and sets itself without one."""
    number, value = pair
    ports = {_FRA_SPORT_MASK: found.sport_range, _FRA_DPORT_MASK: found.dport_range}.get(number)
    return ports is not None and ports[0] == ports[1] and value == _FULL_PORT_MASK


def _rule_from_message(found: RuleMessage) -> Rule:
    """The Rule a kernel rule message describes: every selector and action, the
    selectors' exact addresses included.  Left out are the header's state flags
    (permanent, unresolved, detached) and a single port's implied port mask."""
    other = found.other
    if other:
        other = tuple(pair for pair in other if not _implied(pair, found))
    return Rule(
        priority=found.priority or 0,
        mark=found.fwmark or 0,
        mask=found.fwmask or 0,
        src=_selector(found.src, found.src_len),
        dst=_selector(found.dst, found.dst_len),
        table=found.table_number,
        iif=found.iifname or "",
        oif=found.oifname or "",
        tos=found.tos,
        invert=bool(found.flags & FIB_RULE_INVERT),
        action=found.action,
        goto=found.goto or 0,
        protocol=found.rule_protocol or 0,
        ip_proto=found.ip_proto or 0,
        sport=found.sport_range,
        dport=found.dport_range,
        uid_range=found.uid_range,
        l3mdev=bool(found.l3mdev),
        suppress_prefixlen=_unset(found.suppress_prefixlen),
        suppress_ifgroup=_unset(found.suppress_ifgroup),
        tun_id=found.tun_id or 0,
        realms=found.flow or 0,
        other_attributes=other,
    )


_CREATE_EXCL = int(NLM_F.CREATE | NLM_F.EXCL)
_ECHO = int(NLM_F.ECHO)


async def _find(conn: NetlinkConnection, rule: Rule, family: int) -> bool:
    query = Message(RTM.GETRULE, 0, RuleMessage(family=family))
    async with contextlib.aclosing(conn.dump(query, retry_interrupted=DUMP_RETRIES)) as replies:
        async for reply in replies:
            body = reply.body
            if isinstance(body, RuleMessage) and rule._matches(_rule_from_message(body)):
                return True
    return False


async def replace_rule(conn: NetlinkConnection, rule: Rule, family: int = AF_INET) -> bool:
    """Ensure ``rule`` exists; see :meth:`asyncroute.Connection.replace_rule`.  True if
    it was added, False if a matching rule was there already."""
    rule._check_family(family)
    if await _find(conn, rule, family):
        return False
    try:
        await conn.request(Message(RTM.NEWRULE, _CREATE_EXCL, rule._message(family)))
    except ExistsError:
        return False  # an identical rule appeared since the listing: what we wanted
    return True


async def delete_rule(conn: NetlinkConnection, rule: Rule, family: int = AF_INET) -> Rule:
    """Delete ``rule``; see :meth:`asyncroute.Connection.delete_rule`."""
    rule._check_family(family)
    # NLM_F_ECHO: the kernel answers with the rule it removed (the first that matched).
    request = Message(RTM.DELRULE, _ECHO, rule._message(family, delete=True))
    reply = await conn.request(request)
    if reply is not None and isinstance(reply.body, RuleMessage):
        return _rule_from_message(reply.body)
    return rule


def _family_of(rule: Rule, family: int | None) -> int:
    if family is not None:
        return family
    for net in (rule.src, rule.dst):
        if net is not None:
            return AF_INET if net.version == 4 else AF_INET6
    return AF_INET


async def _listing(conn: NetlinkConnection, family: int) -> list[RuleMessage]:
    query = Message(RTM.GETRULE, 0, RuleMessage(family=family))
    replies = conn.dump(query, retry_interrupted=DUMP_RETRIES)
    return [reply.body async for reply in replies if isinstance(reply.body, RuleMessage)]


class _Existing:
    """A family's listed rules, by priority (replace_rule's lookup with priority 0
    compares against all of them)."""

    def __init__(self, messages: list[RuleMessage]) -> None:
        self.rules = [_rule_from_message(m) for m in messages]
        self.by_priority: dict[int, list[Rule]] = {}
        for found in self.rules:
            self.by_priority.setdefault(found.priority, []).append(found)

    def match(self, rule: Rule) -> bool:
        candidates = self.by_priority.get(rule.priority, ()) if rule.priority else self.rules
        return any(rule._matches(found) for found in candidates)


async def replace_rules(
    conn: NetlinkConnection, rules: Iterable[Rule], family: int | None = None
) -> list[bool | BaseException]:
    """Ensure many rules exist; see :meth:`asyncroute.Connection.replace_rules`.

    One listing per family instead of one per rule, then the missing rules are added
    through one batch.  EEXIST (an identical rule added meanwhile, or twice in ``rules``)
    counts as success.
    """
    wanted = [(rule, _family_of(rule, family)) for rule in rules]
    for rule, rule_family in wanted:
        rule._check_family(rule_family)
    existing = {f: _Existing(await _listing(conn, f)) for f in {f for _, f in wanted}}
    batch = conn.batch()
    try:
        for rule, rule_family in wanted:
            if existing[rule_family].match(rule):
                batch.add(_PRESENT)
                continue
            if batch.full:
                await batch.pause()
            batch.add_request(RTM.NEWRULE, _CREATE_EXCL, rule._body(rule_family))
        errors = await batch.finish()
    finally:
        batch.abandon()
    return [
        True if error is None or error is _PRESENT or isinstance(error, ExistsError) else error
        for error in errors
    ]


async def delete_rules(
    conn: NetlinkConnection, rules: Iterable[Rule], family: int | None = None
) -> list[bool | BaseException]:
    """Delete many rules through one batch; NotFoundError in place of absent ones."""
    batch = conn.batch()
    try:
        for rule in rules:
            rule_family = _family_of(rule, family)
            rule._check_family(rule_family)
            if batch.full:
                await batch.pause()
            batch.add_request(RTM.DELRULE, 0, rule._body(rule_family, delete=True))
        errors = await batch.finish()
    finally:
        batch.abandon()
    return [True if error is None else error for error in errors]


class _Present(AsyncrouteError):
    """Marks, in a batch's results, a rule that already existed (nothing was sent)."""


_PRESENT = _Present("the rule exists already")
