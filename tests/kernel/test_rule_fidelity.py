"""Rules made with ``ip``, listed with ``list_rules`` and written into a fresh namespace
with ``replace_rules``, come out as the same kernel rules; ``delete_rules`` of a listing
removes exactly those rules.

The library's counterpart of tests/cli/test_rule_round_trip.py, over the same shapes and
a few selectors with host bits.  A listing must never turn a rule into a different,
broader one (``iif v0 lookup 100`` written back as ``from all lookup 100`` would steer
all traffic into table 100), nor lose the host bits the kernel keeps in a selector and
names the rule by.  The kernel is the oracle: ``ip -d -j rule show`` (protocol included)
of both namespaces, both families, must be equal.
"""

from __future__ import annotations

from ipaddress import ip_interface
from typing import Any

import anyio
import pytest

from asyncroute import Rule
from asyncroute.constants import AF_INET, AF_INET6
from asyncroute.events import Event, RuleAdded, RuleRemoved
from asyncroute.testing import Namespace
from tests.cli.test_rule_round_trip import RULE_SHAPES_V4, RULE_SHAPES_V6
from tests.kernel.guard import connect_in

pytestmark = [pytest.mark.kernel, pytest.mark.anyio]

#: Selectors with host bits: the kernel keeps them as given, and compares them when
#: deleting.  The first differs from the shape "pref 117 from 198.51.100.0/25 lookup
#: 117" only in its host bits: the kernel holds both, as two rules.
HOST_BITS_V4 = [
    "pref 117 from 198.51.100.1/25 lookup 117",
    "pref 130 to 203.0.113.77/24 lookup 130",
]
HOST_BITS_V6 = ["pref 230 from 2001:db8::1/64 lookup 230"]
SHAPES = {
    AF_INET: ("-4", RULE_SHAPES_V4 + HOST_BITS_V4),
    AF_INET6: ("-6", RULE_SHAPES_V6 + HOST_BITS_V6),
}
FAMILIES = (AF_INET, AF_INET6)


def _ip_rules(ns: Namespace, family: int) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ns.ip_json(SHAPES[family][0], "-d", "rule", "show")
    return result


def _add_shapes(ns: Namespace) -> None:
    for flag, shapes in SHAPES.values():
        for shape in shapes:
            ns.ip(flag, "rule", "add", *shape.split())


async def test_list_rules_replace_rules_round_trip(netns: Namespace, netns2: Namespace) -> None:
    _add_shapes(netns)
    async with connect_in(netns) as conn, connect_in(netns2) as conn2:
        listed = {family: [r async for r in conn.list_rules(family)] for family in FAMILIES}
        assert len(listed[AF_INET]) == len(_ip_rules(netns, AF_INET))
        for family in FAMILIES:
            rules = listed[family]
            assert await conn2.replace_rules(rules, family=family) == [True] * len(rules)
        for family in FAMILIES:
            assert _ip_rules(netns2, family) == _ip_rules(netns, family)
        # Again: every rule is found as it is, nothing is added.
        for family in FAMILIES:
            rules = listed[family]
            assert await conn2.replace_rules(rules, family=family) == [True] * len(rules)
            assert [r async for r in conn2.list_rules(family)] == rules
        for family in FAMILIES:
            assert _ip_rules(netns2, family) == _ip_rules(netns, family)


async def test_delete_rules_of_a_listing_removes_exactly_those(
    netns: Namespace, netns2: Namespace
) -> None:
    """netns2 stays fresh: its rules are the kernel's defaults."""
    _add_shapes(netns)
    fresh = {family: _ip_rules(netns2, family) for family in FAMILIES}
    async with connect_in(netns) as conn, connect_in(netns2) as conn2:
        defaults = {family: [r async for r in conn2.list_rules(family)] for family in FAMILIES}
        listed = {family: [r async for r in conn.list_rules(family)] for family in FAMILIES}
        # The two rules of preference 117 differ only in the source's host bits.
        network, exact = [r for r in listed[AF_INET] if r.priority == 117]
        assert network.src == exact.src and network != exact
        assert str(exact) == "117: from 198.51.100.1/25 to all lookup 117"
        assert await conn.delete_rules([exact]) == [True]
        at_117 = [r for r in _ip_rules(netns, AF_INET) if r["priority"] == 117]
        assert [(r["src"], r["srclen"]) for r in at_117] == [("198.51.100.0", 25)]
        assert [r async for r in conn.list_rules(AF_INET, Rule(priority=117))] == [network]
        for family in FAMILIES:
            ours = [r for r in listed[family] if r not in defaults[family] and r != exact]
            deleted_above = 1 if family == AF_INET else 0
            assert len(ours) == len(SHAPES[family][1]) - deleted_above
            assert await conn.delete_rules(ours, family=family) == [True] * len(ours)
        for family in FAMILIES:
            assert _ip_rules(netns, family) == fresh[family]


async def test_replace_rule_tells_rules_apart_by_every_field(netns: Namespace) -> None:
    """A rule with ``iif v0`` is another rule than one without: before, the second was
    reported as existing (and never added)."""
    netns.ip("rule", "add", "pref", "100", "iif", "v0", "lookup", "100")
    plain = Rule(priority=100, table=100)
    async with connect_in(netns) as conn:
        assert await conn.replace_rule(plain) is True
        assert await conn.replace_rule(plain) is False
        with_iif = Rule(priority=100, table=100, iif="v0")
        assert await conn.replace_rule(with_iif) is False
        assert await conn.replace_rules([plain, with_iif]) == [True, True]
        assert [r async for r in conn.list_rules(AF_INET, Rule(priority=100))] == [
            with_iif,
            plain,
        ]
        blackhole = Rule(priority=100, action=6)
        assert await conn.replace_rule(blackhole) is True
        assert await conn.delete_rule(blackhole) == blackhole
        assert await conn.delete_rule(with_iif) == with_iif
        assert await conn.delete_rule(plain) == plain
    assert [r for r in netns.ip_json("rule", "show") if r["priority"] == 100] == []


async def test_rule_events_carry_the_whole_rule(netns: Namespace) -> None:
    """RuleAdded/RuleRemoved hold the rule as list_rules yields it (before: priority,
    mark, mask, selectors without host bits and table only)."""
    shapes = [
        "pref 100 iif v0 lookup 100",
        "pref 104 ipproto tcp sport 1000-2000 dport 53 lookup 104",
        "pref 117 from 198.51.100.1/25 lookup 117",
        "pref 108 goto 110",
    ]
    seen: list[Event] = []
    async with connect_in(netns) as conn, conn.subscribe(routes=False, nexthops=False) as events:
        for shape in shapes:
            netns.ip("rule", "add", *shape.split())
        with anyio.fail_after(10):
            async for event in events:
                seen.append(event)
                if len(seen) == len(shapes):
                    break
        listed = {r.priority: r async for r in conn.list_rules(AF_INET)}
        netns.ip("rule", "del", *shapes[2].split())
        with anyio.fail_after(10):
            async for event in events:
                seen.append(event)
                break
    assert [type(e) for e in seen] == [RuleAdded] * len(shapes) + [RuleRemoved]
    rules = [e.rule for e in seen if isinstance(e, RuleAdded | RuleRemoved)]
    assert rules == [listed[p] for p in (100, 104, 117, 108, 117)]
    assert rules[0] == Rule(priority=100, table=100, iif="v0")
    assert rules[1] == Rule(priority=104, table=104, ip_proto=6, sport=(1000, 2000), dport=53)
    assert rules[2] == Rule(priority=117, table=117, src=ip_interface("198.51.100.1/25"))
    assert rules[3] == Rule(priority=108, goto=110)
