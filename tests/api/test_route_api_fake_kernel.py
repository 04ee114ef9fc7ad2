"""The route API against a fake kernel: what upsert/delete/lookup/replace_rule put on the wire.

A :class:`MiniKernel` handler stands in for rtnetlink behind
:class:`asyncroute.testing.fake_kernel.FakeKernel`: it resolves device names (``v0`` is
ifindex 3, anything else is ENODEV), answers every other request as the test tells it
to, and records every request it sees.  The connection under test is the real
:class:`asyncroute.Connection`, so the messages checked here are the decoded bytes that
would reach the kernel.

Every test runs on asyncio and on trio.  Assertions about exceptions sit inside the
``async with`` block (an exception leaving it may be wrapped by the fake kernel's task
group).  Retries use a recording sleep that returns at once, so nothing here waits.
"""

from __future__ import annotations

import errno
import gc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import asyncroute
from asyncroute import (
    Connection,
    KernelError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    Route,
    Rule,
    mtu,
)
from asyncroute.constants import AF_INET, AF_INET6, NLM_F, RTM, RTM_F
from asyncroute.messages import LinkMessage, Message, RouteMessage, RuleMessage
from asyncroute.testing.fake_kernel import FakeKernel, ack, dump_replies, error_reply

pytestmark = pytest.mark.anyio

V0 = 3  #: ifindex of the only device the mini kernel knows, "v0"
RTAX_MTU = 2
RTPROT_BOOT = 3
RTN_UNICAST = 1
SCOPE_LINK = 253
SCOPE_HOST = 254
CREATE_EXCL = int(NLM_F.CREATE | NLM_F.EXCL)
CREATE_REPLACE = int(NLM_F.CREATE | NLM_F.REPLACE)
DUMP = int(NLM_F.DUMP)

PREFIX4 = "198.51.100.0/24"
NH4 = "192.0.2.1"
PREFIX6 = "2001:db8:1::/64"
NH6 = "fe80::1"

#: Answer for a request: an errno (0 = ack), or reply bodies followed by an ack.
Answer = int | list[RouteMessage]


# --------------------------------------------------------------------------- the mini kernel


class MiniKernel:
    """A FakeKernel handler: links by name, programmable answers, every request recorded.

    ``newroute``/``delroute``/``newrule``/``delrule`` map a request to an errno (0: ack).
    ``getroute`` answers a non-dump RTM_GETROUTE (reply bodies, or an errno);
    ``route_dump``/``rule_dump`` are what RTM_GETROUTE/RTM_GETRULE dumps return.
    """

    def __init__(self) -> None:
        self.requests: list[Message] = []
        self.links: dict[str, int] = {"v0": V0}
        self.newroute: Callable[[Message], int] = lambda request: 0
        self.delroute: Callable[[Message], int] = lambda request: 0
        self.getroute: Callable[[Message], Answer] = lambda request: errno.ENETUNREACH
        self.route_dump: list[RouteMessage] = []
        self.rule_dump: list[RuleMessage] = []
        self.newrule: Callable[[Message], int] = lambda request: 0
        self.delrule: Callable[[Message], int] = lambda request: 0

    def __call__(self, request: Message) -> Iterable[Message]:
        self.requests.append(request)
        dump = request.flags & DUMP == DUMP
        if request.type == RTM.GETLINK:
            return self._getlink(request)
        if request.type == RTM.NEWROUTE:
            return self._answer(request, self.newroute(request))
        if request.type == RTM.DELROUTE:
            return self._answer(request, self.delroute(request))
        if request.type == RTM.GETROUTE and dump:
            return dump_replies(request, RTM.NEWROUTE, self.route_dump)
        if request.type == RTM.GETROUTE:
            return self._answer(request, self.getroute(request))
        if request.type == RTM.GETRULE and dump:
            return dump_replies(request, RTM.NEWRULE, self.rule_dump)
        if request.type == RTM.NEWRULE:
            return self._answer(request, self.newrule(request))
        if request.type == RTM.DELRULE:
            return self._answer(request, self.delrule(request))
        return [error_reply(request, errno.EOPNOTSUPP)]

    def _getlink(self, request: Message) -> list[Message]:
        assert isinstance(request.body, LinkMessage)
        name = request.body.name
        if name not in self.links:
            return [error_reply(request, errno.ENODEV)]
        link = LinkMessage(index=self.links[name], name=name, mtu=1500)
        return [Message(RTM.NEWLINK, 0, link, request.seq, request.port_id), ack(request)]

    @staticmethod
    def _answer(request: Message, answer: Answer) -> list[Message]:
        if isinstance(answer, int):
            return [ack(request)] if answer == 0 else [error_reply(request, answer)]
        replies = [Message(RTM.NEWROUTE, 0, body, request.seq, request.port_id) for body in answer]
        return [*replies, ack(request)]

    # ---- views of what was received

    def of_type(self, msg_type: int) -> list[Message]:
        return [request for request in self.requests if request.type == msg_type]

    def routes(self, msg_type: int, dst_len: int) -> list[RouteMessage]:
        """Bodies of ``msg_type`` route requests for prefixes of length ``dst_len``."""
        bodies = []
        for request in self.of_type(msg_type):
            assert isinstance(request.body, RouteMessage)
            if request.body.dst_len == dst_len:
                bodies.append(request.body)
        return bodies

    def types(self) -> list[int]:
        return [request.type for request in self.requests]


@asynccontextmanager
async def connected(kernel: MiniKernel) -> AsyncIterator[Connection]:
    async with FakeKernel(kernel).connect() as conn:
        yield conn


class RecordingSleep:
    """A RetryPolicy sleep that records its argument and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def body(message: Message) -> RouteMessage:
    assert isinstance(message.body, RouteMessage)
    return message.body


def rule_body(message: Message) -> RuleMessage:
    assert isinstance(message.body, RuleMessage)
    return message.body


def failing(code: int, dst_len: int, times: int | None = None) -> Callable[[Message], int]:
    """A newroute answer: ``code`` for requests of prefix length ``dst_len`` (the first
    ``times`` of them, or all), ack for everything else."""
    seen = 0

    def answer(request: Message) -> int:
        nonlocal seen
        if body(request).dst_len != dst_len:
            return 0
        seen += 1
        return code if times is None or seen <= times else 0

    return answer


def nexthop_exists(request: Message) -> int:
    """newroute: the /32 nexthop route is already there (EEXIST for an EXCL add)."""
    if body(request).dst_len == 32 and request.flags & NLM_F.EXCL:
        return errno.EEXIST
    return 0


# --------------------------------------------------------------------------- retries


async def test_retry_einval_three_times_then_success() -> None:
    kernel = MiniKernel()
    kernel.newroute = failing(errno.EINVAL, 24, times=3)
    sleep = RecordingSleep()
    async with connected(kernel) as conn:
        route = Route(PREFIX4, nexthop=NH4, device="v0")
        assert await conn.upsert(route, retry=RetryPolicy(sleep=sleep)) is True
    assert len(kernel.routes(RTM.NEWROUTE, 24)) == 4
    assert sleep.calls == [0.1, 0.1, 0.1]
    assert kernel.of_type(RTM.DELROUTE) == []


async def test_retry_eperm_fails_at_once() -> None:
    kernel = MiniKernel()
    kernel.newroute = failing(errno.EPERM, 24)
    sleep = RecordingSleep()
    async with connected(kernel) as conn:
        route = Route(PREFIX4, nexthop=NH4, device="v0")
        with pytest.raises(PermissionDeniedError) as info:
            await conn.upsert(route, retry=RetryPolicy(sleep=sleep))
        assert info.value.errno == errno.EPERM
    assert len(kernel.routes(RTM.NEWROUTE, 24)) == 1
    assert sleep.calls == []


@pytest.mark.parametrize("code", [errno.ENODEV, errno.EEXIST, errno.ERANGE, errno.EAFNOSUPPORT])
async def test_retry_other_permanent_errors_fail_at_once(code: int) -> None:
    kernel = MiniKernel()
    kernel.newroute = failing(code, 24)
    sleep = RecordingSleep()
    async with connected(kernel) as conn:
        with pytest.raises(KernelError) as info:
            await conn.upsert(Route(PREFIX4, device="v0"), retry=RetryPolicy(sleep=sleep))
        assert info.value.errno == code
    assert len(kernel.routes(RTM.NEWROUTE, 24)) == 1
    assert sleep.calls == []


@pytest.mark.parametrize(
    "code", [errno.EINVAL, errno.ENETUNREACH, errno.EAGAIN, errno.EBUSY, errno.EINTR]
)
async def test_retry_transient_errors_are_retried(code: int) -> None:
    kernel = MiniKernel()
    kernel.newroute = failing(code, 24, times=1)
    sleep = RecordingSleep()
    async with connected(kernel) as conn:
        assert await conn.upsert(Route(PREFIX4, device="v0"), retry=RetryPolicy(sleep=sleep))
    assert len(kernel.routes(RTM.NEWROUTE, 24)) == 2
    assert sleep.calls == [0.1]


async def test_retry_always_einval_deletes_the_nexthop_route_it_created() -> None:
    kernel = MiniKernel()
    kernel.newroute = failing(errno.EINVAL, 24)
    sleep = RecordingSleep()
    async with connected(kernel) as conn:
        route = Route(PREFIX4, nexthop=NH4, device="v0")
        with pytest.raises(KernelError) as info:
            await conn.upsert(route, retry=RetryPolicy(sleep=sleep))
        assert type(info.value) is KernelError
        assert info.value.errno == errno.EINVAL
    assert len(kernel.routes(RTM.NEWROUTE, 24)) == 10
    assert sleep.calls == [0.1] * 9
    # The nexthop route was added with CREATE|EXCL, and acked: this call created it.
    [nh_add] = [m for m in kernel.of_type(RTM.NEWROUTE) if body(m).dst_len == 32]
    assert nh_add.flags & CREATE_EXCL == CREATE_EXCL
    [delete] = kernel.of_type(RTM.DELROUTE)
    assert body(delete) == RouteMessage(
        family=AF_INET,
        dst_len=32,
        table=254,
        scope=SCOPE_LINK,
        dst=IPv4Address(NH4),
        oif=V0,
    )
    # The rollback comes last.
    assert kernel.requests[-1] is delete


async def test_retry_always_einval_keeps_a_nexthop_route_that_existed() -> None:
    kernel = MiniKernel()
    failing_prefix = failing(errno.EINVAL, 24)
    kernel.newroute = lambda request: nexthop_exists(request) or failing_prefix(request)
    sleep = RecordingSleep()
    async with connected(kernel) as conn:
        route = Route(PREFIX4, nexthop=NH4, device="v0", table=100)
        with pytest.raises(KernelError) as info:
            await conn.upsert(route, retry=RetryPolicy(sleep=sleep))
        assert info.value.errno == errno.EINVAL
    nh_adds = [m for m in kernel.of_type(RTM.NEWROUTE) if body(m).dst_len == 32]
    assert [m.flags & (CREATE_EXCL | CREATE_REPLACE) for m in nh_adds] == [
        CREATE_EXCL,
        CREATE_REPLACE,
    ]
    assert body(nh_adds[0]) == body(nh_adds[1])
    assert len(kernel.routes(RTM.NEWROUTE, 24)) == 10
    assert sleep.calls == [0.1] * 9
    assert kernel.of_type(RTM.DELROUTE) == []


async def test_retry_success_keeps_a_created_nexthop_route() -> None:
    kernel = MiniKernel()
    async with connected(kernel) as conn:
        assert await conn.upsert(Route(PREFIX4, nexthop=NH4, device="v0"))
    assert kernel.of_type(RTM.DELROUTE) == []


async def test_retry_ipv6_rollback_deletes_128_with_scope_0() -> None:
    kernel = MiniKernel()
    kernel.newroute = failing(errno.EINVAL, 64)
    sleep = RecordingSleep()
    async with connected(kernel) as conn:
        route = Route(PREFIX6, nexthop=NH6, device="v0", table=1000)
        with pytest.raises(KernelError):
            await conn.upsert(route, retry=RetryPolicy(sleep=sleep, max_tries=3))
    assert len(kernel.routes(RTM.NEWROUTE, 64)) == 3
    assert sleep.calls == [0.1, 0.1]
    [delete] = kernel.of_type(RTM.DELROUTE)
    assert body(delete) == RouteMessage(
        family=AF_INET6,
        dst_len=128,
        table=0,
        scope=0,
        dst=IPv6Address(NH6),
        oif=V0,
        table_id=1000,
        priority=1024,
    )


async def test_retry_predicate_is_injectable() -> None:
    kernel = MiniKernel()
    kernel.newroute = failing(errno.EPERM, 24, times=2)
    sleep = RecordingSleep()
    policy = RetryPolicy(sleep=sleep, interval=0.25, retryable=lambda error: True)
    async with connected(kernel) as conn:
        assert await conn.upsert(Route(PREFIX4, device="v0"), retry=policy)
    assert len(kernel.routes(RTM.NEWROUTE, 24)) == 3
    assert sleep.calls == [0.25, 0.25]


# --------------------------------------------------------------------------- upsert on the wire

#: (id, route, expected nexthop route body or None, expected prefix route body)
UPSERT_WIRE: list[tuple[str, Route, RouteMessage | None, RouteMessage]] = [
    (
        "v4-via-main",
        Route(PREFIX4, nexthop=NH4, device="v0"),
        RouteMessage(
            family=AF_INET, dst_len=32, table=254, protocol=RTPROT_BOOT, scope=SCOPE_LINK,
            type=RTN_UNICAST, dst=IPv4Address(NH4), oif=V0,
        ),
        RouteMessage(
            family=AF_INET, dst_len=24, table=254, protocol=RTPROT_BOOT, scope=0,
            type=RTN_UNICAST, dst=ip_address("198.51.100.0"), oif=V0,
            gateway=IPv4Address(NH4),
        ),
    ),
    (
        "v4-via-table-100-mtu-local-prio-proto",
        Route(
            PREFIX4, nexthop=NH4, local="198.51.100.1", device="v0", mtu=1400, proto=4,
            table=100, priority=7,
        ),
        RouteMessage(
            family=AF_INET, dst_len=32, table=100, protocol=RTPROT_BOOT, scope=SCOPE_LINK,
            type=RTN_UNICAST, dst=IPv4Address(NH4), oif=V0,
        ),
        RouteMessage(
            family=AF_INET, dst_len=24, table=100, protocol=4, scope=0, type=RTN_UNICAST,
            dst=ip_address("198.51.100.0"), oif=V0, gateway=IPv4Address(NH4), priority=7,
            prefsrc=ip_address("198.51.100.1"), metrics=((RTAX_MTU, 1400),),
        ),
    ),
    (
        "v4-via-table-1000",
        Route(PREFIX4, nexthop=NH4, device="v0", table=1000),
        RouteMessage(
            family=AF_INET, dst_len=32, table=0, protocol=RTPROT_BOOT, scope=SCOPE_LINK,
            type=RTN_UNICAST, dst=IPv4Address(NH4), oif=V0, table_id=1000,
        ),
        RouteMessage(
            family=AF_INET, dst_len=24, table=0, protocol=RTPROT_BOOT, scope=0,
            type=RTN_UNICAST, dst=ip_address("198.51.100.0"), oif=V0,
            gateway=IPv4Address(NH4), table_id=1000,
        ),
    ),
    (
        "v4-table-255-in-header",
        Route(PREFIX4, device="v0", table=255),
        None,
        RouteMessage(
            family=AF_INET, dst_len=24, table=255, protocol=RTPROT_BOOT, scope=0,
            type=RTN_UNICAST, dst=ip_address("198.51.100.0"), oif=V0,
        ),
    ),
    (
        "v4-table-256-in-attribute",
        Route(PREFIX4, device="v0", table=256),
        None,
        RouteMessage(
            family=AF_INET, dst_len=24, table=0, protocol=RTPROT_BOOT, scope=0,
            type=RTN_UNICAST, dst=ip_address("198.51.100.0"), oif=V0, table_id=256,
        ),
    ),
    (
        "v4-direct-explicit-scope-link",
        Route(PREFIX4, device="v0", scope=SCOPE_LINK),
        None,
        RouteMessage(
            family=AF_INET, dst_len=24, table=254, protocol=RTPROT_BOOT, scope=SCOPE_LINK,
            type=RTN_UNICAST, dst=ip_address("198.51.100.0"), oif=V0,
        ),
    ),
    (
        "v4-type-local-scope-host",
        Route(PREFIX4, device="v0", type=2, local="198.51.100.1"),
        None,
        RouteMessage(
            family=AF_INET, dst_len=24, table=254, protocol=RTPROT_BOOT, scope=SCOPE_HOST,
            type=2, dst=ip_address("198.51.100.0"), oif=V0, prefsrc=ip_address("198.51.100.1"),
        ),
    ),
    (
        "v6-via-main",
        Route(PREFIX6, nexthop=NH6, device="v0"),
        RouteMessage(
            family=AF_INET6, dst_len=128, table=254, protocol=RTPROT_BOOT, scope=0,
            type=RTN_UNICAST, dst=IPv6Address(NH6), oif=V0,
        ),
        RouteMessage(
            family=AF_INET6, dst_len=64, table=254, protocol=RTPROT_BOOT, scope=0,
            type=RTN_UNICAST, dst=ip_address("2001:db8:1::"), oif=V0,
            gateway=IPv6Address(NH6),
        ),
    ),
    (
        "v6-via-table-1000-mtu-prio",
        Route(PREFIX6, nexthop=NH6, device="v0", table=1000, mtu=1280, priority=1024),
        RouteMessage(
            family=AF_INET6, dst_len=128, table=0, protocol=RTPROT_BOOT, scope=0,
            type=RTN_UNICAST, dst=IPv6Address(NH6), oif=V0, table_id=1000,
        ),
        RouteMessage(
            family=AF_INET6, dst_len=64, table=0, protocol=RTPROT_BOOT, scope=0,
            type=RTN_UNICAST, dst=ip_address("2001:db8:1::"), oif=V0,
            gateway=IPv6Address(NH6), priority=1024, metrics=((RTAX_MTU, 1280),),
            table_id=1000,
        ),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("route", "nexthop", "prefix"),
    [case[1:] for case in UPSERT_WIRE],
    ids=[case[0] for case in UPSERT_WIRE],
)
async def test_upsert_wire(
    route: Route, nexthop: RouteMessage | None, prefix: RouteMessage
) -> None:
    kernel = MiniKernel()
    async with connected(kernel) as conn:
        assert await conn.upsert(route) is True
    getlink, *rest = kernel.requests
    assert getlink.type == RTM.GETLINK
    assert getlink.body == LinkMessage(name="v0")
    assert [m.type for m in rest] == [RTM.NEWROUTE] * len(rest)
    if nexthop is None:
        assert len(rest) == 1
    else:
        assert len(rest) == 2
        assert body(rest[0]) == nexthop
        assert rest[0].flags & CREATE_EXCL == CREATE_EXCL
    assert body(rest[-1]) == prefix
    flags = rest[-1].flags
    assert flags & CREATE_REPLACE == CREATE_REPLACE
    assert not flags & NLM_F.EXCL
    assert flags & NLM_F.REQUEST and flags & NLM_F.ACK


@pytest.mark.parametrize(
    ("local", "mtu_config", "route_mtu", "expected"),
    [
        ("198.51.100.1", mtu.Configuration.new(encap=True, mtu=1400), 9000, 1400),
        ("192.0.2.10", mtu.Configuration.new(encap=True, mtu=1400), 9000, 1350),
        (None, mtu.Configuration.new(encap=True, mtu=1400), 9000, 1350),
        (
            None,
            mtu.Configuration.new(encap=True, encrypt=True, auth_key_size=16, mtu=1400),
            0,
            1273,
        ),
        ("198.51.100.1", mtu.Configuration.new(mtu=0), 0, 1500),
        ("198.51.100.1", None, 9000, 9000),
        (None, None, 0, None),
    ],
    ids=[
        "local-inside-device-mtu",
        "local-outside-route-mtu",
        "no-local-route-mtu",
        "encap-encrypt",
        "zero-config-1500",
        "no-config-route-mtu",
        "no-config-no-mtu",
    ],
)
async def test_upsert_mtu_config(
    local: str | None,
    mtu_config: mtu.Configuration | None,
    route_mtu: int,
    expected: int | None,
) -> None:
    kernel = MiniKernel()
    route = Route(PREFIX4, nexthop=NH4, local=local, device="v0", mtu=route_mtu)
    async with connected(kernel) as conn:
        await conn.upsert(route, mtu_config)
    [nexthop] = kernel.routes(RTM.NEWROUTE, 32)
    assert nexthop.metrics == ()
    [prefix] = kernel.routes(RTM.NEWROUTE, 24)
    assert prefix.mtu == expected
    assert prefix.metrics == (() if expected is None else ((RTAX_MTU, expected),))


async def test_upsert_ipv6_mtu_config_local_inside_prefix() -> None:
    kernel = MiniKernel()
    route = Route(PREFIX6, local="2001:db8:1::5", device="v0")
    async with connected(kernel) as conn:
        await conn.upsert(route, mtu.Configuration.new(encap=True, mtu=9000))
    [prefix] = kernel.routes(RTM.NEWROUTE, 64)
    assert prefix.metrics == ((RTAX_MTU, 9000),)


async def test_upsert_mtu_config_zero_mtu_encrypt_route_gets_a_sane_mtu() -> None:
    """Regression: Configuration.new(encrypt=True, mtu=0).get_route_mtu() was -77, so upsert
    fails to encode the prefix route (ValueError, not a KernelError) after it created
    the nexthop route, and the rollback (which only handles KernelError) leaves it."""
    kernel = MiniKernel()
    config = mtu.Configuration.new(encrypt=True, auth_key_size=16, mtu=0)
    async with connected(kernel) as conn:
        await conn.upsert(Route(PREFIX4, nexthop=NH4, device="v0"), config)
    [prefix] = kernel.routes(RTM.NEWROUTE, 24)
    assert prefix.metrics == ((RTAX_MTU, 1423),)


async def test_upsert_module_function_uses_default_retry_constants() -> None:
    # Connection.upsert's default policy is Cilium's: 10 tries, 0.1 s apart.
    kernel = MiniKernel()
    kernel.newroute = failing(errno.EPERM, 24)
    async with connected(kernel) as conn:
        with pytest.raises(PermissionDeniedError):
            await conn.upsert(Route(PREFIX4, device="v0"))
    assert len(kernel.routes(RTM.NEWROUTE, 24)) == 1


# --------------------------------------------------------------------------- delete

DELETE_WIRE: list[tuple[str, Route, RouteMessage]] = [
    (
        "v4-everything-set",
        Route(
            PREFIX4, nexthop=NH4, local="198.51.100.1", device="v0", mtu=1400, proto=4,
            table=100, priority=7,
        ),
        RouteMessage(
            family=AF_INET, dst_len=24, table=100, scope=0, dst=ip_address("198.51.100.0"),
            oif=V0, priority=7,
        ),
    ),
    (
        "v4-scope-link",
        Route("192.0.2.1/32", device="v0", scope=SCOPE_LINK),
        RouteMessage(
            family=AF_INET, dst_len=32, table=254, scope=SCOPE_LINK, dst=IPv4Address(NH4),
            oif=V0,
        ),
    ),
    (
        "v4-type-local-effective-scope-host",
        Route(PREFIX4, device="v0", type=2),
        RouteMessage(
            family=AF_INET, dst_len=24, table=254, scope=SCOPE_HOST,
            dst=ip_address("198.51.100.0"), oif=V0,
        ),
    ),
    (
        "v4-table-1000",
        Route(PREFIX4, device="v0", table=1000),
        RouteMessage(
            family=AF_INET, dst_len=24, table=0, scope=0, dst=ip_address("198.51.100.0"),
            oif=V0, table_id=1000,
        ),
    ),
    (
        "v6-scope-ignored",
        Route(PREFIX6, nexthop=NH6, local="2001:db8:1::1", device="v0", scope=SCOPE_LINK,
              mtu=1280, proto=4, type=2, priority=5),
        RouteMessage(
            family=AF_INET6, dst_len=64, table=254, scope=0, dst=ip_address("2001:db8:1::"),
            oif=V0, priority=5,
        ),
    ),
    (
        "v6-metric-0-is-1024",
        Route(PREFIX6, nexthop=NH6, device="v0"),
        RouteMessage(
            family=AF_INET6, dst_len=64, table=254, scope=0, dst=ip_address("2001:db8:1::"),
            oif=V0, priority=1024,
        ),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("route", "expected"), [case[1:] for case in DELETE_WIRE], ids=[case[0] for case in DELETE_WIRE]
)
async def test_delete_sends_identifying_fields_only(route: Route, expected: RouteMessage) -> None:
    kernel = MiniKernel()
    async with connected(kernel) as conn:
        await conn.delete(route)
    assert kernel.types() == [RTM.GETLINK, RTM.DELROUTE]
    delete = kernel.requests[1]
    found = body(delete)
    assert found == expected
    assert found.gateway is None and found.prefsrc is None and found.metrics == ()
    assert found.protocol == 0 and found.type == 0  # the metric is part of the key
    assert not delete.flags & (NLM_F.CREATE | NLM_F.REPLACE | NLM_F.EXCL)


@pytest.mark.parametrize("code", [errno.ESRCH, errno.ENOENT])
async def test_delete_missing_route_is_not_found(code: int) -> None:
    kernel = MiniKernel()
    kernel.delroute = lambda request: code
    async with connected(kernel) as conn:
        with pytest.raises(NotFoundError) as info:
            await conn.delete(Route(PREFIX4, device="v0"))
        assert info.value.errno == code


# --------------------------------------------------------------------------- lookup


def kernel_route(**fields: Any) -> RouteMessage:
    """A route as the kernel reports it: main table, boot, unicast, oif v0, PREFIX4."""
    values: dict[str, Any] = {
        "family": AF_INET,
        "dst_len": 24,
        "table": 254,
        "protocol": RTPROT_BOOT,
        "scope": 0,
        "type": RTN_UNICAST,
        "dst": ip_address("198.51.100.0"),
        "oif": V0,
        "table_id": 254,
    }
    values.update(fields)
    return RouteMessage(**values)


FULL = kernel_route(
    gateway=IPv4Address(NH4),
    protocol=4,
    priority=7,
    prefsrc=ip_address("198.51.100.1"),
    metrics=((RTAX_MTU, 1400),),
)
FULL_ROUTE = Route(
    PREFIX4,
    nexthop=NH4,
    local="198.51.100.1",
    device="v0",
    mtu=1400,
    proto=4,
    scope=0,
    table=254,
    type=RTN_UNICAST,
    priority=7,
)


async def test_lookup_fib_match_answers_in_one_round_trip() -> None:
    kernel = MiniKernel()
    kernel.getroute = lambda request: [FULL]
    async with connected(kernel) as conn:
        found = await conn.lookup(Route(PREFIX4, nexthop=NH4, device="v0", priority=7))
    assert found == FULL_ROUTE
    assert kernel.types() == [RTM.GETLINK, RTM.GETROUTE]
    probe = kernel.requests[1]
    assert probe.flags & DUMP != DUMP
    probe_body = body(probe)
    assert probe_body.flags & RTM_F.FIB_MATCH == 0x2000
    assert probe_body.family == AF_INET
    assert probe_body.dst == ip_address("198.51.100.0")
    assert probe_body.dst_len == 32


async def test_lookup_more_specific_answer_falls_back_to_filtered_dump() -> None:
    kernel = MiniKernel()
    more_specific = kernel_route(
        dst_len=25, dst=ip_address("198.51.100.0"), gateway=IPv4Address(NH4)
    )
    kernel.getroute = lambda request: [more_specific]
    kernel.route_dump = [
        more_specific,
        kernel_route(gateway=IPv4Address("192.0.2.99")),  # another gateway
        kernel_route(dst=ip_address("198.51.101.0"), gateway=IPv4Address(NH4)),
        kernel_route(gateway=IPv4Address(NH4), flags=int(RTM_F.CLONED)),  # a cache entry
        FULL,
        kernel_route(gateway=IPv4Address(NH4), priority=99),  # after the match
    ]
    async with connected(kernel) as conn:
        found = await conn.lookup(Route(PREFIX4, nexthop=NH4, device="v0", priority=7))
    assert found == FULL_ROUTE
    assert kernel.types() == [RTM.GETLINK, RTM.GETROUTE, RTM.GETROUTE]
    assert body(kernel.requests[1]).flags & RTM_F.FIB_MATCH
    dump = kernel.requests[2]
    assert dump.flags & DUMP == DUMP
    query = body(dump)
    assert query.family == AF_INET
    assert query.table_number == 254
    assert query.oif == V0


async def test_lookup_probe_error_falls_back_to_dump() -> None:
    kernel = MiniKernel()
    kernel.getroute = lambda request: errno.ENETUNREACH
    kernel.route_dump = [FULL]
    async with connected(kernel) as conn:
        assert await conn.lookup(Route(PREFIX4, nexthop=NH4, device="v0", priority=7)) == FULL_ROUTE
    assert kernel.types() == [RTM.GETLINK, RTM.GETROUTE, RTM.GETROUTE]


@pytest.mark.parametrize(("table", "header", "table_id"), [(100, 100, None), (1000, 0, 1000)])
async def test_lookup_other_table_dumps_directly(
    table: int, header: int, table_id: int | None
) -> None:
    kernel = MiniKernel()
    stored = kernel_route(table=table if table < 256 else 0, table_id=table, scope=SCOPE_LINK)
    kernel.route_dump = [kernel_route(scope=SCOPE_LINK), stored]  # the first is in main
    async with connected(kernel) as conn:
        found = await conn.lookup(Route(PREFIX4, device="v0", table=table, scope=SCOPE_LINK))
    assert found == Route(
        PREFIX4, device="v0", table=table, scope=SCOPE_LINK, proto=RTPROT_BOOT, type=RTN_UNICAST
    )
    assert kernel.types() == [RTM.GETLINK, RTM.GETROUTE]
    dump = kernel.requests[1]
    assert dump.flags & DUMP == DUMP
    query = body(dump)
    assert (query.table, query.table_id, query.oif) == (header, table_id, V0)
    assert not query.flags & RTM_F.FIB_MATCH


async def test_lookup_ipv6_matches_without_scope() -> None:
    kernel = MiniKernel()
    stored = RouteMessage(
        family=AF_INET6, dst_len=64, table=254, protocol=RTPROT_BOOT, scope=0,
        type=RTN_UNICAST, dst=ip_address("2001:db8:1::"), oif=V0, gateway=IPv6Address(NH6),
        priority=1024, table_id=254,
    )  # fmt: skip
    kernel.getroute = lambda request: [stored]
    async with connected(kernel) as conn:
        found = await conn.lookup(Route(PREFIX6, nexthop=NH6, device="v0"))
    assert found == Route(
        PREFIX6, nexthop=NH6, device="v0", proto=RTPROT_BOOT, table=254, type=RTN_UNICAST,
        priority=1024,
    )  # fmt: skip
    assert kernel.types() == [RTM.GETLINK, RTM.GETROUTE]
    assert body(kernel.requests[1]).dst_len == 128


@pytest.mark.parametrize(
    "dump",
    [
        [],
        [kernel_route(gateway=IPv4Address("192.0.2.99"))],  # other gateway
        [kernel_route(gateway=IPv4Address(NH4), scope=SCOPE_LINK)],  # other scope (IPv4)
        [kernel_route(gateway=IPv4Address(NH4), oif=V0 + 1)],  # other device
        [kernel_route(gateway=IPv4Address(NH4), table=100, table_id=100)],  # other table
    ],
    ids=["empty", "gateway", "scope", "oif", "table"],
)
async def test_lookup_nothing_matching_is_not_found(dump: list[RouteMessage]) -> None:
    kernel = MiniKernel()
    kernel.getroute = lambda request: dump[:1] or errno.ENETUNREACH
    kernel.route_dump = dump
    async with connected(kernel) as conn:
        with pytest.raises(NotFoundError, match=r"198\.51\.100\.0/24"):
            await conn.lookup(Route(PREFIX4, nexthop=NH4, device="v0"))
    assert kernel.types()[-1] == RTM.GETROUTE
    assert kernel.requests[-1].flags & DUMP == DUMP


# --------------------------------------------------------------------------- rules


def kernel_rule(**fields: Any) -> RuleMessage:
    """A rule as the kernel dumps it (FRA_TABLE always; priority/mark only when ≠ 0)."""
    values: dict[str, Any] = {"family": AF_INET, "action": 1}
    values.update(fields)
    if "table_id" not in values:
        values["table_id"] = values.get("table", 0)
    return RuleMessage(**values)


RULE_MATCHES: list[tuple[str, Rule, RuleMessage, bool]] = [
    (
        "mark-table",
        Rule(priority=1, mark=0xF00, mask=0xF00, table=123),
        kernel_rule(table=123, priority=1, fwmark=0xF00, fwmask=0xF00),
        True,
    ),
    (
        "src",
        Rule(priority=1, src="10.10.0.0/16", mark=0xF00, mask=0xF00, table=124),
        kernel_rule(table=124, priority=1, src_len=16, src=ip_address("10.10.0.0"),
                    fwmark=0xF00, fwmask=0xF00),
        True,
    ),
    (
        "dst-no-mark",
        Rule(priority=1, dst="10.10.0.0/16", table=125),
        kernel_rule(table=125, priority=1, dst_len=16, dst=ip_address("10.10.0.0")),
        True,
    ),
    (
        "table-1000",
        Rule(priority=1, src="10.10.0.0/16", dst="10.10.0.0/16", table=1000),
        kernel_rule(table=0, table_id=1000, priority=1, src_len=16, dst_len=16,
                    src=ip_address("10.10.0.0"), dst=ip_address("10.10.0.0")),
        True,
    ),
    (
        "priority-0-is-any",
        Rule(mark=0xF00, mask=0xF00, table=123),
        kernel_rule(table=123, priority=50, fwmark=0xF00, fwmask=0xF00),
        True,
    ),
    (
        "other-table",
        Rule(priority=1, mark=0xF00, mask=0xF00, table=123),
        kernel_rule(table=124, priority=1, fwmark=0xF00, fwmask=0xF00),
        False,
    ),
    (
        "other-priority",
        Rule(priority=1, table=123),
        kernel_rule(table=123, priority=2),
        False,
    ),
    (
        "other-mark",
        Rule(priority=1, mark=0xF00, mask=0xF00, table=123),
        kernel_rule(table=123, priority=1, fwmark=0xE00, fwmask=0xF00),
        False,
    ),
    (
        "other-src-length",
        Rule(priority=1, src="10.10.0.0/16", table=124),
        kernel_rule(table=124, priority=1, src_len=24, src=ip_address("10.10.0.0")),
        False,
    ),
    (
        "spec-src-but-rule-has-none",
        Rule(priority=1, src="10.10.0.0/16", table=124),
        kernel_rule(table=124, priority=1),
        False,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "dumped", "matches"),
    [case[1:] for case in RULE_MATCHES],
    ids=[case[0] for case in RULE_MATCHES],
)
async def test_replace_rule_adds_only_without_a_match(
    rule: Rule, dumped: RuleMessage, matches: bool
) -> None:
    kernel = MiniKernel()
    kernel.rule_dump = [kernel_rule(table=255, priority=0), dumped]
    async with connected(kernel) as conn:
        await conn.replace_rule(rule)
    getrule = kernel.requests[0]
    assert getrule.type == RTM.GETRULE and getrule.flags & DUMP == DUMP
    assert rule_body(getrule).family == AF_INET
    if matches:
        assert kernel.types() == [RTM.GETRULE]
    else:
        assert kernel.types() == [RTM.GETRULE, RTM.NEWRULE]


NEWRULE_WIRE: list[tuple[str, Rule, RuleMessage]] = [
    (
        "all-zero-attributes-present",
        Rule(table=123),
        RuleMessage(family=AF_INET, table=123, action=1, priority=0, fwmark=0, fwmask=0),
    ),
    (
        "mark-mask-priority",
        Rule(priority=1, mark=0xF00, mask=0xF00, table=123),
        RuleMessage(family=AF_INET, table=123, action=1, priority=1, fwmark=0xF00, fwmask=0xF00),
    ),
    (
        "src-dst",
        Rule(priority=1, src="10.10.0.0/16", dst="10.20.0.0/24", table=126),
        RuleMessage(
            family=AF_INET, dst_len=24, src_len=16, table=126, action=1,
            dst=ip_address("10.20.0.0"), src=ip_address("10.10.0.0"), priority=1, fwmark=0,
            fwmask=0,
        ),
    ),
    (
        "table-256-in-attribute",
        Rule(priority=1, table=256),
        RuleMessage(
            family=AF_INET, table=0, action=1, priority=1, fwmark=0, fwmask=0, table_id=256
        ),
    ),
    (
        "table-255-in-header",
        Rule(priority=1, table=255),
        RuleMessage(family=AF_INET, table=255, action=1, priority=1, fwmark=0, fwmask=0),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "expected"),
    [case[1:] for case in NEWRULE_WIRE],
    ids=[case[0] for case in NEWRULE_WIRE],
)
async def test_replace_rule_newrule_wire(rule: Rule, expected: RuleMessage) -> None:
    kernel = MiniKernel()
    async with connected(kernel) as conn:
        await conn.replace_rule(rule)
    assert kernel.types() == [RTM.GETRULE, RTM.NEWRULE]
    add = kernel.requests[1]
    assert add.flags & CREATE_EXCL == CREATE_EXCL
    assert not add.flags & NLM_F.REPLACE
    assert rule_body(add) == expected


async def test_replace_rule_ipv6_wire() -> None:
    kernel = MiniKernel()
    rule = Rule(priority=1, mark=0xF00, mask=0xF00, src="beef::/48", table=124)
    async with connected(kernel) as conn:
        await conn.replace_rule_ipv6(rule)
    assert kernel.types() == [RTM.GETRULE, RTM.NEWRULE]
    assert rule_body(kernel.requests[0]).family == AF_INET6
    assert rule_body(kernel.requests[1]) == RuleMessage(
        family=AF_INET6,
        src_len=48,
        table=124,
        action=1,
        src=ip_address("beef::"),
        priority=1,
        fwmark=0xF00,
        fwmask=0xF00,
    )


async def test_replace_rule_ipv6_finds_match() -> None:
    kernel = MiniKernel()
    kernel.rule_dump = [
        kernel_rule(family=AF_INET6, table=125, priority=1, dst_len=48, dst=ip_address("beef::"))
    ]
    async with connected(kernel) as conn:
        await conn.replace_rule_ipv6(Rule(priority=1, dst="beef::/48", table=125))
    assert kernel.types() == [RTM.GETRULE]


async def test_replace_rule_eexist_on_add_is_success() -> None:
    kernel = MiniKernel()
    kernel.newrule = lambda request: errno.EEXIST
    async with connected(kernel) as conn:
        await conn.replace_rule(Rule(priority=1, table=123))
    assert kernel.types() == [RTM.GETRULE, RTM.NEWRULE]


async def test_replace_rule_other_add_error_is_raised() -> None:
    kernel = MiniKernel()
    kernel.newrule = lambda request: errno.EINVAL
    async with connected(kernel) as conn:
        with pytest.raises(KernelError) as info:
            await conn.replace_rule(Rule(priority=1, table=123))
        assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    ("method", "rule", "field"),
    [
        ("replace_rule", Rule(src="beef::/48", table=1), "src"),
        ("replace_rule", Rule(dst="beef::/48", table=1), "dst"),
        ("replace_rule_ipv6", Rule(dst="10.10.0.0/16", table=1), "dst"),
        ("replace_rule_ipv6", Rule(src="10.10.0.0/16", table=1), "src"),
        ("delete_rule", Rule(src="beef::/48", table=1), "src"),
        ("delete_rule_ipv6", Rule(dst="10.10.0.0/16", table=1), "dst"),
    ],
)
async def test_rule_family_mismatch_is_value_error(method: str, rule: Rule, field: str) -> None:
    kernel = MiniKernel()
    async with connected(kernel) as conn:
        with pytest.raises(ValueError, match=rf"^{field}\b"):
            await getattr(conn, method)(rule)
    assert kernel.requests == []


@pytest.mark.parametrize(
    ("method", "family"), [("delete_rule", AF_INET), ("delete_rule_ipv6", AF_INET6)]
)
async def test_delete_rule_wire(method: str, family: int) -> None:
    kernel = MiniKernel()
    async with connected(kernel) as conn:
        await getattr(conn, method)(Rule(priority=1, mark=0xF00, mask=0xF00, table=1000))
    assert kernel.types() == [RTM.DELRULE]
    delete = kernel.requests[0]
    assert not delete.flags & (NLM_F.CREATE | NLM_F.EXCL | NLM_F.REPLACE)
    assert rule_body(delete) == RuleMessage(
        family=family, table=0, action=0, priority=1, fwmark=0xF00, fwmask=0xF00, table_id=1000
    )


async def test_delete_rule_missing_is_not_found() -> None:
    kernel = MiniKernel()
    kernel.delrule = lambda request: errno.ENOENT
    async with connected(kernel) as conn:
        with pytest.raises(NotFoundError) as info:
            await conn.delete_rule(Rule(priority=1, table=123))
        assert info.value.errno == errno.ENOENT


# --------------------------------------------------------------------------- bad input

Call = Callable[[Connection], Awaitable[object]]

#: (id, call, field named in the ValueError).  Each call builds its input itself, so a
#: ValueError from the constructor counts too: the point is that nothing is sent.
BAD_CALLS: list[tuple[str, Call, str]] = [
    ("upsert-no-device", lambda c: c.upsert(Route(PREFIX4)), "device"),
    ("upsert-device-empty", lambda c: c.upsert(Route(PREFIX4, nexthop=NH4, device="")), "device"),
    ("delete-no-device", lambda c: c.delete(Route(PREFIX4)), "device"),
    ("lookup-no-device", lambda c: c.lookup(Route(PREFIX6)), "device"),
    ("host-bits", lambda c: c.upsert(Route("10.0.0.1/8", device="v0")), "prefix"),
    ("garbage-prefix", lambda c: c.upsert(Route("10.0.0/8x", device="v0")), "prefix"),
    ("v4-nexthop-v6", lambda c: c.upsert(Route(PREFIX6, nexthop=NH4, device="v0")), "nexthop"),
    ("v6-local-v4-prefix", lambda c: c.upsert(Route(PREFIX4, local="::1", device="v0")), "local"),
    ("device-too-long", lambda c: c.upsert(Route(PREFIX4, device="x" * 16)), "device"),
    ("device-slash", lambda c: c.delete(Route(PREFIX4, device="v0/1")), "device"),
    ("device-space", lambda c: c.lookup(Route(PREFIX4, device="v 0")), "device"),
    ("table-2**32", lambda c: c.upsert(Route(PREFIX4, device="v0", table=2**32)), "table"),
    ("table-negative", lambda c: c.upsert(Route(PREFIX4, device="v0", table=-1)), "table"),
    ("priority-2**32", lambda c: c.upsert(Route(PREFIX4, device="v0", priority=2**32)), "priority"),
    ("mtu-65536", lambda c: c.upsert(Route(PREFIX4, device="v0", mtu=65536)), "mtu"),
    ("scope-256", lambda c: c.upsert(Route(PREFIX4, device="v0", scope=256)), "scope"),
    ("proto-256", lambda c: c.upsert(Route(PREFIX4, device="v0", proto=256)), "proto"),
    ("type-256", lambda c: c.upsert(Route(PREFIX4, device="v0", type=256)), "type"),
    ("rule-mark-2**32", lambda c: c.replace_rule(Rule(mark=2**32, table=1)), "mark"),
    ("rule-mask-negative", lambda c: c.delete_rule(Rule(mask=-1, table=1)), "mask"),
    ("rule-table-2**32", lambda c: c.replace_rule(Rule(table=2**32)), "table"),
    ("rule-v6-src-v4-call", lambda c: c.replace_rule(Rule(src="beef::/48", table=1)), "src"),
    ("rule-v4-dst-v6-call", lambda c: c.replace_rule_ipv6(Rule(dst="10.0.0.0/8", table=1)), "dst"),
    (
        "retry-max-tries-0",
        lambda c: c.upsert(Route(PREFIX4, device="v0"), retry=RetryPolicy(max_tries=0)),
        "max_tries",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "field"), [case[1:] for case in BAD_CALLS], ids=[case[0] for case in BAD_CALLS]
)
async def test_bad_input_sends_nothing(call: Call, field: str) -> None:
    kernel = MiniKernel()
    fake = FakeKernel(kernel)
    async with fake.connect() as conn:
        with pytest.raises(ValueError, match=rf"\b{field}\b"):
            await call(conn)
    assert kernel.requests == []
    assert fake.datagrams == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.upsert(Route(PREFIX4, nexthop=NH4, device="nope")),
        lambda c: c.delete(Route(PREFIX4, device="nope")),
        lambda c: c.lookup(Route(PREFIX6, device="nope")),
    ],
    ids=["upsert", "delete", "lookup"],
)
async def test_missing_device_is_not_found_after_getlink_only(call: Call) -> None:
    kernel = MiniKernel()
    async with connected(kernel) as conn:
        with pytest.raises(NotFoundError, match="nope") as info:
            await call(conn)
        assert info.value.errno == errno.ENODEV
    [getlink] = kernel.requests
    assert getlink.type == RTM.GETLINK
    assert getlink.body == LinkMessage(name="nope")


# --------------------------------------------------------------------------- module functions


async def _shared_twice() -> tuple[Connection, Connection]:
    return await asyncroute.default_connection(), await asyncroute.default_connection()


def _run_in_new_loop(backend: str) -> tuple[Connection, Connection]:
    return anyio.run(_shared_twice, backend=backend)


async def test_default_connection_is_shared_per_event_loop(anyio_backend: str) -> None:
    first, second = await _shared_twice()
    try:
        assert first is second
        assert isinstance(first, Connection)
        assert not first.closed
        # New event loops (in another thread, so as not to nest in this one): each gets
        # its own connection, closed when its loop shuts down.
        for backend in ("asyncio", "trio"):
            a, b = await anyio.to_thread.run_sync(partial(_run_in_new_loop, backend))
            assert a is b
            assert a is not first
            assert a.closed
            c, _ = await anyio.to_thread.run_sync(partial(_run_in_new_loop, backend))
            assert c is not a
            assert c.closed
        assert not first.closed
        assert await asyncroute.default_connection() is first
    finally:
        await first.aclose()


async def test_default_connection_replaces_a_closed_one_cleanly(anyio_backend: str) -> None:
    """A closed shared connection is replaced by a fresh one, and the old one's keeper
    generator is finalized without a ResourceWarning.

    Regression (trio): default_connection() overwrites the entry holding the old keeper
    generator while it is suspended; trio's asyncgen finalizer then warns "Async
    generator 'asyncroute.client._keeper' was garbage collected before it had been
    exhausted".  Closing the old keeper (``await keeper.aclose()``) first avoids it.
    """
    first = await asyncroute.default_connection()
    await first.aclose()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = await asyncroute.default_connection()
        gc.collect()
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
    try:
        assert second is not first
        assert not second.closed
        assert await asyncroute.default_connection() is second
    finally:
        await second.aclose()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], [str(w.message) for w in leaks]
