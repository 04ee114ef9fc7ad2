"""dump(retry_interrupted=N): only a consistent dump is yielded; give up after N retries."""

from __future__ import annotations

import pytest

from asyncroute import RTM, DumpInterrupted, Message, RouteMessage
from asyncroute.testing import FakeKernel, ack, dump_replies

pytestmark = pytest.mark.anyio

QUERY = Message(RTM.GETROUTE, 0, RouteMessage(family=2, table=100))


def interrupted_times(n: int) -> tuple[FakeKernel, list[int]]:
    """A fake kernel whose first ``n`` route dumps carry NLM_F_DUMP_INTR.

    Dump number k (0-based) answers k + 1 routes, so a test can tell attempts apart.
    """
    dumps: list[int] = []

    def handler(request: Message) -> list[Message]:
        if request.type != RTM.GETROUTE:
            return [ack(request)]
        k = len(dumps)
        dumps.append(k)
        bodies = [RouteMessage(family=2, table=100, dst_len=k) for _ in range(k + 1)]
        return dump_replies(request, RTM.NEWROUTE, bodies, interrupted=k < n)

    return FakeKernel(handler), dumps


async def test_interrupted_once_then_consistent() -> None:
    fk, dumps = interrupted_times(1)
    async with fk.connect() as conn:
        replies = [m async for m in conn.dump(QUERY, retry_interrupted=3)]
    assert dumps == [0, 1]
    # Only the second, consistent dump is yielded: two routes with dst_len 1.
    assert [m.body.dst_len for m in replies if isinstance(m.body, RouteMessage)] == [1, 1]


async def test_gives_up_after_the_retries() -> None:
    fk, dumps = interrupted_times(10)
    async with fk.connect() as conn:
        with pytest.raises(DumpInterrupted) as caught:
            _ = [m async for m in conn.dump(QUERY, retry_interrupted=2)]
    assert dumps == [0, 1, 2]  # the first try and two retries
    assert len(caught.value.messages) == 3  # the last attempt's replies


async def test_without_retries_the_partial_dump_is_reported() -> None:
    fk, dumps = interrupted_times(1)
    async with fk.connect() as conn:
        seen: list[Message] = []
        with pytest.raises(DumpInterrupted) as caught:
            async for m in conn.dump(QUERY):
                seen.append(m)
    assert dumps == [0]
    assert len(seen) == 1 and caught.value.messages == seen


async def test_lookup_retries_an_interrupted_dump() -> None:
    """The route API passes retry_interrupted: a lookup in table 100 succeeds although
    the kernel's first dump was flagged inconsistent."""
    from ipaddress import ip_address

    from asyncroute import LinkMessage, Route

    dumps = 0

    def handler(request: Message) -> list[Message]:
        nonlocal dumps
        if request.type == RTM.GETLINK:
            link = Message(
                RTM.NEWLINK, 0, LinkMessage(index=3, name="v0"), request.seq, request.port_id
            )
            return [link, ack(request)]
        if request.type == RTM.GETROUTE:
            dumps += 1
            found = RouteMessage(
                family=2, dst_len=24, table=100, protocol=3, type=1,
                dst=ip_address("198.51.100.0"), oif=3, gateway=ip_address("192.0.2.1"),
            )  # fmt: skip
            return dump_replies(request, RTM.NEWROUTE, [found], interrupted=dumps == 1)
        return [ack(request)]

    fk = FakeKernel(handler)
    async with fk.connect() as conn:
        route = await conn.lookup(
            Route("198.51.100.0/24", nexthop="192.0.2.1", device="v0", table=100)
        )
    assert dumps == 2
    assert route.table == 100 and route.nexthop == ip_address("192.0.2.1")
