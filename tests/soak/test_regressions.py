"""Regression tests for bugs the soak found in the asyncio sender thread.

**A small dump started while the reader was in recvmsg closed the connection with
OSError(EINVAL)** (fixed in 3bd75cb, then 796087f).  The sender thread ran ``send`` off
the event loop's thread, so a dump request could start while the loop thread was inside
``recvfrom_into``.  In the kernel (net/netlink/af_netlink.c):

1. the sender thread's ``sendmsg`` → ``__netlink_dump_start`` sets ``cb_running`` and
   runs ``netlink_dump``; a small dump (a rule listing, a lookup in a small table) fits
   in the first skb, so NLMSG_DONE goes in with it and ``cb_running`` is cleared;
2. meanwhile the loop thread's ``netlink_recvmsg`` read ``cb_running`` (lock-free,
   ``READ_ONCE``) while it was set, and calls ``netlink_dump``, which, once it holds
   the callback mutex, finds no dump running and returns -EINVAL;
3. ``netlink_recvmsg`` stores that in ``sk->sk_err``; the next ``recvfrom_into``
   raised OSError(EINVAL), and ``_on_readable`` shut the connection down.

The same concurrency had a rarer, silent effect: two threads in ``netlink_dump`` for one
dump each release the callback mutex *before* queueing their skb, so the skbs can be
queued out of order, and when the later one carries NLMSG_DONE the dump ends early.
Seen as 478 route frames (one 32 KiB skb of a filtered lookup dump) dropped as
``unknown_seq`` in a 1,000,000-operation soak; test_soak asserts ``unknown_seq == 0``.

**Sending dumps from the loop's thread (3bd75cb) let them overtake requests still
queued for the sender thread** (fixed in 796087f): a rule listing sent after a DELRULE
in the same turn of the loop ran before it, so ``replace_rule`` could believe a rule
was there that a cancelled, still queued ``delete_rule`` was about to remove.  Now
dumps go through the sender thread in order, under a lock the reader holds around each
recv.

trio sends on the loop's own thread and was never affected; these tests run on asyncio.
"""

from __future__ import annotations

import anyio
import pytest

from asyncroute import ConnectionClosed, Route, Rule
from asyncroute.constants import AF_INET, RTM
from asyncroute.messages import Message, RuleMessage
from asyncroute.testing import Namespace
from tests.kernel.guard import connect_in

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # only asyncio sends on a thread of its own


async def test_small_dumps_among_acked_requests_keep_the_connection_open(
    netns: Namespace,
) -> None:
    replaced = 0
    async with connect_in(netns) as conn:

        async def rules(slot: int) -> None:
            nonlocal replaced
            for i in range(1_500):
                rule = Rule(priority=1000 + slot, mark=1 + i % 3, mask=0xFF, table=100)
                try:
                    await conn.replace_rule(rule)
                except ConnectionClosed:
                    return
                replaced += 1

        async def routes(slot: int) -> None:
            while replaced < 6_000 and not conn.closed:
                prefix = f"198.19.{slot}.{replaced & 255}/32"
                route = Route(prefix, nexthop="192.0.2.1", device="v0", table=101)
                try:
                    await conn.upsert(route)
                except ConnectionClosed:
                    return

        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                for slot in range(4):
                    group.start_soon(rules, slot)
                for slot in range(16):
                    group.start_soon(routes, slot)
        assert not conn.closed, f"closed after {replaced} rule replaces: {conn._failure!r}"
        assert replaced == 6_000


async def test_a_dump_never_overtakes_a_change_made_before_it(netns: Namespace) -> None:
    """A DELRULE and a rule listing made in this order in one turn of the loop: the
    listing must not show the rule (3bd75cb showed it every time)."""
    rule = Rule(priority=1000, mark=1, mask=0xFF, table=100)
    query = Message(RTM.GETRULE, 0, RuleMessage(family=AF_INET))
    shown = 0
    async with connect_in(netns) as conn:

        async def delete() -> None:
            await conn.delete_rule(rule)

        async def listing(listed: list[int | None]) -> None:
            async for reply in conn.dump(query):
                assert isinstance(reply.body, RuleMessage)
                listed.append(reply.body.priority)

        for _ in range(200):
            await conn.replace_rule(rule)
            listed: list[int | None] = []
            async with anyio.create_task_group() as group:
                group.start_soon(delete)  # submitted first ...
                group.start_soon(listing, listed)  # ... then the dump, in the same turn
            shown += 1000 in listed
    assert shown == 0, f"the listing ran before the delete in {shown} of 200"
