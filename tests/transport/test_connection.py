"""Transport tests: a real :class:`Connection` against :class:`FakeKernel` over a socketpair.

Every test runs on asyncio (the ``add_reader`` path) and on trio (the reader/sender task
path).  The fake kernel's handler runs synchronously for each decoded request; tests that
need to control *when* answers go out make the handler hold requests and answer them
later from the test or from a separate task.

Things to know when reading these tests:

* Assertions about exceptions sit *inside* ``async with fk.connect()``: both the fake
  kernel's task group and (on trio) the connection's task group wrap an exception that
  leaves the block in an ``ExceptionGroup`` (see the two ``..._propagates_unchanged``
  tests at the end).
* Tasks that must outlive the connection (to observe what closing does to them) are
  started in a task group that *encloses* the connection context, so that closing the
  connection does not cancel them.
"""

from __future__ import annotations

import errno
import math
import operator
import os
import random
import socket
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sized
from contextlib import aclosing
from functools import partial
from ipaddress import IPv4Address
from typing import cast

import anyio
import pytest

from asyncroute import Connection
from asyncroute._codec import encode_message
from asyncroute._socket import SocketInfo
from asyncroute.constants import AF_INET, NLM_F, NLMSG, RT_TABLE, RTM
from asyncroute.errors import (
    AsyncrouteError,
    BusyError,
    ConnectionClosed,
    DumpInterrupted,
    ExistsError,
    KernelError,
    NotFoundError,
    PermissionDeniedError,
)
from asyncroute.messages import DoneMessage, Message, RouteMessage
from asyncroute.testing.fake_kernel import FAKE_PORT_ID, FakeKernel, ack, dump_replies, error_reply

pytestmark = pytest.mark.anyio

#: A NEWROUTE "doit" request, as a caller would build it (no REQUEST/ACK flags).
NEWROUTE = Message(
    RTM.NEWROUTE,
    int(NLM_F.CREATE | NLM_F.EXCL),
    RouteMessage(family=AF_INET, dst_len=24, table=RT_TABLE.MAIN, dst=IPv4Address("198.18.0.0")),
)
#: A GETROUTE request, for a single lookup (request()) or a dump (dump()).
GETROUTE = Message(RTM.GETROUTE, 0, RouteMessage(family=AF_INET))

_DUMP = int(NLM_F.DUMP)
_MULTI = int(NLM_F.MULTI)

Outcome = Message | BaseException | None


# --------------------------------------------------------------------------- helpers


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``timeout`` seconds)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.001)


async def settle(rounds: int = 20) -> None:
    """Give the reader, the sender and the fake kernel a few loop iterations."""
    for _ in range(rounds):
        await anyio.sleep(0)
    await anyio.sleep(0.01)


def route_reply(request: Message, priority: int, *, flags: int = 0) -> Message:
    """A NEWROUTE data frame answering ``request``; ``priority`` tells frames apart."""
    body = RouteMessage(family=AF_INET, dst_len=32, priority=priority)
    return Message(RTM.NEWROUTE, flags, body, request.seq, request.port_id)


def done(request: Message, *, flags: int = _MULTI) -> Message:
    return Message(NLMSG.DONE, flags, DoneMessage(), request.seq, request.port_id)


def is_dump(request: Message) -> bool:
    return request.flags & _DUMP == _DUMP


def priority(reply: Message) -> int:
    """The priority that tells the fake kernel's route frames apart."""
    assert isinstance(reply.body, RouteMessage)
    assert reply.body.priority is not None
    return reply.body.priority


def has_at_least(items: Sized, count: int) -> bool:
    return len(items) >= count


def dump_generator(conn: Connection, message: Message) -> AsyncGenerator[Message, None]:
    """``conn.dump()`` as what it is, an async generator, for ``contextlib.aclosing``.

    ``Connection.dump`` is annotated ``-> AsyncIterator[Message]`` although its docstring
    tells callers to use ``aclosing``; mypy rejects ``aclosing(conn.dump(...))``.
    """
    return cast(AsyncGenerator[Message, None], conn.dump(message))


async def capture(outcomes: dict[int, Outcome], key: int, call: Awaitable[Outcome]) -> None:
    """Await ``call`` and file its result or exception under ``key``."""
    try:
        outcomes[key] = await call
    except Exception as exc:
        outcomes[key] = exc


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Holding:
    """A handler that answers nothing: requests wait in ``held`` until the test answers.

    With ``auto`` set, later requests are acked at once instead.
    """

    def __init__(self) -> None:
        self.held: list[Message] = []
        self.auto = False

    def __call__(self, request: Message) -> Iterable[Message] | None:
        if self.auto:
            return [ack(request)]
        self.held.append(request)
        return None


# --------------------------------------------------------------------------- request()


async def test_request_returns_none_on_ack() -> None:
    fk = FakeKernel()
    async with fk.connect() as conn:
        assert await conn.request(NEWROUTE) is None
        assert await conn.request(NEWROUTE) is None
    assert len(fk.requests) == 2
    assert [r.body for r in fk.requests] == [NEWROUTE.body, NEWROUTE.body]


async def test_request_returns_the_reply_before_the_ack() -> None:
    fk = FakeKernel(lambda request: [route_reply(request, 7), ack(request)])
    async with fk.connect() as conn:
        reply = await conn.request(GETROUTE)
        assert reply is not None
        assert reply.type == RTM.NEWROUTE
        assert reply.body == RouteMessage(family=AF_INET, dst_len=32, priority=7)
        assert reply.seq == fk.requests[0].seq
        assert conn._core.pending == 0
        assert conn.stats.late == 0


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EEXIST, ExistsError),
        (errno.ENOENT, NotFoundError),
        (errno.ESRCH, NotFoundError),
        (errno.EPERM, PermissionDeniedError),
        (errno.EBUSY, BusyError),
        (errno.EINVAL, KernelError),
    ],
)
async def test_error_reply_raises_the_matching_kernel_error(
    code: int, expected: type[KernelError]
) -> None:
    fk = FakeKernel(lambda request: [error_reply(request, code, "Nope: bad attribute", 36)])
    async with fk.connect() as conn:
        with pytest.raises(KernelError) as caught:
            await conn.request(NEWROUTE)
        error = caught.value
        assert type(error) is expected
        assert isinstance(error, OSError)
        assert error.errno == code
        assert error.message == "Nope: bad attribute"
        assert error.offset == 36
        assert error.seq == fk.requests[0].seq
        assert error.msg_type == RTM.NEWROUTE
        # The connection is still usable after an error reply.
        fk.handler = lambda request: [ack(request)]
        assert await conn.request(NEWROUTE) is None


async def test_exists_error_is_a_file_exists_error_without_ext_ack() -> None:
    fk = FakeKernel(lambda request: [error_reply(request, errno.EEXIST)])
    async with fk.connect() as conn:
        with pytest.raises(FileExistsError) as caught:
            await conn.request(NEWROUTE)
        assert isinstance(caught.value, ExistsError)
        assert caught.value.message is None
        assert caught.value.offset is None


async def test_request_and_ack_flags_are_added_to_every_request() -> None:
    fk = FakeKernel()
    async with fk.connect() as conn:
        await conn.request(NEWROUTE)
        await conn.request(Message(RTM.DELROUTE, 0, NEWROUTE.body))
        await conn.request(Message(RTM.NEWROUTE, int(NLM_F.REQUEST), NEWROUTE.body))
    flags = [request.flags for request in fk.requests]
    required = int(NLM_F.REQUEST | NLM_F.ACK)
    assert all(f & required == required for f in flags), flags
    # The caller's own flags are kept.
    assert flags[0] & int(NLM_F.CREATE | NLM_F.EXCL) == int(NLM_F.CREATE | NLM_F.EXCL)
    assert [request.type for request in fk.requests] == [RTM.NEWROUTE, RTM.DELROUTE, RTM.NEWROUTE]
    seqs = [request.seq for request in fk.requests]
    assert 0 not in seqs
    assert len(set(seqs)) == len(seqs)
    assert {request.port_id for request in fk.requests} == {FAKE_PORT_ID}


# --------------------------------------------------------------------------- the window


class WindowKernel:
    """Holds requests until the window is full (or all arrived), then a task acks them all.

    Tracks ``outstanding`` = received - answered as the fake kernel sees it.
    """

    def __init__(self, window: int, total: int) -> None:
        self.window = window
        self.total = total
        self.held: list[Message] = []
        self.received = 0
        self.answered = 0
        self.max_outstanding = 0
        self.ready = anyio.Event()

    def handle(self, request: Message) -> None:
        self.received += 1
        self.held.append(request)
        outstanding = self.received - self.answered
        self.max_outstanding = max(self.max_outstanding, outstanding)
        if outstanding >= self.window or self.received == self.total:
            self.ready.set()

    async def release(self, fk: FakeKernel) -> None:
        while self.answered < self.total:
            await self.ready.wait()
            self.ready = anyio.Event()
            batch, self.held = self.held, []
            self.answered += len(batch)
            fk.reply([ack(request) for request in batch])


async def test_many_concurrent_requests_respect_the_window_and_are_coalesced() -> None:
    total, window = 2000, 32
    kernel = WindowKernel(window, total)
    fk = FakeKernel(kernel.handle)
    outcomes: dict[int, Outcome] = {}
    with anyio.fail_after(30):
        async with fk.connect(max_in_flight=window, timeout=20) as conn:
            assert conn.max_in_flight == window
            async with anyio.create_task_group() as group:
                group.start_soon(kernel.release, fk)
                for i in range(total):
                    group.start_soon(capture, outcomes, i, conn.request(NEWROUTE))
            assert conn._waiters == {}
            assert conn._core.pending == 0
            assert conn._core.in_flight == 0
    assert outcomes == dict.fromkeys(range(total))
    assert kernel.received == total
    assert kernel.max_outstanding == window  # the window filled, and never overflowed
    seqs = [request.seq for request in fk.requests]
    assert len(set(seqs)) == total
    # ~total / window datagrams: each batch of acks lets one coalesced datagram go.
    assert fk.datagrams <= 2 * math.ceil(total / window), fk.datagrams


async def test_many_concurrent_requests_answered_at_once() -> None:
    total, window = 2000, 32
    in_flight_seen: list[int] = []
    connections: list[Connection] = []

    def handler(request: Message) -> list[Message]:
        in_flight_seen.append(connections[0]._core.in_flight)
        return [ack(request)]

    fk = FakeKernel(handler)
    outcomes: dict[int, Outcome] = {}
    with anyio.fail_after(30):
        async with fk.connect(max_in_flight=window, timeout=20) as conn:
            connections.append(conn)
            async with anyio.create_task_group() as group:
                for i in range(total):
                    group.start_soon(capture, outcomes, i, conn.request(NEWROUTE))
    assert outcomes == dict.fromkeys(range(total))
    assert len(fk.requests) == total
    assert max(in_flight_seen) == window
    assert fk.datagrams <= total // 10, fk.datagrams


# --------------------------------------------------------------------------- dump()


async def test_dump_yields_every_reply_in_order() -> None:
    bodies = [RouteMessage(family=AF_INET, dst_len=32, priority=i) for i in range(100)]
    fk = FakeKernel(lambda request: dump_replies(request, RTM.NEWROUTE, bodies))
    async with fk.connect() as conn:
        replies = [reply async for reply in conn.dump(GETROUTE)]
        assert [reply.body for reply in replies] == bodies
        assert all(reply.type == RTM.NEWROUTE for reply in replies)
        assert all(reply.flags & _MULTI for reply in replies)
        assert conn._waiters == {}
        assert conn._core.pending == 0
        # A doit request works after the dump.
        fk.handler = lambda request: [ack(request)]
        assert await conn.request(NEWROUTE) is None
    request = fk.requests[0]
    assert is_dump(request)
    assert request.flags & int(NLM_F.REQUEST)


async def test_empty_dump_yields_nothing() -> None:
    fk = FakeKernel(lambda request: dump_replies(request, RTM.NEWROUTE, []))
    async with fk.connect() as conn:
        assert [reply async for reply in conn.dump(GETROUTE)] == []


class DumpKernel:
    """Acks doit requests at once; answers dumps one frame at a time from ``serve``.

    Like the kernel, it answers a dump that arrives while another is open with EBUSY, and
    records that as a violation.
    """

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.open: Message | None = None
        self.dumps: list[Message] = []
        self.violations: list[str] = []
        self.doit_while_open = 0

    def handle(self, request: Message) -> list[Message] | None:
        if not is_dump(request):
            if self.open is not None:
                self.doit_while_open += 1
            return [ack(request)]
        if self.open is not None:
            self.violations.append(f"dump seq {request.seq} arrived while {self.open.seq} open")
            return [error_reply(request, errno.EBUSY)]
        self.open = request
        self.dumps.append(request)
        return None

    async def serve(self, fk: FakeKernel, count: int, pause: float = 0.001) -> None:
        for index in range(count):
            await wait_until(lambda: self.open is not None)
            request = self.open
            assert request is not None
            for i in range(self.frames):
                fk.reply([route_reply(request, index * 1000 + i, flags=_MULTI)])
                await anyio.sleep(pause)
            fk.reply([done(request)])
            self.open = None


async def test_concurrent_dumps_are_serialized() -> None:
    dumps, frames = 3, 10
    kernel = DumpKernel(frames)
    fk = FakeKernel(kernel.handle)
    results: dict[int, list[int]] = {}

    async def run_dump(key: int, conn: Connection) -> None:
        results[key] = [priority(reply) async for reply in conn.dump(GETROUTE)]

    with anyio.fail_after(10):
        async with fk.connect() as conn, anyio.create_task_group() as group:
            group.start_soon(kernel.serve, fk, dumps)
            for key in range(dumps):
                group.start_soon(run_dump, key, conn)
    assert kernel.violations == []
    assert len(kernel.dumps) == dumps
    # Each dump got exactly one whole answer, in order; together they got all three.
    served = []
    for priorities in results.values():
        index = priorities[0] // 1000
        assert priorities == [index * 1000 + i for i in range(frames)]
        served.append(index)
    assert sorted(served) == list(range(dumps))


async def test_dump_interleaved_with_doit_requests() -> None:
    frames = 30
    kernel = DumpKernel(frames)
    fk = FakeKernel(kernel.handle)
    received: list[int] = []
    outcomes: dict[int, Outcome] = {}
    released = anyio.Event()

    async def run_dump(conn: Connection) -> None:
        async for reply in conn.dump(GETROUTE):
            received.append(priority(reply))

    with anyio.fail_after(10):
        async with fk.connect() as conn, anyio.create_task_group() as group:
            group.start_soon(run_dump, conn)
            await wait_until(lambda: kernel.open is not None)
            # The dump is open and nothing of it has been sent: doit requests go through.
            for i in range(50):
                group.start_soon(capture, outcomes, i, conn.request(NEWROUTE))
            await wait_until(lambda: len(outcomes) == 50)
            assert kernel.open is not None
            assert received == []

            async def serve() -> None:
                await kernel.serve(fk, 1, pause=0.001)
                released.set()

            group.start_soon(serve)
            # More doit requests while the dump's frames are being sent.
            for i in range(50, 100):
                group.start_soon(capture, outcomes, i, conn.request(NEWROUTE))
                await anyio.sleep(0)
    assert released.is_set()
    assert outcomes == dict.fromkeys(range(100))
    assert received == list(range(frames))
    assert kernel.doit_while_open >= 50
    assert kernel.violations == []


async def test_dump_interrupted_carries_every_message() -> None:
    bodies = [RouteMessage(family=AF_INET, dst_len=32, priority=i) for i in range(5)]
    fk = FakeKernel(lambda request: dump_replies(request, RTM.NEWROUTE, bodies, interrupted=True))
    async with fk.connect() as conn:
        seen: list[Message] = []
        with pytest.raises(DumpInterrupted) as caught:
            async for reply in conn.dump(GETROUTE):
                seen.append(reply)
        assert [reply.body for reply in seen] == bodies
        assert caught.value.messages == seen
        # The connection and the dump slot are fine afterwards.
        fk.handler = lambda request: dump_replies(request, RTM.NEWROUTE, bodies)
        assert [reply.body async for reply in conn.dump(GETROUTE)] == bodies


async def test_dump_interrupted_flag_on_one_middle_frame() -> None:
    def handler(request: Message) -> list[Message]:
        return [
            route_reply(request, 0, flags=_MULTI),
            route_reply(request, 1, flags=_MULTI | int(NLM_F.DUMP_INTR)),
            route_reply(request, 2, flags=_MULTI),
            done(request),
        ]

    fk = FakeKernel(handler)
    async with fk.connect() as conn:
        seen: list[Message] = []
        with pytest.raises(DumpInterrupted) as caught:
            async for reply in conn.dump(GETROUTE):
                seen.append(reply)
        assert len(seen) == 3
        assert caught.value.messages == seen


async def test_done_with_error_raises_the_kernel_error() -> None:
    def handler(request: Message) -> list[Message]:
        body = DoneMessage(-errno.ESRCH, message="table gone", offset=28)
        flags = _MULTI | int(NLM_F.ACK_TLVS)
        return [
            route_reply(request, 0, flags=_MULTI),
            route_reply(request, 1, flags=_MULTI),
            Message(NLMSG.DONE, flags, body, request.seq, request.port_id),
        ]

    fk = FakeKernel(handler)
    async with fk.connect() as conn:
        seen: list[Message] = []
        with pytest.raises(NotFoundError) as caught:
            async for reply in conn.dump(GETROUTE):
                seen.append(reply)
        assert len(seen) == 2  # the frames before DONE were yielded first
        assert caught.value.errno == errno.ESRCH
        assert caught.value.message == "table gone"
        assert caught.value.offset == 28
        assert caught.value.seq == fk.requests[0].seq
        assert caught.value.msg_type == RTM.GETROUTE
        assert conn._core.pending == 0


async def test_abandoned_dump_is_drained_before_the_next_dump() -> None:
    first: list[Message] = []

    def handler(request: Message) -> list[Message]:
        if not first:  # the first dump: one frame now, the rest from the test
            first.append(request)
            return [route_reply(request, 0, flags=_MULTI)]
        return dump_replies(request, RTM.NEWROUTE, [RouteMessage(family=AF_INET, priority=9)])

    fk = FakeKernel(handler)
    with anyio.fail_after(10):
        async with fk.connect() as conn, anyio.create_task_group() as group:
            async with aclosing(dump_generator(conn, GETROUTE)) as replies:
                async for reply in replies:
                    assert priority(reply) == 0
                    break
            assert conn._waiters == {}
            assert conn._core.pending == 1  # the abandoned dump keeps the slot

            second: list[Message] = []

            async def run_second() -> None:
                second.extend([reply async for reply in conn.dump(GETROUTE)])

            group.start_soon(run_second)
            await settle()
            assert len(fk.requests) == 1, "second dump sent while the first was not drained"
            # The rest of the abandoned dump arrives: dropped, counted as late.
            request = first[0]
            fk.reply([route_reply(request, i, flags=_MULTI) for i in range(1, 4)])
            fk.reply([done(request)])
            await wait_until(lambda: len(second) == 1)
            assert conn.stats.late == 4
            assert [priority(reply) for reply in second] == [9]
            assert len(fk.requests) == 2
            assert conn._core.pending == 0
            assert conn._waiters == {}


async def test_dump_timeout_then_next_dump_waits_for_the_drain() -> None:
    kept: list[Message] = []

    def handler(request: Message) -> list[Message] | None:
        if not kept:
            kept.append(request)
            return [route_reply(request, 0, flags=_MULTI)]  # then nothing
        return dump_replies(request, RTM.NEWROUTE, [RouteMessage(family=AF_INET, priority=5)])

    fk = FakeKernel(handler)
    async with fk.connect() as conn:
        seen: list[Message] = []
        with pytest.raises(TimeoutError):
            async for reply in conn.dump(GETROUTE, timeout=0.05):
                seen.append(reply)
        assert len(seen) == 1
        assert conn._waiters == {}
        fk.reply([done(kept[0])])
        replies = [reply async for reply in conn.dump(GETROUTE, timeout=2)]
        assert [priority(reply) for reply in replies] == [5]
        assert conn.stats.late == 1


# --------------------------------------------------------------------------- timeouts


async def test_timeout_leaves_the_connection_usable() -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    async with fk.connect() as conn:
        with anyio.fail_after(2), pytest.raises(TimeoutError):
            await conn.request(NEWROUTE, timeout=0.05)
        assert conn._waiters == {}
        assert not conn.closed
        holding.auto = True
        assert await conn.request(NEWROUTE, timeout=2) is None


async def test_late_reply_to_timed_out_request_is_dropped() -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    with anyio.fail_after(10):
        async with fk.connect() as conn, anyio.create_task_group() as group:
            with pytest.raises(TimeoutError):
                await conn.request(NEWROUTE, timeout=0.05)
            old = holding.held[0]
            assert conn._core.pending == 1  # the seq stays reserved

            outcomes: dict[int, Outcome] = {}
            group.start_soon(capture, outcomes, 0, conn.request(GETROUTE, timeout=5))
            await wait_until(lambda: len(holding.held) == 2)
            new = holding.held[1]
            assert new.seq != old.seq

            # A late reply frame and the late ack for the old request: both dropped.
            fk.reply([route_reply(old, 1), ack(old)])
            await settle()
            assert conn.stats.late == 2
            assert outcomes == {}, "a late reply completed another request"
            assert conn._core.pending == 1

            fk.reply([route_reply(new, 2), ack(new)])
            await wait_until(lambda: 0 in outcomes)
            reply = outcomes[0]
            assert isinstance(reply, Message)
            assert priority(reply) == 2
            assert conn.stats.late == 2
            assert conn.stats.unknown_seq == 0
            assert conn._core.pending == 0


async def test_abandoned_requests_keep_their_window_slot_until_answered() -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    with anyio.fail_after(10):
        async with fk.connect(max_in_flight=2) as conn, anyio.create_task_group() as group:
            for _ in range(2):
                with pytest.raises(TimeoutError):
                    await conn.request(NEWROUTE, timeout=0.02)
            outcomes: dict[int, Outcome] = {}
            group.start_soon(capture, outcomes, 0, conn.request(NEWROUTE, timeout=5))
            await settle()
            # Both slots belong to unanswered (abandoned) requests: nothing more is sent.
            assert len(holding.held) == 2
            fk.reply([ack(holding.held[0])])
            await wait_until(lambda: len(holding.held) == 3)
            fk.reply([ack(holding.held[2])])
            await wait_until(lambda: 0 in outcomes)
            assert outcomes[0] is None
            assert conn.stats.late == 1


# --------------------------------------------------------------------------- cancellation


async def test_cancelled_request_leaks_no_waiter() -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    finished = anyio.Event()
    scope = anyio.CancelScope()

    async def waiting(conn: Connection) -> None:
        with scope:
            await conn.request(NEWROUTE)
        finished.set()

    with anyio.fail_after(10):
        async with fk.connect() as conn, anyio.create_task_group() as group:
            group.start_soon(waiting, conn)
            await wait_until(lambda: len(holding.held) == 1)
            assert len(conn._waiters) == 1
            scope.cancel()
            await finished.wait()
            assert scope.cancelled_caught
            assert conn._waiters == {}
            assert conn._core.pending == 1  # sent, so its seq waits for the ack

            fk.reply([ack(holding.held[0])])
            await wait_until(lambda: conn._core.pending == 0)
            assert conn.stats.late == 1
            assert conn._core.in_flight == 0

            holding.auto = True
            results = [await conn.request(NEWROUTE) for _ in range(3)]
            assert results == [None, None, None]
            assert conn._waiters == {}


async def test_cancelled_queued_request_is_never_sent() -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    scope = anyio.CancelScope()
    outcomes: dict[int, Outcome] = {}

    async def queued(conn: Connection) -> None:
        with scope:
            await conn.request(Message(RTM.DELROUTE, 0, NEWROUTE.body))

    with anyio.fail_after(10):
        async with fk.connect(max_in_flight=1) as conn, anyio.create_task_group() as group:
            group.start_soon(capture, outcomes, 0, conn.request(NEWROUTE))
            await wait_until(lambda: len(holding.held) == 1)
            group.start_soon(queued, conn)
            await wait_until(lambda: conn._core.pending == 2)
            scope.cancel()
            await wait_until(lambda: conn._core.pending == 1)
            assert len(conn._waiters) == 1

            holding.auto = True
            fk.reply([ack(holding.held[0])])
            await wait_until(lambda: 0 in outcomes)
            assert outcomes[0] is None
            assert await conn.request(NEWROUTE) is None
            assert conn._waiters == {}
            assert conn._core.pending == 0
    # The cancelled DELROUTE never reached the kernel.
    assert [request.type for request in fk.requests] == [RTM.NEWROUTE, RTM.NEWROUTE]


async def test_cancelled_dump_before_it_was_sent_lets_the_next_one_go() -> None:
    kernel = DumpKernel(frames=2)
    fk = FakeKernel(kernel.handle)
    scope = anyio.CancelScope()
    results: list[list[Message]] = []

    async def cancelled_dump(conn: Connection) -> None:
        with scope:
            results.append([reply async for reply in conn.dump(GETROUTE)])

    async def dump(conn: Connection) -> None:
        results.append([reply async for reply in conn.dump(GETROUTE)])

    with anyio.fail_after(10):
        async with fk.connect() as conn, anyio.create_task_group() as group:
            group.start_soon(dump, conn)
            await wait_until(lambda: kernel.open is not None)
            group.start_soon(cancelled_dump, conn)  # queued behind the first
            group.start_soon(dump, conn)  # queued behind the cancelled one
            await wait_until(lambda: conn._core.pending == 3)
            scope.cancel()
            await wait_until(lambda: conn._core.pending == 2)
            group.start_soon(kernel.serve, fk, 2)
    assert [len(replies) for replies in results] == [2, 2]
    assert len(kernel.dumps) == 2
    assert kernel.violations == []


# --------------------------------------------------------------------------- closing


async def test_leaving_the_context_fails_in_flight_requests() -> None:
    fk = FakeKernel(Holding())
    outcomes: dict[int, Outcome] = {}
    with anyio.fail_after(10):
        # The request tasks live outside the connection context, so closing the
        # connection does not cancel them: they must be woken with ConnectionClosed.
        async with anyio.create_task_group() as group:
            async with fk.connect(timeout=30) as conn:
                for i in range(50):
                    group.start_soon(capture, outcomes, i, conn.request(NEWROUTE))
                await wait_until(lambda: len(fk.requests) == 50)
                await settle()
                assert outcomes == {}
                closed_at = anyio.current_time()
            await wait_until(lambda: len(outcomes) == 50, timeout=2)
            elapsed = anyio.current_time() - closed_at
    assert elapsed < 1.0
    assert all(isinstance(outcome, ConnectionClosed) for outcome in outcomes.values())
    assert conn.closed
    assert conn._waiters == {}
    assert conn._core.pending == 0


async def test_aclose_fails_in_flight_and_queued_requests_and_dumps() -> None:
    fk = FakeKernel(Holding())
    outcomes: dict[int, Outcome] = {}

    async def run_dump(conn: Connection) -> Outcome:
        async for _ in conn.dump(GETROUTE):
            pass
        return None

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            async with fk.connect(max_in_flight=20, timeout=30) as conn:
                for i in range(50):  # 20 in flight, 30 queued in the core
                    group.start_soon(capture, outcomes, i, conn.request(NEWROUTE))
                group.start_soon(capture, outcomes, 50, run_dump(conn))
                await wait_until(lambda: len(fk.requests) == 20)
                await wait_until(lambda: conn._core.pending == 51)
                await conn.aclose()  # the last statement: see the aclose test below
            await wait_until(lambda: len(outcomes) == 51, timeout=2)
    assert all(isinstance(outcome, ConnectionClosed) for outcome in outcomes.values())
    assert len(fk.requests) == 20
    assert conn.closed


async def test_request_after_close_raises_immediately() -> None:
    fk = FakeKernel()
    async with fk.connect() as conn:
        await conn.request(NEWROUTE)
    assert conn.closed
    with anyio.fail_after(1):
        with pytest.raises(ConnectionClosed):
            await conn.request(NEWROUTE)
        with pytest.raises(ConnectionClosed):
            async for _ in conn.dump(GETROUTE):
                pass
    assert len(fk.requests) == 1
    await conn.aclose()  # closing again is harmless


async def test_connect_close_cycles_leak_no_fds() -> None:
    fk = FakeKernel()

    async def cycle(index: int) -> None:
        async with fk.connect() as conn:
            assert await conn.request(NEWROUTE) is None
            if index % 2:
                async with aclosing(dump_generator(conn, GETROUTE)) as replies:
                    async for _ in replies:
                        break

    fk.handler = lambda request: (
        dump_replies(request, RTM.NEWROUTE, [RouteMessage(family=AF_INET)])
        if is_dump(request)
        else [ack(request)]
    )
    await cycle(0)  # warm up: anything the backend opens lazily
    before = open_fds()
    for index in range(20):
        await cycle(index)
    # Half of them closed with a request in flight.
    holding = Holding()
    fk.handler = holding
    for _ in range(10):
        async with anyio.create_task_group() as group, fk.connect() as conn:
            group.start_soon(capture, {}, 0, conn.request(NEWROUTE))
            await wait_until(lambda: bool(holding.held))
            holding.held.clear()
    assert open_fds() == before


# --------------------------------------------------------------------------- trust


def _valid_ack_bytes() -> bytes:
    return encode_message(ack(Message(RTM.NEWROUTE, 5, b"", 77, FAKE_PORT_ID)))


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\xde\xad\xbe", id="three-bytes"),
        pytest.param(_valid_ack_bytes()[:10], id="truncated-header"),
        pytest.param(b"\x08\x00\x00\x00" + bytes(12), id="length-below-header"),
        pytest.param(b"\xff\x00\x00\x00" + bytes(28), id="length-past-datagram"),
        pytest.param(bytes(random.Random(1).getrandbits(8) for _ in range(64)), id="random"),
    ],
)
async def test_malformed_datagram_is_counted_and_ignored(garbage: bytes) -> None:
    fk = FakeKernel()
    async with fk.connect() as conn:
        fk.send(garbage)
        await wait_until(lambda: conn.stats.malformed == 1)
        assert not conn.closed
        with anyio.fail_after(2):
            assert await conn.request(NEWROUTE) is None
        assert conn.stats.malformed == 1


async def test_malformed_frame_after_a_good_one() -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    outcomes: dict[int, Outcome] = {}
    async with fk.connect() as conn, anyio.create_task_group() as group:
        group.start_soon(capture, outcomes, 0, conn.request(NEWROUTE))
        await wait_until(lambda: len(holding.held) == 1)
        fk.send(encode_message(ack(holding.held[0])) + b"\x00\x01\x02")
        await wait_until(lambda: 0 in outcomes)
        assert outcomes[0] is None  # the good frame still counted
        assert conn.stats.malformed == 1


async def test_random_datagrams_never_break_the_reader() -> None:
    rng = random.Random(20240501)
    holding = Holding()
    fk = FakeKernel(holding)
    outcomes: dict[int, Outcome] = {}
    with anyio.fail_after(20):
        async with fk.connect() as conn, anyio.create_task_group() as group:
            for _ in range(200):  # nothing pending: garbage and stray frames
                fk.send(rng.randbytes(rng.randrange(1, 300)))
            for i in range(60):  # random frames addressed to a pending request
                group.start_soon(capture, outcomes, i, conn.request(NEWROUTE, timeout=5))
                await wait_until(partial(has_at_least, holding.held, i + 1))
                request = holding.held[i]
                kind = rng.choice([NLMSG.ERROR, NLMSG.DONE, RTM.NEWROUTE, RTM.NEWLINK, 0x99])
                flags = rng.choice([0, _MULTI, int(NLM_F.CAPPED | NLM_F.ACK_TLVS), 0xFFFF])
                payload = rng.randbytes(rng.randrange(0, 120))
                header = Message(kind, flags, payload, request.seq, request.port_id)
                fk.send(encode_message(header))
                fk.reply([ack(request)])  # finishes it if the random frame did not
                await wait_until(partial(operator.contains, outcomes, i))
            assert not conn.closed
            for outcome in outcomes.values():
                assert outcome is None or isinstance(outcome, Message | AsyncrouteError)
            holding.auto = True
            assert await conn.request(NEWROUTE) is None
    assert conn.stats.malformed + conn.stats.unknown_seq >= 200


async def test_reply_with_unknown_seq_is_dropped() -> None:
    holding = Holding()
    fk = FakeKernel(holding)
    outcomes: dict[int, Outcome] = {}
    async with fk.connect() as conn, anyio.create_task_group() as group:
        stray = Message(RTM.NEWROUTE, 5, b"", 0xDEAD, FAKE_PORT_ID)
        fk.reply([ack(stray), route_reply(stray, 1)])
        await wait_until(lambda: conn.stats.unknown_seq == 2)

        group.start_soon(capture, outcomes, 0, conn.request(NEWROUTE))
        await wait_until(lambda: len(holding.held) == 1)
        request = holding.held[0]
        # Right seq, wrong port id: not ours either.
        fk.reply([Message(NLMSG.ERROR, ack(request).flags, ack(request).body, request.seq, 1)])
        # A seq not yet used.
        fk.reply([ack(Message(RTM.NEWROUTE, 5, b"", request.seq + 1, FAKE_PORT_ID))])
        await wait_until(lambda: conn.stats.unknown_seq == 4)
        await settle()
        assert outcomes == {}
        fk.reply([ack(request)])
        await wait_until(lambda: 0 in outcomes)
        assert outcomes[0] is None
        assert conn.stats.late == 0
        assert conn.stats.malformed == 0


# --------------------------------------------------------------------------- back-pressure


async def test_full_socketpair_send_buffer_applies_back_pressure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    total = 5000
    big = RouteMessage(
        family=AF_INET,
        dst_len=24,
        dst=IPv4Address("198.18.0.0"),
        other=tuple((100 + i, bytes([i]) * 200) for i in range(5)),
    )
    request_message = Message(RTM.NEWROUTE, int(NLM_F.CREATE), big)
    blocked = 0
    original = Connection._wait_writable

    def counting_wait_writable(self: Connection) -> None:
        nonlocal blocked
        blocked += 1
        original(self)

    monkeypatch.setattr(Connection, "_wait_writable", counting_wait_writable)

    holding = Holding()
    fk = FakeKernel(holding)
    outcomes: dict[int, Outcome] = {}
    with anyio.fail_after(40):
        async with fk.connect(max_in_flight=10_000, timeout=30) as conn:
            async with anyio.create_task_group() as group:
                for i in range(total):
                    group.start_soon(capture, outcomes, i, conn.request(request_message))
                await wait_until(lambda: len(holding.held) == total, timeout=30)
                assert outcomes == {}
                fk.reply(ack(request) for request in holding.held)
            assert conn._core.pending == 0
            assert conn._waiters == {}
    assert blocked > 0, "the send buffer never filled: the BlockingIOError path was not run"
    assert outcomes == dict.fromkeys(range(total))
    assert len({request.seq for request in fk.requests}) == total
    assert all(request.body == big for request in fk.requests)


# --------------------------------------------------------------------------- regressions
#
# Each test below failed against an earlier version of the connection or fake kernel;
# its docstring says what was wrong.


async def test_request_waits_for_the_ack_after_a_reply() -> None:
    """Regression: request() returns at the first reply frame instead of at the ack.

    The waiter's event is set for a Reply as well as for Finished; request() wakes on
    the Reply, finds ``done`` false and abandons its own seq.  The ack, when it arrives
    in a later read, is counted as ``late``.
    """
    holding = Holding()
    fk = FakeKernel(holding)
    outcomes: dict[int, Outcome] = {}
    async with fk.connect() as conn, anyio.create_task_group() as group:
        group.start_soon(capture, outcomes, 0, conn.request(GETROUTE))
        await wait_until(lambda: len(holding.held) == 1)
        request = holding.held[0]
        fk.reply([route_reply(request, 3)])
        await settle()
        completed_early = 0 in outcomes
        fk.reply([ack(request)])
        await wait_until(lambda: 0 in outcomes)
        assert isinstance(outcomes[0], Message)
        assert not completed_early, "request() returned before its ack arrived"
        assert conn.stats.late == 0


async def test_error_after_a_reply_is_raised() -> None:
    """Regression: an error reply that follows a data reply is lost (counted as late)."""
    holding = Holding()
    fk = FakeKernel(holding)
    outcomes: dict[int, Outcome] = {}
    async with fk.connect() as conn, anyio.create_task_group() as group:
        group.start_soon(capture, outcomes, 0, conn.request(GETROUTE))
        await wait_until(lambda: len(holding.held) == 1)
        request = holding.held[0]
        fk.reply([route_reply(request, 3)])
        await settle()
        fk.reply([error_reply(request, errno.ENOENT)])
        await wait_until(lambda: 0 in outcomes)
        assert isinstance(outcomes[0], NotFoundError), outcomes[0]


async def test_empty_datagram_does_not_close_the_connection() -> None:
    """Regression: a zero-length datagram from the fake kernel closes the connection.

    ``_on_readable`` treats ``recv_into() == 0`` on AF_UNIX as "peer closed", but on a
    SOCK_DGRAM socket 0 is an empty datagram; a closed peer gives EAGAIN, never 0.
    """
    fk = FakeKernel()
    async with fk.connect() as conn:
        fk.send(b"")
        await settle()
        assert not conn.closed, "an empty datagram closed the connection"
        with anyio.fail_after(2):
            assert await conn.request(NEWROUTE) is None


async def test_code_after_aclose_inside_the_context_runs() -> None:
    """BUG (trio): ``await conn.aclose()`` inside ``async with`` cancels the caller.

    On trio the body of ``async with`` runs inside the connection's task group, and
    aclose() cancels that group's scope: the checkpoint in aclose() raises Cancelled,
    ``__aexit__`` swallows it, and the rest of the block silently never runs.
    """
    fk = FakeKernel()
    reached = False
    async with fk.connect() as conn:
        await conn.request(NEWROUTE)
        await conn.aclose()
        reached = True
    assert reached, "the statements after aclose() were skipped"


async def test_exception_from_connection_body_propagates_unchanged() -> None:
    """BUG (trio): an exception leaving ``async with Connection`` becomes an ExceptionGroup.

    On asyncio it propagates as is; on trio the connection's task group (a strict trio
    nursery) wraps it, so ``except ExistsError`` around the block stops working.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    info = SocketInfo(port_id=FAKE_PORT_ID, rcvbuf=1 << 20, sndbuf=1 << 20, strict_check=True)
    try:
        with pytest.raises(ExistsError):
            async with Connection(ours, info=info):
                raise ExistsError(errno.EEXIST)
    finally:
        ours.close()
        theirs.close()


async def test_exception_from_fake_kernel_body_propagates_unchanged() -> None:
    """BUG (FakeKernel, both backends): ``fk.connect()`` wraps errors in an ExceptionGroup.

    Its task group around the connection wraps whatever the body raises, so
    ``pytest.raises(ExistsError)`` around ``async with fk.connect()`` never matches.
    """
    fk = FakeKernel(lambda request: [error_reply(request, errno.EEXIST)])
    with pytest.raises(ExistsError):
        async with fk.connect() as conn:
            await conn.request(NEWROUTE)


async def test_fake_kernel_survives_a_large_dump() -> None:
    """BUG (FakeKernel): replies beyond the socketpair's buffer crash the fake kernel.

    ``FakeKernel.reply`` sends on a non-blocking socket; ~270 queued datagrams fill the
    default 208 KiB send buffer and BlockingIOError escapes ``_serve``, tearing down the
    connection.  A dump of 1,000 routes cannot be faked.
    """
    bodies = [RouteMessage(family=AF_INET, dst_len=32, priority=i) for i in range(1000)]
    fk = FakeKernel(lambda request: dump_replies(request, RTM.NEWROUTE, bodies))
    with anyio.fail_after(10):
        async with fk.connect() as conn:
            replies = [reply async for reply in conn.dump(GETROUTE)]
            assert len(replies) == len(bodies)
