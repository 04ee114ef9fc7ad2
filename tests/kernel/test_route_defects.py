"""Kernel tests for routes that must never be confused, leaked or left half-done.

Each test reproduces a way the kernel could be left in the wrong state without an error:
a delete or lookup that picks another metric, a rollback that removes a nexthop route
another route now uses, a nexthop route left behind by a failure that is not the
kernel's, ``ip`` commands that cannot be replayed, a foreign rule that stops
``replace_rule``.  Every test runs on asyncio and trio in a fresh namespace (veth
``v0``/``v1`` up, ``192.0.2.2/24`` and ``2001:db8::2/64`` on ``v0``); the kernel state is
read back with ``ip -json`` through :mod:`tests.oracle`.
"""

from __future__ import annotations

import errno
import subprocess
from typing import Any

import anyio
import pytest

from asyncroute import KernelError, Nexthop, NotFoundError, RetryPolicy, Route, Rule
from asyncroute.mtu import Configuration
from asyncroute.testing import Namespace, namespace
from tests import oracle
from tests.kernel.guard import connect_in

pytestmark = [pytest.mark.kernel, pytest.mark.anyio]

# (family flag, prefix, gateway) for each family; metrics 10 and 20 of one prefix.
FAMILIES = [
    pytest.param(4, "198.51.100.0/24", "192.0.2.1", id="ipv4"),
    pytest.param(6, "2001:db8:5::/64", "2001:db8::1", id="ipv6"),
]


def _metrics(ns: Namespace, family: int, prefix: str) -> list[int]:
    shown = oracle.routes(ns.name, table=100, family=family)
    return sorted(r.get("metric", 0) for r in shown if r["dst"] == prefix)


def _two_metrics(ns: Namespace, family: int, prefix: str, gateway: str) -> None:
    for metric in ("10", "20"):
        ns.ip(f"-{family}", "route", "add", prefix, "via", gateway, "dev", "v0", "table", "100",
              "metric", metric)  # fmt: skip


@pytest.mark.parametrize(("family", "prefix", "gateway"), FAMILIES)
async def test_delete_removes_the_metric_asked_for(
    netns: Namespace, family: int, prefix: str, gateway: str
) -> None:
    _two_metrics(netns, family, prefix, gateway)
    async with connect_in(netns) as conn:
        await conn.delete(Route(prefix, nexthop=gateway, device="v0", table=100, priority=20))
        assert _metrics(netns, family, prefix) == [10]
        route = Route(prefix, nexthop=gateway, device="v0", table=100, priority=20)
        (outcome,) = await conn.delete_many([route])
        assert isinstance(outcome, NotFoundError)  # metric 20 is gone; 10 stays
        assert _metrics(netns, family, prefix) == [10]
        assert await conn.delete_many([route.replace(priority=10)]) == [True]
        assert _metrics(netns, family, prefix) == []


# The rest of the kernel's key: IPv4 TOS, IPv6 source prefix.  (family, the key field's
# two values as Route takes them, as ip rule add takes them, and as ip -json shows them)
KEY_FIELDS = [
    pytest.param(4, "198.51.100.0/24", "192.0.2.1", "tos", (0x10, 0x08), id="ipv4-tos"),
    pytest.param(6, "2001:db8:5::/64", "2001:db8::1", "source",
                 ("2001:db8:99::/64", "2001:db8:98::/64"), id="ipv6-from"),
]  # fmt: skip


def _key_values(ns: Namespace, family: int, prefix: str, field: str) -> list[str]:
    shown = oracle.routes(ns.name, table=100, family=family)
    key = "tos" if field == "tos" else "from"
    return sorted(str(r.get(key)) for r in shown if r["dst"] == prefix)


@pytest.mark.parametrize(("family", "prefix", "gateway", "field", "values"), KEY_FIELDS)
async def test_delete_and_lookup_use_tos_and_source_prefix(
    netns: Namespace, family: int, prefix: str, gateway: str, field: str, values: tuple[Any, Any]
) -> None:
    """Two routes of one prefix and metric that differ only by TOS (IPv4) or source
    prefix (IPv6) are two routes: lookup finds the one asked for, delete removes only
    it, and a listing tells them apart."""
    word = "tos" if field == "tos" else "from"
    for value in values:
        text = f"{value:#x}" if field == "tos" else str(value)
        netns.ip(f"-{family}", "route", "add", prefix, word, text, "via", gateway, "dev", "v0",
                 "table", "100")  # fmt: skip
    first, second = (Route(prefix, nexthop=gateway, device="v0", table=100, **{field: v})
                     for v in values)  # fmt: skip
    async with connect_in(netns) as conn:
        listed = [r async for r in conn.list_routes(table=100)]
        assert sorted(str(getattr(r, field)) for r in listed if str(r.prefix) == prefix) == sorted(
            str(v) for v in values
        )
        found = await conn.lookup(second)
        assert getattr(found, field) == getattr(second, field)
        removed = await conn.delete(second)
        assert getattr(removed, field) == getattr(second, field)
        remaining = _key_values(netns, family, prefix, field)
        assert len(remaining) == 1 and remaining != _key_values_of(second, field)
        with pytest.raises(NotFoundError):
            await conn.lookup(second)
        assert await conn.delete_many([first]) == [True]
        assert _key_values(netns, family, prefix, field) == []


def _key_values_of(route: Route, field: str) -> list[str]:
    value = getattr(route, field)
    return [f"{value:#04x}" if field == "tos" else str(value)]


@pytest.mark.parametrize(("family", "prefix", "gateway"), FAMILIES)
async def test_lookup_finds_the_metric_asked_for(
    netns: Namespace, family: int, prefix: str, gateway: str
) -> None:
    _two_metrics(netns, family, prefix, gateway)
    async with connect_in(netns) as conn:
        found = await conn.lookup(
            Route(prefix, nexthop=gateway, device="v0", table=100, priority=20)
        )
        assert found.priority == 20
        with pytest.raises(NotFoundError) as info:
            await conn.lookup(Route(prefix, nexthop=gateway, device="v0", table=100, priority=55))
    # The kernel sent no error: nothing made up about a request that failed.
    assert info.value.errno == errno.ESRCH
    assert info.value.seq is None and info.value.msg_type is None
    assert "seq" not in str(info.value) and "metric 55" in str(info.value)


async def test_ipv6_metric_0_means_the_kernels_1024(netns: Namespace) -> None:
    """An IPv6 route upserted without a metric gets 1024; delete and lookup with
    priority 0 name that route, not another metric of the prefix."""
    prefix, gateway = "2001:db8:5::/64", "2001:db8::1"
    _two_metrics(netns, 6, prefix, gateway)
    route = Route(prefix, nexthop=gateway, device="v0", table=100)
    async with connect_in(netns) as conn:
        with pytest.raises(NotFoundError):
            await conn.delete(route)
        assert _metrics(netns, 6, prefix) == [10, 20]
        await conn.upsert(route)
        assert (await conn.lookup(route)).priority == 1024
        await conn.delete(route)
    assert _metrics(netns, 6, prefix) == [10, 20]


async def test_rollback_keeps_a_nexthop_route_another_route_uses(netns: Namespace) -> None:
    """Call A creates the nexthop route, then fails (a prefsrc no interface holds);
    while A retries, call B succeeds through the same gateway.  A's rollback must leave
    the nexthop route that B's route needs."""
    retrying = anyio.Event()

    async def sleep(seconds: float) -> None:
        retrying.set()
        await anyio.sleep(0.02)

    policy = RetryPolicy(max_tries=5, sleep=sleep)
    failing = Route("198.18.4.0/24", nexthop="203.0.113.1", local="198.51.100.77",
                    device="v0", table=100)  # fmt: skip
    other = Route("198.18.5.0/24", nexthop="203.0.113.1", device="v0", table=100)
    errors: list[BaseException] = []
    async with connect_in(netns) as conn:

        async def call_a() -> None:
            try:
                await conn.upsert(failing, retry=policy)
            except KernelError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call_a)
            await retrying.wait()
            assert "203.0.113.1/32" in oracle.route_dsts(netns.name, table=100)
            assert await conn.upsert(other) is True
    assert len(errors) == 1 and errors[0].errno == errno.EINVAL
    assert oracle.route_dsts(netns.name, table=100) == {"203.0.113.1/32", "198.18.5.0/24"}


async def test_rollback_removes_a_nexthop_route_nobody_uses(netns: Namespace) -> None:
    async def sleep(seconds: float) -> None:
        await anyio.sleep(0)

    failing = Route("198.18.4.0/24", nexthop="203.0.113.1", local="198.51.100.77",
                    device="v0", table=100)  # fmt: skip
    async with connect_in(netns) as conn:
        with pytest.raises(KernelError):
            await conn.upsert(failing, retry=RetryPolicy(max_tries=2, sleep=sleep))
    assert oracle.route_dsts(netns.name, table=100) == set()


class _BrokenConfiguration(Configuration):
    def get_route_mtu(self) -> int:
        raise RuntimeError("no MTU today")


async def test_no_nexthop_route_left_by_a_failure_that_is_not_the_kernels(
    netns: Namespace,
) -> None:
    route = Route("198.18.4.0/24", nexthop="203.0.113.1", device="v0", table=100)
    async with connect_in(netns) as conn:
        with pytest.raises(RuntimeError, match="no MTU today"):
            await conn.upsert(route, _BrokenConfiguration())
    assert oracle.route_dsts(netns.name, table=100) == set()


async def test_a_route_mtu_of_zero_or_less_sends_none(netns: Namespace) -> None:
    """Cilium sends RTAX_MTU only when the MTU is positive: an encrypted configuration
    on a tiny MTU leaves the route without one instead of failing."""
    config = Configuration.new(auth_key_size=16, encrypt=True, mtu=60)
    assert config.get_route_mtu() < 0
    route = Route("198.18.4.0/24", nexthop="203.0.113.1", device="v0", table=100)
    async with connect_in(netns) as conn:
        assert await conn.upsert(route, config) is True
    (shown,) = [r for r in oracle.routes(netns.name, table=100) if r["dst"] == "198.18.4.0/24"]
    assert "metrics" not in shown


async def test_a_failing_nexthop_route_is_named(netns: Namespace) -> None:
    """The kernel refuses a scope-link route on a device that is down (ENETDOWN); the
    error says it was the nexthop route, as Cilium's does."""
    netns.ip("link", "set", "v1", "down")
    route = Route("198.18.4.0/24", nexthop="203.0.113.1", device="v1", table=100)
    async with connect_in(netns) as conn:
        with pytest.raises(
            KernelError, match=r"unable to add nexthop route 203\.0\.113\.1/32"
        ) as info:
            await conn.upsert(route)
    assert info.value.errno == errno.ENETDOWN


def _ip(ns_name: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    assert argv[0] == "ip"
    return subprocess.run(
        ["ip", "-n", ns_name, *argv[1:]], capture_output=True, text=True, check=False
    )


async def test_to_ip_commands_replay_from_any_state(netns: Namespace) -> None:
    """Two routes through one gateway, each command list run twice: every command
    succeeds, and the kernel holds what upsert leaves."""
    routes = [
        Route("198.18.4.0/24", nexthop="203.0.113.1", device="v0", table=100),
        Route("198.18.5.0/24", nexthop="203.0.113.1", device="v0", table=100, mtu=1400),
        Route("2001:db8:4::/64", nexthop="2001:db8:ffff::4", device="v0", table=100),
    ]
    with namespace() as by_ip:
        failures = [
            f"{' '.join(argv)}: {proc.stderr.strip()}"
            for _ in range(2)
            for route in routes
            for argv in route.to_ip_commands()
            if (proc := _ip(by_ip.name, argv)).returncode != 0
        ]
        async with connect_in(netns) as conn:
            for route in routes:
                await conn.upsert(route)
        for family in (4, 6):
            assert oracle.routes(by_ip.name, table=100, family=family) == oracle.routes(
                netns.name, table=100, family=family
            )
    assert failures == []


async def test_replace_rule_beside_a_foreign_rule_with_host_bits(netns: Namespace) -> None:
    """``ip`` accepts a selector with host bits and the kernel keeps them; a listing
    must not stop at it."""
    netns.ip("rule", "add", "pref", "9", "from", "198.51.100.1/24", "lookup", "150")
    async with connect_in(netns) as conn:
        rule = Rule(priority=9, src="198.51.100.0/24", table=151)
        await conn.replace_rule(rule)
        await conn.replace_rule(rule)
        assert await conn.replace_rules([rule]) == [True]
    shown: list[dict[str, Any]] = oracle.rules(netns.name)
    assert sorted((r["table"], r.get("src")) for r in shown if r["priority"] == 9) == [
        ("150", "198.51.100.1"),
        ("151", "198.51.100.0"),
    ]


async def test_delete_returns_what_the_kernel_removed(netns: Namespace) -> None:
    """NLM_F_ECHO: the route and rule the kernel removed, which may say more than the
    request (a multipath route deleted by naming one hop; a rule by its priority)."""
    netns.ip("route", "add", "203.0.113.0/24", "table", "200", "nexthop", "via", "192.0.2.1",
             "dev", "v0", "weight", "3", "nexthop", "via", "192.0.2.5", "dev", "v0")  # fmt: skip
    netns.ip("route", "add", "198.51.100.0/24", "via", "192.0.2.1", "dev", "v0", "table", "100",
             "metric", "20", "mtu", "1400", "proto", "static")  # fmt: skip
    netns.ip("rule", "add", "pref", "9", "from", "198.51.100.0/24", "lookup", "150")
    async with connect_in(netns) as conn:
        removed = await conn.delete(
            Route("203.0.113.0/24", table=200, nexthops=[Nexthop("192.0.2.1", device="v0")])
        )
        assert [(str(h.gateway), h.device, h.weight) for h in removed.nexthops] == [
            ("192.0.2.1", "v0", 3),
            ("192.0.2.5", "v0", 1),
        ]
        removed = await conn.delete(Route("198.51.100.0/24", device="v0", table=100, priority=20))
        assert removed == Route("198.51.100.0/24", nexthop="192.0.2.1", device="v0", table=100,
                                priority=20, mtu=1400, proto=4, type=1)  # fmt: skip
        assert await conn.delete_rule(Rule(priority=9)) == Rule(
            priority=9, src="198.51.100.0/24", table=150
        )
        rule = Rule(priority=10, mark=0x10, mask=0xFF, table=151)
        assert await conn.replace_rule(rule) is True
        assert await conn.replace_rule(rule) is False
    assert oracle.route_dsts(netns.name, table=200) == set()
    assert oracle.route_dsts(netns.name, table=100) == set()
