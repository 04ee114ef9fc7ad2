"""The batch-file and ``ip -json`` parser behind ``asyncroute apply`` (no root needed):
iproute2's defaults, keyword matching and number syntax, line handling, JSON input,
the ``ip`` command each change renders to, and the template fast path.

That the requests equal ``ip``'s byte for byte is checked against ``ip`` itself in
``test_apply.py::test_requests_are_byte_for_byte_ips``.
"""

from __future__ import annotations

import socket

import pytest

from asyncroute import Encap, Route
from asyncroute._codec import decode_body
from asyncroute.cli.applier import _Template
from asyncroute.cli.batchfile import (
    ParseError,
    RouteChange,
    RuleChange,
    change_from_json,
    iter_batch_lines,
    iter_json,
    parse_command,
    split_args,
)
from asyncroute.constants import AF_INET, AF_INET6, FR_ACT, NLM_F, RT_SCOPE, RTM, RTN


def route(line: str) -> RouteChange:
    change, _ = parse_command(split_args(line))
    assert isinstance(change, RouteChange)
    return change


def rule(line: str) -> RuleChange:
    change, _ = parse_command(split_args(line))
    assert isinstance(change, RuleChange)
    return change


def v4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


# ------------------------------------------------------------------ iproute2's defaults


def test_add_with_a_gateway() -> None:
    c = route("route add 198.51.100.0/24 via 192.0.2.1 dev v0 table 100")
    assert (c.msg_type, c.flags) == (RTM.NEWROUTE, NLM_F.CREATE | NLM_F.EXCL)
    assert (c.family, c.dst, c.dst_len) == (AF_INET, v4("198.51.100.0"), 24)
    assert (c.table, c.protocol, c.scope, c.type) == (100, 3, RT_SCOPE.UNIVERSE, RTN.UNICAST)
    assert (c.gateway, c.device, c.priority, c.prefsrc, c.mtu) == (
        v4("192.0.2.1"),
        "v0",
        None,
        None,
        0,
    )


def test_direct_ipv4_route_gets_scope_link_ipv6_universe() -> None:
    assert route("route add 198.51.100.0/24 dev v0").scope == RT_SCOPE.LINK
    assert route("route add 2001:db8:5::/64 dev v0").scope == RT_SCOPE.UNIVERSE
    assert route("route add 198.51.100.0/24 dev v0 scope host").scope == RT_SCOPE.HOST


def test_delete_matches_any_protocol_type_and_scope() -> None:
    c = route("route del 198.51.100.0/24 table 100")
    assert (c.msg_type, c.flags) == (RTM.DELROUTE, 0)
    assert (c.protocol, c.type, c.scope, c.table) == (0, 0, RT_SCOPE.NOWHERE, 100)
    assert route("route del 2001:db8:5::/64").scope == RT_SCOPE.UNIVERSE


def test_local_routes_go_to_table_local_with_scope_host() -> None:
    c = route("route add local 198.51.100.7 dev v0")
    assert (c.type, c.table, c.scope, c.dst_len) == (RTN.LOCAL, 255, RT_SCOPE.HOST, 32)
    assert route("route add to broadcast 198.51.100.255 dev v0").scope == RT_SCOPE.LINK


@pytest.mark.parametrize(
    ("verb", "flags"),
    [
        ("add", NLM_F.CREATE | NLM_F.EXCL),
        ("replace", NLM_F.CREATE | NLM_F.REPLACE),
        ("change", NLM_F.REPLACE),
        ("chg", NLM_F.REPLACE),
        ("append", NLM_F.CREATE | NLM_F.APPEND),
        ("prepend", NLM_F.CREATE),
        ("test", NLM_F.EXCL),
        ("a", NLM_F.CREATE | NLM_F.EXCL),
        ("r", NLM_F.CREATE | NLM_F.REPLACE),
    ],
)
def test_verbs(verb: str, flags: int) -> None:
    assert route(f"route {verb} 198.51.100.0/24 dev v0").flags == flags


def test_big_tables_go_in_rta_table() -> None:
    body = route("route add 198.51.100.0/24 dev v0 table 1000").body(2)
    assert body[4] == 0  # rtm_table: RT_TABLE_UNSPEC
    assert (1000).to_bytes(4, "little") in body


# ------------------------------------------------------------------ ip's syntax


def test_abbreviations_and_numbers_as_ip_reads_them() -> None:
    c = route("r a 10 dev v0 t 0x3e8 p 010 pro static")
    assert (c.dst, c.dst_len) == (v4("10.0.0.0"), 32)
    assert (c.table, c.priority, c.protocol) == (1000, 8, 4)
    assert route("route add 0x0b.010.1 dev v0").dst == v4("11.8.1.0")
    assert route("route add 198.51.100.0/255.255.255.0 dev v0").dst_len == 24
    with pytest.raises(ParseError, match='"metric" value "static"'):
        route("route add 198.51.100.0/24 dev v0 pr static")  # "pr" is priority in ip


def test_default_takes_its_family_from_the_gateway() -> None:
    assert route("route add default via 2001:db8::1 dev v0").family == AF_INET6
    c = route("route add default dev v0")
    assert (c.family, c.dst, c.dst_len) == (AF_INET, bytes(4), 0)
    assert route("-6 route add default dev v0").family == AF_INET6


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("route add 198.51.100.0/24 dev v0 encap seg6 mode encap", "ip, ip6 and mpls"),
        ("route add 198.51.100.0/24 dev v0 encap ip dst 2001:db8::1", "not an IPv4 address"),
        ("route add 198.51.100.0/24 nexthop via 192.0.2.1 realm x", '"x" is not a number'),
        ("route add 198.51.100.0/24 nexthop via 192.0.2.1 dev v0 frob", '"nexthop" or end'),
        ("route add 198.51.100.0/24 nexthop", 'end of line after "nexthop"'),
        ("route add 198.51.100.0/24 nexthop via 192.0.2.1 weight 0", '"weight" is invalid'),
        ("route add 198.51.100.0/24 nexthop via 192.0.2.1 weight 257", '"weight" is invalid'),
        ("route add 198.51.100.0/24 nexthop via inet6 2001:db8::1", "RTA_VIA"),
        ("route add nexthop via 192.0.2.1 198.51.100.0/24", '"nexthop" or end'),
        ("route add 198.51.100.0/24 nhid", '"nhid" needs an argument'),
        ("route add 198.51.100.0/24 nhid x", 'invalid "id" value "x"'),
        ("route add 198.51.100.0/24 dev v0 pref urgent", "medium, high or low"),
        ("route add 198.51.100.0/24 dev v0 rtt 5parsecs", 'unknown time unit "parsecs"'),
        ("route add 198.51.100.0/24 dev v0 features sack", "not a feature"),
        ("route add 198.51.100.0/24 dev v0 advmss", '"advmss" needs an argument'),
        ("route add 198.51.100.0/24 dev v0 tos 0x100", "not a byte"),
        ("route add 2001:db8::/64 from 198.51.100.0/24 dev v0", "not an IPv6 prefix"),
        ("-6 route add 2001:db8::/64 via inet 192.0.2.1 dev v0", "IPv6 route via an IPv4"),
        ("route add 198.51.100.0/24 via 2001:db8::1", "an IPv4 address is expected"),
        ("route add 198.51.100.0/33 dev v0", 'invalid prefix length "33"'),
        ("route add 198.51.100.0/24 198.51.101.0/24", "duplicate"),
        ("route add dev v0", "no destination prefix"),
        ("route add 198.51.100.0/24 via", '"via" needs an argument'),
        ("route frob 198.51.100.0/24", 'unknown route command "frob"'),
        ("route show", "changes nothing"),
        ("link set v0 up", 'object "link" is not supported'),
        ("rule add from 198.51.100.0/24 nat 192.0.2.1 table 100", 'unsupported keyword "nat"'),
        ("rule del", "requires arguments"),
        ('route add "198.51.100.0/24', "unterminated quoted string"),
    ],
)
def test_errors_name_the_problem(line: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_command(split_args(line))


def test_rules() -> None:
    r = rule("rule add from 198.51.100.0/24 lookup 100 priority 1000")
    m = r.message
    assert (r.msg_type, r.flags) == (RTM.NEWRULE, NLM_F.CREATE | NLM_F.EXCL)
    assert (m.family, str(m.src), m.src_len, m.table, m.priority, m.action) == (
        AF_INET, "198.51.100.0", 24, 100, 1000, FR_ACT.TO_TBL,
    )  # fmt: skip
    assert rule("rule add fwmark 0x10/0xff pref 5").message.table == 254  # main by default
    assert rule("rule add to 2001:db8::/32 table 100").message.family == AF_INET6
    d = rule("rule del priority 5")
    assert (d.msg_type, d.message.table, d.message.action) == (RTM.DELRULE, 0, 0)
    assert rule("rule add priority 6 blackhole").message.action == FR_ACT.BLACKHOLE
    assert rule("rule add not fwmark 7 nop").message.flags == 2


# ------------------------------------------------------------------ lines


def test_lines_comments_continuations_and_quotes() -> None:
    text = (
        "# a comment\n"
        "\n"
        "route add 198.51.100.0/24 dev v0  # trailing\n"
        "route add 198.51.101.0/24 \\\n"
        "  dev v0\n"
        "   \n"
        "route add 198.51.102.0/24 \\ # no continuation after a comment\n"
        'route add 198.51.103.0/24 dev "v0"\n'
    )
    assert list(iter_batch_lines(text)) == [
        (3, "route add 198.51.100.0/24 dev v0  "),
        (5, "route add 198.51.101.0/24   dev v0"),  # numbered by its last line, as ip does
        (7, "route add 198.51.102.0/24 \\ "),
        (8, 'route add 198.51.103.0/24 dev "v0"'),
    ]
    assert split_args('route add 198.51.103.0/24 dev "v0"') == [
        "route",
        "add",
        "198.51.103.0/24",
        "dev",
        "v0",
    ]
    assert split_args("a 'b c' d") == ["a", "b c", "d"]


# ------------------------------------------------------------------ ip commands


@pytest.mark.parametrize(
    "line",
    [
        "route add 198.51.100.0/24 via 192.0.2.1 dev v0 table 100 mtu 1400 metric 7",
        "route replace 198.51.100.0/24 dev v0 proto static scope host src 192.0.2.2",
        "route del 198.51.100.0/24 table 100",
        "route append local 198.51.100.7 dev v0 table 100",
        "route add blackhole 198.51.100.0/24 table 1000",
        "route add default via 2001:db8::1 dev v0",
        "rule add not from 198.51.100.0/24 to 203.0.113.0/24 fwmark 0x10/0xff table 100 pref 5",
        "rule del priority 7",
        "rule add priority 8 prohibit",
        "rule add to 2001:db8::/32 table 100 protocol static",
    ],
)
def test_ip_args_send_the_same_request(line: str) -> None:
    change, _ = parse_command(split_args(line))
    again, _ = parse_command(change.ip_args())
    assert again == change


def test_ip_args_leave_out_ips_own_choices() -> None:
    assert route("route add 198.51.100.0/24 dev v0 scope link proto boot table main").ip_args() == [
        "route", "add", "198.51.100.0/24", "dev", "v0",
    ]  # fmt: skip
    assert route("route del 198.51.100.0/24 table 100").ip_args()[:2] == ["route", "del"]


# ------------------------------------------------------------------ the fast path


@pytest.mark.parametrize(
    "tail",
    [
        "via 192.0.2.1 dev v0 table 100",
        "via 192.0.2.1 dev v0 table 1000 metric 5 mtu 1400 proto static",
        "dev v0",
        "table 100",
    ],
)
@pytest.mark.parametrize("verb", ["add", "replace", "del"])
def test_template_bodies_equal_the_full_parse(verb: str, tail: str) -> None:
    first = route(f"route {verb} 198.51.100.0/24 {tail}")
    template = _Template(first, first.body(7))
    for prefix in ("198.18.0.1", "198.18.0.0/15", "203.0.113.128/25", "0.0.0.0/0", "10.1.2.3/32"):
        full = route(f"route {verb} {prefix} {tail}")
        assert template.body(prefix) == full.body(7), prefix
    # What the template cannot do is left to the full parser.
    for prefix in ("default", "2001:db8::/64", "10", "198.18.0.0/024", "198.18.0.0/33",
                   "198.18.0.0/255.255.0.0", "01.2.3.4"):  # fmt: skip
        assert template.body(prefix) is None, prefix


# ------------------------------------------------------------------ ip -json


def test_json_array_items_and_lines() -> None:
    text = '[{"dst":"198.51.100.0/24","dev":"v0"},\n {"dst":"default","gateway":"192.0.2.1"}]'
    assert [(line, item) for line, item, _ in iter_json(text)] == [(1, 1), (2, 2)]
    lines = '{"dst":"198.51.100.0/24"}\n\n{"priority":5,"src":"all","table":"100"}\n'
    assert [(line, item) for line, item, _ in iter_json(lines)] == [(1, 1), (3, 2)]
    with pytest.raises(ParseError, match="line 2"):
        list(iter_json('{"dst":"198.51.100.0/24"}\n{"dst" 1}\n'))


def test_json_route_defaults_are_what_ip_leaves_out() -> None:
    c = change_from_json({"dst": "198.51.100.0/24", "gateway": "192.0.2.1", "dev": "v0",
                          "flags": ["linkdown"]})  # fmt: skip
    assert isinstance(c, RouteChange)
    assert (c.flags, c.table, c.protocol, c.scope, c.type) == (
        NLM_F.CREATE | NLM_F.REPLACE, 254, 3, 0, RTN.UNICAST,
    )  # fmt: skip
    c = change_from_json({"type": "local", "dst": "198.51.100.7", "dev": "v0", "table": "local",
                          "protocol": "kernel", "scope": "host", "prefsrc": "198.51.100.7",
                          "metrics": [{"mtu": 1400}], "metric": 0})  # fmt: skip
    assert isinstance(c, RouteChange)
    assert (c.type, c.table, c.protocol, c.scope, c.dst_len, c.mtu, c.priority) == (
        RTN.LOCAL, 255, 2, RT_SCOPE.HOST, 32, 1400, 0,
    )  # fmt: skip
    assert change_from_json({"dst": "default", "family": "inet6", "dev": "v0"}).family == AF_INET6


def test_json_refuses_what_it_cannot_send() -> None:
    with pytest.raises(ParseError, match="nexthops"):
        change_from_json({"dst": "198.51.100.0/24", "nexthops": []})
    with pytest.raises(ParseError, match="encap"):
        change_from_json({"dst": "198.51.100.0/24", "nexthops": [{"dev": "v0", "encap": {}}]})
    with pytest.raises(ParseError, match="flags"):
        change_from_json({"dst": "198.51.100.0/24", "flags": ["pervasive", "frob"]})
    with pytest.raises(ParseError, match='unknown metric "speed"'):
        change_from_json({"dst": "198.51.100.0/24", "metrics": [{"speed": 1}]})
    with pytest.raises(ParseError, match="repeat the route's keys"):
        change_from_json({"dst": "198.51.100.0/24", "encap": "ip", "id": 5})
    with pytest.raises(ParseError, match="locked: unknown metric"):
        change_from_json({"dst": "198.51.100.0/24", "locked": ["speed"]})


def test_json_reads_every_attribute() -> None:
    """The keys route list --json writes (ip's, and the nested encapsulation and lock
    list ip -json cannot express) are read back into the same request."""
    route_object = {
        "dst": "198.18.1.0/24", "tos": "0x10", "encap": {"type": "ip", "id": 5,
        "dst": "192.0.2.9", "ttl": 10}, "gateway": "192.0.2.1", "dev": "v0",
        "metrics": [{"mtu": 1400, "rtt": 0.375, "ecn": None, "congestion": "reno"}],
        "locked": ["mtu"], "flow": {"from": "3", "to": "4"},
    }  # fmt: skip
    change = change_from_json(route_object)
    assert isinstance(change, RouteChange)
    expected = Route("198.18.1.0/24", "192.0.2.1", device="v0", mtu=1400, tos=0x10,
                     metrics={"rtt": 3, "features": 1, "congctl": "reno"}, locked=["mtu"],
                     realms=3 << 16 | 4, encap=Encap.ip(id=5, dst="192.0.2.9", ttl=10))  # fmt: skip
    sent = expected._request_body(7, (), 1400)
    assert decode_body(RTM.NEWROUTE, 0, memoryview(change.body(7))) == decode_body(
        RTM.NEWROUTE, 0, memoryview(sent)
    )


def test_json_rules_are_adds_that_may_exist() -> None:
    r = change_from_json({"priority": 500, "src": "all", "fwmark": "0x10", "fwmask": "0xff",
                          "table": "101"})  # fmt: skip
    assert isinstance(r, RuleChange) and r.exists_ok
    m = r.message
    assert (m.priority, m.fwmark, m.fwmask, m.table, m.src) == (500, 0x10, 0xFF, 101, None)
    r = change_from_json({"priority": 10, "src": "2001:db8::", "srclen": 32, "table": "main"})
    assert isinstance(r, RuleChange)
    assert (r.message.family, r.message.src_len) == (AF_INET6, 32)


# ------------------------------------------------------------------ nexthops


def test_multipath_nhid_and_onlink() -> None:
    c = route("route add 198.51.100.0/24 table 100 nexthop via 192.0.2.1 dev v0 weight 3 "
              "nexthop via inet 192.0.2.5 onlink nexthop dev v1")  # fmt: skip
    assert [(h.gateway, h.device, h.weight, h.flags) for h in c.hops] == [
        (v4("192.0.2.1"), "v0", 3, 0),
        (v4("192.0.2.5"), None, 1, 4),
        (None, "v1", 1, 0),
    ]
    assert c.devices() == ["v0", "v1"]
    assert c.scope == RT_SCOPE.UNIVERSE  # hops count as a gateway for the default scope
    assert " ".join(c.ip_args()) == (
        "route add 198.51.100.0/24 table 100 nexthop via 192.0.2.1 dev v0 weight 3 "
        "nexthop via 192.0.2.5 weight 1 onlink nexthop dev v1 weight 1"
    )
    c = route("route add 198.51.100.0/24 nhid 0x10")
    assert (c.nhid, c.scope, c.hops) == (16, RT_SCOPE.UNIVERSE, ())
    c = route("route add 198.51.100.0/24 via 192.0.2.9 dev v0 onlink")
    assert c.rtm_flags == 4
    assert "onlink" in c.ip_args()
    # The family comes from the hops when the prefix leaves it open.
    assert route("route add default nexthop via 2001:db8::1 dev v0").family == AF_INET6


def test_multipath_bodies_put_the_prefix_first() -> None:
    # apply's templates swap the prefix at a fixed offset: RTA_DST must come first.
    for line in (
        "route add 198.51.100.0/24 nhid 7 table 1000",
        "route add 198.51.100.0/24 nexthop via 192.0.2.1 dev v0 nexthop via 192.0.2.5 dev v0",
        "route add 2001:db8::/64 via 2001:db8::1 dev v0 onlink",
    ):
        change = route(line)
        body = change.body(2 if change.device else 0, [2 for h in change.hops if h.device])
        size = len(change.dst)
        assert body[12:16] == (4 + size).to_bytes(2, "little") + (1).to_bytes(2, "little")
        assert body[16 : 16 + size] == change.dst


def test_json_multipath_and_nhid() -> None:
    c = change_from_json({"dst": "198.51.100.0/24", "table": "100", "flags": [],
                          "nexthops": [{"gateway": "192.0.2.1", "dev": "v0", "weight": 3,
                                        "flags": []},
                                       {"gateway": "192.0.2.5", "dev": "v0", "weight": 1,
                                        "flags": ["onlink", "linkdown"]}]})  # fmt: skip
    assert isinstance(c, RouteChange)
    assert [(h.weight, h.flags) for h in c.hops] == [(3, 0), (1, 4)]
    # ip shows the nexthop object's gateway and device next to "nhid": not sent.
    c = change_from_json({"dst": "203.0.113.0/24", "nhid": 1, "gateway": "192.0.2.1",
                          "dev": "v0", "flags": []})  # fmt: skip
    assert isinstance(c, RouteChange)
    assert (c.nhid, c.gateway, c.device, c.hops) == (1, None, None, ())
    c = change_from_json({"dst": "default", "nexthops": [{"gateway": "2001:db8::1", "dev": "v0"}]})
    assert c.family == AF_INET6
    c = change_from_json({"dst": "198.51.102.0/24", "gateway": "192.0.2.9", "dev": "v0",
                          "flags": ["onlink"]})  # fmt: skip
    assert isinstance(c, RouteChange) and c.rtm_flags == 4


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("rule add iif v0 table 100", {"iifname": "v0", "table": 100}),
        ("rule add oif v1 lookup 101", {"oifname": "v1", "table": 101}),
        ("rule add ipproto tcp sport 1000-2000 dport 53 table 7",
         {"ip_proto": 6, "sport_range": (1000, 2000), "dport_range": (53, 53)}),
        ("rule add uidrange 1000-2000 table 7", {"uid_range": (1000, 2000)}),
        ("rule add lookup main suppress_prefixlength 0", {"suppress_prefixlen": 0}),
        ("rule add lookup main suppress_ifgroup 5", {"suppress_ifgroup": 5}),
        ("rule add pref 9 goto 20", {"goto": 20, "action": FR_ACT.GOTO, "table": 0}),
        ("rule add realms 5/6 table 7", {"flow": 5 << 16 | 6}),
        ("rule add tun_id 77 table 7", {"tun_id": 77}),
        ("rule add l3mdev", {"l3mdev": 1, "table": 0}),
    ],
)  # fmt: skip
def test_rule_selectors_and_actions(line: str, fields: dict[str, object]) -> None:
    change, _ = parse_command(split_args(line))
    assert isinstance(change, RuleChange)
    message = change.message
    for key, value in fields.items():
        got = message.table_number if key == "table" else getattr(message, key)
        assert got == value, key
    # ip_args() gives words that parse back to the same message.
    again, _ = parse_command(change.ip_args())
    assert isinstance(again, RuleChange) and again.message == message


#: ``ip route add`` lines with the attributes beyond Cilium's, and the Route each means.
ATTRIBUTE_LINES = [
    ("route add 198.18.8.0/24 tos 0x10 via 192.0.2.1 dev v0",
     Route("198.18.8.0/24", "192.0.2.1", device="v0", tos=0x10)),
    ("route add 198.18.1.0/24 via 192.0.2.1 dev v0 mtu lock 1400 rtt 100ms rttvar 3"
     " features ecn congctl lock reno advmss 1300 rto_min 1s",
     Route("198.18.1.0/24", "192.0.2.1", device="v0", mtu=1400,
           locked=["mtu", "congctl", "rto_min"],
           metrics={"rtt": 800, "rttvar": 3, "features": 1, "congctl": "reno",
                    "advmss": 1300, "rto_min": 1000})),
    ("route add 198.18.9.0/24 via 203.0.113.1 dev v0 onlink realms 3/4",
     Route("198.18.9.0/24", "203.0.113.1", device="v0", onlink=True, realms=3 << 16 | 4)),
    ("route add 198.18.12.0/24 via inet6 fe80::1 dev v0",
     Route("198.18.12.0/24", "fe80::1", device="v0")),
    ("route add 198.18.13.0/24 encap ip id 5 dst 192.0.2.9 ttl 10 key dev v0",
     Route("198.18.13.0/24", device="v0",
           encap=Encap.ip(id=5, dst="192.0.2.9", ttl=10, flags=["key"]))),
    ("-6 route add 2001:db8:5::/64 from 2001:db8:99::/64 via 2001:db8::1 dev v0 pref high"
     " expires 30",
     Route("2001:db8:5::/64", "2001:db8::1", device="v0", source="2001:db8:99::/64", pref=1,
           expires=30)),
    ("route add blackhole 198.18.20.0/24 metric 5", Route("198.18.20.0/24", type=6, priority=5)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "expected"), ATTRIBUTE_LINES, ids=[text for text, _ in ATTRIBUTE_LINES]
)
def test_attribute_words_send_what_the_route_sends(line: str, expected: Route) -> None:
    """Each line's request is the upsert body of the Route it names (ip's defaults for
    the scope aside), and its ``ip`` arguments read back as the same request."""
    change = route(line)
    body = change.body(7)
    scope = body[6]  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope
    sent = expected.replace(scope=scope)._request_body(7, (), expected.mtu)
    assert decode_body(RTM.NEWROUTE, 0, memoryview(body)) == decode_body(
        RTM.NEWROUTE, 0, memoryview(sent)
    )
    assert route(" ".join(change.ip_args())).body(7) == body
