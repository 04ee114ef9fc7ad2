"""Fuzzing the transport: poisoned datagrams never kill the connection's reader.

``test_poisoned_datagrams_never_kill_the_reader`` (hypothesis, asyncio and trio) keeps
one real :class:`~asyncroute.Connection` on a :class:`~asyncroute.testing.FakeKernel`
open for the whole run.  Each example starts an operation of one kind (none, a plain
request, a GET, a dump, a batch of three changes), lets the fake kernel hold it, sends
one to three hostile datagrams (:mod:`tests.fuzz.strategies`) whose frames mostly carry
the seqs that are really pending and the connection's port id, then the real answers.
The fake kernel is trusted like the kernel (AF_UNIX: no sender port to check), so every
byte reaches the core and the codec.  It proves, per example:

* the operation ends — no hang — with a result or an :class:`AsyncrouteError` (a forged
  error reply, a forged DONE, DecodeError), never another exception;
* the connection is still open, and a real request on it succeeds afterwards;
* nothing is left behind: no pending seq, no waiter.

The fixture checks once more when the run ends that the same connection still works.

``test_impostor_datagrams_on_a_real_netlink_socket`` (kernel) does the same over a real
socket in a namespace: a second netlink socket sends hostile datagrams straight to the
connection's port id while it programs routes.  The kernel marks them with the sender's
port id, so they must all be counted as foreign and dropped, and every route must land.
"""

from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import anyio
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asyncroute import Connection, Route
from asyncroute._socket import open_netlink_socket
from asyncroute.constants import AF_INET, NLM_F, RTM
from asyncroute.errors import AsyncrouteError
from asyncroute.messages import Message, RouteMessage
from asyncroute.testing import Namespace
from asyncroute.testing.fake_kernel import FAKE_PORT_ID, FakeKernel, ack, dump_replies
from tests import oracle
from tests.fuzz import strategies as fs
from tests.fuzz.profile import FULL, fuzz, hit
from tests.kernel.guard import connect_in

pytestmark = pytest.mark.anyio

NEWROUTE = Message(
    RTM.NEWROUTE,
    int(NLM_F.CREATE | NLM_F.REPLACE),
    RouteMessage(family=AF_INET, dst_len=24, dst=IPv4Address("198.18.0.0")),
)
GETROUTE = Message(RTM.GETROUTE, 0, RouteMessage(family=AF_INET))
_DUMP = int(NLM_F.DUMP)
#: Seconds any one step may take before the example fails as a hang.
STEP = 5.0


def answer(request: Message) -> list[Message]:
    """What the kernel would send: a dump's replies and DONE, a GET's reply and ack,
    else an ack."""
    if request.flags & _DUMP == _DUMP:
        bodies = [RouteMessage(family=AF_INET, dst_len=32, priority=p) for p in (1, 2)]
        return dump_replies(request, RTM.NEWROUTE, bodies)
    if request.type == RTM.GETROUTE:
        body = RouteMessage(family=AF_INET, dst_len=32, priority=7)
        reply = Message(RTM.NEWROUTE, 0, body, request.seq, request.port_id)
        return [reply, ack(request)]
    return [ack(request)]


@dataclass
class Holding:
    """The fake kernel's handler: answers at once, or holds requests while ``hold``."""

    hold: bool = False
    held: list[Message] = field(default_factory=list)

    def __call__(self, request: Message) -> Iterable[Message] | None:
        if self.hold:
            self.held.append(request)
            return None
        return answer(request)


class Rig:
    """A fake kernel and one connection to it, kept open across examples.

    If an example closes the connection (the bug this test looks for), that example
    fails, and :meth:`ensure_open` gives the next one a new connection, so that
    hypothesis can replay and shrink examples independently.  ``opened`` counts the
    connections: 1 at the end of a clean run.
    """

    def __init__(self) -> None:
        self.handler = Holding()
        self.kernel = FakeKernel(self.handler)
        self.opened = 0
        self._context: contextlib.AbstractAsyncContextManager[Connection] | None = None
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        assert self._conn is not None
        return self._conn

    async def ensure_open(self) -> Connection:
        if self._conn is None or self._conn.closed:
            await self.close()
            self.handler.hold = False
            self.handler.held = []
            self._context = self.kernel.connect(max_in_flight=64, timeout=STEP)
            self._conn = await self._context.__aenter__()
            self.opened += 1
        return self._conn

    async def close(self) -> None:
        context, self._context, self._conn = self._context, None, None
        if context is not None:
            await context.__aexit__(None, None, None)


async def wait_until(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(STEP):
        while not predicate():
            await anyio.sleep(0)


async def drained(conn: Connection) -> None:
    """Every seq released and every waiter gone (late answers may still be on the way)."""
    await wait_until(lambda: conn._core.pending == 0 and not conn._waiters)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """One connection on a fake kernel for the whole hypothesis run."""
    rig = Rig()
    await rig.ensure_open()
    try:
        yield rig
        # After the last example: the same connection, still open, still answering.
        conn = rig.conn
        rig.handler.hold = False
        assert not conn.closed
        with anyio.fail_after(STEP):
            assert await conn.request(NEWROUTE) is None
        await drained(conn)
        assert rig.opened == 1, f"{rig.opened - 1} connections were closed by examples"
    finally:
        await rig.close()


# --------------------------------------------------------------------------- operations


async def plain(conn: Connection) -> object:
    return await conn.request(NEWROUTE)


async def get(conn: Connection) -> object:
    return await conn.request(GETROUTE)


async def dump(conn: Connection) -> object:
    return [reply async for reply in conn.dump(GETROUTE)]


async def batch(conn: Connection) -> object:
    return await conn.request_many([NEWROUTE] * 3)


Operation = Callable[[Connection], Awaitable[object]]
OPERATIONS: dict[str, tuple[Operation, int]] = {
    # name: (operation, requests the fake kernel holds before the poison goes out)
    "plain": (plain, 1),
    "get": (get, 1),
    "dump": (dump, 1),
    "batch": (batch, 3),
}


def acceptable(result: object) -> bool:
    """A result an operation may end with after hostile input."""
    if result is None or isinstance(result, Message | AsyncrouteError):
        return True
    if isinstance(result, list):
        return all(acceptable(item) for item in result)
    return False


async def run(operation: Operation, conn: Connection, outcome: list[object]) -> None:
    try:
        outcome.append(await operation(conn))
    except AsyncrouteError as exc:
        outcome.append(exc)


#: Frame seqs below SLOTS are placeholders: :func:`retarget` replaces each with the seq
#: of a request that is pending when the datagram is sent.
SLOTS = 8
_poison = st.lists(
    fs.hostile(
        st.integers(0, SLOTS - 1) | fs.u32,
        st.sampled_from([FAKE_PORT_ID, FAKE_PORT_ID, 0]) | fs.u32,
    ),
    min_size=1,
    max_size=3,
)


def retarget(datagram: bytes, seqs: list[int]) -> bytes:
    """``datagram`` with placeholder seqs replaced by ``seqs``, in every frame header
    that can be found (walking the lengths as the reader does, until one is broken)."""
    data = bytearray(datagram)
    offset = 0
    while seqs and offset + 16 <= len(data):
        length, _, _, seq = struct.unpack_from("=IHHI", data, offset)
        if seq < SLOTS:
            struct.pack_into("=I", data, offset + 8, seqs[seq % len(seqs)])
        if length < 16:
            break
        offset += (length + 3) & ~3
    return bytes(data)


#: An error reply with code INT32_MIN for the first pending seq (see test_regressions.py):
#: explicit, so that every run tries it first.
INT32_MIN_ERROR = struct.pack("=IHHIIi", 20, 2, 0, 0, FAKE_PORT_ID, fs.INT32_MIN)


@fuzz(10_000)
@example("plain", [INT32_MIN_ERROR])
@example("batch", [INT32_MIN_ERROR])
@given(st.sampled_from(["none", *OPERATIONS]), _poison)
async def test_poisoned_datagrams_never_kill_the_reader(
    rig: Rig, kind: str, poison: list[bytes]
) -> None:
    # Everything is drawn before the test runs: a draw inside an async test (st.data())
    # may end the example by raising hypothesis's StopTest, a BaseException that stops
    # anyio's test runner, and with it the connection every example shares.
    hit()
    conn = await rig.ensure_open()
    kernel, handler = rig.kernel, rig.handler
    outcome: list[object] = []
    async with anyio.create_task_group() as group:
        if kind != "none":
            operation, held = OPERATIONS[kind]
            handler.hold = True
            group.start_soon(run, operation, conn, outcome)
            await wait_until(lambda: len(handler.held) >= held)
        seqs = [request.seq for request in handler.held]
        if kind == "batch":
            seqs.append(max(seqs) + 1)  # the group's barrier
        for datagram in poison:
            kernel.send(retarget(datagram, seqs))
        handler.hold = False
        requests, handler.held = handler.held, []
        kernel.reply(reply for request in requests for reply in answer(request))
        await wait_until(lambda: len(outcome) == (kind != "none"))
    for result in outcome:
        assert acceptable(result), f"{kind}: {result!r}"
    assert not conn.closed, "a poisoned datagram closed the connection"
    with anyio.fail_after(STEP):
        assert await conn.request(NEWROUTE) is None
    await drained(conn)


# --------------------------------------------------------------------------- real socket

IMPOSTOR_DATAGRAMS = 20_000 if FULL else 1_000


def impostor_datagram(rng: random.Random) -> bytes:
    """An error reply, a route reply, a DONE or random bytes, for a plausible seq."""
    seq = rng.randrange(0, 1 << 12)
    kind = rng.choice([2, 3, 24, 0x99, -1])
    if kind < 0:
        return rng.randbytes(rng.randrange(1, 300))
    payload = rng.choice([(-(2**31)).to_bytes(4, "little", signed=True), b""]) + rng.randbytes(
        rng.randrange(0, 64)
    )
    header = struct.pack("=IHHII", 16 + len(payload), kind, rng.randrange(1 << 16), seq, 0)
    return header + payload


async def test_impostor_datagrams_on_a_real_netlink_socket(netns: Namespace) -> None:
    rng = random.Random(20240611)
    routes = [
        Route(f"198.18.{i}.0/24", nexthop="192.0.2.1", device="v0", table=100) for i in range(200)
    ]
    async with connect_in(netns) as conn:
        impostor, _ = await anyio.to_thread.run_sync(
            lambda: open_netlink_socket(netns.name, rcvbuf=1 << 20, sndbuf=1 << 20)
        )
        with impostor:
            impostor.setblocking(False)  # never block the event loop that must drain
            sent = 0
            for index, route in enumerate(routes):
                for _ in range(IMPOSTOR_DATAGRAMS // len(routes)):
                    try:
                        impostor.sendto(impostor_datagram(rng), (conn.port_id, 0))
                    except BlockingIOError:  # the connection's buffer is full: let it read
                        await anyio.sleep(0.001)
                        continue
                    sent += 1
                assert await conn.upsert(route) is True
                if index % 50 == 0:
                    found = await conn.lookup(route)
                    assert (found.prefix, found.nexthop) == (route.prefix, route.nexthop)
            await wait_until(lambda: conn.stats.foreign == sent)
        assert not conn.closed
        assert conn.stats.malformed == 0 and conn.stats.unknown_seq == 0, conn.stats
        assert conn.stats.overruns == 0, conn.stats
        await drained(conn)
    dsts = oracle.route_dsts(netns.name, table=100)
    assert dsts == {f"198.18.{i}.0/24" for i in range(200)} | {"192.0.2.1/32"}
    assert sent >= IMPOSTOR_DATAGRAMS // 2
