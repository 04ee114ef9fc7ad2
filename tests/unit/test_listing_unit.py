"""Unit tests of :mod:`asyncroute.listing` that need no kernel.

Cilium's ListRules filter semantics case by case (``_rule_matches``), rule decoding,
the RTM_DELROUTE built for a dumped route, and bad input refused before any request.
A fake kernel (:class:`asyncroute.testing.fake_kernel.FakeKernel`) checks the dump requests
list_routes sends and how delete_route_table reports failed deletions.
"""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_interface
from typing import Any

import pytest

from asyncroute import RTM, KernelError, Message, Rule
from asyncroute.constants import AF_INET, AF_INET6, AF_UNSPEC
from asyncroute.listing import (
    _delete_request,
    _rule_from_message,
    _rule_matches,
    _uses_device,
    delete_route_table,
    list_routes,
    list_rules,
    node_device_with_default_route,
)
from asyncroute.messages import MultipathHop, RouteMessage, RuleMessage
from asyncroute.testing.fake_kernel import FakeKernel, ack, dump_replies, error_reply

V4 = IPv4Address


def _rule(**fields: Any) -> RuleMessage:
    # action 1 (FR_ACT_TO_TBL): what the kernel reports for a rule that looks up a table.
    return RuleMessage(family=AF_INET, **{"action": 1, **fields})


HOST_BITS = _rule(src=V4("198.18.0.41"), src_len=24, priority=7, table=7)
PLAIN = _rule(src=V4("192.0.2.40"), src_len=32, priority=1, table=1)
ALL = _rule(priority=32766, table=254)
MARKED = _rule(priority=1, table=1, fwmark=0xBB, fwmask=0xFF)
MASK_ONLY = _rule(priority=1, table=1, fwmask=0x5)
BIG_TABLE = _rule(priority=1, table=0, table_id=70000)


@pytest.mark.parametrize(
    ("spec", "found", "expected"),
    [
        (Rule(), PLAIN, True),  # every field zero: no filter
        (Rule(src="192.0.2.40/32"), PLAIN, True),
        (Rule(src="192.0.2.40/31"), PLAIN, False),  # length differs
        (Rule(src="192.0.2.60/32"), PLAIN, False),
        (Rule(src="192.0.2.40/32"), ALL, False),  # no selector is "all"
        (Rule(src="0.0.0.0/0"), ALL, True),  # … which a /0 filter matches
        (Rule(src="0.0.0.0/0"), PLAIN, False),
        (Rule(src="198.18.0.0/24"), HOST_BITS, False),  # the kernel's host bits count
        (Rule(dst="192.0.2.40/32"), PLAIN, False),
        (Rule(priority=1), PLAIN, True),
        (Rule(priority=2), PLAIN, False),
        (Rule(priority=5), _rule(table=255), False),  # no FRA_PRIORITY reads as 0
        (Rule(table=1), PLAIN, True),
        (Rule(table=2), PLAIN, False),
        (Rule(table=70000), BIG_TABLE, True),  # FRA_TABLE, not the header byte
        (Rule(mark=0xBB), MARKED, True),
        (Rule(mark=0xBC), MARKED, False),
        (Rule(mark=0xBB), PLAIN, False),
        (Rule(mask=0xFF), MARKED, True),
        (Rule(mask=0x5), MASK_ONLY, True),
        (Rule(mask=0x5), PLAIN, False),  # no FRA_FWMASK never equals a filter mask
        (Rule(src="192.0.2.40/32", priority=1, table=1), PLAIN, True),
        (Rule(src="192.0.2.40/32", priority=1, table=2), PLAIN, False),
    ],
)
def test_rule_filter(spec: Rule, found: RuleMessage, expected: bool) -> None:
    assert _rule_matches(spec, found) is expected


def test_rule_from_message() -> None:
    # The kernel keeps a selector's host bits and deletes by them: so does the Rule.
    host_bits = _rule_from_message(HOST_BITS)
    assert host_bits == Rule(src=ip_interface("198.18.0.41/24"), priority=7, table=7)
    assert host_bits != Rule(src="198.18.0.0/24", priority=7, table=7)
    assert host_bits.src == IPv4Network("198.18.0.0/24")
    assert _rule_from_message(ALL) == Rule(priority=32766, table=254)
    assert _rule_from_message(_rule(table=255)) == Rule(table=255)
    assert _rule_from_message(MARKED) == Rule(priority=1, table=1, mark=0xBB, mask=0xFF)
    assert _rule_from_message(BIG_TABLE).table == 70000
    v6 = RuleMessage(family=AF_INET6, dst=IPv6Address("2001:db8::1"), dst_len=64, table=9, action=1)
    assert _rule_from_message(v6) == Rule(dst=ip_interface("2001:db8::1/64"), table=9)
    assert _rule_from_message(v6).dst == IPv6Network("2001:db8::/64")


def test_uses_device() -> None:
    hops = (MultipathHop(ifindex=3), MultipathHop(ifindex=4))
    assert _uses_device(RouteMessage(family=AF_INET, oif=3), 3)
    assert not _uses_device(RouteMessage(family=AF_INET, oif=3), 4)
    assert _uses_device(RouteMessage(family=AF_INET, multipath=hops), 4)
    assert not _uses_device(RouteMessage(family=AF_INET, multipath=hops), 5)
    assert not _uses_device(RouteMessage(family=AF_INET), 1)


def test_delete_request() -> None:
    dumped = RouteMessage(
        family=AF_INET,
        dst_len=24,
        table=252,  # RT_TABLE_COMPAT: what the kernel puts in the header for ids ≥ 256
        protocol=77,
        scope=253,
        type=1,
        flags=0x10,
        dst=V4("198.18.0.0"),
        oif=3,
        gateway=V4("192.0.2.1"),
        priority=5,
        prefsrc=V4("192.0.2.2"),
        metrics=((2, 1400),),
        table_id=70000,
        multipath=(MultipathHop(ifindex=3),),
    )
    request = _delete_request(dumped)
    assert (request.type, request.flags) == (RTM.DELROUTE, 0)
    assert request.body == RouteMessage(
        family=AF_INET,
        dst_len=24,
        table=0,
        protocol=77,
        scope=253,
        type=1,
        dst=V4("198.18.0.0"),
        oif=3,
        gateway=V4("192.0.2.1"),
        priority=5,
        prefsrc=V4("192.0.2.2"),
        table_id=70000,
    )
    # Via a nexthop object: the id alone (RTA_OIF/RTA_GATEWAY with it are EINVAL).
    by_id = RouteMessage(
        family=AF_INET, dst_len=24, table=100, dst=V4("198.18.6.0"), oif=3, nexthop_id=10
    )
    body = _delete_request(by_id).body
    assert isinstance(body, RouteMessage)
    assert (body.oif, body.gateway, body.nexthop_id, body.table, body.table_id) == (
        None,
        None,
        10,
        100,
        100,
    )


class _Untouchable:
    """A connection that fails any use: bad input must be refused before a request."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the connection was used ({name})")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": 0},
        {"table": -1},
        {"table": 2**32},
        {"table": "main"},
        {"protocol": 256},
        {"type": -1},
        {"scope": 256},
        {"device": ""},
        {"family": 7},
        {"family": AF_INET, "device": "x" * 16},
    ],
)
async def test_list_routes_bad_input(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        [r async for r in list_routes(_Untouchable(), **kwargs)]  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_other_bad_input() -> None:
    conn: Any = _Untouchable()
    with pytest.raises(ValueError):
        [r async for r in list_rules(conn, AF_UNSPEC)]
    with pytest.raises(ValueError):
        await delete_route_table(conn, 0)
    with pytest.raises(ValueError):
        await delete_route_table(conn, 100, 7)
    with pytest.raises(ValueError):
        await node_device_with_default_route(conn, ipv4=False, ipv6=False)


# --------------------------------------------------------------------------- fake kernel


class _Kernel:
    """Answers RTM_GETROUTE dumps with ``routes`` and DELROUTE with ``errors`` by dst."""

    def __init__(self, routes: list[RouteMessage], errors: dict[str, int]) -> None:
        self.routes = routes
        self.errors = errors
        self.requests: list[Message] = []
        self.fake = FakeKernel(self)

    def __call__(self, request: Message) -> list[Message]:
        self.requests.append(request)
        if request.type == RTM.GETROUTE:
            return dump_replies(request, RTM.NEWROUTE, self.routes)
        assert request.type == RTM.DELROUTE and isinstance(request.body, RouteMessage)
        code = self.errors.get(str(request.body.dst), 0)
        return [ack(request)] if code == 0 else [error_reply(request, code)]


def _route(n: int, table: int = 100) -> RouteMessage:
    return RouteMessage(
        family=AF_INET, dst_len=24, table=table, type=1, dst=V4(f"198.18.{n}.0"), protocol=3
    )


@pytest.mark.anyio
async def test_dump_request_carries_the_filters() -> None:
    kernel = _Kernel([], {})
    async with kernel.fake.connect() as conn:
        assert [r async for r in list_routes(conn, table=70000, protocol=77, type=6)] == []
        assert [r async for r in list_routes(conn, AF_INET6, table=100, scope=253)] == []
    first, second = (r.body for r in kernel.requests)
    assert first == RouteMessage(family=AF_UNSPEC, protocol=77, type=6, table_id=70000)
    # Scope is never sent: the kernel answers a non-zero rtm_scope with EINVAL.
    assert second == RouteMessage(family=AF_INET6, table=100)


@pytest.mark.anyio
async def test_python_recheck() -> None:
    """Replies the kernel should have filtered out (an old kernel) are dropped here."""
    routes = [
        _route(1),
        _route(2, table=101),
        RouteMessage(family=128, table=100),  # RTNL_FAMILY_IPMR
        RouteMessage(family=AF_INET, dst_len=32, table=100, flags=0x200),  # RTM_F_CLONED
    ]
    kernel = _Kernel(routes, {})
    async with kernel.fake.connect() as conn:
        listed = [r async for r in list_routes(conn, table=100)]
    assert [str(r.prefix) for r in listed] == ["198.18.1.0/24"]


@pytest.mark.anyio
async def test_delete_route_table_keeps_going() -> None:
    routes = [_route(n) for n in range(6)]
    errors = {"198.18.1.0": errno.EPERM, "198.18.2.0": errno.ESRCH, "198.18.4.0": errno.EINVAL}
    kernel = _Kernel(routes, errors)
    async with kernel.fake.connect() as conn:
        with pytest.raises(KernelError) as info:
            await delete_route_table(conn, 100, AF_INET)
    assert info.value.errno == errno.EPERM
    assert "2 of 6 deletions from table 100 failed" in "".join(info.value.__notes__)
    deleted = [r.body for r in kernel.requests if r.type == RTM.DELROUTE]
    assert [str(b.dst) for b in deleted if isinstance(b, RouteMessage)] == [
        f"198.18.{n}.0" for n in range(6)
    ]  # every one was tried


@pytest.mark.anyio
async def test_delete_route_table_absent_routes_are_fine() -> None:
    kernel = _Kernel([_route(n) for n in range(3)], {"198.18.1.0": errno.ESRCH})
    async with kernel.fake.connect() as conn:
        assert await delete_route_table(conn, 100, AF_INET) == 2
