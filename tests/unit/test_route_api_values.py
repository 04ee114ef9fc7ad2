"""The route API's pure values: Route, Rule, mtu.Configuration, RetryPolicy (no kernel, no I/O).

Vectors come from Cilium's unit tests (cilium-route-spec §9 ToIPCommand, §7.6
Rule.String, §10 mtu_test.go), adapted where asyncroute deliberately differs: a prefix
with host bits is a ValueError (so Cilium's ``10.0.0.1/8`` and ``::1/64`` vectors use
proper networks), and ``to_ip_command`` appends the tokens Cilium leaves out (type,
table, src, scope, proto) so that the command recreates what ``upsert`` installs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Any

import pytest

import asyncroute
from asyncroute import MAIN_TABLE, RTN_LOCAL, RetryPolicy, Route, Rule, mtu
from asyncroute.constants import RT_SCOPE

# --------------------------------------------------------------------------- constants


def test_public_constants() -> None:
    assert asyncroute.ROUTE_REPLACE_MAX_TRIES == 10
    assert asyncroute.ROUTE_REPLACE_RETRY_INTERVAL == 0.1
    assert RTN_LOCAL == 2
    assert MAIN_TABLE == 254
    policy = RetryPolicy()
    assert policy.max_tries == 10
    assert policy.interval == 0.1


# --------------------------------------------------------------------------- to_ip_command


def argv(command: str) -> list[str]:
    """An expected argv, written as the command line it stands for."""
    return command.split(" ")


#: (route, dev argument, expected argv).  The first four are Cilium's TestToIPCommand
#: vectors with the host-bit prefixes replaced by networks.
TO_IP_COMMAND: list[tuple[str, Route, str | None, list[str]]] = [
    (
        "cilium-v4-via",
        Route("10.0.0.0/8", nexthop="192.168.0.1"),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/8", "via", "192.168.0.1", "dev", "eth0"],
    ),
    (
        # Cilium: `ip route add 10.0.0.1/8 dev eth0`.  upsert installs a direct route
        # with scope universe, `ip` would pick scope link: the scope must be spelled out.
        "cilium-v4-direct",
        Route("10.0.0.0/8"),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/8", "dev", "eth0", "scope", "global"],
    ),
    (
        "cilium-v6-via",
        Route("2001:db8::/64", nexthop="ff02::2"),
        "eth0",
        ["ip", "-6", "route", "add", "2001:db8::/64", "via", "ff02::2", "dev", "eth0"],
    ),
    (
        # IPv6 has no scope token: the kernel keeps universe for every IPv6 route.
        "cilium-v6-direct",
        Route("2001:db8::/64"),
        "eth0",
        ["ip", "-6", "route", "add", "2001:db8::/64", "dev", "eth0"],
    ),
    (
        "mtu-after-via",
        Route("10.0.0.0/24", nexthop="10.0.0.1", mtu=1450),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/24", "via", "10.0.0.1", "mtu", "1450", "dev", "eth0"],
    ),
    (
        "metric-right-after-prefix",
        Route("10.0.0.0/24", nexthop="10.0.0.1", mtu=1450, priority=100),
        "eth0",
        argv("ip route add 10.0.0.0/24 metric 100 via 10.0.0.1 mtu 1450 dev eth0"),
    ),
    (
        "table-after-dev",
        Route("10.0.0.0/24", nexthop="10.0.0.1", table=100),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/24", "via", "10.0.0.1", "dev", "eth0", "table", "100"],
    ),
    (
        "table-main-explicit-not-printed",
        Route("10.0.0.0/24", nexthop="10.0.0.1", table=254),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/24", "via", "10.0.0.1", "dev", "eth0"],
    ),
    (
        "src",
        Route("10.0.0.0/24", nexthop="10.0.0.1", local="10.0.0.5"),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/24", "via", "10.0.0.1", "dev", "eth0", "src", "10.0.0.5"],
    ),
    (
        "proto",
        Route("10.0.0.0/24", nexthop="10.0.0.1", proto=4),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/24", "via", "10.0.0.1", "dev", "eth0", "proto", "4"],
    ),
    (
        "all-extras-in-order",
        Route("10.0.0.0/24", nexthop="10.0.0.1", local="10.0.0.5", table=1000, proto=4),
        "eth0",
        argv("ip route add 10.0.0.0/24 via 10.0.0.1 dev eth0 table 1000 src 10.0.0.5 proto 4"),
    ),
    (
        # A direct route with scope link is what `ip` picks anyway: no token.
        "direct-scope-link-default",
        Route("10.0.0.0/24", scope=RT_SCOPE.LINK),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/24", "dev", "eth0"],
    ),
    (
        # Via a gateway `ip` picks universe, as upsert does: no token.
        "via-no-scope",
        Route("10.0.0.0/24", nexthop="10.0.0.1"),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/24", "via", "10.0.0.1", "dev", "eth0"],
    ),
    (
        "via-scope-link-spelled-out",
        Route("10.0.0.0/24", nexthop="10.0.0.1", scope=RT_SCOPE.LINK),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/24", "via", "10.0.0.1", "dev", "eth0", "scope", "link"],
    ),
    (
        # Type local: "local" before the prefix; upsert's host scope is ip's default, but
        # ip's default table for a local route is "local", so main is spelled out.
        "local-type",
        Route("10.0.0.0/24", type=RTN_LOCAL, local="10.0.0.1"),
        "eth0",
        [
            "ip",
            "route",
            "add",
            "local",
            "10.0.0.0/24",
            "dev",
            "eth0",
            "table",
            "main",
            "src",
            "10.0.0.1",
        ],
    ),
    (
        "v6-metric-mtu-table",
        Route("2001:db8::/64", nexthop="fe80::1", mtu=1400, priority=5, table=7),
        "eth0",
        argv("ip -6 route add 2001:db8::/64 metric 5 via fe80::1 mtu 1400 dev eth0 table 7"),
    ),
    (
        "dev-none-uses-device",
        Route("10.0.0.0/24", nexthop="10.0.0.1", device="v0"),
        None,
        ["ip", "route", "add", "10.0.0.0/24", "via", "10.0.0.1", "dev", "v0"],
    ),
    (
        "dev-argument-wins",
        Route("10.0.0.0/24", nexthop="10.0.0.1", device="v0"),
        "eth0",
        ["ip", "route", "add", "10.0.0.0/24", "via", "10.0.0.1", "dev", "eth0"],
    ),
]


@pytest.mark.parametrize(
    ("route", "dev", "expected"),
    [case[1:] for case in TO_IP_COMMAND],
    ids=[case[0] for case in TO_IP_COMMAND],
)
def test_to_ip_command(route: Route, dev: str | None, expected: list[str]) -> None:
    argv = route.to_ip_command(dev)
    assert argv == expected
    assert all(isinstance(token, str) for token in argv)


def test_to_ip_commands_direct_route_is_one_command() -> None:
    route = Route("10.0.0.0/24", device="eth0")
    assert route.to_ip_commands() == [["ip", "route", "replace", *route.to_ip_command()[3:]]]


def test_to_ip_commands_puts_nexthop_route_first() -> None:
    route = Route("10.0.0.0/8", nexthop="192.168.0.1", device="eth0")
    assert route.to_ip_commands() == [
        ["ip", "route", "replace", "192.168.0.1/32", "dev", "eth0"],
        ["ip", "route", "replace", "10.0.0.0/8", "via", "192.168.0.1", "dev", "eth0"],
    ]


def test_to_ip_commands_nexthop_route_in_the_route_table() -> None:
    route = Route("10.0.0.0/8", nexthop="192.168.0.1", device="eth0", table=100, mtu=1400)
    assert route.to_ip_commands("eth1") == [
        ["ip", "route", "replace", "192.168.0.1/32", "dev", "eth1", "table", "100"],
        [
            "ip", "route", "replace", "10.0.0.0/8", "via", "192.168.0.1", "mtu", "1400",
            "dev", "eth1", "table", "100",
        ],
    ]  # fmt: skip


def test_to_ip_commands_ipv6_nexthop_route_is_128() -> None:
    route = Route("2001:db8::/64", nexthop="fe80::2", device="eth0")
    assert route.to_ip_commands() == [
        ["ip", "-6", "route", "replace", "fe80::2/128", "dev", "eth0"],
        ["ip", "-6", "route", "replace", "2001:db8::/64", "via", "fe80::2", "dev", "eth0"],
    ]


def test_to_ip_command_checks_dev_argument() -> None:
    with pytest.raises(ValueError, match="dev"):
        Route("10.0.0.0/8").to_ip_command("bad/name")


# --------------------------------------------------------------------------- Rule.__str__

RULE_STR: list[tuple[Rule, str]] = [
    # Cilium's TestRule_String vectors (v1.7 form: no " proto ...").
    (Rule(src="10.10.10.10/32", dst="1.1.1.1/32"), "0: from 10.10.10.10/32 to 1.1.1.1/32 lookup 0"),
    (Rule(priority=1), "1: from all to all lookup 0"),
    (Rule(table=1), "0: from all to all lookup 1"),
    (Rule(mark=1, mask=1), "0: from all to all lookup 0 mark 0x1 mask 0x1"),
    (Rule(table=254), "0: from all to all lookup main"),
    # Derived from the format (§7.6).
    (Rule(mark=1), "0: from all to all lookup 0 mark 0x1 mask 0x0"),
    (Rule(mask=0xF00), "0: from all to all lookup 0"),
    (Rule(mark=0xF00, mask=0xFFFF), "0: from all to all lookup 0 mark 0xf00 mask 0xffff"),
    (
        Rule(priority=100, src="beef::/48", table=1000),
        "100: from beef::/48 to all lookup 1000",
    ),
]


@pytest.mark.parametrize(("rule", "expected"), RULE_STR, ids=[text for _, text in RULE_STR])
def test_rule_str(rule: Rule, expected: str) -> None:
    assert str(rule) == expected


# --------------------------------------------------------------------------- mtu


MTU_VECTORS: list[tuple[str, dict[str, Any], int, int]] = [
    # Cilium mtu_test.go (v1.6.0), mtu 1400.
    ("plain", {"mtu": 1400}, 1400, 1400),
    ("encap", {"mtu": 1400, "encap": True}, 1400, 1350),
    ("encrypt-key16", {"mtu": 1400, "encrypt": True, "auth_key_size": 16}, 1400, 1323),
    ("encrypt-key32", {"mtu": 1400, "encrypt": True, "auth_key_size": 32}, 1400, 1307),
    ("encrypt-key12", {"mtu": 1400, "encrypt": True, "auth_key_size": 12}, 1400, 1327),
    (
        "encap-encrypt-key16",
        {"mtu": 1400, "encap": True, "encrypt": True, "auth_key_size": 16},
        1400,
        1273,
    ),
    (
        "encap-encrypt-key32",
        {"mtu": 1400, "encap": True, "encrypt": True, "auth_key_size": 32},
        1400,
        1257,
    ),
    # mtu 0 (new() does no detection): device 1500 and route == device.
    ("zero-plain", {"mtu": 0}, 1500, 1500),
    # Zero-MTU fallbacks of GetRouteMTU.
    ("zero-encap", {"mtu": 0, "encap": True}, 1500, 1450),
    ("zero-encrypt", {"mtu": 0, "encrypt": True, "auth_key_size": 16}, 1500, 1423),
    (
        "zero-encap-encrypt",
        {"mtu": 0, "encap": True, "encrypt": True, "auth_key_size": 16},
        1500,
        1373,
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "device_mtu", "route_mtu"),
    [case[1:] for case in MTU_VECTORS],
    ids=[case[0] for case in MTU_VECTORS],
)
def test_mtu_configuration(kwargs: dict[str, Any], device_mtu: int, route_mtu: int) -> None:
    cfg = mtu.Configuration.new(**kwargs)
    assert cfg.get_device_mtu() == device_mtu
    assert cfg.get_route_mtu() == route_mtu


def test_mtu_constants() -> None:
    assert mtu.MAX_MTU == 65520
    assert mtu.ETHERNET_MTU == 1500
    assert mtu.TUNNEL_OVERHEAD == 50
    assert mtu.ENCRYPTION_IPSEC_OVERHEAD == 77
    assert mtu.ENCRYPTION_DEFAULT_AUTH_KEY_LENGTH == 16


@pytest.mark.parametrize("bad", [-1, 65521])
def test_mtu_configuration_range(bad: int) -> None:
    with pytest.raises(ValueError, match="mtu"):
        mtu.Configuration.new(mtu=bad)


# --------------------------------------------------------------------------- bad input

#: (id, constructor, field name the message must contain, accepted exception types)
BAD_INPUTS: list[tuple[str, Callable[[], object], str]] = [
    ("prefix-host-bits", lambda: Route("10.0.0.1/8"), "prefix"),
    ("prefix-host-bits-v6", lambda: Route("::1/64"), "prefix"),
    ("prefix-garbage", lambda: Route("not-a-prefix"), "prefix"),
    ("prefix-bad-length", lambda: Route("10.0.0.0/33"), "prefix"),
    ("nexthop-v4-on-v6", lambda: Route("2001:db8::/64", nexthop="10.0.0.1"), "nexthop"),
    ("nexthop-garbage", lambda: Route("10.0.0.0/8", nexthop="10.0.0.300"), "nexthop"),
    ("local-v6-on-v4", lambda: Route("10.0.0.0/8", local="2001:db8::1"), "local"),
    ("local-v4-on-v6", lambda: Route("2001:db8::/64", local="10.0.0.1"), "local"),
    ("source-garbage", lambda: Route("2001:db8::/64", source="nope"), "source"),
    ("source-other-family", lambda: Route("2001:db8::/64", source="10.0.0.0/8"), "source"),
    ("metric-unknown", lambda: Route("10.0.0.0/8", metrics={"speed": 1}), "metrics"),
    ("metric-mtu", lambda: Route("10.0.0.0/8", metrics={"mtu": 1400}), "metrics"),
    ("metric-negative", lambda: Route("10.0.0.0/8", metrics={"advmss": -1}), "metrics"),
    ("metric-congctl-empty", lambda: Route("10.0.0.0/8", metrics={"congctl": ""}), "metrics"),
    ("locked-unknown", lambda: Route("10.0.0.0/8", locked=["speed"]), "locked"),
    ("tos-too-big", lambda: Route("10.0.0.0/8", tos=256), "tos"),
    (
        "other-not-pair",
        lambda: Route("10.0.0.0/8", other_attributes=((0, b""),)),
        "other_attributes",
    ),
    ("device-16-bytes", lambda: Route("10.0.0.0/8", device="a" * 16), "device"),
    ("device-16-utf8-bytes", lambda: Route("10.0.0.0/8", device="é" * 8), "device"),
    ("device-slash", lambda: Route("10.0.0.0/8", device="a/b"), "device"),
    ("device-space", lambda: Route("10.0.0.0/8", device="a b"), "device"),
    ("device-tab", lambda: Route("10.0.0.0/8", device="a\tb"), "device"),
    ("device-colon", lambda: Route("10.0.0.0/8", device=":"), "device"),
    ("device-dot", lambda: Route("10.0.0.0/8", device="."), "device"),
    ("table-negative", lambda: Route("10.0.0.0/8", table=-1), "table"),
    ("table-2**32", lambda: Route("10.0.0.0/8", table=2**32), "table"),
    ("priority-2**32", lambda: Route("10.0.0.0/8", priority=2**32), "priority"),
    ("priority-negative", lambda: Route("10.0.0.0/8", priority=-1), "priority"),
    ("mtu-65536", lambda: Route("10.0.0.0/8", mtu=65536), "mtu"),
    ("mtu-negative", lambda: Route("10.0.0.0/8", mtu=-1), "mtu"),
    ("scope-256", lambda: Route("10.0.0.0/8", scope=256), "scope"),
    ("proto-256", lambda: Route("10.0.0.0/8", proto=256), "proto"),
    ("type-256", lambda: Route("10.0.0.0/8", type=256), "type"),
    ("rule-mark-2**32", lambda: Rule(mark=2**32), "mark"),
    ("rule-mask-negative", lambda: Rule(mask=-1), "mask"),
    ("rule-table-2**32", lambda: Rule(table=2**32), "table"),
    ("rule-priority-2**32", lambda: Rule(priority=2**32), "priority"),
    ("rule-src-host-bits", lambda: Rule(src="10.10.0.1/16"), "src"),
    ("rule-dst-garbage", lambda: Rule(dst="nope"), "dst"),
    ("rule-mixed-families", lambda: Rule(src="10.0.0.0/8", dst="beef::/48"), "src"),
    ("retry-max-tries-0", lambda: RetryPolicy(max_tries=0), "max_tries"),
    ("retry-interval-negative", lambda: RetryPolicy(interval=-1), "interval"),
]


@pytest.mark.parametrize(
    ("make", "field"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_value_error_naming_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert re.search(rf"\b{re.escape(field)}\b", str(info.value)), str(info.value)


def test_rule_mixed_families_names_both_fields() -> None:
    with pytest.raises(ValueError, match=r"src .* dst"):
        Rule(src="10.0.0.0/8", dst="beef::/48")


#: Wrong types: TypeError is accepted here (and only here), still naming the field.
WRONG_TYPES: list[tuple[str, Callable[[], object], str]] = [
    ("prefix-int", lambda: Route(42), "prefix"),  # type: ignore[arg-type]
    ("nexthop-int", lambda: Route("10.0.0.0/8", nexthop=1), "nexthop"),  # type: ignore[arg-type]
    ("device-bytes", lambda: Route("10.0.0.0/8", device=b"eth0"), "device"),  # type: ignore[arg-type]
    ("mtu-str", lambda: Route("10.0.0.0/8", mtu="1400"), "mtu"),  # type: ignore[arg-type]
    ("table-bool", lambda: Route("10.0.0.0/8", table=True), "table"),
    ("mark-float", lambda: Rule(mark=1.0), "mark"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("make", "field"), [case[1:] for case in WRONG_TYPES], ids=[case[0] for case in WRONG_TYPES]
)
def test_wrong_type_names_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    assert field in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": 2**32 - 1, "priority": 2**32 - 1, "mtu": 65535, "scope": 255, "proto": 255},
        {"type": 255, "device": "a" * 15},
        {"device": "eth0.100"},
        {"device": "veth-x_y@1"[:15]},
    ],
)
def test_boundary_values_are_accepted(kwargs: dict[str, Any]) -> None:
    Route("10.0.0.0/8", **kwargs)


def test_rule_boundary_values_are_accepted() -> None:
    rule = Rule(priority=2**32 - 1, mark=2**32 - 1, mask=2**32 - 1, table=2**32 - 1)
    assert rule.mark == rule.mask == rule.table == rule.priority == 2**32 - 1


# --------------------------------------------------------------------------- Route properties


def test_route_is_frozen() -> None:
    route = Route("10.0.0.0/8", device="eth0")
    with pytest.raises(AttributeError):
        route.mtu = 1400  # type: ignore[misc]
    with pytest.raises(AttributeError):
        route.prefix = ip_network("10.1.0.0/16")  # type: ignore[misc]
    with pytest.raises(AttributeError):
        route.color = "red"  # type: ignore[attr-defined]
    assert route.mtu == 0
    assert route.prefix == ip_network("10.0.0.0/8")


def test_route_replace() -> None:
    route = Route("10.0.0.0/8", nexthop="10.0.0.1", device="eth0", table=7)
    changed = route.replace(table=8, mtu=1400)
    assert changed == Route("10.0.0.0/8", nexthop="10.0.0.1", device="eth0", table=8, mtu=1400)
    assert route.table == 7
    assert route.replace() == route
    with pytest.raises(TypeError, match="colour"):
        route.replace(colour="red")
    with pytest.raises(ValueError, match="mtu"):
        route.replace(mtu=70000)


def test_route_repr_round_trips() -> None:
    from ipaddress import IPv4Address, IPv4Network  # noqa: F401  (eval's namespace)

    route = Route("10.0.0.0/8", nexthop="10.0.0.1", device="eth0", table=7, priority=3)
    assert repr(route).startswith("Route(prefix=IPv4Network('10.0.0.0/8'), nexthop=IPv4")
    assert eval(repr(route)) == route


def test_route_prefix_is_built_once_and_canonical() -> None:
    route = Route("2001:db8:0:0:0::/64", device="eth0")
    assert route.prefix is route.prefix
    assert str(route.prefix) == "2001:db8::/64"
    assert route == Route(ip_network("2001:db8::/64"), device="eth0")
    assert hash(route) == hash(Route(ip_network("2001:db8::/64"), device="eth0"))


def test_rule_is_frozen() -> None:
    rule = Rule(table=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.table = 2  # type: ignore[misc]


def test_route_equality_and_hash() -> None:
    a = Route("10.0.0.0/8", nexthop="192.168.0.1", device="eth0", mtu=1400)
    b = Route(
        IPv4Network("10.0.0.0/8"), nexthop=IPv4Address("192.168.0.1"), device="eth0", mtu=1400
    )
    c = Route("10.0.0.0/8", nexthop="192.168.0.1", device="eth0", mtu=1450)
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2


def test_rule_equality_and_hash() -> None:
    a = Rule(priority=1, mark=0xF00, mask=0xF00, src="10.10.0.0/16", table=124)
    b = Rule(priority=1, mark=0xF00, mask=0xF00, src=IPv4Network("10.10.0.0/16"), table=124)
    assert a == b
    assert hash(a) == hash(b)
    assert a != Rule(priority=1, mark=0xF00, mask=0xF00, src="10.10.0.0/16", table=125)


def test_route_stores_ipaddress_objects() -> None:
    route = Route("10.0.0.0/8", nexthop="192.168.0.1", local="10.0.0.5")
    assert route.prefix == IPv4Network("10.0.0.0/8")
    assert isinstance(route.prefix, IPv4Network)
    assert isinstance(route.nexthop, IPv4Address)
    assert isinstance(route.local, IPv4Address)
    route6 = Route("2001:db8::/64", nexthop="fe80::1", local="2001:db8::5")
    assert isinstance(route6.prefix, IPv6Network)
    assert isinstance(route6.nexthop, IPv6Address)
    assert isinstance(route6.local, IPv6Address)
    assert route6.nexthop == IPv6Address("fe80::1")


def test_route_defaults() -> None:
    route = Route("10.0.0.0/8")
    assert (route.nexthop, route.local, route.device) == (None, None, "")
    assert (route.mtu, route.proto, route.scope, route.table, route.type, route.priority) == (
        0, 0, 0, 0, 0, 0,
    )  # fmt: skip


def test_rule_stores_ipaddress_objects() -> None:
    rule = Rule(src="10.10.0.0/16", dst=IPv4Network("1.1.1.1/32"))
    assert rule.src == IPv4Network("10.10.0.0/16")
    assert isinstance(rule.src, IPv4Network)
    assert isinstance(rule.dst, IPv4Network)
    assert Rule().src is None and Rule().dst is None


@pytest.mark.parametrize(
    ("route", "scope"),
    [
        (Route("10.0.0.0/8"), RT_SCOPE.UNIVERSE),
        (Route("10.0.0.0/8", type=RTN_LOCAL), RT_SCOPE.HOST),
        (Route("10.0.0.0/8", type=RTN_LOCAL, scope=RT_SCOPE.LINK), RT_SCOPE.LINK),
        (Route("10.0.0.0/8", scope=RT_SCOPE.LINK), RT_SCOPE.LINK),
        (Route("2001:db8::/64", type=RTN_LOCAL), RT_SCOPE.HOST),
    ],
)
def test_effective_scope(route: Route, scope: int) -> None:
    assert route.effective_scope == scope


@pytest.mark.parametrize(("table", "table_id"), [(0, 254), (254, 254), (100, 100), (1000, 1000)])
def test_table_id(table: int, table_id: int) -> None:
    assert Route("10.0.0.0/8", table=table).table_id == table_id


def test_nexthop_route_ipv4() -> None:
    route = Route("10.0.0.0/8", nexthop="192.168.0.1", device="eth0", table=100, mtu=1400,
                  local="10.0.0.5", proto=4, priority=9)  # fmt: skip
    assert route.nexthop_route() == Route(
        "192.168.0.1/32", device="eth0", table=100, scope=RT_SCOPE.LINK
    )


def test_nexthop_route_ipv6() -> None:
    route = Route("2001:db8::/64", nexthop="fe80::2", device="eth0", table=1000)
    nh = route.nexthop_route()
    assert nh == Route("fe80::2/128", device="eth0", table=1000, scope=0)
    assert nh.prefix.prefixlen == 128


def test_nexthop_route_without_nexthop() -> None:
    with pytest.raises(ValueError, match="nexthop"):
        Route("10.0.0.0/8").nexthop_route()


# --------------------------------------------------------------------------- RetryPolicy


def test_retry_policy_defaults_and_predicate() -> None:
    import errno

    from asyncroute._retry import TRANSIENT_ERRNOS, is_transient
    from asyncroute.errors import kernel_error

    # The issue's list, plus EHOSTUNREACH: IPv6's answer for a gateway it cannot reach.
    expected = {errno.EINVAL, errno.ENETUNREACH, errno.EAGAIN, errno.EBUSY, errno.EINTR}
    assert expected | {errno.EHOSTUNREACH} == set(TRANSIENT_ERRNOS)
    for code in TRANSIENT_ERRNOS:
        assert is_transient(kernel_error(code))
    for code in (errno.EPERM, errno.ENODEV, errno.EEXIST, errno.ERANGE, errno.EAFNOSUPPORT):
        assert not is_transient(kernel_error(code))
    assert not is_transient(ValueError("not a kernel error"))


def test_mtu_default_auth_key_size_is_ciliums() -> None:
    """Cilium's callers always pass the key length; asyncroute's default is the 16 bytes
    its IPsec overhead of 77 assumes (not 0, which would give 61)."""
    assert mtu.Configuration.new(encrypt=True, mtu=1400).get_route_mtu() == 1323
    assert mtu.Configuration.new(encrypt=True, mtu=1400, auth_key_size=16).get_route_mtu() == 1323


def test_by_mask_sorts_narrow_first_and_keeps_ties_in_order() -> None:
    routes = [
        Route("198.51.100.0/24", device="v0"),
        Route("198.51.100.128/25", device="v0"),
        Route("0.0.0.0/0", device="v0"),
        Route("203.0.113.0/24", device="v0"),
        Route("198.51.100.7/32", device="v0"),
    ]
    assert [str(r.prefix) for r in asyncroute.by_mask(routes)] == [
        "198.51.100.7/32",
        "198.51.100.128/25",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "0.0.0.0/0",
    ]


def test_encrypt_route_protocol_is_ciliums() -> None:
    assert asyncroute.ENCRYPT_ROUTE_PROTOCOL == 192
