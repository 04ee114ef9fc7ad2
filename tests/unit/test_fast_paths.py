"""The hot-path shortcuts give exactly what the general code gives."""

from __future__ import annotations

import pickle
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncroute._codec import RTAX_MTU, encode_message, pack_route_body
from asyncroute._values import parse_network
from asyncroute.messages import Message, RouteMessage

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
