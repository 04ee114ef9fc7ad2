"""The attributes beyond Cilium's fields: validated, compared, encoded and read back.

A route that sets none of them keeps Cilium's exact body (the packed fast path); one that
sets any is encoded in full, and reading the encoded body back gives an equal Route.
"""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from asyncroute import Encap, Route
from asyncroute._codec import decode_body, encode_body, pack_route_body
from asyncroute.constants import AF_INET, AF_INET6, RTAX, RTM, RTN
from asyncroute.messages import RouteMessage
from asyncroute.route import _from_message

SHAPES = [
    Route("198.51.100.0/24", "192.0.2.1", device="v0", tos=0x10),
    Route("2001:db8:5::/64", "2001:db8::1", device="v0", source="2001:db8:99::/64"),
    Route(
        "203.0.113.0/24",
        "192.0.2.1",
        device="v0",
        mtu=1400,
        metrics={"window": 1000, "rtt": 80, "advmss": 1300, "congctl": "reno"},
        locked=["mtu", "congctl"],
    ),
    Route("203.0.113.64/26", "192.0.2.9", device="v0", onlink=True),
    Route("2001:db8:6::/64", "2001:db8::1", device="v0", pref=1),
    Route("2001:db8:7::/64", "2001:db8::1", device="v0", expires=300),
    Route("198.18.0.0/16", device="v0", realms=3 << 16 | 4),
    Route("198.18.4.0/24", "fe80::1", device="v0"),  # via inet6: RTA_VIA
    Route("198.18.3.0/24", device="v0", encap=Encap.ip(id=5, dst="192.0.2.9", ttl=10)),
    Route("2001:db8:9::/64", device="v0", encap=Encap.ip6(id=7, dst="2001:db8::9", hoplimit=3)),
    Route("198.18.5.0/24", device="v0", other_attributes=((99, b"\x01\x02\x03\x04"),)),
    Route("198.18.6.0/24", type=RTN.BLACKHOLE, priority=5),
]


@pytest.mark.parametrize("route", SHAPES, ids=repr)
def test_encoded_route_reads_back_equal(route: Route) -> None:
    body = route._request_body(7, (), route.mtu)
    found = decode_body(RTM.NEWROUTE, 0, memoryview(body))
    assert isinstance(found, RouteMessage)
    back = _from_message(found, route.device)
    # The kernel reports what was sent; only proto/table/type read as the kernel's values.
    assert back == route.replace(proto=3, table=254, type=route.type or 1)


def test_each_attribute_makes_a_different_route() -> None:
    base = Route("198.51.100.0/24", "192.0.2.1", device="v0")
    variants = {
        "tos": base.replace(tos=8),
        "metrics": base.replace(metrics={"hoplimit": 5}),
        "locked": base.replace(locked=["mtu"]),
        "onlink": base.replace(onlink=True),
        "realms": base.replace(realms=5),
        "encap": base.replace(encap=Encap.ip(id=1)),
        "other": base.replace(other_attributes=((99, b"x"),)),
    }
    for name, variant in variants.items():
        assert variant != base, name
    assert len(set(variants.values())) == len(variants)


def test_cilium_shaped_route_keeps_the_packed_body() -> None:
    route = Route("198.51.100.0/24", "192.0.2.1", device="v0", table=300, priority=9)
    assert route._x is None
    assert route._request_body(3, (), 0) == pack_route_body(
        AF_INET, 24, 0, 3, 0, 1, bytes((198, 51, 100, 0)), 3,
        bytes((192, 0, 2, 1)), 9, None, 0, 300,
    )  # fmt: skip


def test_metrics_and_locks_on_the_wire() -> None:
    route = SHAPES[2]
    found = decode_body(RTM.NEWROUTE, 0, memoryview(route._request_body(3, (), 1400)))
    assert isinstance(found, RouteMessage)
    lock = 1 << RTAX.MTU | 1 << RTAX.CC_ALGO
    assert dict(found.metrics) == {
        RTAX.LOCK: lock, RTAX.MTU: 1400, RTAX.WINDOW: 1000, RTAX.RTT: 80, RTAX.ADVMSS: 1300,
    }  # fmt: skip
    assert found.congctl == "reno"
    assert route.metrics == {"window": 1000, "rtt": 80, "advmss": 1300, "congctl": "reno"}
    assert route.locked == {"mtu", "congctl"}


def test_key_fields_reach_the_delete_body() -> None:
    v4 = decode_body(RTM.DELROUTE, 0, memoryview(SHAPES[0]._delete_body(3)))
    v6 = decode_body(RTM.DELROUTE, 0, memoryview(SHAPES[1]._delete_body(3)))
    assert isinstance(v4, RouteMessage) and isinstance(v6, RouteMessage)
    assert v4.tos == 0x10
    assert (v6.src, v6.src_len, v6.priority) == (ip_address("2001:db8:99::"), 64, 1024)
    assert v6.family == AF_INET6


def test_via_is_sent_as_rta_via() -> None:
    found = decode_body(RTM.NEWROUTE, 0, memoryview(SHAPES[7]._request_body(3, (), 0)))
    assert isinstance(found, RouteMessage)
    assert found.gateway is None
    assert found.via == (AF_INET6, ip_address("fe80::1"))
    assert SHAPES[7].nexthop_route().prefix.version == 6


def test_encap_builders_read_back() -> None:
    encap = Encap.ip(id=5, dst="192.0.2.9", ttl=10, flags=["key"])
    assert encap.type_name == "ip"
    assert encap.fields() == {
        "id": 5, "dst": ip_address("192.0.2.9"), "ttl": 10, "tos": 0, "flags": ["key"],
    }  # fmt: skip
    assert Encap.mpls([100, 200], ttl=5).fields() == {"labels": [100, 200], "ttl": 5}
    assert Encap(99, b"\x00").fields() is None
    with pytest.raises(ValueError, match="encap"):
        Encap.ip(dst="2001:db8::1")


def test_unknown_attributes_survive_a_decode() -> None:
    message = RouteMessage(family=AF_INET, dst_len=24, dst=ip_address("198.18.5.0"), oif=3,
                           other=((99, b"\x01\x02\x03\x04"),))  # fmt: skip
    found = decode_body(RTM.NEWROUTE, 0, memoryview(encode_body(message)))
    assert isinstance(found, RouteMessage)
    assert _from_message(found, "v0").other_attributes == ((99, b"\x01\x02\x03\x04"),)
