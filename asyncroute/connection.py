"""The engine's connection: the socket's transport and the callers waiting on it.

One :class:`NetlinkConnection` owns one netlink socket and one :class:`NetlinkProtocol`.
Any number of tasks may call :meth:`NetlinkConnection.request` at once: each gets a seq,
its request bytes wait in the core's queue, and the transport sends everything queued in
one loop iteration with as few ``send`` calls as possible.  Replies are read in bulk and
handed to the waiting callers by seq.

Transport, per backend:
- asyncio: ``loop.add_reader`` calls ``_on_readable`` directly, which drains every
  datagram the socket holds into one reused buffer; sends are coalesced with
  ``loop.call_soon``.
- trio: the same drain runs in a system task on ``trio.lowlevel.wait_readable``, and a
  second system task sends once per batch of requests.

Invariants:
- The window (``max_in_flight``) is sized from the receive buffer the kernel actually
  granted, so the acks of everything in flight fit in it (netlink(7): a full buffer
  drops replies and reports ENOBUFS).  Callers beyond the window wait; they never fail.
- A caller that stops waiting (cancelled, timed out) abandons its seq; the core keeps
  the seq reserved until the reply arrives, so nothing is mismatched.
- Closing wakes every waiter with :class:`ConnectionClosed` before the socket closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import queue
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Hashable, Iterable
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.lowlevel

from ._flight import SingleFlight
from ._gil import BULK_SWITCH_INTERVAL, lower_switch_interval, restore_switch_interval
from ._protocol import ACK_COST, Finished, NetlinkProtocol, ProtocolStats, Reply
from ._socket import SocketInfo, open_netlink_socket
from .constants import NLM_F
from .errors import AsyncrouteError, ConnectionClosed, DumpInterrupted
from .messages import Body, Message

__all__ = ["DEFAULT_TIMEOUT", "DUMP_RETRIES", "NetlinkConnection", "RequestBatch"]

#: Receive-buffer bytes a running dump may hold besides half the buffer:
#: ``netlink_recvmsg`` runs ``netlink_dump`` again after each read while the buffer is at
#: most half full, and one dump skb (≤ 32 KiB of data) can take up to 64 KiB.
DUMP_RESERVE = 64 * 1024
#: Default seconds a request may wait for its reply.
DEFAULT_TIMEOUT = 30.0
#: How often the route API repeats a dump the kernel flagged as interrupted.
DUMP_RETRIES = 3
#: Default receive buffer asked for (the kernel doubles it).  A limit, not memory
#: taken: the kernel charges only what is queued.  Its size sets the window, which must
#: ride out the kernel's long sends (30-80 ms while it resizes a FIB table): with 16 MiB
#: (a window of 16,320) bulk calls ran 6-9 % faster than with 4 MiB (4,032).
DEFAULT_RCVBUF = 16 * 1024 * 1024
#: Most requests in flight by default, whatever the buffer would allow.
DEFAULT_MAX_IN_FLIGHT = 16384
#: Most bytes per ``send`` (also bounded by half the send buffer): the kernel runs
#: every message of a send before returning, on the sender thread.  A group of
#: GROUP_SIZE route changes (~60-100 bytes each) fits.
MAX_DATAGRAM = 256 * 1024
#: Receive buffer size; larger than any datagram the kernel sends (dumps ≤ 32 KiB).
RECV_BUFFER = 1024 * 1024
#: Datagrams drained per wake-up before yielding to other tasks.
MAX_DRAIN = 128
#: A bulk producer looks at the clock every YIELD_EVERY requests, and lets the event
#: loop run once YIELD_INTERVAL seconds have passed since it last did.  Each turn of
#: the loop that wakes the sender thread costs GIL hand-offs (~150 µs measured on this
#: 2-vCPU VM), so few, long turns go fastest; but another task waits up to about two
#: turns, so the loop's lag grows with them (docs/performance.md).  By time, not by
#: count: a route costs 3 µs or 30 µs depending on what the caller builds.
YIELD_EVERY = 256
YIELD_INTERVAL = 0.003
#: Most requests in one group (one barrier per group); a producer seals its group at
#: each pause, so groups hold at most YIELD_EVERY requests anyway.
GROUP_SIZE = 256

_REQUEST_ACK = int(NLM_F.REQUEST | NLM_F.ACK)
_typeof = type
_REQUEST_DUMP = int(NLM_F.REQUEST | NLM_F.DUMP)


_FIRST_HEADER = struct.Struct("=IHH")
_DUMP = int(NLM_F.DUMP)


def _starts_dump(datagram: bytes) -> bool:
    """True for a datagram holding a dump request (the core sends those alone)."""
    _, msg_type, flags = _FIRST_HEADER.unpack_from(datagram)
    return bool(msg_type & 3 == 2 and flags & _DUMP == _DUMP)  # a GET with NLM_F_DUMP


class _Waiter:
    """One caller waiting for one request's replies.

    ``wakeup`` is what the caller awaits right now: an asyncio future on asyncio (an
    anyio Event plus ``fail_after`` costs ~12 µs a request there, a future plus a timer
    handle ~3 µs), an anyio Event elsewhere.
    """

    __slots__ = ("done", "error", "replies", "stream", "wakeup")

    def __init__(self, stream: bool) -> None:
        #: a dump's waiter is woken for every reply, a request's only when it finishes
        self.stream = stream
        self.wakeup: asyncio.Future[None] | anyio.Event | None = None
        self.replies: deque[Message] = deque()
        self.error: AsyncrouteError | None = None
        self.done = False

    def wake(self) -> None:
        wakeup = self.wakeup
        if isinstance(wakeup, anyio.Event):
            wakeup.set()
        elif wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def replied(self, message: Message) -> None:
        self.replies.append(message)
        if self.stream:
            self.wake()

    def finished(
        self,
        seq: int,
        error: AsyncrouteError | None,
        failures: tuple[tuple[int, AsyncrouteError], ...] = (),
    ) -> None:
        self.error = error
        self.done = True
        self.wake()


def group_size(window: int) -> int:
    """Requests per group for a window of ``window``: two groups with their barriers
    fit in it, so that one can be sent while the answer to the other is read."""
    return max(1, min(GROUP_SIZE, (window - 1) // 2))


class RequestBatch(_Waiter):
    """Many change requests awaited together: :meth:`NetlinkConnection.batch`.

    No task, future or ack per request.  Requests added between two turns of the event
    loop go out as one *group* (:meth:`NetlinkProtocol.send_group`): sent without
    NLM_F_ACK and followed by one acked NLMSG_NOOP, so the kernel answers only the ones
    that fail, and the group's single ack settles all the others.  Results go into a
    list by position, and the caller is woken only when the window has room again (or
    everything is answered).

    Use::

        batch = conn.batch()
        try:
            for message in messages:
                if batch.full:
                    await batch.pause()
                batch.add(message)
            results = await batch.finish()
        finally:
            batch.abandon()  # no-op after finish(); after an error, forget the rest
    """

    __slots__ = (
        "_added",
        "_bytes",
        "_conn",
        "_high_water",
        "_limit",
        "_lowered",
        "_open",
        "_progress",
        "_yielded",
        "group_size",
        "groups",
        "low_water",
        "max_group_bytes",
        "outstanding",
        "results",
        "retain",
        "retained",
    )

    def __init__(
        self,
        conn: NetlinkConnection,
        *,
        timeout: float,
        progress: Callable[[int], object] | None = None,
        retain: Callable[[AsyncrouteError], bool] | None = None,
    ) -> None:
        super().__init__(stream=False)
        window = conn.max_in_flight
        self._conn = conn
        self._added = 0  # requests added since the producer last paused
        self._yielded = time.monotonic()  # when it last let the event loop run
        self._bytes = 0  # body bytes in the open group
        self._lowered = False  # this batch lowered the GIL switch interval
        self.group_size = group_size(window)
        #: most body bytes in one group: a group is sent in one datagram, so it must fit
        #: in one (frame headers and the barrier included)
        self.max_group_bytes = conn._core.max_datagram // 2
        self._high_water = 2 * window
        self._limit = timeout
        self._progress = progress
        self.low_water = window
        #: requests added since the last group was sealed: (type, flags, body)
        self._open: list[tuple[int, int, Body]] = []
        #: barrier seq → (position of the first member, kind, members): members are
        #: (type, flags, body) if kind is None, else bodies of kind (type, flags)
        self.groups: dict[int, tuple[int, tuple[int, int] | None, list[Any]]] = {}
        #: one entry per item added, in order: None (acked) or the error
        self.results: list[AsyncrouteError | None] = []
        self.outstanding = 0
        #: with ``retain``: position → message of each request whose error was retained
        self.retained: dict[int, Message] = {}
        self.retain = retain

    @property
    def size(self) -> int:
        """Items added so far, answered or not: the position the next one will take."""
        return len(self.results) + len(self._open)

    @property
    def full(self) -> bool:
        """True when the producer should call :meth:`pause` before adding more: twice
        the window is unanswered, or it has added YIELD_EVERY requests since it last
        paused (the loop must send them and read the answers; other tasks must not wait
        long either — the benchmark bounds event-loop lag)."""
        return self._added >= YIELD_EVERY or self.outstanding >= self._high_water

    async def pause(self) -> None:
        """Seal the open group, then wait for room in the window, or let the event loop
        run if YIELD_INTERVAL has passed since the producer last let it."""
        self._added = 0
        self.seal()
        if self.outstanding >= self._high_water:
            await self.wait_for_room()
            self._yielded = time.monotonic()
        elif (now := time.monotonic()) - self._yielded >= YIELD_INTERVAL:
            self._yielded = now
            # A fast load may never wait for the window: report progress here too, or a
            # progress bar would jump from 0 to the end.
            if self._progress is not None:
                self._progress(len(self.results) - self.outstanding)
            await anyio.lowlevel.checkpoint()

    def add(self, item: Message | AsyncrouteError) -> None:
        """Queue one change request; an exception is recorded in its place instead, and
        nothing is sent for it."""
        if isinstance(item, AsyncrouteError):
            self.seal()  # members of a group take consecutive positions
            self.results.append(item)
            return
        self.add_request(item.type, item.flags, item.body)

    def add_request(self, msg_type: int, flags: int, body: Body) -> None:
        """:meth:`add` without building a :class:`Message`."""
        opened = self._open
        if not opened:
            self._starting()
            # The flush seals this group at the next turn of the event loop at the latest.
            self._conn._open_batches.append(self)
        opened.append((msg_type, flags, body))
        self._added += 1
        self._bytes += len(body) if _typeof(body) is bytes else 512
        if len(opened) >= self.group_size or self._bytes >= self.max_group_bytes:
            self.seal()

    def add_bodies(self, msg_type: int, flags: int, bodies: list[bytes]) -> None:
        """:meth:`add_request` for each of ``bodies`` (packed already, as the codec packs
        them), handed over as one group at once: the bulk hot path.  Keep ``bodies``
        unchanged afterwards (failures are retained from it)."""
        self.seal()
        self._starting()
        seq = self._conn._core.send_bodies(msg_type, flags, bodies)
        self._added += len(bodies)
        self._handed_over(seq, (msg_type, flags), bodies)

    def _starting(self) -> None:
        """Before requests are queued: the connection must be open, the GIL switch
        interval lowered (once per batch) and a flush scheduled."""
        conn = self._conn
        if conn._closed:
            raise conn._closed_error()
        if not self._lowered and conn._sender is not None and conn.switch_interval:
            self._lowered = True
            lower_switch_interval(conn.switch_interval)
        if not conn._flush_scheduled:
            conn._schedule_flush()

    def seal(self) -> None:
        """Hand the open group to the connection's core (it is sent at the next flush)."""
        members = self._open
        if not members:
            return
        self._open = []
        self._bytes = 0
        conn = self._conn
        if conn._closed:
            raise conn._closed_error()
        self._handed_over(conn._core.send_group(members), None, members)

    def _handed_over(self, seq: int, kind: tuple[int, int] | None, members: list[Any]) -> None:
        self._conn._waiters[seq] = self
        results = self.results
        self.groups[seq] = (len(results), kind, members)
        results.extend([None] * len(members))
        self.outstanding += len(members)

    async def wait_for_room(self) -> None:
        """Wait until the window has room (TimeoutError if nothing moves in time)."""
        self.seal()
        self._conn._schedule_flush()
        while True:
            before = self.outstanding
            try:
                await self._conn._wait(self, self._limit)
                break
            except TimeoutError:
                # The timeout bounds a wait *without progress*: a kernel that answers
                # slowly but steadily is not timed out.
                if self.outstanding >= before:
                    raise
        if self._progress is not None:
            self._progress(len(self.results) - self.outstanding)

    async def finish(self) -> list[AsyncrouteError | None]:
        """Wait for every answer; the results, in the order the items were added."""
        self.seal()
        self.low_water = 0
        while self.outstanding:
            await self.wait_for_room()
        if self._lowered:
            self._lowered = False
            restore_switch_interval()
        if self._progress is not None:
            self._progress(len(self.results))
        return self.results

    def abandon(self) -> None:
        """Stop waiting for the requests still unanswered (their seqs stay reserved);
        requests not yet handed to the core are dropped."""
        self._open = []
        for seq in list(self.groups):
            self.groups.pop(seq)
            self._conn._abandon(seq)
        self.outstanding = 0
        if self._lowered:
            self._lowered = False
            restore_switch_interval()

    def replied(self, message: Message) -> None:
        pass  # bulk requests are changes: only their failures matter

    def finished(
        self,
        seq: int,
        error: AsyncrouteError | None,
        failures: tuple[tuple[int, AsyncrouteError], ...] = (),
    ) -> None:
        base, kind, members = self.groups.pop(seq)
        results = self.results
        if error is not None:
            results[base : base + len(members)] = [error] * len(members)
        retain = self.retain
        for offset, failure in failures:
            results[base + offset] = failure
            if retain is not None and retain(failure):
                member = members[offset]
                self.retained[base + offset] = (
                    Message(*member) if kind is None else Message(*kind, member)
                )
        self.outstanding -= len(members)
        if self.outstanding <= self.low_water:
            self.wake()


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("no reply from the kernel in time"))


class NetlinkConnection:
    """An rtnetlink connection with many requests in flight: the engine.

    :class:`asyncroute.Connection` adds the route API on top.  Create one with
    :meth:`open` (or ``asyncroute.connect()``); all methods must be called from the
    event loop (thread) that opened it.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        info: SocketInfo,
        max_in_flight: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        explicit_window = max_in_flight
        # A running dump may fill half the buffer and one skb more; the replies in
        # flight must fit in what is left.
        budget = max(ACK_COST, info.rcvbuf // 2 - DUMP_RESERVE)
        if max_in_flight is None:
            max_in_flight = max(1, min(DEFAULT_MAX_IN_FLIGHT, budget // ACK_COST))
        elif max_in_flight < 1:
            raise ValueError(f"max_in_flight must be ≥ 1, got {max_in_flight}")
        self._sock = sock
        self._info = info
        self._netlink = sock.family == socket.AF_NETLINK
        self.timeout = timeout
        #: GIL switch interval (seconds) while bulk calls feed the sender thread
        #: (asyncio only; see ``asyncroute._gil``); None leaves the interpreter's alone.
        self.switch_interval: float | None = BULK_SWITCH_INTERVAL
        #: the namespace :meth:`open` was given (None: the caller's own); event streams
        #: (:meth:`asyncroute.Connection.subscribe`) open their socket there too
        self.netns: str | os.PathLike[str] | None = None
        self._core = NetlinkProtocol(
            max_in_flight=max_in_flight,
            # An explicit window is the caller's to size (tests force overruns with it).
            max_reply_bytes=budget if explicit_window is None else None,
            max_datagram=min(MAX_DATAGRAM, max(4096, info.sndbuf // 2)),
            port_id=info.port_id,
        )
        self._waiters: dict[int, _Waiter] = {}
        self._buffer = bytearray(RECV_BUFFER)
        self._view = memoryview(self._buffer)
        self._outbox: deque[bytes] = deque()
        self._closed = True
        self._started = False
        self._failure: BaseException | None = None
        self._loop: Any = None
        self._flush_scheduled = False
        self._writer_registered = False
        self._trio_scope: Any = None
        self._trio_wake: Any = None
        #: batches whose open group the next flush seals
        self._open_batches: list[RequestBatch] = []
        self._shared: SingleFlight[Hashable, Message | None] = SingleFlight()
        self._sender: queue.SimpleQueue[bytes | None] | None = None
        self._sender_thread: threading.Thread | None = None
        #: held by the sender thread while a dump starts, and by the reader while it reads
        self._dump_lock = threading.Lock()
        self._last_reap = time.monotonic()

    # ------------------------------------------------------------------ properties

    @property
    def port_id(self) -> int:
        """The netlink port id the kernel gave this socket."""
        return self._info.port_id

    @property
    def rcvbuf(self) -> int:
        """The receive buffer the kernel granted (bytes, as read back)."""
        return self._info.rcvbuf

    @property
    def max_in_flight(self) -> int:
        """The window: most requests sent and not yet answered."""
        return self._core.max_in_flight

    @property
    def stats(self) -> ProtocolStats:
        """Counters of dropped, late and malformed replies and of overruns."""
        return self._core.stats

    @property
    def closed(self) -> bool:
        """True before the connection is entered and after it is closed."""
        return self._closed

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        netns: str | os.PathLike[str] | None = None,
        *,
        rcvbuf: int | None = None,
        max_in_flight: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Self:
        """Open a connection to rtnetlink, in the current namespace or in ``netns``.

        Args:
            netns: a name under ``/run/netns`` or a path to a namespace file; None for
                the caller's own namespace.  The socket is created on a short-lived
                thread that enters the namespace; the event loop's thread never does.
            rcvbuf: receive buffer to ask for (bytes; the kernel doubles it).  Raised
                past ``net.core.rmem_max`` with SO_RCVBUFFORCE when the process may.
            max_in_flight: the window.  By default it is derived from the granted
                buffer, and replies in flight are also budgeted in bytes (a GET's reply
                counts 8 KiB, an ack 1 KiB) so that they always fit; an explicit value is
                used as given, without the byte budget.
            timeout: default seconds a request waits for its answer.

        Raises ValueError for bad arguments and FileNotFoundError for a missing
        namespace, before a socket is made.
        """
        if rcvbuf is not None and rcvbuf <= 0:
            raise ValueError(f"rcvbuf must be positive, got {rcvbuf}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be ≥ 1, got {max_in_flight}")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        size = rcvbuf or DEFAULT_RCVBUF
        sock, info = await anyio.to_thread.run_sync(
            lambda: open_netlink_socket(netns, rcvbuf=size, sndbuf=size)
        )
        try:
            connection = cls(sock, info=info, max_in_flight=max_in_flight, timeout=timeout)
        except BaseException:
            sock.close()
            raise
        connection.netns = netns
        connection._start()
        return connection

    def _start(self) -> None:
        if not self._closed or self._started:
            return
        self._started = True
        self._closed = False
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: anyio's other backend is trio
            self._start_trio()
        else:
            self._loop.add_reader(self._sock.fileno(), self._on_readable)
            if self._netlink:
                self._start_sender()

    def _start_sender(self) -> None:
        """On asyncio, ``send`` runs on a thread of its own.

        The kernel applies every message of a datagram inside ``sendmsg`` with the GIL
        released: on this thread that work overlaps the loop's Python work, and the
        kernel's occasional long sends (tens of ms while it grows its FIB tables past
        16k/32k/64k routes, measured) no longer stall the event loop.  Datagrams keep
        their order (one thread, one FIFO).  Not used for the fake kernel's socketpair,
        whose sends can block.
        """
        sender: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._sender = sender
        sock, loop = self._sock, self._loop

        dump_lock = self._dump_lock

        def send_loop() -> None:
            while (data := sender.get()) is not None:
                try:
                    if _starts_dump(data):
                        # Never while the loop's thread reads: netlink_recvmsg reads
                        # cb_running without the dump mutex, so a recv racing a small
                        # dump that starts and ends inside this sendmsg makes
                        # netlink_dump() fail with EINVAL, kept in sk_err, and the next
                        # recv fails (found by the soak test).  Sending the dump from
                        # the loop's thread instead would let it overtake requests
                        # queued here (a listing before a cancelled delete lands).
                        with dump_lock:
                            sock.send(data)
                    else:
                        sock.send(data)
                except OSError as exc:
                    if not loop.is_closed():
                        loop.call_soon_threadsafe(self._shutdown, exc)
                    return

        thread = threading.Thread(target=send_loop, name="asyncroute-sender", daemon=True)
        thread.start()
        self._sender_thread = thread

    async def __aenter__(self) -> Self:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shutdown()

    async def aclose(self) -> None:
        """Close now: every waiting caller gets :class:`ConnectionClosed`."""
        self._shutdown()
        await anyio.lowlevel.checkpoint()

    def _shutdown(self, cause: BaseException | None = None) -> None:
        if self._closed and self._sock.fileno() < 0:
            return
        self._closed = True
        self._failure = self._failure or cause
        fd = self._sock.fileno()
        if self._loop is not None and fd >= 0:
            self._loop.remove_reader(fd)
            if self._writer_registered:
                self._loop.remove_writer(fd)
        for event in self._core.close(ConnectionClosed("connection closed")):
            waiter = self._waiters.pop(event.seq, None)
            if waiter is not None:
                waiter.finished(event.seq, self._closed_error(), event.failures)
        self._waiters.clear()
        self._outbox.clear()
        if self._sender is not None:
            # Stop the sender before the fd is closed (and its number reused): drop what
            # it has not sent, then wait for the send in progress, at most one datagram.
            sender, self._sender = self._sender, None
            with contextlib.suppress(queue.Empty):
                while True:
                    sender.get_nowait()
            sender.put(None)
            if self._sender_thread is not None:
                self._sender_thread.join(timeout=5)
        if self._trio_scope is not None and fd >= 0:
            import trio

            self._trio_scope.cancel()
            # Wake trio's waiters on this fd before the fd number can be reused.
            trio.lowlevel.notify_closing(self._sock)
        self._sock.close()

    def _closed_error(self) -> ConnectionClosed:
        error = ConnectionClosed("connection closed")
        if self._failure is not None:
            error.__cause__ = self._failure
        return error

    # ------------------------------------------------------------------ public API

    async def request(self, message: Message, *, timeout: float | None = None) -> Message | None:
        """Send one request and wait for its answer.

        NLM_F_REQUEST and NLM_F_ACK are added to ``message.flags``, so every request
        ends with an ack or an error reply.  Returns the reply message if the kernel sent
        one before the ack (e.g. for a GET), else None.

        Raises:
            KernelError: (or a subclass) for an error reply.
            TimeoutError: no answer within ``timeout`` (default: the connection's).
            ConnectionClosed: the connection closed first.
            ValueError: a field does not fit its wire type (nothing was sent).
        """
        waiter, seq = self._submit(message, dump=False, flags=_REQUEST_ACK)
        try:
            await self._wait(waiter, self.timeout if timeout is None else timeout)
        finally:
            if not waiter.done:
                self._abandon(seq)
        if waiter.error is not None:
            raise waiter.error
        return waiter.replies[-1] if waiter.replies else None

    async def request_shared(
        self, message: Message, *, timeout: float | None = None
    ) -> Message | None:
        """:meth:`request`, but concurrent identical requests (same type, flags and body)
        share one round trip.  Only for requests whose effect does not depend on how
        often they are made: reads, and replaces with the same content."""
        value, _ = await self._shared.run(
            (message.type, int(message.flags), message.body),
            lambda: self.request(message, timeout=timeout),
        )
        return value

    async def dump(
        self, message: Message, *, timeout: float | None = None, retry_interrupted: int = 0
    ) -> AsyncGenerator[Message, None]:
        """Send a dump request (NLM_F_DUMP is added) and yield its replies as they arrive.

        One dump runs at a time per socket; others wait their turn.  ``timeout`` bounds
        the wait for each next reply, not the whole dump.  Close the iterator early with
        ``contextlib.aclosing`` to abandon the rest; the core drains it.

        Raises DumpInterrupted at the end (with every message received) if the kernel
        flagged the dump as inconsistent (NLM_F_DUMP_INTR).  With ``retry_interrupted``
        > 0 the replies are held back until a dump completes consistently: an
        interrupted one is repeated (after 1 ms, 2 ms, … — a program's own changes are a
        common cause, and they settle quickly) up to that many times, and only a
        consistent result is yielded; DumpInterrupted carries the last attempt's replies.
        """
        if retry_interrupted <= 0:
            # aclosing: leaving early must abandon the dump now, not when GC runs.
            async with contextlib.aclosing(self._dump_once(message, timeout)) as stream:
                async for reply in stream:
                    yield reply
            return
        for attempt in range(retry_interrupted + 1):
            try:
                async with contextlib.aclosing(self._dump_once(message, timeout)) as stream:
                    replies = [reply async for reply in stream]
            except DumpInterrupted:
                if attempt == retry_interrupted:
                    raise
                await anyio.sleep(0.001 * (attempt + 1))
            else:
                for reply in replies:
                    yield reply
                return

    async def _dump_once(
        self, message: Message, timeout: float | None
    ) -> AsyncGenerator[Message, None]:
        waiter, seq = self._submit(message, dump=True, flags=_REQUEST_DUMP)
        limit = self.timeout if timeout is None else timeout
        received: list[Message] = []
        try:
            while True:
                while waiter.replies:
                    reply = waiter.replies.popleft()
                    received.append(reply)
                    yield reply
                if waiter.done:
                    break
                await self._wait(waiter, limit)
        finally:
            if not waiter.done:
                self._abandon(seq)
        if isinstance(waiter.error, DumpInterrupted):
            raise DumpInterrupted(received)
        if waiter.error is not None:
            raise waiter.error

    def batch(
        self,
        *,
        timeout: float | None = None,
        progress: Callable[[int], object] | None = None,
        retain: Callable[[AsyncrouteError], bool] | None = None,
    ) -> RequestBatch:
        """A :class:`RequestBatch` on this connection: the building block of
        :meth:`request_many` for callers that produce requests in a loop of their own.

        ``timeout`` (default: the connection's) bounds each wait for progress.
        ``progress`` is called with the number answered so far at each wake-up.
        ``retain`` picks errors whose messages are kept in ``batch.retained`` by position
        (to retry them).
        """
        return RequestBatch(
            self,
            timeout=self.timeout if timeout is None else timeout,
            progress=progress,
            retain=retain,
        )

    async def request_many(
        self,
        messages: Iterable[Message | AsyncrouteError] | AsyncIterable[Message | AsyncrouteError],
        *,
        timeout: float | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> list[AsyncrouteError | None]:
        """Send many requests through the window without a task or future each.

        ``messages`` is consumed lazily: at most twice the window is held at once, so a
        generator of a million requests needs little memory.  An item may be an
        :class:`AsyncrouteError` instead of a message: it is reported in its place and
        nothing is sent for it.  Returns one entry per item, in order: None for an ack,
        or the error.  NLM_F_REQUEST and NLM_F_ACK are added to every message.

        ``timeout`` bounds each wait for progress; when it expires (TimeoutError) or the
        call is cancelled, the requests still unanswered are abandoned.
        """
        batch = self.batch(timeout=timeout, progress=progress)
        try:
            if isinstance(messages, AsyncIterable):
                async for item in messages:
                    if batch.full:
                        await batch.pause()
                    batch.add(item)
            else:
                for item in messages:
                    if batch.full:
                        await batch.pause()
                    batch.add(item)
            return await batch.finish()
        finally:
            batch.abandon()

    # ------------------------------------------------------------------ internals

    def _submit(self, message: Message, *, dump: bool, flags: int) -> tuple[_Waiter, int]:
        if self._closed:
            raise self._closed_error()
        seq = self._core.send_request(message, dump=dump, flags=flags)
        waiter = _Waiter(stream=dump)
        self._waiters[seq] = waiter
        self._schedule_flush()
        return waiter, seq

    async def _wait(self, waiter: _Waiter, timeout: float) -> None:
        """Wait until ``waiter`` is woken; TimeoutError after ``timeout`` seconds."""
        loop = self._loop
        if loop is not None:
            future = waiter.wakeup = loop.create_future()
            handle = loop.call_later(timeout, _expire, future)
            try:
                await future
            finally:
                handle.cancel()
        else:
            event = waiter.wakeup = anyio.Event()
            with anyio.fail_after(timeout):
                await event.wait()

    def _abandon(self, seq: int) -> None:
        self._waiters.pop(seq, None)
        if not self._closed:
            now = time.monotonic()
            self._core.abandon(seq, now)
            if now - self._last_reap >= self.timeout:
                # Requests abandoned a whole timeout ago still unanswered will not be
                # answered: give their window slots back.
                self._last_reap = now
                self._core.reap_abandoned(now - self.timeout)
            # A dump dropped before it was sent (or a reaped slot) may let others go.
            self._schedule_flush()

    def _dispatch(self, events: list[Reply | Finished]) -> None:
        waiters = self._waiters
        for event in events:
            if isinstance(event, Reply):
                waiter = waiters.get(event.seq)
                if waiter is not None:
                    waiter.replied(event.message)
            else:
                waiter = waiters.pop(event.seq, None)
                if waiter is not None:
                    waiter.finished(event.seq, event.error, event.failures)

    def _on_readable(self) -> None:
        """Drain the socket: many datagrams per wake-up, into one reused buffer.

        After an overrun (ENOBUFS) the kernel drops *every* unicast reply to this socket
        until its receive queue has been emptied (NETLINK_S_CONGESTED, cleared by
        ``netlink_rcv_wake``).  So the queue is then read to the end before anything is
        sent again; replies found there finish their requests normally, and only the
        requests still unanswered afterwards lost their reply (OutcomeUnknown).
        """
        sock = self._sock
        view = self._view
        core = self._core
        dispatch = self._dispatch
        netlink = self._netlink
        dump_lock = self._dump_lock  # see _start_sender: no read while a dump starts
        overrun = False
        reads = 0
        while reads < MAX_DRAIN or overrun:
            try:
                if netlink:
                    with dump_lock:
                        size, (sender_port, sender_groups) = sock.recvfrom_into(self._buffer)
                else:  # a fake kernel over AF_UNIX: trusted like the kernel
                    size = sock.recv_into(self._buffer)
                    sender_port = sender_groups = 0
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    if not overrun:
                        core.overrun_seen()  # barriers read from now on prove nothing
                    overrun = True
                    continue
                if not self._closed:
                    self._shutdown(exc)
                return
            reads += 1
            dispatch(core.receive_datagram(view[:size], sender_port, sender_groups))
        if overrun:
            dispatch(core.overrun())
        if core.has_data_to_send():
            self._flush()

    def _schedule_flush(self) -> None:
        if self._flush_scheduled or self._closed:
            return
        self._flush_scheduled = True
        if self._loop is not None:
            self._loop.call_soon(self._flush)
        else:
            self._trio_wake.set()

    def _flush(self) -> None:
        """Send what the window allows: queued requests, coalesced into few datagrams."""
        self._flush_scheduled = False
        if self._closed:
            return
        if self._open_batches:
            batches, self._open_batches = self._open_batches, []
            for batch in batches:
                batch.seal()
        outbox = self._outbox
        outbox.extend(self._core.data_to_send())
        sender = self._sender
        if sender is not None:
            while outbox:
                sender.put(outbox.popleft())
            return
        sock = self._sock
        while outbox:
            try:
                sock.send(outbox[0])
            except BlockingIOError:
                # Only a fake kernel's socketpair fills up; the kernel consumes in send.
                self._wait_writable()
                return
            except OSError as exc:
                self._shutdown(exc)
                return
            outbox.popleft()

    def _wait_writable(self) -> None:
        if self._loop is not None:
            if not self._writer_registered:
                self._writer_registered = True

                def writable() -> None:
                    self._loop.remove_writer(self._sock.fileno())
                    self._writer_registered = False
                    self._flush()

                self._loop.add_writer(self._sock.fileno(), writable)
        else:
            self._flush_scheduled = True
            self._trio_wake.set()

    # ------------------------------------------------------------------ trio driver
    #
    # On trio the reader and the sender are *system* tasks: like asyncio's add_reader
    # callback they belong to no user nursery, so closing the connection never cancels
    # the caller, and an exception from the caller's block is never wrapped in an
    # ExceptionGroup.  They use trio directly: system tasks run outside the context in
    # which anyio detects its backend.

    def _start_trio(self) -> None:
        import trio

        self._trio_wake = trio.Event()
        self._trio_scope = trio.CancelScope()
        trio.lowlevel.spawn_system_task(self._trio_driver, name="asyncroute-connection")

    async def _trio_driver(self) -> None:
        import trio

        try:
            with self._trio_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._trio_reader)
                    nursery.start_soon(self._trio_sender)
        except Exception as exc:  # a crash in a system task would end trio.run
            self._shutdown(exc)

    async def _trio_reader(self) -> None:
        import trio

        while not self._closed:
            try:
                await trio.lowlevel.wait_readable(self._sock)
            except (OSError, trio.ClosedResourceError):
                return
            self._on_readable()

    async def _trio_sender(self) -> None:
        import trio

        while not self._closed:
            await self._trio_wake.wait()
            self._trio_wake = trio.Event()
            if self._outbox:
                try:
                    await trio.lowlevel.wait_writable(self._sock)
                except (OSError, trio.ClosedResourceError):
                    return
            self._flush()
