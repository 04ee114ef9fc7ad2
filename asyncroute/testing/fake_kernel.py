"""A fake kernel on the far end of an ``AF_UNIX`` datagram socketpair.

The real :class:`~asyncroute.Connection` runs against it unchanged, without
privileges: its requests arrive here as bytes, are decoded with the real codec, handed
to a handler, and the handler's replies go back as bytes, one datagram per reply frame
as the kernel does (``netlink_unicast`` per ack).
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import anyio

from .._codec import decode_datagram, encode_message
from .._socket import SocketInfo
from ..client import Connection
from ..constants import NLM_F, NLMSG, NLMSG_MIN_TYPE
from ..messages import Body, DoneMessage, ErrorMessage, Message

__all__ = ["FakeKernel", "Handler", "ack", "dump_replies", "error_reply"]

#: A handler gets each request and returns the replies to send (None: send nothing).
Handler = Callable[[Message], Iterable[Message] | None]

FAKE_PORT_ID = 4242


def _echo(request: Message) -> tuple[int, int, int, int, int]:
    return (16, request.type, request.flags, request.seq, request.port_id)


def ack(request: Message) -> Message:
    """The ack the kernel sends for ``request`` (capped: only the header is echoed)."""
    body = ErrorMessage(0, _echo(request))
    return Message(NLMSG.ERROR, int(NLM_F.CAPPED), body, request.seq, request.port_id)


def error_reply(
    request: Message, errno: int, message: str | None = None, offset: int | None = None
) -> Message:
    """An error reply to ``request`` with ``-errno`` and optional extended-ACK TLVs."""
    flags = NLM_F.CAPPED
    if message is not None or offset is not None:
        flags |= NLM_F.ACK_TLVS
    body = ErrorMessage(-errno, _echo(request), message=message, offset=offset)
    return Message(NLMSG.ERROR, int(flags), body, request.seq, request.port_id)


def dump_replies(
    request: Message, type: int, bodies: Iterable[Body], *, interrupted: bool = False
) -> list[Message]:
    """The multipart answer to a dump: one NLM_F_MULTI message per body, then DONE."""
    flags = int(NLM_F.MULTI) | (int(NLM_F.DUMP_INTR) if interrupted else 0)
    replies = [Message(type, flags, body, request.seq, request.port_id) for body in bodies]
    replies.append(Message(NLMSG.DONE, flags, DoneMessage(), request.seq, request.port_id))
    return replies


_FINAL = (NLMSG.ERROR, NLMSG.DONE)


def _is_unwanted_ack(request: Message, reply: Message) -> bool:
    """True for the ack of a request that did not ask for one: ``netlink_rcv_skb``
    acks success only with NLM_F_ACK, so handlers may always return ``[ack(request)]``."""
    return (
        not request.flags & NLM_F.ACK
        and reply.type == NLMSG.ERROR
        and isinstance(reply.body, ErrorMessage)
        and reply.body.error == 0
    )


class FakeKernel:
    """Answers a :class:`Connection`'s requests through ``handler`` (default: ack all).

    Attributes:
        requests: every request received, decoded, in order (control messages apart).
        datagrams: how many datagrams the connection sent (to observe coalescing).
        barriers: how many control messages (NLMSG_NOOP barriers) it sent.
    """

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or (lambda request: [ack(request)])
        self.requests: list[Message] = []
        self.datagrams = 0
        self.barriers = 0
        self._arrivals = 0
        #: requests the handler did not answer yet: seq → (arrival, request)
        self._held: dict[int, tuple[int, Message]] = {}
        #: acked control messages waiting for the held requests before them
        self._barriers: deque[tuple[int, Message]] = deque()
        self._sock: socket.socket | None = None
        self._outbox: deque[bytes] = deque()
        self._backlog = anyio.Event()

    def send(self, data: bytes) -> None:
        """Send raw bytes to the connection as one datagram (for malformed input).

        Datagrams the socketpair cannot take yet (its queue is short:
        ``net.unix.max_dgram_qlen``) wait in order and go out as the connection reads.
        """
        assert self._sock is not None, "the fake kernel is not running"
        self._outbox.append(data)
        self._drain()

    def _drain(self) -> None:
        assert self._sock is not None
        while self._outbox:
            try:
                self._sock.send(self._outbox[0])
            except BlockingIOError:
                self._backlog.set()
                return
            self._outbox.popleft()

    async def _send_backlog(self, sock: socket.socket) -> None:
        while True:
            await self._backlog.wait()
            self._backlog = anyio.Event()
            while self._outbox:
                await anyio.wait_writable(sock)
                self._drain()

    def reply(self, messages: Iterable[Message]) -> None:
        """Send ``messages`` to the connection, one datagram each.

        A final reply (NLMSG_ERROR or NLMSG_DONE) to a held request answers it; the ack
        of a held request that did not ask for one is dropped, as the kernel would.
        """
        for message in messages:
            held = self._held.pop(message.seq, None) if message.type in _FINAL else None
            if held is not None and _is_unwanted_ack(held[1], message):
                continue
            self.send(encode_message(message))
        self._release_barriers()

    def _release_barriers(self) -> None:
        """Ack the barriers that no held request precedes: the kernel runs a socket's
        messages in order, so a barrier is answered only after everything before it."""
        oldest = min((arrival for arrival, _ in self._held.values()), default=None)
        barriers = self._barriers
        while barriers and (oldest is None or barriers[0][0] < oldest):
            self.send(encode_message(ack(barriers.popleft()[1])))

    async def _serve(self, sock: socket.socket) -> None:
        buffer = bytearray(1 << 20)
        while True:
            await anyio.wait_readable(sock)
            while True:
                try:
                    size = sock.recv_into(buffer)
                except BlockingIOError:
                    break
                self.datagrams += 1
                for request in decode_datagram(memoryview(buffer)[:size]):
                    self._arrivals += 1
                    if request.type < NLMSG_MIN_TYPE:
                        # Control messages (a batch's NLMSG_NOOP barrier) are not
                        # handed to rtnetlink; only acked (netlink_rcv_skb).
                        self.barriers += 1
                        if request.flags & NLM_F.ACK:
                            self._barriers.append((self._arrivals, request))
                            self._release_barriers()
                        continue
                    self.requests.append(request)
                    replies = self.handler(request)
                    if replies is None:  # held: answered later through reply()
                        self._held[request.seq] = (self._arrivals, request)
                    else:
                        self.reply(
                            reply for reply in replies if not _is_unwanted_ack(request, reply)
                        )

    @asynccontextmanager
    async def connect(
        self, *, max_in_flight: int = 64, timeout: float = 5.0
    ) -> AsyncIterator[Connection]:
        """A real :class:`Connection` wired to this fake kernel."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setblocking(False)
        theirs.setblocking(False)
        self._sock = theirs
        # The real buffer sizes: the connection sizes its datagrams from sndbuf.
        info = SocketInfo(
            port_id=FAKE_PORT_ID,
            rcvbuf=ours.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            sndbuf=ours.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
            strict_check=True,
        )
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._serve, theirs)
                group.start_soon(self._send_backlog, theirs)
                async with Connection(
                    ours, info=info, max_in_flight=max_in_flight, timeout=timeout
                ) as conn:
                    yield conn
                group.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The server tasks never fail; unwrap what the caller's block raised so that
            # `pytest.raises(ExistsError)` around the block works.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            self._sock = None
            theirs.close()
            ours.close()
