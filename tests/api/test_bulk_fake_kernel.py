"""The bulk API against a fake kernel: request_many, upsert_many and delete_many.

A :class:`BulkKernel` handler stands in for rtnetlink behind
:class:`asyncroute.testing.fake_kernel.FakeKernel`.  It resolves device names (``v0`` is
ifindex 3, ``v1`` ifindex 4, anything else ENODEV), answers route requests with the
errno the test's ``answer`` picks (0: ack), and can *hold* requests instead of answering
them, to be answered later with :meth:`BulkKernel.release`.  It records every request
and counts what it has answered, so that a test can see how many requests the
connection had unanswered at any moment.

Items are numbered: item ``i`` is a route to ``198.18.(i >> 8).(i & 255)/32``, and the
handler recovers ``i`` from the destination (:func:`index_of`).

Every test runs on asyncio and on trio.  Assertions about exceptions sit inside the
``async with`` block (an exception leaving it may be wrapped by the fake kernel's task
group).  Retries use a recording sleep that returns at once.

Private attributes used: ``conn._waiters`` (no waiter left behind) and
``conn._core.pending`` (no seq left reserved), as in ``tests/transport``.
"""

from __future__ import annotations

import errno
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from ipaddress import IPv4Address
from typing import Any, Literal, TypeVar

import anyio
import pytest

import asyncroute
from asyncroute import (
    Connection,
    ExistsError,
    KernelError,
    NotFoundError,
    PermissionDeniedError,
    Route,
)
from asyncroute.connection import group_size
from asyncroute.constants import AF_INET, NLM_F, RTM
from asyncroute.errors import AsyncrouteError
from asyncroute.messages import LinkMessage, Message, RouteMessage
from asyncroute.testing.fake_kernel import FakeKernel, ack, dump_replies, error_reply

pytestmark = pytest.mark.anyio

T = TypeVar("T")

V0 = 3  #: ifindex of "v0"
V1 = 4  #: ifindex of "v1"
MAIN = 254
SCOPE_LINK = 253
CREATE_EXCL = int(NLM_F.CREATE | NLM_F.EXCL)
CREATE_REPLACE = int(NLM_F.CREATE | NLM_F.REPLACE)
BASE = int(IPv4Address("198.18.0.0"))
NH_A = "192.0.2.1"
NH_B = "192.0.2.10"
NH_C = "192.0.2.11"

#: How an input sequence is handed to the bulk call.
Kind = Literal["list", "generator", "async generator"]
KINDS: tuple[Kind, ...] = ("list", "generator", "async generator")


# --------------------------------------------------------------------------- the bulk kernel


class BulkKernel:
    """A FakeKernel handler for bulk tests: links by name, programmable answers, holding.

    ``answer`` maps a NEWROUTE/DELROUTE request to an errno (0: ack); ``table`` is what a
    route dump returns (rollback asks whether a route still uses a nexthop route).
    ``hold`` picks the route requests to keep unanswered in ``held`` until
    :meth:`release`.  ``answered``
    counts every reply sent; ``max_unanswered`` is the most route requests received and
    not yet answered at any moment.
    """

    def __init__(self) -> None:
        self.requests: list[Message] = []
        self.links: dict[str, int] = {"v0": V0, "v1": V1}
        self.answer: Callable[[Message], int] = lambda request: 0
        self.table: list[RouteMessage] = []
        self.hold: Callable[[Message], bool] = lambda request: False
        self.held: list[Message] = []
        self.answered = 0
        self.max_unanswered = 0
        self.arrived = anyio.Event()
        self.fake = FakeKernel(self)

    def __call__(self, request: Message) -> list[Message] | None:
        self.requests.append(request)
        if request.type == RTM.GETLINK:
            return self._getlink(request)
        if request.type == RTM.GETROUTE:
            return dump_replies(request, RTM.NEWROUTE, self.table)
        if self.hold(request):
            self.held.append(request)
            self.max_unanswered = max(self.max_unanswered, len(self.held))
            self.arrived.set()
            return None
        self.max_unanswered = max(self.max_unanswered, len(self.held) + 1)
        return self._answer(request)

    def _answer(self, request: Message) -> list[Message]:
        self.answered += 1
        if request.type in (RTM.NEWROUTE, RTM.DELROUTE):
            code = self.answer(request)
        else:
            code = errno.EOPNOTSUPP
        return [ack(request)] if code == 0 else [error_reply(request, code)]

    def _getlink(self, request: Message) -> list[Message]:
        assert isinstance(request.body, LinkMessage)
        name = request.body.name
        if name not in self.links:
            return [error_reply(request, errno.ENODEV)]
        link = LinkMessage(index=self.links[name], name=name, mtu=1500)
        return [Message(RTM.NEWLINK, 0, link, request.seq, request.port_id), ack(request)]

    def release(self, count: int | None = None) -> int:
        """Answer the oldest ``count`` held requests (all by default); how many."""
        taken = self.held[:count] if count is not None else list(self.held)
        del self.held[: len(taken)]
        for request in taken:
            self.fake.reply(self._answer(request))
        return len(taken)

    async def auto_release(self) -> None:
        """Answer held requests as soon as the handler has returned to its loop."""
        while True:
            await self.arrived.wait()
            self.arrived = anyio.Event()
            self.release()

    # ---- views of what was received

    def of_type(self, msg_type: int) -> list[Message]:
        return [request for request in self.requests if request.type == msg_type]

    def getlinks(self) -> list[str | None]:
        return [body_of(r, LinkMessage).name for r in self.of_type(RTM.GETLINK)]

    def nexthop_adds(self) -> list[Message]:
        """NEWROUTE requests for nexthop routes (a /32 without a gateway)."""
        return [
            request
            for request in self.of_type(RTM.NEWROUTE)
            if route_body(request).dst_len == 32 and route_body(request).gateway is None
        ]

    def prefix_adds(self) -> list[Message]:
        """NEWROUTE requests for the numbered routes (everything with a gateway)."""
        return [r for r in self.of_type(RTM.NEWROUTE) if route_body(r).gateway is not None]

    def attempts(self) -> Counter[int]:
        """How many times each numbered route was sent (NEWROUTE with a gateway)."""
        return Counter(index_of(request) for request in self.prefix_adds())


@asynccontextmanager
async def connected(kernel: BulkKernel, *, max_in_flight: int = 64) -> AsyncIterator[Connection]:
    async with kernel.fake.connect(max_in_flight=max_in_flight) as conn:
        yield conn


B = TypeVar("B")


def body_of(message: Message, cls: type[B]) -> B:
    assert isinstance(message.body, cls), message
    return message.body


def route_body(message: Message) -> RouteMessage:
    return body_of(message, RouteMessage)


def address(i: int) -> IPv4Address:
    return IPv4Address(BASE + i)


def index_of(request: Message) -> int:
    """The number of the item a route request is for."""
    dst = route_body(request).dst
    assert isinstance(dst, IPv4Address)
    return int(dst) - BASE


def item(i: int) -> Message:
    """Item ``i`` for request_many: a NEWROUTE for 198.18.x.y/32 (REQUEST|ACK are added)."""
    body = RouteMessage(family=AF_INET, dst_len=32, table=MAIN, dst=address(i), oif=V0)
    return Message(RTM.NEWROUTE, CREATE_REPLACE, body)


def route(i: int, nexthop: str | None = NH_A, device: str = "v0", table: int = 0) -> Route:
    """Route ``i`` for upsert_many/delete_many."""
    return Route(f"{address(i)}/32", nexthop=nexthop, device=device, table=table)


def feed(kind: Kind, items: Iterable[T]) -> Any:
    """``items`` as the bulk call should receive them: a list, a generator or an async
    generator (each consumed by the call, never ahead of it)."""
    if kind == "list":
        return list(items)
    if kind == "generator":
        return (x for x in items)

    async def agen() -> AsyncIterator[T]:
        for x in items:
            yield x

    return agen()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``timeout`` seconds)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.001)


async def settle(rounds: int = 20) -> None:
    """Give the connection, its driver and the fake kernel a few loop iterations."""
    for _ in range(rounds):
        await anyio.sleep(0)
    await anyio.sleep(0.01)


class RecordingSleep:
    """A RetryPolicy sleep that records its argument and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def assert_clean(conn: Connection) -> None:
    """No caller waits and no seq is reserved."""
    assert conn._waiters == {}
    assert conn._core.pending == 0


def members_in_flight(window: int) -> int:
    """Route requests a batch has in flight at most with this window: whole groups of
    ``group_size`` members, each followed by its NLMSG_NOOP barrier."""
    size = group_size(window)
    return max(1, window // (size + 1)) * size


def errno_of(outcome: object) -> int | None:
    return outcome.errno if isinstance(outcome, KernelError) else None


# =========================================================================== request_many


@pytest.mark.parametrize("kind", KINDS)
async def test_request_many_results_in_input_order(kind: Kind) -> None:
    """Acks are None, error replies the KernelError subclass of their errno, in order."""
    codes = {3: errno.ESRCH, 7: errno.EEXIST, 8: errno.EPERM, 20: errno.EINVAL, 49: errno.ENOENT}
    kernel = BulkKernel()
    kernel.answer = lambda request: codes.get(index_of(request), 0)
    async with connected(kernel, max_in_flight=4) as conn:
        results = await conn.request_many(feed(kind, (item(i) for i in range(50))))
        assert len(results) == 50
        for i, result in enumerate(results):
            assert errno_of(result) == codes.get(i), (i, result)
        assert type(results[3]) is NotFoundError
        assert type(results[7]) is ExistsError
        assert type(results[8]) is PermissionDeniedError
        assert type(results[20]) is KernelError
        assert type(results[49]) is NotFoundError
        assert_clean(conn)
    # Each item sent once, in input order, with REQUEST added to its own flags and no
    # ACK: only failures are answered, and each group's NLMSG_NOOP barrier is acked.
    routes = kernel.of_type(RTM.NEWROUTE)
    assert [index_of(r) for r in routes] == list(range(50))
    assert all(r.flags == int(NLM_F.REQUEST) | CREATE_REPLACE for r in routes)
    # max_in_flight=4: groups of at most 3 members and a barrier.
    assert kernel.fake.barriers >= 50 // 3


@pytest.mark.parametrize("kind", KINDS)
async def test_request_many_exception_items_are_reported_in_place_and_not_sent(
    kind: Kind,
) -> None:
    placed: dict[int, AsyncrouteError] = {
        0: NotFoundError(errno.ENODEV, message="no such device: 'x'"),
        5: KernelError(errno.EINVAL),
        6: ExistsError(errno.EEXIST),
        19: asyncroute.OutcomeUnknown("given"),
    }
    kernel = BulkKernel()
    async with connected(kernel, max_in_flight=2) as conn:
        items = (placed.get(i, item(i)) for i in range(20))
        results = await conn.request_many(feed(kind, items))
        for i, result in enumerate(results):
            if i in placed:
                assert result is placed[i]
            else:
                assert result is None
        assert_clean(conn)
    assert [index_of(r) for r in kernel.of_type(RTM.NEWROUTE)] == [
        i for i in range(20) if i not in placed
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_request_many_empty_and_all_exceptions(kind: Kind) -> None:
    kernel = BulkKernel()
    counts: list[int] = []
    async with connected(kernel) as conn:
        assert await conn.request_many(feed(kind, []), progress=counts.append) == []
        errors = [KernelError(errno.EINVAL) for _ in range(3)]
        results = await conn.request_many(feed(kind, errors), progress=counts.append)
        assert all(r is e for r, e in zip(results, errors, strict=True))
        assert_clean(conn)
    assert kernel.requests == []
    assert counts[-1] == 3


@pytest.mark.parametrize("kind", ["generator", "async generator"])
async def test_request_many_consumes_its_input_lazily(kind: Kind) -> None:
    """Never more than twice the window is taken from the input ahead of the answers."""
    window = 4
    in_flight = members_in_flight(window)
    total = 60
    kernel = BulkKernel()
    kernel.hold = lambda request: True
    produced = 0
    ahead: list[int] = []  # at each item taken: items taken before it and unanswered

    def items() -> Iterator[Message]:
        nonlocal produced
        for i in range(total):
            # The kernel has answered ≥ what the connection has seen answered, so this
            # is a lower bound of what the connection holds unanswered.
            ahead.append(i - kernel.answered)
            produced += 1
            yield item(i)

    results: list[AsyncrouteError | None] = []
    async with connected(kernel, max_in_flight=window) as conn:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:

                async def run() -> None:
                    results.extend(await conn.request_many(feed(kind, items())))

                group.start_soon(run)
                # Nothing answered: the window is sent, twice the window is taken.
                await wait_until(lambda: len(kernel.held) == in_flight)
                await settle()
                assert len(kernel.held) == in_flight
                assert in_flight < produced <= 2 * window + 1
                # Answer a few at a time and look again each time.
                while len(results) < total:
                    kernel.release(3)
                    await settle(5)
                    assert len(kernel.held) <= in_flight
                    assert produced <= kernel.answered + 2 * window + 1
        assert results == [None] * total
        assert_clean(conn)
    assert max(ahead) <= 2 * window
    assert kernel.max_unanswered == in_flight


async def test_request_many_window_and_coalescing() -> None:
    """1,000 items with a window of 8: never more than 8 unanswered (6 requests in two
    groups, and their barriers), few datagrams."""
    total = 1000
    kernel = BulkKernel()
    kernel.hold = lambda request: True
    async with connected(kernel, max_in_flight=8) as conn:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(kernel.auto_release)
                results = await conn.request_many(item(i) for i in range(total))
                group.cancel_scope.cancel()
        assert results == [None] * total
        assert_clean(conn)
    assert len(kernel.of_type(RTM.NEWROUTE)) == total
    assert kernel.max_unanswered == members_in_flight(8) == 6
    # Coalescing: each group goes out in one datagram with its barrier, or with the
    # other group.  One datagram per request would be 1,000; groups of 3 make 334.
    assert kernel.fake.datagrams <= total // 3 + 1, kernel.fake.datagrams


@pytest.mark.parametrize("kind", KINDS)
async def test_request_many_progress_is_monotonic_and_ends_at_the_total(kind: Kind) -> None:
    total = 300
    kernel = BulkKernel()
    counts: list[int] = []
    async with connected(kernel, max_in_flight=4) as conn:
        items = (KernelError(errno.EINVAL) if i % 50 == 0 else item(i) for i in range(total))
        results = await conn.request_many(feed(kind, items), progress=counts.append)
    assert len(results) == total
    assert counts, "progress was never called"
    assert counts == sorted(counts)
    assert all(0 <= count <= total for count in counts)
    assert counts[-1] == total
    assert len(counts) > 2  # called along the way, not only at the end


async def test_request_many_timeout_abandons_and_late_acks_drain() -> None:
    """An item never answered: TimeoutError; its seq stays reserved until the late ack."""
    kernel = BulkKernel()
    kernel.hold = lambda request: index_of(request) == 5
    async with connected(kernel, max_in_flight=4) as conn:
        with anyio.fail_after(5):
            with pytest.raises(TimeoutError):
                await conn.request_many((item(i) for i in range(20)), timeout=0.1)
            assert conn._waiters == {}
            # Groups of one (window 4): item 5's group keeps its seqs (member and
            # barrier), and so does item 6's, whose barrier waits behind item 5.
            assert group_size(4) == 1
            assert conn._core.pending == 2 * 2
            # Those two groups fill the window: items 0..6 were sent, no more.
            assert len(kernel.of_type(RTM.NEWROUTE)) == 7
            kernel.release()
            await wait_until(lambda: conn._core.pending == 0)
            assert conn.stats.late == 2
            assert conn.stats.unknown_seq == 0
            # The connection is still usable.
            kernel.hold = lambda request: False
            assert await conn.request_many(item(i) for i in range(10)) == [None] * 10
            assert_clean(conn)


async def test_request_many_timeout_while_the_window_is_stuck() -> None:
    """Timing out in the wait for room: unsent items are dropped, sent ones drained."""
    kernel = BulkKernel()
    kernel.hold = lambda request: True
    async with connected(kernel, max_in_flight=2) as conn:
        with anyio.fail_after(5):
            with pytest.raises(TimeoutError):
                await conn.request_many((item(i) for i in range(100)), timeout=0.1)
            assert conn._waiters == {}
            # Window 2: one group of one request and its barrier.
            assert len(kernel.held) == members_in_flight(2) == 1
            assert conn._core.pending == 2
            kernel.hold = lambda request: False
            kernel.release()
            await wait_until(lambda: conn._core.pending == 0)
            await settle()
            assert conn.stats.late == 1
            # The abandoned items that were still queued were never sent.
            assert [index_of(r) for r in kernel.of_type(RTM.NEWROUTE)] == [0]
            assert await conn.request_many([item(7)]) == [None]
            assert_clean(conn)


@pytest.mark.parametrize("kind", KINDS)
async def test_request_many_cancelled_midway_leaves_no_waiters(kind: Kind) -> None:
    window = 4
    in_flight = members_in_flight(window)
    kernel = BulkKernel()
    kernel.hold = lambda request: index_of(request) >= 10
    async with connected(kernel, max_in_flight=window) as conn:
        with anyio.fail_after(5):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:

                    async def cancel_when_stuck() -> None:
                        await wait_until(lambda: len(kernel.held) == in_flight)
                        scope.cancel()

                    group.start_soon(cancel_when_stuck)
                    await conn.request_many(feed(kind, (item(i) for i in range(100))))
            assert scope.cancelled_caught
            assert conn._waiters == {}
            # Sent and unanswered: reserved (two groups of one, each with its barrier).
            assert conn._core.pending == window
            kernel.hold = lambda request: False
            kernel.release()
            await wait_until(lambda: conn._core.pending == 0)
            await settle()
            assert conn.stats.late == window // 2  # one per group
            # Nothing queued behind the window was sent after the cancellation.
            assert len(kernel.of_type(RTM.NEWROUTE)) == 10 + in_flight
            assert await conn.request_many([item(200)]) == [None]
            assert_clean(conn)


async def test_request_many_timeout_only_when_nothing_moves() -> None:
    """Regression: ``timeout`` bounds "each wait for progress" (RequestBatch: "TimeoutError
    if nothing moves in time"), but a wait used to last until the batch's low water mark
    (the window, or zero in ``finish()``), so a kernel that answers steadily yet slower
    than ``window`` answers per ``timeout`` made the call fail.

    Here an answer comes every 0.02 s and the timeout is 0.2 s.  The batch sees progress
    when a group's barrier is answered (groups of 3 with a window of 8: every 0.06 s),
    so something moves three times per timeout, and the call must not time out.
    """
    kernel = BulkKernel()
    kernel.hold = lambda request: True
    async with connected(kernel, max_in_flight=8) as conn:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:

                async def trickle() -> None:
                    while True:
                        await anyio.sleep(0.02)
                        kernel.release(1)

                group.start_soon(trickle)
                try:
                    results = await conn.request_many([item(i) for i in range(8)], timeout=0.2)
                except TimeoutError:
                    results = None
                group.cancel_scope.cancel()
        assert results == [None] * 8, (
            f"TimeoutError after {kernel.answered} of 8 answers, one every 0.02 s"
        )


# =========================================================================== upsert_many


@pytest.mark.parametrize("operation", ["upsert_many", "delete_many"])
async def test_an_async_feed_that_trickles_is_not_held_back(operation: str) -> None:
    """A route from an async iterable goes out at the next turn of the event loop, not
    when a group is full: this feed yields the next route only once the kernel has
    received the one before, so a route held back would stall the call."""
    kernel = BulkKernel()

    def received() -> int:
        return len(kernel.of_type(RTM.NEWROUTE)) + len(kernel.of_type(RTM.DELROUTE))

    async def trickle() -> AsyncIterator[Route]:
        for i in range(5):
            before = received()
            yield route(i)
            await wait_until(lambda before=before: received() > before, timeout=2)

    async with connected(kernel) as conn:
        with anyio.fail_after(10):
            results = await getattr(conn, operation)(trickle())
        assert results == [True] * 5
        assert_clean(conn)


@pytest.mark.parametrize("kind", KINDS)
async def test_upsert_many_looks_up_each_device_once(kind: Kind) -> None:
    kernel = BulkKernel()
    routes = [
        route(i, device=("v0", "v1")[i % 2], nexthop=(NH_A, NH_B)[i % 3 == 0]) for i in range(300)
    ]
    async with connected(kernel, max_in_flight=16) as conn:
        results = await conn.upsert_many(feed(kind, routes))
        assert results == [True] * 300
        assert_clean(conn)
    assert sorted(kernel.getlinks(), key=str) == ["v0", "v1"]
    # Each route went out on its own device.
    for request in kernel.prefix_adds():
        assert route_body(request).oif == (V0, V1)[index_of(request) % 2]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", ["nexthop-changes", "device-changes", "table-changes"])
async def test_upsert_many_installs_each_nexthop_route_once(kind: Kind, order: str) -> None:
    """500 routes via 3 nexthops, on 2 devices, in 3 tables: 18 nexthop routes, each once
    and each before the first route that needs it."""
    nexthops = (NH_A, NH_B, NH_C)
    devices = ("v0", "v1")
    tables = (0, 100, 200)

    def key(i: int) -> tuple[str, str, int]:
        # Each order has consecutive routes that share all but one part of the key, so
        # that reusing the previous route's nexthop key by mistake shows.
        if order == "nexthop-changes":
            return nexthops[i % 3], devices[(i // 3) % 2], tables[(i // 6) % 3]
        if order == "device-changes":
            return nexthops[i // 167], devices[i % 2], tables[(i // 2) % 3]
        return nexthops[i // 167], devices[(i // 3) % 2], tables[i % 3]  # table-changes

    routes = [route(i, nexthop=key(i)[0], device=key(i)[1], table=key(i)[2]) for i in range(500)]
    kernel = BulkKernel()
    async with connected(kernel, max_in_flight=32) as conn:
        results = await conn.upsert_many(feed(kind, routes))
        assert results == [True] * 500
        assert_clean(conn)

    oifs = {"v0": V0, "v1": V1}
    installs = Counter(
        (str(route_body(r).dst), route_body(r).oif, route_body(r).table_number)
        for r in kernel.nexthop_adds()
    )
    expected = {
        (nh, oifs[dev], table or MAIN) for nh in nexthops for dev in devices for table in tables
    }
    assert set(installs) == expected
    assert all(count == 1 for count in installs.values()), installs
    assert all(r.flags & CREATE_EXCL == CREATE_EXCL for r in kernel.nexthop_adds())
    assert all(route_body(r).scope == SCOPE_LINK for r in kernel.nexthop_adds())

    # Every route was sent once, with its own gateway, device and table, after its
    # nexthop route.
    position: dict[tuple[str, int | None, int], int] = {}
    for n, request in enumerate(kernel.requests):
        if request in kernel.nexthop_adds():
            b = route_body(request)
            position.setdefault((str(b.dst), b.oif, b.table_number), n)
    seen = 0
    for n, request in enumerate(kernel.requests):
        if request.type != RTM.NEWROUTE or route_body(request).gateway is None:
            continue
        seen += 1
        b = route_body(request)
        nh, dev, table = key(index_of(request))
        assert (str(b.gateway), b.oif, b.table_number) == (nh, oifs[dev], table or MAIN)
        assert request.flags & CREATE_REPLACE == CREATE_REPLACE
        assert position[(nh, oifs[dev], table or MAIN)] < n
    assert seen == 500


@pytest.mark.parametrize("kind", KINDS)
async def test_upsert_many_missing_device_fails_only_its_routes(kind: Kind) -> None:
    kernel = BulkKernel()
    devices = ("v0", "nope", "v1", "nope", "nope")
    routes = [route(i, device=devices[i % 5]) for i in range(100)]
    async with connected(kernel, max_in_flight=8) as conn:
        results = await conn.upsert_many(feed(kind, routes))
        for i, result in enumerate(results):
            if devices[i % 5] == "nope":
                assert isinstance(result, NotFoundError), (i, result)
                assert result.errno == errno.ENODEV
            else:
                assert result is True, (i, result)
        assert_clean(conn)
    assert Counter(kernel.getlinks()) == {"v0": 1, "v1": 1, "nope": 1}
    assert sorted(kernel.attempts()) == [i for i in range(100) if devices[i % 5] != "nope"]
    assert {route_body(r).oif for r in kernel.of_type(RTM.NEWROUTE)} == {V0, V1}


@pytest.mark.parametrize("kind", KINDS)
async def test_upsert_many_retries_transient_failures_as_a_group(kind: Kind) -> None:
    """EINVAL once → retried and True; EPERM → not retried."""
    transient = {i for i in range(80) if i % 5 == 1}
    permanent = {i for i in range(80) if i % 7 == 3} - transient
    tries: Counter[int] = Counter()

    def answer(request: Message) -> int:
        if request.type != RTM.NEWROUTE or route_body(request).gateway is None:
            return 0
        i = index_of(request)
        tries[i] += 1
        if i in permanent:
            return errno.EPERM
        if i in transient and tries[i] == 1:
            return errno.EINVAL
        return 0

    kernel = BulkKernel()
    kernel.answer = answer
    sleep = RecordingSleep()
    async with connected(kernel, max_in_flight=8) as conn:
        results = await conn.upsert_many(
            feed(kind, (route(i) for i in range(80))), retry=asyncroute.RetryPolicy(sleep=sleep)
        )
        for i, result in enumerate(results):
            if i in permanent:
                assert isinstance(result, PermissionDeniedError), (i, result)
            else:
                assert result is True, (i, result)
        assert_clean(conn)
    assert tries == {i: 2 if i in transient else 1 for i in range(80)}
    assert sleep.calls == [0.1]  # one round for the whole group
    # The second round comes after the first, in input order.
    order = [index_of(r) for r in kernel.prefix_adds()]
    assert order == [*range(80), *sorted(transient)]
    assert kernel.of_type(RTM.DELROUTE) == []


async def test_upsert_many_always_einval_gives_up_after_ten_attempts() -> None:
    stubborn = {i for i in range(40) if i % 4 == 0}
    kernel = BulkKernel()
    kernel.answer = lambda request: (
        errno.EINVAL
        if route_body(request).gateway is not None and index_of(request) in stubborn
        else 0
    )
    sleep = RecordingSleep()
    async with connected(kernel, max_in_flight=8) as conn:
        results = await conn.upsert_many(
            (route(i) for i in range(40)), retry=asyncroute.RetryPolicy(sleep=sleep)
        )
        for i, result in enumerate(results):
            if i in stubborn:
                assert type(result) is KernelError, (i, result)
                assert result.errno == errno.EINVAL
            else:
                assert result is True, (i, result)
        assert_clean(conn)
    assert kernel.attempts() == {i: 10 if i in stubborn else 1 for i in range(40)}
    assert sleep.calls == [0.1] * 9
    assert kernel.of_type(RTM.DELROUTE) == []  # the nexthop route is used


async def test_upsert_many_retry_policy_max_tries_and_predicate() -> None:
    kernel = BulkKernel()
    kernel.answer = lambda request: (
        errno.EPERM if route_body(request).gateway is not None and index_of(request) < 3 else 0
    )
    sleep = RecordingSleep()
    policy = asyncroute.RetryPolicy(
        max_tries=3, interval=0.25, retryable=lambda e: True, sleep=sleep
    )
    async with connected(kernel) as conn:
        results = await conn.upsert_many([route(i) for i in range(6)], retry=policy)
        assert [type(r) for r in results[:3]] == [PermissionDeniedError] * 3
        assert results[3:] == [True] * 3
    assert kernel.attempts() == {0: 3, 1: 3, 2: 3, 3: 1, 4: 1, 5: 1}
    assert sleep.calls == [0.25, 0.25]


@pytest.mark.parametrize("kind", ["generator", "async generator"])
async def test_upsert_many_consumes_its_input_lazily(kind: Kind) -> None:
    window = 4
    in_flight = members_in_flight(window)
    total = 40
    kernel = BulkKernel()
    kernel.hold = lambda request: route_body(request).gateway is not None
    produced = 0
    ahead: list[int] = []

    def routes() -> Iterator[Route]:
        nonlocal produced
        for i in range(total):
            ahead.append(i - kernel.answered)
            produced += 1
            yield route(i)

    results: list[bool | BaseException] = []
    async with connected(kernel, max_in_flight=window) as conn:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:

                async def run() -> None:
                    results.extend(await conn.upsert_many(feed(kind, routes())))

                group.start_soon(run)
                await wait_until(lambda: len(kernel.held) == in_flight)
                await settle()
                assert len(kernel.held) == in_flight
                assert in_flight < produced <= 2 * window + 1
                while len(results) < total:
                    kernel.release(2)
                    await settle(5)
                    assert len(kernel.held) <= in_flight
        assert results == [True] * total
        assert_clean(conn)
    # ``answered`` also counts the nexthop route's ack, so this bound is loose by one.
    assert max(ahead) <= 2 * window


@pytest.mark.parametrize("kind", KINDS)
async def test_upsert_many_cancelled_midway_leaves_no_waiters(kind: Kind) -> None:
    kernel = BulkKernel()
    kernel.hold = lambda request: (
        route_body(request).gateway is not None and index_of(request) >= 10
    )
    async with connected(kernel, max_in_flight=4) as conn:
        with anyio.fail_after(5):
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:

                    async def cancel_when_stuck() -> None:
                        await wait_until(lambda: len(kernel.held) == members_in_flight(4))
                        scope.cancel()

                    group.start_soon(cancel_when_stuck)
                    await conn.upsert_many(feed(kind, (route(i) for i in range(100))))
            assert scope.cancelled_caught
            assert conn._waiters == {}
            kernel.hold = lambda request: False
            kernel.release()
            await wait_until(lambda: conn._core.pending == 0)
            assert await conn.upsert_many([route(500)]) == [True]
            assert_clean(conn)
    # Cancelled: nothing rolled back (the kernel may have applied the routes).
    assert kernel.of_type(RTM.DELROUTE) == []


def nexthop_delete(nexthop: str, table: int) -> RouteMessage:
    """The RTM_DELROUTE body of a rollback: NH/32 dev v0 scope link in ``table``."""
    return RouteMessage(
        family=AF_INET,
        dst_len=32,
        table=table,
        scope=SCOPE_LINK,
        dst=IPv4Address(nexthop),
        oif=V0,
    )


@pytest.mark.parametrize("code", [errno.EPERM, errno.EINVAL])
async def test_upsert_many_rolls_back_a_created_nexthop_route_nobody_uses(code: int) -> None:
    """Every route via NH_A fails (permanently, or transiently 10 times): the nexthop
    route this call created is deleted; NH_B, used by successful routes, stays."""
    kernel = BulkKernel()
    kernel.answer = lambda request: (
        code if request.type == RTM.NEWROUTE and str(route_body(request).gateway) == NH_A else 0
    )
    routes = [route(i, nexthop=(NH_A, NH_B)[i % 2], table=100) for i in range(40)]
    async with connected(kernel, max_in_flight=8) as conn:
        results = await conn.upsert_many(
            routes, retry=asyncroute.RetryPolicy(sleep=RecordingSleep())
        )
        for i, result in enumerate(results):
            assert (errno_of(result) if i % 2 == 0 else result) == (code if i % 2 == 0 else True)
        assert_clean(conn)
    assert [str(route_body(r).dst) for r in kernel.nexthop_adds()] == [NH_A, NH_B]
    [delete] = kernel.of_type(RTM.DELROUTE)
    assert route_body(delete) == nexthop_delete(NH_A, 100)
    assert kernel.requests[-1] is delete  # after every route has settled


async def test_upsert_many_keeps_a_created_nexthop_route_the_kernel_shows_in_use() -> None:
    """Every route of the call fails, but the kernel's table (a dump filtered by table
    and device) holds a route through the gateway that another caller added: the
    nexthop route stays."""
    kernel = BulkKernel()
    kernel.answer = lambda request: (
        errno.EPERM if request.type == RTM.NEWROUTE and route_body(request).dst_len == 32
        and str(route_body(request).dst) != NH_A else 0
    )  # fmt: skip
    kernel.table = [
        RouteMessage(family=AF_INET, dst_len=24, table=100, dst=IPv4Address("198.18.9.0"),
                     oif=V0, gateway=IPv4Address(NH_A))
    ]  # fmt: skip
    async with connected(kernel) as conn:
        results = await conn.upsert_many([route(i, nexthop=NH_A, table=100) for i in range(5)])
        assert [errno_of(r) for r in results] == [errno.EPERM] * 5
        assert_clean(conn)
    assert kernel.of_type(RTM.DELROUTE) == []
    [dump] = kernel.of_type(RTM.GETROUTE)
    assert route_body(dump).table == 100 and route_body(dump).oif == V0


async def test_upsert_many_keeps_a_created_nexthop_route_one_route_uses() -> None:
    kernel = BulkKernel()
    kernel.answer = lambda request: (
        errno.EPERM if route_body(request).gateway is not None and index_of(request) != 17 else 0
    )
    async with connected(kernel, max_in_flight=8) as conn:
        results = await conn.upsert_many(route(i) for i in range(30))
        assert [i for i, r in enumerate(results) if r is True] == [17]
        assert_clean(conn)
    assert len(kernel.nexthop_adds()) == 1
    assert kernel.of_type(RTM.DELROUTE) == []


async def test_upsert_many_never_deletes_a_nexthop_route_that_existed() -> None:
    def answer(request: Message) -> int:
        b = route_body(request)
        if b.gateway is None:  # the nexthop route: already there
            return errno.EEXIST if request.flags & NLM_F.EXCL else 0
        return errno.EPERM

    kernel = BulkKernel()
    kernel.answer = answer
    async with connected(kernel, max_in_flight=8) as conn:
        results = await conn.upsert_many(route(i) for i in range(30))
        assert all(isinstance(r, PermissionDeniedError) for r in results)
        assert_clean(conn)
    adds = kernel.nexthop_adds()
    assert [r.flags & (CREATE_EXCL | CREATE_REPLACE) for r in adds] == [
        CREATE_EXCL,
        CREATE_REPLACE,
    ]
    assert route_body(adds[0]) == route_body(adds[1])
    assert kernel.of_type(RTM.DELROUTE) == []


async def test_upsert_many_nexthop_route_failure_fails_its_routes() -> None:
    """A nexthop route the kernel refuses: its routes get that error and are not sent."""
    kernel = BulkKernel()
    kernel.answer = lambda request: (
        errno.EPERM
        if route_body(request).gateway is None and str(route_body(request).dst) == NH_B
        else 0
    )
    async with connected(kernel, max_in_flight=8) as conn:
        results = await conn.upsert_many(route(i, nexthop=(NH_A, NH_B)[i % 2]) for i in range(20))
        for i, result in enumerate(results):
            if i % 2:
                assert isinstance(result, PermissionDeniedError), (i, result)
            else:
                assert result is True, (i, result)
        assert_clean(conn)
    assert sorted(kernel.attempts()) == list(range(0, 20, 2))
    assert kernel.of_type(RTM.DELROUTE) == []


async def test_upsert_many_raises_the_first_failure_after_all_settled() -> None:
    """return_exceptions=False: the first failure in input order is raised, after every
    request (retries and rollback included) has been answered."""
    kernel = BulkKernel()
    stubborn, refused = 3, 7  # EINVAL until the retries run out; EPERM at once

    def answer(request: Message) -> int:
        if request.type != RTM.NEWROUTE or route_body(request).gateway is None:
            return 0
        if str(route_body(request).gateway) == NH_B:
            return errno.EEXIST  # every route via NH_B fails: its nexthop route goes
        return {stubborn: errno.EINVAL, refused: errno.EPERM}.get(index_of(request), 0)

    kernel.answer = answer
    routes = [route(i, nexthop=NH_B if i >= 25 else NH_A) for i in range(30)]
    sleep = RecordingSleep()
    async with connected(kernel, max_in_flight=4) as conn:
        with pytest.raises(KernelError) as info:
            await conn.upsert_many(
                routes, retry=asyncroute.RetryPolicy(sleep=sleep), return_exceptions=False
            )
        assert type(info.value) is KernelError
        assert info.value.errno == errno.EINVAL
        assert_clean(conn)
    assert kernel.attempts()[stubborn] == 10
    assert sum(kernel.attempts().values()) == 30 + 9
    [delete] = kernel.of_type(RTM.DELROUTE)
    assert route_body(delete) == nexthop_delete(NH_B, MAIN)


@pytest.mark.parametrize("kind", KINDS)
async def test_upsert_many_progress_ends_at_the_total(kind: Kind) -> None:
    kernel = BulkKernel()
    counts: list[int] = []
    async with connected(kernel, max_in_flight=4) as conn:
        results = await conn.upsert_many(
            feed(kind, (route(i) for i in range(100))), progress=counts.append
        )
        assert results == [True] * 100
    assert counts == sorted(counts)
    assert counts[-1] == 100


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["upsert_many", "delete_many"])
async def test_bulk_non_route_item_is_a_type_error(kind: Kind, method: str) -> None:
    kernel = BulkKernel()
    items: Sequence[object] = [route(0), route(1), f"{address(2)}/32", route(3)]
    async with connected(kernel) as conn:
        with pytest.raises(TypeError):
            await getattr(conn, method)(feed(kind, items))
        await settle()
        assert_clean(conn)
    # Nothing after the bad item was sent.
    upsert = method == "upsert_many"
    sent = kernel.prefix_adds() if upsert else kernel.of_type(RTM.DELROUTE)
    assert {index_of(r) for r in sent} <= {0, 1}


# =========================================================================== delete_many


@pytest.mark.parametrize("kind", KINDS)
async def test_delete_many_missing_routes_are_not_found_in_order(kind: Kind) -> None:
    kernel = BulkKernel()
    kernel.answer = lambda request: errno.ESRCH if index_of(request) % 3 == 0 else 0
    routes = [route(i, table=(0, 100)[i % 2]) for i in range(60)]
    async with connected(kernel, max_in_flight=8) as conn:
        results = await conn.delete_many(feed(kind, routes))
        for i, result in enumerate(results):
            if i % 3 == 0:
                assert isinstance(result, NotFoundError), (i, result)
                assert result.errno == errno.ESRCH
            else:
                assert result is True, (i, result)
        assert_clean(conn)
    deletes = kernel.of_type(RTM.DELROUTE)
    assert [index_of(r) for r in deletes] == list(range(60))
    assert kernel.getlinks() == ["v0"]
    assert kernel.of_type(RTM.NEWROUTE) == []  # no nexthop route is touched
    # Only the identifying fields (the gateway is not among them).
    assert route_body(deletes[1]) == RouteMessage(
        family=AF_INET, dst_len=32, table=100, scope=0, dst=address(1), oif=V0
    )


async def test_delete_many_missing_device_and_return_exceptions_false() -> None:
    kernel = BulkKernel()
    routes = [route(i, device="v0" if i != 4 else "gone") for i in range(10)]
    async with connected(kernel) as conn:
        results = await conn.delete_many(routes)
        assert [isinstance(r, NotFoundError) for r in results] == [i == 4 for i in range(10)]
        with pytest.raises(NotFoundError):
            await conn.delete_many(routes, return_exceptions=False)
        assert_clean(conn)
    assert len(kernel.of_type(RTM.DELROUTE)) == 18
