"""The hot-path shortcuts give exactly what the general code gives."""

from __future__ import annotations

import pickle
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncroute._codec import RTAX_MTU, encode_body, encode_message, pack_route_body
from asyncroute._values import parse_network
from asyncroute.bulk import _Template
from asyncroute.constants import AF_INET, AF_INET6
from asyncroute.messages import Message, RouteMessage
from asyncroute.route import Route
from asyncroute.rule import Rule

u8 = st.integers(0, 255)
u32 = st.integers(0, 2**32 - 1)


@st.composite
def networks(draw: st.DrawFn) -> tuple[str, int]:
    version = draw(st.sampled_from((4, 6)))
    bits = 32 if version == 4 else 128
    plen = draw(st.integers(0, bits))
    value = draw(st.integers(0, 2**bits - 1)) >> (bits - plen) << (bits - plen)
    address = IPv4Address(value) if version == 4 else IPv6Address(value)
    return f"{address}/{plen}", plen


@settings(max_examples=1000, deadline=None)
@given(networks())
def test_fast_network_equals_ip_network(case: tuple[str, int]) -> None:
    text, _ = case
    fast, slow = parse_network(text, "prefix"), ip_network(text)
    assert type(fast) is type(slow)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert str(fast) == str(slow)
    assert fast.prefixlen == slow.prefixlen
    assert fast.netmask == slow.netmask
    assert fast.broadcast_address == slow.broadcast_address
    if slow.num_addresses <= 4:
        assert list(fast.hosts()) == list(slow.hosts())
    assert pickle.loads(pickle.dumps(fast)) == slow


ODD_PREFIXES = ["1.2.3.4/33", "1.2.3.4/8", "01.2.3.4/32", " 1.2.3.0/24", "1.2.3.0/+24"]
ODD_PREFIXES += ["::1/129", "2001:db8::1/64", "1.2.3/24", "x/1", "1.2.3.0/024", "1.2.3.0/"]


@pytest.mark.parametrize("text", ODD_PREFIXES)
def test_odd_prefixes_match_ip_network(text: str) -> None:
    try:
        expected = ip_network(text)
    except ValueError:
        try:
            parse_network(text, "prefix")
        except ValueError as exc:
            assert "prefix" in str(exc)
        else:
            raise AssertionError(f"{text!r} accepted, ip_network refuses it") from None
    else:
        assert parse_network(text, "prefix") == expected


@st.composite
def route_bodies(draw: st.DrawFn) -> dict[str, object]:
    family = draw(st.sampled_from((2, 10)))
    size = 4 if family == 2 else 16
    address = st.binary(min_size=size, max_size=size)
    return {
        "family": family,
        "dst_len": draw(u8),
        "table": draw(u8),
        "protocol": draw(u8),
        "scope": draw(u8),
        "rtype": draw(u8),
        "dst": draw(address),
        "oif": draw(u32),
        "gateway": draw(st.none() | address),
        "priority": draw(st.none() | u32),
        "prefsrc": draw(st.none() | address),
        "mtu": draw(st.integers(0, 65535)),
        "table_id": draw(st.none() | u32),
    }


@settings(max_examples=1000, deadline=None)
@given(route_bodies(), st.integers(0, 0xFFFF), u32)
def test_pack_route_body_equals_encode_message(
    fields: dict[str, object], flags: int, seq: int
) -> None:
    def addr(value: object) -> IPv4Address | IPv6Address | None:
        return None if value is None else ip_address(bytes(value))  # type: ignore[arg-type]

    message = RouteMessage(
        family=fields["family"],  # type: ignore[arg-type]
        dst_len=fields["dst_len"],  # type: ignore[arg-type]
        table=fields["table"],  # type: ignore[arg-type]
        protocol=fields["protocol"],  # type: ignore[arg-type]
        scope=fields["scope"],  # type: ignore[arg-type]
        type=fields["rtype"],  # type: ignore[arg-type]
        dst=addr(fields["dst"]),
        oif=fields["oif"],  # type: ignore[arg-type]
        gateway=addr(fields["gateway"]),
        priority=fields["priority"],  # type: ignore[arg-type]
        prefsrc=addr(fields["prefsrc"]),
        metrics=((RTAX_MTU, fields["mtu"]),) if fields["mtu"] else (),
        table_id=fields["table_id"],  # type: ignore[arg-type]
    )
    body = pack_route_body(**fields)  # type: ignore[arg-type]
    assert encode_message(Message(24, flags, body), seq) == encode_message(
        Message(24, flags, message), seq
    )


# --------------------------------------------------------------------------- Route and bulk


@settings(max_examples=1000, deadline=None)
@given(networks())
def test_route_prefix_equals_ip_network(case: tuple[str, int]) -> None:
    """Route keeps the prefix packed and builds the network lazily: same object."""
    text, _ = case
    route, slow = Route(text, device="eth0"), ip_network(text)
    assert type(route.prefix) is type(slow)
    assert route.prefix == slow
    assert str(route.prefix) == str(slow)
    assert route == Route(slow, device="eth0")
    assert hash(route) == hash(Route(slow, device="eth0"))


@pytest.mark.parametrize("text", ODD_PREFIXES)
def test_odd_prefixes_in_a_route_match_ip_network(text: str) -> None:
    try:
        expected = ip_network(text)
    except ValueError:
        with pytest.raises(ValueError, match="prefix"):
            Route(text, device="eth0")
    else:
        assert Route(text, device="eth0").prefix == expected


@st.composite
def similar_routes(draw: st.DrawFn) -> tuple[Route, Route]:
    """Two routes that differ only in their prefix (same template in a bulk call)."""
    version = draw(st.sampled_from((4, 6)))
    (first, _), (second, _) = draw(networks_of(version)), draw(networks_of(version))
    address = st.integers(1, 2**32 - 1).map(IPv4Address)
    if version == 6:
        address = st.integers(1, 2**128 - 1).map(IPv6Address)
    fields = {
        "nexthop": draw(st.none() | address),
        "local": draw(st.none() | address),
        "device": "eth0",
        "mtu": draw(st.integers(0, 65535)),
        "proto": draw(u8),
        "scope": draw(u8),
        "table": draw(u32),
        "type": draw(u8),
        "priority": draw(u32),
    }
    return Route(first, **fields), Route(second, **fields)  # type: ignore[arg-type]


@st.composite
def networks_of(draw: st.DrawFn, version: int) -> tuple[str, int]:
    bits = 32 if version == 4 else 128
    plen = draw(st.integers(0, bits))
    value = draw(st.integers(0, 2**bits - 1)) >> (bits - plen) << (bits - plen)
    address = IPv4Address(value) if version == 4 else IPv6Address(value)
    return f"{address}/{plen}", plen


@settings(max_examples=1000, deadline=None)
@given(similar_routes(), u32, st.integers(0, 65535))
def test_bulk_templates_equal_route_bodies(pair: tuple[Route, Route], oif: int, mtu: int) -> None:
    """A bulk call packs the first route of a kind and reuses all but its prefix."""
    first, second = pair
    template = _Template(first._body(oif, mtu), len(first._dst), None)
    assert template.body(first) == first._body(oif, mtu)
    assert template.body(second) == second._body(oif, mtu)
    deletion = _Template(first._delete_body(oif), len(first._dst), None)
    assert deletion.body(first) == first._delete_body(oif)
    assert deletion.body(second) == second._delete_body(oif)


# --------------------------------------------------------------------------- rules


@st.composite
def cilium_rules(draw: st.DrawFn) -> tuple[Rule, int]:
    """A Rule with Cilium's fields only (selectors of one family, any table), and its
    family."""
    family = draw(st.sampled_from([4, 6]))
    bits = 32 if family == 4 else 128
    networks_of_family = st.none() | st.builds(
        lambda value, length: ip_network((value, length), strict=False),
        st.integers(0, 2**bits - 1).map(lambda v: ip_address(v.to_bytes(bits // 8, "big"))),
        st.integers(0, bits),
    )
    rule = Rule(
        priority=draw(u32), mark=draw(u32), mask=draw(u32),
        src=draw(networks_of_family), dst=draw(networks_of_family), table=draw(u32),
    )  # fmt: skip
    return rule, AF_INET if family == 4 else AF_INET6


@settings(max_examples=1000, deadline=None)
@given(cilium_rules(), st.booleans())
def test_rule_packed_body_equals_its_message(case: tuple[Rule, int], delete: bool) -> None:
    """replace_rules/delete_rules send a Cilium rule's packed body: the same bytes as its
    message."""
    rule, family = case
    body = rule._body(family, delete=delete)
    assert isinstance(body, bytes)
    assert body == encode_body(rule._message(family, delete=delete))
