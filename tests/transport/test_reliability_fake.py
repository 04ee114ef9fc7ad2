"""Reliability on the fake kernel: deadlines, closing under load, interrupted dumps.

Both anyio backends.  What tests/transport/test_connection.py already proves is not
repeated here; this module adds the measurements:

* a kernel that never answers: ``request``, a dump and ``request_many`` each raise
  TimeoutError *at* their deadline (within ±50 ms), and the connection goes on working
  (test_connection.py's timeout tests check only that TimeoutError comes, and only for a
  request and a dump that had started answering);
* closing with 1,000 requests pending (a window of 500: about half of them in flight,
  the rest queued in the core), a dump and a ``request_many`` batch: every caller has
  ConnectionClosed within 100 ms of the close (test_connection.py: 50 requests, 1 s);
* NLM_F_DUMP_INTR on a middle *datagram* of several frames (test_connection.py flags a
  middle frame, one frame per datagram) or on NLMSG_DONE alone: DumpInterrupted carries
  every message received.

The file-descriptor check over 30 open/close cycles is test_connection.py's
``test_connect_close_cycles_leak_no_fds``; tests/kernel/test_reliability.py repeats it
for real netlink sockets, whose connections also start a sender thread.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable
from ipaddress import IPv4Address

import anyio
import pytest

from asyncroute import Connection
from asyncroute._codec import encode_messages
from asyncroute.constants import AF_INET, NLM_F, NLMSG, RT_TABLE, RTM
from asyncroute.errors import AsyncrouteError, ConnectionClosed, DumpInterrupted
from asyncroute.messages import DoneMessage, Message, RouteMessage
from asyncroute.testing.fake_kernel import FakeKernel, ack, dump_replies

pytestmark = pytest.mark.anyio

NEWROUTE = Message(
    RTM.NEWROUTE,
    int(NLM_F.CREATE | NLM_F.EXCL),
    RouteMessage(family=AF_INET, dst_len=24, table=RT_TABLE.MAIN, dst=IPv4Address("198.18.0.0")),
)
GETROUTE = Message(RTM.GETROUTE, 0, RouteMessage(family=AF_INET))
_MULTI = int(NLM_F.MULTI)
_INTR = int(NLM_F.DUMP_INTR)

#: The deadline given to the calls that must time out, and the tolerance around it.
DEADLINE = 0.25
TOLERANCE = 0.05
#: Most seconds between closing and the last caller having ConnectionClosed.
CLOSE_LIMIT = 0.1


class Holding:
    """Answers nothing: requests wait in ``held``.  With ``auto``, later ones are acked."""

    def __init__(self) -> None:
        self.held: list[Message] = []
        self.auto = False

    def __call__(self, request: Message) -> Iterable[Message] | None:
        if self.auto:
            if request.flags & NLM_F.DUMP == NLM_F.DUMP:
                return dump_replies(request, RTM.NEWROUTE, [RouteMessage(family=AF_INET)])
            return [ack(request)]
        self.held.append(request)
        return None


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.001)


def route(i: int) -> Message:
    body = RouteMessage(family=AF_INET, dst_len=32, dst=IPv4Address(f"198.18.{i // 256}.{i % 256}"))
    return Message(RTM.NEWROUTE, int(NLM_F.CREATE | NLM_F.EXCL), body)


def assert_on_time(elapsed: float, what: str) -> None:
    print(f"{what}: TimeoutError after {elapsed * 1000:.1f} ms (deadline {DEADLINE * 1000:.0f} ms)")
    assert DEADLINE - TOLERANCE <= elapsed <= DEADLINE + TOLERANCE, (what, elapsed)


# --------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize("given", ["per-call", "connection-default"])
async def test_request_times_out_at_its_deadline(given: str) -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    per_call = given == "per-call"
    with anyio.fail_after(10):
        async with fk.connect(timeout=30 if per_call else DEADLINE) as conn:
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                await conn.request(NEWROUTE, timeout=DEADLINE if per_call else None)
            assert_on_time(time.monotonic() - start, f"request ({given})")
            assert conn._waiters == {}
            assert not conn.closed
            holding.auto = True
            assert await conn.request(NEWROUTE) is None
            # The kernel answers the abandoned one at last: dropped, counted as late.
            fk.reply([ack(request) for request in holding.held])
            await wait_until(lambda: conn._core.pending == 0)
            assert (conn.stats.late, conn.stats.unknown_seq) == (1, 0), conn.stats


async def test_dump_times_out_at_its_deadline() -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    with anyio.fail_after(10):
        async with fk.connect(timeout=30) as conn:
            seen: list[Message] = []
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                async for reply in conn.dump(GETROUTE, timeout=DEADLINE):
                    seen.append(reply)
            assert_on_time(time.monotonic() - start, "dump")
            assert seen == []
            assert conn._waiters == {}
            # Requests go on while the kernel still owes the dump its answer...
            holding.auto = True
            assert await conn.request(NEWROUTE) is None
            # ...and the next dump waits for the abandoned one's NLMSG_DONE (the kernel
            # refuses a second dump on a socket), then runs.
            (abandoned,) = holding.held
            async with anyio.create_task_group() as group:
                results: list[list[Message]] = []

                async def next_dump() -> None:
                    results.append([reply async for reply in conn.dump(GETROUTE, timeout=5)])

                group.start_soon(next_dump)
                await anyio.sleep(0.05)
                assert results == []
                assert len(fk.requests) == 2, "a second dump was sent while one was open"
                fk.reply(dump_replies(abandoned, RTM.NEWROUTE, [RouteMessage(family=AF_INET)]))
            assert [reply.body for reply in results[0]] == [RouteMessage(family=AF_INET)]
            assert conn.stats.late == 2  # the abandoned dump's frame and its DONE
            assert conn._core.pending == 0


async def test_request_many_times_out_at_its_deadline() -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    count = 20  # one group of 20 and its barrier: 21 of the 64 window slots
    with anyio.fail_after(10):
        async with fk.connect(max_in_flight=64, timeout=30) as conn:
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                await conn.request_many([route(i) for i in range(count)], timeout=DEADLINE)
            assert_on_time(time.monotonic() - start, "request_many")
            assert len(holding.held) == count
            assert conn._waiters == {}
            # The abandoned group keeps its slots until answered; the rest of the window
            # still serves requests.
            assert conn._core.in_flight == count + 1
            holding.auto = True
            assert await conn.request(NEWROUTE) is None
            # The kernel finishes the old group (its barrier's ack is late), then a new
            # batch goes through.
            fk.reply([ack(request) for request in holding.held])
            await wait_until(lambda: conn._core.pending == 0)
            assert conn.stats.late == 1
            assert await conn.request_many([route(i) for i in range(count)]) == [None] * count
            assert conn._core.in_flight == 0


# --------------------------------------------------------------------------- closing


@pytest.mark.parametrize("how", ["aclose", "leave-context"])
async def test_close_with_1000_pending_fails_every_caller_within_100ms(how: str) -> None:
    count, window, batch_size = 1000, 500, 100
    fk = FakeKernel(Holding())
    settled: dict[int, tuple[float, object]] = {}
    batch_results: list[list[AsyncrouteError | None]] = []

    async def one(index: int, conn: Connection) -> None:
        try:
            outcome: object = await conn.request(route(index))
        except Exception as exc:
            outcome = exc
        settled[index] = (time.monotonic(), outcome)

    async def dump(conn: Connection) -> None:
        try:
            async for _ in conn.dump(GETROUTE):
                pass
            outcome: object = None
        except Exception as exc:
            outcome = exc
        settled[-1] = (time.monotonic(), outcome)

    async def many(conn: Connection) -> None:
        try:
            outcome: object = await conn.request_many([route(i) for i in range(batch_size)])
            batch_results.append(outcome)  # type: ignore[arg-type]
        except Exception as exc:
            outcome = exc
        settled[-2] = (time.monotonic(), outcome)

    with anyio.fail_after(20):
        # The callers live outside the connection's context: closing must wake them,
        # not cancel them.
        async with anyio.create_task_group() as group:
            async with fk.connect(max_in_flight=window, timeout=30) as conn:
                for i in range(count):
                    group.start_soon(one, i, conn)
                group.start_soon(dump, conn)
                group.start_soon(many, conn)
                # Everything is submitted (a seq each: the requests, the dump, the batch's
                # members and its barrier), the window is as full as the queue's order
                # lets it be, and the fake kernel holds all that was sent.
                core = conn._core
                await wait_until(lambda: core.pending == count + 1 + batch_size + 1)
                await wait_until(
                    lambda: (
                        not core.has_data_to_send()
                        and len(fk.requests) + fk.barriers == core.in_flight
                    )
                )
                await anyio.sleep(0.02)
                assert settled == {}
                in_flight, queued = core.in_flight, core.pending - core.in_flight
                # What is measured is how fast closing wakes the callers, not the cyclic
                # GC: after the rest of the suite a full collection of its leftovers
                # inside the window took ~120 ms (measured), so collect first.
                gc.collect()
                closed_at = time.monotonic()
                if how == "aclose":
                    await conn.aclose()
            await wait_until(lambda: len(settled) == count + 2, timeout=5)
    last = max(at for at, _ in settled.values()) - closed_at
    print(
        f"close ({how}): {in_flight} in flight, {queued} queued; last of {count + 2} "
        f"callers woken after {last * 1000:.1f} ms"
    )
    assert last <= CLOSE_LIMIT, last
    # A group of 101 may wait at the head of the queue for room: the window is then short
    # of full by less than that.
    assert window - batch_size - 1 < in_flight <= window
    assert queued > 0
    for index, (_, outcome) in settled.items():
        if index == -2:
            # request_many reports per item: every one ConnectionClosed.
            assert batch_results and len(batch_results[0]) == batch_size
            assert all(isinstance(r, ConnectionClosed) for r in batch_results[0])
        else:
            assert isinstance(outcome, ConnectionClosed), (index, outcome)
    assert conn.closed
    assert conn._waiters == {}
    assert conn._core.pending == 0


# --------------------------------------------------------------------------- interrupted dumps


def _route_frame(request: Message, i: int, flags: int) -> Message:
    body = RouteMessage(family=AF_INET, dst_len=32, priority=i)
    return Message(RTM.NEWROUTE, flags, body, request.seq, request.port_id)


@pytest.mark.parametrize("where", ["middle-part", "done-only"])
async def test_interrupted_route_dump_carries_everything_received(where: str) -> None:
    """Three datagrams of four route frames each, then NLMSG_DONE; NLM_F_DUMP_INTR on
    every frame of the second datagram (as the kernel flags a part built after a change),
    or only on DONE (a change during the last part)."""
    fk = FakeKernel()

    def handler(request: Message) -> list[Message]:
        if request.flags & NLM_F.DUMP != NLM_F.DUMP:
            return [ack(request)]
        for part in range(3):
            flags = _MULTI | (_INTR if where == "middle-part" and part == 1 else 0)
            fk.send(encode_messages(_route_frame(request, part * 4 + i, flags) for i in range(4)))
        done_flags = _MULTI | (_INTR if where == "done-only" else 0)
        fk.send(
            encode_messages(
                [Message(NLMSG.DONE, done_flags, DoneMessage(), request.seq, request.port_id)]
            )
        )
        return []

    fk.handler = handler
    with anyio.fail_after(10):
        async with fk.connect() as conn:
            seen: list[Message] = []
            with pytest.raises(DumpInterrupted) as caught:
                async for reply in conn.dump(GETROUTE):
                    seen.append(reply)
            priorities = [r.body.priority for r in seen if isinstance(r.body, RouteMessage)]
            assert priorities == list(range(12))
            assert caught.value.messages == seen
            flagged = [bool(m.flags & _INTR) for m in caught.value.messages]
            assert flagged == [where == "middle-part" and 4 <= i < 8 for i in range(12)]
            # The dump slot is free and the connection works.
            assert conn._core.pending == 0
            assert conn._waiters == {}
            assert await conn.request(NEWROUTE) is None
