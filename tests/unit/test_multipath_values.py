"""Values of multipath routes and routes via nexthop objects: validation, equality,
``to_ip_command``; no kernel needed."""

from __future__ import annotations

from typing import Any

import pytest

from asyncroute import Nexthop, Route

HOPS = [Nexthop("192.0.2.1", "v0", weight=3), Nexthop("192.0.2.5", "v1")]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"gateway": "192.0.2.1", "weight": 0}, "weight"),
        ({"gateway": "192.0.2.1", "weight": 257}, "weight"),
        ({"gateway": "192.0.2.1", "weight": True}, "weight"),
        ({"gateway": "192.0.2.1", "weight": 1.0}, "weight"),
        ({"gateway": "192.0.2.1", "onlink": 1}, "onlink"),
        ({}, "gateway"),
        ({"gateway": "192.0.2.300"}, "gateway"),
        ({"gateway": "192.0.2.1", "device": "a/b"}, "device"),
        ({"gateway": "192.0.2.1", "device": "x" * 16}, "device"),
    ],
)
def test_bad_nexthop_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Nexthop(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"nexthops": HOPS, "device": "v0"}, "device"),
        ({"nexthops": HOPS, "nexthop": "192.0.2.1"}, "nexthop"),
        ({"nexthops": []}, "nexthops"),
        ({"nexthops": ["192.0.2.1"]}, "nexthops"),
        ({"nexthops": [Nexthop("2001:db8::1", "v0")]}, "nexthops"),
        ({"nexthops": HOPS, "nexthop_id": 5}, "nexthop_id"),
        ({"nexthop_id": 5, "device": "v0"}, "device"),
        ({"nexthop_id": 5, "nexthop": "192.0.2.1"}, "nexthop"),
        ({"nexthop_id": 2**32}, "nexthop_id"),
        ({"nexthop_id": -1}, "nexthop_id"),
    ],
)
def test_bad_route_nexthops_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises((ValueError, TypeError), match=field):
        Route("203.0.113.0/24", **kwargs)


def test_value_semantics() -> None:
    a = Route("203.0.113.0/24", nexthops=HOPS, table=100)
    b = Route("203.0.113.0/24", nexthops=tuple(HOPS), table=100)
    assert a == b and hash(a) == hash(b)
    assert a != Route("203.0.113.0/24", nexthops=HOPS[:1], table=100)
    assert a != a.replace(nexthops=[HOPS[1], HOPS[0]])  # hop order is kept, as the kernel's
    assert a.nexthops == tuple(HOPS) and a.nexthop_id == 0 and a.device == ""
    assert "nexthops=[Nexthop(" in repr(a)
    c = a.replace(nexthops=None, nexthop_id=7)
    assert c.nexthop_id == 7 and c.nexthops == () and "nexthop_id=7" in repr(c)
    assert Nexthop("192.0.2.1", "v0") == Nexthop("192.0.2.1", "v0", weight=1)
    assert Nexthop("192.0.2.1") != Nexthop("192.0.2.1", onlink=True)


def test_single_path_routes_are_unchanged() -> None:
    r = Route("203.0.113.0/24", nexthop="192.0.2.1", device="v0")
    assert r.nexthops == () and r.nexthop_id == 0
    assert "nexthops" not in repr(r) and "nexthop_id" not in repr(r)


def test_to_ip_command() -> None:
    r = Route("203.0.113.0/24", nexthops=[*HOPS, Nexthop("192.0.2.9", onlink=True)], table=100)
    assert r.to_ip_command() == [
        "ip", "route", "add", "203.0.113.0/24", "table", "100",
        "nexthop", "via", "192.0.2.1", "dev", "v0", "weight", "3",
        "nexthop", "via", "192.0.2.5", "dev", "v1", "weight", "1",
        "nexthop", "via", "192.0.2.9", "weight", "1", "onlink",
    ]  # fmt: skip
    # no nexthop route for multipath; replace, as upsert does
    assert r.to_ip_commands() == [["ip", "route", "replace", *r.to_ip_command()[3:]]]
    assert Route("2001:db8:1::/64", nexthop_id=12).to_ip_command() == [
        "ip", "-6", "route", "add", "2001:db8:1::/64", "nhid", "12",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="dev"):
        Route("203.0.113.0/24").to_ip_command()
