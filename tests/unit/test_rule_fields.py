"""Rule's fields beyond Cilium's (no kernel): validation, equality, the wire form, text.

Each field goes ``Rule`` → RTM_NEWRULE body → bytes → decoded body → ``Rule`` unchanged;
a Cilium-shaped rule's message is byte for byte what it was before these fields existed
(the constants below were encoded by the code before the change); replace_rule's lookup
and list_rules' filter tell rules apart by every field; a selector's host bits are kept
and sent.
"""

from __future__ import annotations

from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Interface,
    IPv6Network,
    ip_interface,
)
from typing import Any

import pytest

from asyncroute import RTM, Rule
from asyncroute._codec import decode_body, encode_body
from asyncroute.constants import AF_INET, AF_INET6, FR_ACT
from asyncroute.listing import _rule_matches, list_rules
from asyncroute.messages import Message, RuleMessage
from asyncroute.rule import _rule_from_message
from asyncroute.testing.fake_kernel import FakeKernel, ack, dump_replies

V4 = IPv4Address

# --------------------------------------------------------------------------- validation

BAD: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("iif-type", {"iif": 3}, TypeError, "iif"),
    ("iif-long", {"iif": "a" * 16}, ValueError, "iif"),
    ("iif-nul", {"iif": "v\0"}, ValueError, "iif"),
    ("oif-type", {"oif": None}, TypeError, "oif"),
    ("oif-long", {"oif": "é" * 8}, ValueError, "oif"),  # 16 bytes
    ("tos-256", {"tos": 256}, ValueError, "tos"),
    ("tos-negative", {"tos": -1}, ValueError, "tos"),
    ("invert-int", {"invert": 1}, TypeError, "invert"),
    ("action-256", {"action": 256}, ValueError, "action"),
    ("action-str", {"action": "blackhole"}, TypeError, "action"),
    ("goto-without-target", {"priority": 5, "action": FR_ACT.GOTO}, ValueError, "goto"),
    ("goto-with-other-action", {"goto": 9, "action": FR_ACT.TO_TBL}, ValueError, "goto"),
    ("goto-backward", {"priority": 10, "goto": 10}, ValueError, "goto"),
    ("goto-2**32", {"goto": 2**32}, ValueError, "goto"),
    ("protocol-256", {"protocol": 256}, ValueError, "protocol"),
    ("ip_proto-256", {"ip_proto": 256}, ValueError, "ip_proto"),
    ("sport-0", {"sport": 0}, ValueError, "sport"),
    ("sport-65536", {"sport": (1, 65536)}, ValueError, "sport"),
    ("sport-reversed", {"sport": (2000, 1000)}, ValueError, "sport"),
    ("sport-triple", {"sport": (1, 2, 3)}, TypeError, "sport"),
    ("sport-str", {"sport": "22"}, TypeError, "sport"),
    ("dport-bool", {"dport": (True, 5)}, TypeError, "dport"),
    ("dport-reversed", {"dport": (53, 52)}, ValueError, "dport"),
    ("uid_range-reversed", {"uid_range": (5, 4)}, ValueError, "uid_range"),
    ("uid_range-every-uid", {"uid_range": (0, 2**32 - 1)}, ValueError, "uid_range"),
    ("uid_range-2**32", {"uid_range": (0, 2**32)}, ValueError, "uid_range"),
    ("l3mdev-int", {"l3mdev": 1}, TypeError, "l3mdev"),
    ("l3mdev-with-table", {"l3mdev": True, "table": 100}, ValueError, "l3mdev"),
    ("suppress_prefixlen-unset-value", {"suppress_prefixlen": 2**32 - 1}, ValueError,
     "suppress_prefixlen"),
    ("suppress_prefixlen-negative", {"suppress_prefixlen": -1}, ValueError,
     "suppress_prefixlen"),
    ("suppress_ifgroup-str", {"suppress_ifgroup": "5"}, TypeError, "suppress_ifgroup"),
    ("suppress_ifgroup-unset-value", {"suppress_ifgroup": 2**32 - 1}, ValueError,
     "suppress_ifgroup"),
    ("tun_id-2**64", {"tun_id": 2**64}, ValueError, "tun_id"),
    ("realms-2**32", {"realms": 2**32}, ValueError, "realms"),
    ("other_attributes-not-pairs", {"other_attributes": ((28, "ff"),)}, ValueError,
     "other_attributes"),
    ("other_attributes-number-0", {"other_attributes": ((0, b""),)}, ValueError,
     "other_attributes"),
    ("src-interface-and-dst-of-other-family",
     {"src": ip_interface("198.51.100.1/24"), "dst": "2001:db8::/32"}, ValueError, "src"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "error", "field"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_validation_names_the_field(
    fields: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error, match=rf"^{field}\b"):
        Rule(**fields)


def test_boundaries_are_accepted() -> None:
    rule = Rule(
        priority=1, iif="a" * 15, oif="v1", tos=255, action=255, protocol=255, ip_proto=255,
        sport=(1, 65535), dport=65535, uid_range=(0, 2**32 - 2), suppress_prefixlen=2**32 - 2,
        suppress_ifgroup=0, tun_id=2**64 - 1, realms=2**32 - 1,
        other_attributes=((0xFFFF, b""),),
    )  # fmt: skip
    assert rule.action == 255 and rule.dport == (65535, 65535)
    assert Rule(priority=2**32 - 2, goto=2**32 - 1).action is FR_ACT.GOTO


def test_new_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Rule(1, 0, 0, None, None, 100, "v0")  # type: ignore[misc]


# --------------------------------------------------------------------------- defaults, equality


def test_defaults_mean_not_set() -> None:
    rule = Rule(priority=1, mark=0xF00, mask=0xF00, table=123)
    assert (rule.iif, rule.oif, rule.tos, rule.invert, rule.goto, rule.protocol) == (
        "", "", 0, False, 0, 0
    )  # fmt: skip
    assert rule.action is FR_ACT.TO_TBL
    assert (rule.sport, rule.dport, rule.uid_range) == (None, None, None)
    assert (rule.suppress_prefixlen, rule.suppress_ifgroup) == (None, None)
    assert (rule.l3mdev, rule.tun_id, rule.realms, rule.other_attributes) == (False, 0, 0, ())
    assert repr(rule) == "Rule(priority=1, mark=3840, mask=3840, src=None, dst=None, table=123)"
    # The defaults given in other forms take the checked path: the same rule.
    checked = Rule(priority=1, mark=0xF00, mask=0xF00, table=123, other_attributes=[])  # type: ignore[arg-type]
    assert checked == rule and hash(checked) == hash(rule)


def test_goto_implies_action_goto() -> None:
    assert Rule(priority=108, goto=110) == Rule(priority=108, action=FR_ACT.GOTO, goto=110)
    assert Rule(priority=108, goto=110).action is FR_ACT.GOTO


def test_equality_and_hash() -> None:
    base = Rule(priority=100, table=100)
    variants = [
        Rule(priority=100, table=100, iif="v0"),
        Rule(priority=100, table=100, oif="v0"),
        Rule(priority=100, table=100, tos=0x10),
        Rule(priority=100, table=100, invert=True),
        Rule(priority=100, action=FR_ACT.BLACKHOLE),
        Rule(priority=100, table=100, action=FR_ACT.NOP),
        Rule(priority=100, goto=110),
        Rule(priority=100, table=100, protocol=4),
        Rule(priority=100, table=100, ip_proto=6),
        Rule(priority=100, table=100, sport=22),
        Rule(priority=100, table=100, dport=(1000, 1010)),
        Rule(priority=100, table=100, uid_range=(1000, 2000)),
        Rule(priority=100, l3mdev=True),
        Rule(priority=100, table=100, suppress_prefixlen=0),
        Rule(priority=100, table=100, suppress_ifgroup=0),
        Rule(priority=100, table=100, tun_id=77),
        Rule(priority=100, table=100, realms=(5 << 16) | 6),
        Rule(priority=100, table=100, other_attributes=((30, b"\x3f"),)),
    ]
    assert len({base, *variants}) == len(variants) + 1
    for variant in variants:
        assert variant != base
        twin = eval(repr(variant), {"Rule": Rule, "FR_ACT": FR_ACT})
        assert twin == variant and hash(twin) == hash(variant)
    # An int is a one-port (one-uid) range.
    assert Rule(sport=22, uid_range=7) == Rule(sport=(22, 22), uid_range=[7, 7])  # type: ignore[arg-type]
    assert Rule(action=6) == Rule(action=FR_ACT.BLACKHOLE)


def test_selector_host_bits_are_kept() -> None:
    exact = Rule(priority=117, src=ip_interface("198.51.100.1/25"), table=117)
    assert exact.src == IPv4Network("198.51.100.0/25")  # src is the network …
    assert exact != Rule(priority=117, src="198.51.100.0/25", table=117)  # … but not the rule
    assert hash(exact) == hash(Rule(priority=117, src=IPv4Interface("198.51.100.1/25"), table=117))
    # Without host bits an interface is the network.
    assert Rule(src=ip_interface("198.51.100.0/25")) == Rule(src="198.51.100.0/25")
    six = Rule(dst=IPv6Interface("2001:db8::1/64"))
    assert six.dst == IPv6Network("2001:db8::/64")
    assert repr(exact) == (
        "Rule(priority=117, mark=0, mask=0, src=IPv4Interface('198.51.100.1/25'), dst=None, "
        "table=117)"
    )
    assert eval(repr(exact), {"Rule": Rule, "IPv4Interface": IPv4Interface}) == exact
    with pytest.raises(ValueError, match=r"^src"):
        Rule(src="198.51.100.1/25")  # a string still must be a network


# --------------------------------------------------------------------------- the wire

#: One rule per field beyond Cilium's (and a few together), each a kernel-valid rule.
WIRE_RULES: list[tuple[str, int, Rule]] = [
    ("iif", AF_INET, Rule(priority=100, table=100, iif="v0")),
    ("oif", AF_INET, Rule(priority=101, table=101, oif="v1")),
    ("iif-oif-v6", AF_INET6, Rule(priority=118, table=118, iif="lo", oif="v0")),
    ("tos", AF_INET, Rule(priority=102, table=102, tos=0x10,
                          src="198.51.100.0/24", dst="203.0.113.0/24")),
    ("tos-v6", AF_INET6, Rule(priority=201, table=201, tos=0x20, dst="2001:db8:1::/48")),
    ("invert", AF_INET, Rule(priority=103, table=103, invert=True, mark=0x10, mask=0xFF)),
    ("goto", AF_INET, Rule(priority=108, goto=110)),
    ("nop", AF_INET, Rule(priority=109, action=FR_ACT.NOP)),
    ("blackhole", AF_INET, Rule(priority=110, action=FR_ACT.BLACKHOLE)),
    ("unreachable-v6", AF_INET6, Rule(priority=204, action=FR_ACT.UNREACHABLE)),
    ("prohibit", AF_INET, Rule(priority=112, action=FR_ACT.PROHIBIT)),
    ("protocol", AF_INET, Rule(priority=115, table=115, protocol=4, mark=5, mask=2**32 - 1)),
    ("ports", AF_INET, Rule(priority=104, table=104, ip_proto=6, sport=(1000, 2000), dport=53)),
    ("ip_proto-v6", AF_INET6, Rule(priority=202, table=202, ip_proto=58)),
    ("uid_range", AF_INET, Rule(priority=105, table=105, uid_range=(1000, 2000))),
    ("l3mdev", AF_INET, Rule(priority=116, l3mdev=True)),
    ("suppress_prefixlen-0", AF_INET, Rule(priority=106, table=254, suppress_prefixlen=0)),
    ("suppress_ifgroup", AF_INET, Rule(priority=107, table=254, suppress_ifgroup=5)),
    ("tun_id", AF_INET, Rule(priority=114, table=114, tun_id=2**63 + 77)),
    ("realms", AF_INET, Rule(priority=113, table=113, realms=(5 << 16) | 6)),
    ("other_attributes", AF_INET, Rule(priority=123, table=123, sport=22,
                                       other_attributes=((28, b"\xf0\xff"),))),
    ("host-bits", AF_INET, Rule(priority=117, table=117, src=ip_interface("198.51.100.1/25"),
                                dst=ip_interface("203.0.113.77/24"))),
    ("host-bits-v6", AF_INET6, Rule(priority=230, table=230,
                                    src=ip_interface("2001:db8::1/64"))),
    ("big-table", AF_INET, Rule(priority=119, table=1000, ip_proto=17, dport=(1000, 1010))),
]  # fmt: skip


def _through_the_wire(body: RuleMessage) -> RuleMessage:
    decoded = decode_body(RTM.NEWRULE, 0, memoryview(encode_body(body)))
    assert isinstance(decoded, RuleMessage)
    return decoded


@pytest.mark.parametrize(
    ("family", "rule"), [case[1:] for case in WIRE_RULES], ids=[case[0] for case in WIRE_RULES]
)
def test_message_round_trip(family: int, rule: Rule) -> None:
    """Every field reaches the message and comes back from it."""
    sent = _through_the_wire(rule._message(family))
    assert _rule_from_message(sent) == rule
    assert sent.action == rule.action


@pytest.mark.parametrize(
    ("family", "rule"), [case[1:] for case in WIRE_RULES], ids=[case[0] for case in WIRE_RULES]
)
def test_delete_message_names_every_set_field(family: int, rule: Rule) -> None:
    """A delete says everything the add says, but action UNSPEC (any) for TO_TBL."""
    add, delete = rule._message(family), rule._message(family, delete=True)
    expected_action = FR_ACT.UNSPEC if rule.action == FR_ACT.TO_TBL else rule.action
    assert delete.action == expected_action
    assert delete == RuleMessage(**{**_fields(add), "action": expected_action})


def _fields(message: RuleMessage) -> dict[str, Any]:
    return {name: getattr(message, name) for name in RuleMessage.__dataclass_fields__}


def test_message_of_the_new_fields() -> None:
    rule = Rule(
        priority=104, table=104, iif="v0", oif="v1", tos=0x10, invert=True, protocol=4,
        ip_proto=6, sport=(1000, 2000), dport=53, uid_range=(1000, 2000), suppress_prefixlen=0,
        suppress_ifgroup=5, tun_id=77, realms=6, other_attributes=((30, b"\x3f"),),
    )  # fmt: skip
    assert rule._message(AF_INET) == RuleMessage(
        family=AF_INET, tos=0x10, table=104, action=1, flags=0x2, priority=104, fwmark=0,
        fwmask=0, rule_protocol=4, iifname="v0", oifname="v1", flow=6, suppress_ifgroup=5,
        suppress_prefixlen=0, ip_proto=6, tun_id=77, uid_range=(1000, 2000),
        sport_range=(1000, 2000), dport_range=(53, 53), other=((30, b"\x3f"),),
    )  # fmt: skip
    assert Rule(priority=116, l3mdev=True)._message(AF_INET).l3mdev == 1
    goto = Rule(priority=108, goto=110)._message(AF_INET)
    assert (goto.action, goto.goto, goto.table, goto.table_id) == (FR_ACT.GOTO, 110, 0, None)
    exact = Rule(src=ip_interface("198.51.100.1/25"))._message(AF_INET)
    assert (exact.src, exact.src_len) == (V4("198.51.100.1"), 25)


#: Cilium-shaped rules and the bytes of their RTM_NEWRULE and RTM_DELRULE bodies, as
#: ``rule._message(family, FR_ACT.TO_TBL)`` / ``(family, FR_ACT.UNSPEC)`` encoded them
#: before the fields beyond Cilium's existed.
CILIUM_BYTES: list[tuple[str, Rule, int, str, str]] = [
    ("mark", Rule(priority=1, mark=0xF00, mask=0xF00, table=123), AF_INET,
     "020000007b00000100000000080006000100000008000a00000f000008001000000f0000",
     "020000007b00000000000000080006000100000008000a00000f000008001000000f0000"),
    ("selectors-table-1000",
     Rule(priority=100, src="10.10.0.0/16", dst="10.20.0.0/24", table=1000), AF_INET,
     "021810000000000100000000080001000a140000080002000a0a0000080006006400000008000a000000"
     "000008000f00e80300000800100000000000",
     "021810000000000000000000080001000a140000080002000a0a0000080006006400000008000a000000"
     "000008000f00e80300000800100000000000"),
    ("all-zero", Rule(), AF_INET,
     "020000000000000100000000080006000000000008000a00000000000800100000000000",
     "020000000000000000000000080006000000000008000a00000000000800100000000000"),
    ("v6", Rule(priority=2000, src="2001:db8:1::/48", mark=5, mask=0xFF, table=101), AF_INET6,
     "0a00300065000001000000001400020020010db800010000000000000000000008000600d007000008000a"
     "000500000008001000ff000000",
     "0a00300065000000000000001400020020010db800010000000000000000000008000600d007000008000a"
     "000500000008001000ff000000"),
    ("main", Rule(priority=32766, table=254), AF_INET,
     "02000000fe0000010000000008000600fe7f000008000a00000000000800100000000000",
     "02000000fe0000000000000008000600fe7f000008000a00000000000800100000000000"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "family", "add", "delete"),
    [case[1:] for case in CILIUM_BYTES],
    ids=[case[0] for case in CILIUM_BYTES],
)
def test_cilium_rule_bytes_are_unchanged(rule: Rule, family: int, add: str, delete: str) -> None:
    assert encode_body(rule._message(family)).hex() == add
    assert encode_body(rule._message(family, delete=True)).hex() == delete


# --------------------------------------------------------------------------- from the kernel


def _kernel_rule(**fields: Any) -> RuleMessage:
    """A rule as the kernel dumps it: FRA_TABLE, FRA_PROTOCOL and FRA_SUPPRESS_PREFIXLEN
    always (0xFFFFFFFF: unset)."""
    values: dict[str, Any] = {"family": AF_INET, "action": 1, "rule_protocol": 0}
    values |= {"suppress_prefixlen": 2**32 - 1, **fields}
    values.setdefault("table_id", values.get("table", 0))
    return RuleMessage(**values)


def test_rule_from_message_reads_every_field() -> None:
    found = _kernel_rule(
        priority=104, table=104, tos=0x10, flags=0x2 | 0x8, iifname="nosuchdev0",
        oifname="v1", rule_protocol=4, ip_proto=6, sport_range=(22, 22),
        dport_range=(1000, 1010), uid_range=(1, 2), suppress_ifgroup=5, tun_id=77, flow=6,
        other=((28, b"\xff\xff"), (29, b"\xff\xff"), (30, b"\x3f")),
    )  # fmt: skip
    assert _rule_from_message(found) == Rule(
        priority=104, table=104, tos=0x10, invert=True, iif="nosuchdev0", oif="v1",
        protocol=4, ip_proto=6, sport=22, dport=(1000, 1010), uid_range=(1, 2),
        suppress_ifgroup=5, tun_id=77, realms=6,
        # FRA_SPORT_MASK 0xffff of a single port is the kernel's own: left out.  The
        # FRA_DPORT_MASK of a range (which the kernel would refuse) is kept.
        other_attributes=((29, b"\xff\xff"), (30, b"\x3f")),
    )  # fmt: skip


def test_rule_from_message_unset_and_state() -> None:
    plain = _rule_from_message(_kernel_rule(priority=5, table=5, flags=0x4 | 0x10 | 0x1))
    assert plain == Rule(priority=5, table=5)  # permanent/unresolved/detached: state
    assert plain.suppress_prefixlen is None and plain.suppress_ifgroup is None
    zero = _rule_from_message(_kernel_rule(table=254, suppress_prefixlen=0, suppress_ifgroup=0))
    assert (zero.suppress_prefixlen, zero.suppress_ifgroup) == (0, 0)
    masked = _kernel_rule(table=5, sport_range=(16, 16), other=((28, b"\xf0\xff"),))
    assert _rule_from_message(masked).other_attributes == ((28, b"\xf0\xff"),)


# --------------------------------------------------------------------------- replace's lookup


def test_matches_compares_the_new_fields_exactly() -> None:
    plain = Rule(priority=100, table=100)
    with_iif = Rule(priority=100, table=100, iif="v0")
    assert not plain._matches(with_iif)
    assert not with_iif._matches(plain)
    assert with_iif._matches(with_iif)
    # Cilium's fields keep their "0 means any": priority 0 matches any priority.
    assert Rule(table=100, iif="v0")._matches(with_iif)
    assert not Rule(table=100)._matches(with_iif)
    # A selector's exact address counts (as in Cilium's lookupRule, which compares the
    # kernel's IPNet text, host bits included).
    exact = Rule(priority=9, src=ip_interface("198.51.100.1/24"), table=150)
    assert not Rule(priority=9, src="198.51.100.0/24", table=150)._matches(exact)
    assert Rule(priority=9, src=ip_interface("198.51.100.1/24"), table=150)._matches(exact)


def _rule_kernel(dumped: list[RuleMessage]) -> tuple[FakeKernel, list[Message]]:
    requests: list[Message] = []

    def handle(request: Message) -> list[Message]:
        requests.append(request)
        if request.type == RTM.GETRULE:
            return dump_replies(request, RTM.NEWRULE, dumped)
        return [ack(request)]

    return FakeKernel(handle), requests


@pytest.mark.anyio
async def test_replace_rule_adds_beside_a_rule_with_iif() -> None:
    """Before: the ``iif v0`` rule was taken for ``Rule(priority=100, table=100)``."""
    kernel, requests = _rule_kernel([_kernel_rule(priority=100, table=100, iifname="v0")])
    async with kernel.connect() as conn:
        assert await conn.replace_rule(Rule(priority=100, table=100)) is True
        assert await conn.replace_rule(Rule(priority=100, table=100, iif="v0")) is False
        assert await conn.replace_rules([Rule(priority=100, table=100)]) == [True]
    assert [r.type for r in requests] == [
        RTM.GETRULE, RTM.NEWRULE, RTM.GETRULE, RTM.GETRULE, RTM.NEWRULE
    ]  # fmt: skip


@pytest.mark.anyio
async def test_listed_rule_with_host_bits_is_deleted_by_its_address() -> None:
    """Before: the listing cleared the host bits and the delete named 198.51.100.0/25,
    another rule (the kernel answers ENOENT, or removes that one)."""
    dumped = _kernel_rule(priority=117, table=117, src=V4("198.51.100.1"), src_len=25)
    kernel, requests = _rule_kernel([dumped])
    async with kernel.connect() as conn:
        listed = [r async for r in list_rules(conn, AF_INET)]
        assert listed == [Rule(priority=117, src=ip_interface("198.51.100.1/25"), table=117)]
        assert str(listed[0]) == "117: from 198.51.100.1/25 to all lookup 117"
        assert await conn.delete_rules(listed) == [True]
    delete = requests[-1].body
    assert isinstance(delete, RuleMessage)
    assert (delete.src, delete.src_len, delete.action) == (V4("198.51.100.1"), 25, 0)


# --------------------------------------------------------------------------- list_rules' filter


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (Rule(), True),
        (Rule(iif="v0"), True),
        (Rule(iif="v1"), False),
        (Rule(ip_proto=6), True),
        (Rule(ip_proto=17), False),
        (Rule(sport=(1000, 2000)), True),
        (Rule(sport=1000), False),
        (Rule(invert=True), False),
        (Rule(action=FR_ACT.BLACKHOLE), False),
        (Rule(priority=104, table=104, iif="v0", ip_proto=6), True),
        (Rule(src=ip_interface("198.51.100.1/25")), True),
        (Rule(src="198.51.100.0/25"), False),  # the kernel's host bits count
    ],
)
def test_list_filter_uses_the_fields_that_are_set(spec: Rule, expected: bool) -> None:
    found = _kernel_rule(
        priority=104, table=104, iifname="v0", ip_proto=6, sport_range=(1000, 2000),
        src=V4("198.51.100.1"), src_len=25,
    )  # fmt: skip
    assert _rule_matches(spec, found) is expected


# --------------------------------------------------------------------------- family, text


def test_realms_are_ipv4_only() -> None:
    rule = Rule(priority=113, table=113, realms=6)
    rule._check_family(AF_INET)
    with pytest.raises(ValueError, match=r"^realms"):
        rule._check_family(AF_INET6)


STR: list[tuple[Rule, str]] = [
    # Cilium-shaped: Cilium's String(), unchanged.
    (Rule(priority=1, mark=0xF00, mask=0xF00, table=254),
     "1: from all to all lookup main mark 0xf00 mask 0xf00"),
    (Rule(priority=100, src="beef::/48", table=1000), "100: from beef::/48 to all lookup 1000"),
    # Everything else, in ip's words.
    (Rule(priority=100, table=100, iif="v0"), "100: from all to all lookup 100 iif v0"),
    (Rule(priority=103, table=103, invert=True, mark=0x10, mask=0xFF),
     "103: not from all to all lookup 103 mark 0x10 mask 0xff"),
    (Rule(priority=104, table=104, ip_proto=6, sport=(1000, 2000), dport=53),
     "104: from all to all lookup 104 ipproto tcp sport 1000-2000 dport 53"),
    (Rule(priority=108, goto=110), "108: from all to all goto 110"),
    (Rule(priority=109, action=FR_ACT.NOP), "109: from all to all nop"),
    (Rule(priority=110, action=FR_ACT.BLACKHOLE), "110: from all to all blackhole"),
    (Rule(priority=111, action=FR_ACT.PROHIBIT, table=5),
     "111: from all to all prohibit lookup 5"),
    (Rule(priority=112, action=200), "112: from all to all action 200"),
    (Rule(priority=117, src=ip_interface("198.51.100.1/25"), table=117),
     "117: from 198.51.100.1/25 to all lookup 117"),
    (Rule(priority=102, table=102, tos=0x10, oif="v1", l3mdev=False, uid_range=(1, 2),
          tun_id=7, realms=(5 << 16) | 6, suppress_prefixlen=0, suppress_ifgroup=5,
          protocol=4, other_attributes=((30, b"\x3f"),)),
     "102: from all to all lookup 102 tos 0x10 oif v1 uidrange 1-2 tun_id 7 realms 5/6 "
     "suppress_prefixlength 0 suppress_ifgroup 5 proto static attribute 30 0x3f"),
    (Rule(priority=116, l3mdev=True, realms=6), "116: from all to all lookup 0 l3mdev realms 6"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "text"), STR, ids=[text for _, text in STR])
def test_str(rule: Rule, text: str) -> None:
    assert str(rule) == text
