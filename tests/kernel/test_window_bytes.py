"""The default window budgets replies by size, not only by count.

Regression: with a 4,096-request window sized for ~1 KiB acks, 20,000 concurrent
RTM_GETLINK requests (each answered by a ~1.5 KiB RTM_NEWLINK in a 4 KiB-class skb, then
an ack) overflowed the 8 MiB receive buffer and thousands of callers got
OutcomeUnknown.
"""

from __future__ import annotations

import anyio
import pytest

import asyncroute
from asyncroute import RTM, LinkMessage, Message
from asyncroute.testing import Namespace

pytestmark = pytest.mark.anyio


async def test_many_concurrent_gets_fit_the_buffer(netns: Namespace) -> None:
    names: list[str | None] = []
    async with asyncroute.connect(netns.name) as conn:

        async def get() -> None:
            reply = await conn.request(Message(RTM.GETLINK, 0, LinkMessage(name="v0")))
            assert reply is not None and isinstance(reply.body, LinkMessage)
            names.append(reply.body.name)

        async with anyio.create_task_group() as group:
            for _ in range(20_000):
                group.start_soon(get)
        assert conn.stats.overruns == 0
    assert names == ["v0"] * 20_000
