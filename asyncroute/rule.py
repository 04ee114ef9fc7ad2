"""Cilium's fwmark ``Rule``: validated, its ``String()`` form, replace and delete.

The kernel has no "replace" for rules: :func:`replace_rule` lists the family's rules and
adds one (NLM_F_CREATE|NLM_F_EXCL) only if none matches (cilium-route-spec §7).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_network

from ._values import U32_MAX, IPNetwork, check_uint, parse_network
from .connection import DUMP_RETRIES, NetlinkConnection
from .constants import AF_INET, AF_INET6, FR_ACT, NLM_F, RT_TABLE, RTM
from .errors import AsyncrouteError, ExistsError
from .messages import Address, Message, RuleMessage

__all__ = ["Rule", "delete_rule", "delete_rules", "replace_rule", "replace_rules"]


@dataclass(frozen=True, slots=True, init=False)
class Rule:
    """A policy-routing rule as Cilium describes it.

    Args:
        priority: rule preference (0 is a real preference, like the ``local`` rule's).
        mark: fwmark to match (0: any).  mask: fwmask.  Each 0..2**32-1.
        src: source prefix (``from``), None for all.  dst: destination prefix (``to``).
        table: the table to look up (0..2**32-1; Cilium never passes 0).
    """

    priority: int
    mark: int
    mask: int
    src: IPNetwork | None
    dst: IPNetwork | None
    table: int

    def __init__(
        self,
        priority: int = 0,
        mark: int = 0,
        mask: int = 0,
        src: str | IPNetwork | None = None,
        dst: str | IPNetwork | None = None,
        table: int = 0,
    ) -> None:
        setter = object.__setattr__
        setter(self, "priority", check_uint(priority, "priority", U32_MAX))
        setter(self, "mark", check_uint(mark, "mark", U32_MAX))
        setter(self, "mask", check_uint(mask, "mask", U32_MAX))
        source = None if src is None else parse_network(src, "src")
        target = None if dst is None else parse_network(dst, "dst")
        if source is not None and target is not None and source.version != target.version:
            raise ValueError(f"src {source} and dst {target} are of different families")
        setter(self, "src", source)
        setter(self, "dst", target)
        setter(self, "table", check_uint(table, "table", U32_MAX))

    def __str__(self) -> str:
        """Cilium's ``Rule.String()``: ``"P: from X|all to Y|all lookup main|N[ mark 0x.. mask
        0x..]"``."""
        source = "all" if self.src is None else str(self.src)
        target = "all" if self.dst is None else str(self.dst)
        table = "main" if self.table == RT_TABLE.MAIN else str(self.table)
        text = f"{self.priority}: from {source} to {target} lookup {table}"
        if self.mark:
            text += f" mark {self.mark:#x} mask {self.mask:#x}"
        return text

    def _check_family(self, family: int) -> None:
        version = 4 if family == AF_INET else 6
        for field, net in (("src", self.src), ("dst", self.dst)):
            if net is not None and net.version != version:
                suffix = "_ipv6" if net.version == 6 else ""
                raise ValueError(
                    f"{field}: {net} is IPv{net.version} but the rule is IPv{version}; "
                    f"use replace_rule{suffix}/delete_rule{suffix}"
                )

    def _message(self, family: int, action: int) -> RuleMessage:
        # Cilium sends FRA_PRIORITY, FRA_FWMARK and FRA_FWMASK even when 0; the table
        # goes in the header below 256, else in FRA_TABLE.
        return RuleMessage(
            family=family,
            dst_len=0 if self.dst is None else self.dst.prefixlen,
            src_len=0 if self.src is None else self.src.prefixlen,
            table=self.table if self.table < 256 else RT_TABLE.UNSPEC,
            action=action,
            dst=None if self.dst is None else self.dst.network_address,
            src=None if self.src is None else self.src.network_address,
            priority=self.priority,
            fwmark=self.mark,
            fwmask=self.mask,
            table_id=self.table if self.table >= 256 else None,
        )

    def _matches(self, found: RuleMessage) -> bool:
        """lookupRule: 0/None in the spec means "any"; the table must be equal."""
        if self.priority and (found.priority or 0) != self.priority:
            return False
        if self.mark and (found.fwmark or 0) != self.mark:
            return False
        if self.mask and (found.fwmask or 0) != self.mask:
            return False
        if self.src is not None and _prefix(found.src, found.src_len) != self.src:
            return False
        if self.dst is not None and _prefix(found.dst, found.dst_len) != self.dst:
            return False
        return found.table_number == self.table


def _prefix(address: object, length: int) -> IPNetwork | None:
    # Lenient: ``ip rule add from 198.51.100.1/24`` is accepted and the kernel keeps the
    # host bits; such a foreign rule must not stop a listing.  It matches as its network.
    if address is None:
        return None
    return ip_network(f"{address}/{length}", strict=False)


def _selector(address: Address | None, length: int) -> IPNetwork | None:
    if address is None or length == 0:
        return None
    # The kernel keeps a selector's host bits (`ip rule add from 192.0.2.41/24` lists
    # as such); Rule holds networks, so they are cleared here.
    return ip_network((address, length), strict=False)


def _rule_from_message(found: RuleMessage) -> Rule:
    """The Rule a kernel rule message describes (what :class:`Rule` can hold of it)."""
    return Rule(
        priority=found.priority or 0,
        mark=found.fwmark or 0,
        mask=found.fwmask or 0,
        src=_selector(found.src, found.src_len),
        dst=_selector(found.dst, found.dst_len),
        table=found.table_number,
    )


_CREATE_EXCL = int(NLM_F.CREATE | NLM_F.EXCL)
_ECHO = int(NLM_F.ECHO)


async def _find(conn: NetlinkConnection, rule: Rule, family: int) -> bool:
    query = Message(RTM.GETRULE, 0, RuleMessage(family=family))
    async with contextlib.aclosing(conn.dump(query, retry_interrupted=DUMP_RETRIES)) as replies:
        async for reply in replies:
            if isinstance(reply.body, RuleMessage) and rule._matches(reply.body):
                return True
    return False


async def replace_rule(conn: NetlinkConnection, rule: Rule, family: int = AF_INET) -> bool:
    """Ensure ``rule`` exists; see :meth:`asyncroute.Connection.replace_rule`.  True if
    it was added, False if a matching rule was there already."""
    rule._check_family(family)
    if await _find(conn, rule, family):
        return False
    try:
        await conn.request(Message(RTM.NEWRULE, _CREATE_EXCL, rule._message(family, FR_ACT.TO_TBL)))
    except ExistsError:
        return False  # an identical rule appeared since the listing: what we wanted
    return True


async def delete_rule(conn: NetlinkConnection, rule: Rule, family: int = AF_INET) -> Rule:
    """Delete ``rule``; see :meth:`asyncroute.Connection.delete_rule`."""
    rule._check_family(family)
    # NLM_F_ECHO: the kernel answers with the rule it removed (the first that matched).
    request = Message(RTM.DELRULE, _ECHO, rule._message(family, FR_ACT.UNSPEC))
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
    existing = {f: await _listing(conn, f) for f in {f for _, f in wanted}}
    batch = conn.batch()
    try:
        for rule, rule_family in wanted:
            if any(rule._matches(found) for found in existing[rule_family]):
                batch.add(_PRESENT)
                continue
            if batch.full:
                await batch.pause()
            batch.add(Message(RTM.NEWRULE, _CREATE_EXCL, rule._message(rule_family, FR_ACT.TO_TBL)))
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
            batch.add(Message(RTM.DELRULE, 0, rule._message(rule_family, FR_ACT.UNSPEC)))
        errors = await batch.finish()
    finally:
        batch.abandon()
    return [True if error is None else error for error in errors]


class _Present(AsyncrouteError):
    """Marks, in a batch's results, a rule that already existed (nothing was sent)."""


_PRESENT = _Present("the rule exists already")
