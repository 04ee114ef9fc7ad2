"""Abandoned requests whose replies never come give their window slots back.

The kernel answers every request, so a lost reply means a broken or fake peer; without
reaping, two such requests would block a window of two for ever.
"""

from __future__ import annotations

import anyio
import pytest

from asyncroute import RTM, Connection, Message, RouteMessage
from asyncroute.testing import FakeKernel, ack

pytestmark = pytest.mark.anyio

REQUEST = Message(RTM.NEWROUTE, 0, RouteMessage(family=2))


async def test_stale_abandoned_requests_are_reaped() -> None:
    seen = 0

    def handler(request: Message) -> list[Message] | None:
        nonlocal seen
        seen += 1
        return None if seen <= 2 else [ack(request)]  # the first two are never answered

    fk = FakeKernel(handler)
    timeouts = 0

    async def unanswered(conn: Connection) -> None:
        nonlocal timeouts
        with pytest.raises(TimeoutError):
            await conn.request(REQUEST)
        timeouts += 1

    async with fk.connect(max_in_flight=2, timeout=0.05) as conn:
        async with anyio.create_task_group() as group:
            group.start_soon(unanswered, conn)
            group.start_soon(unanswered, conn)
        assert timeouts == 2
        assert conn._core.in_flight == 2  # both slots held by the unanswered requests
        await anyio.sleep(0.1)
        # The window is full: this one is never sent, times out, and its abandonment,
        # a whole timeout after the first two, reaps them.
        with pytest.raises(TimeoutError):
            await conn.request(REQUEST, timeout=0.01)
        assert conn.stats.reaped == 2
        assert await conn.request(REQUEST) is None  # the window works again
        assert conn._core.pending == 0
