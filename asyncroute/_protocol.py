"""The sans-I/O netlink core: requests in → bytes out, datagrams in → events out.

No sockets, no event loop, no clocks.  The I/O layer feeds it and acts on what it returns.

Invariants:
- A seq is never 0, and never reused while an entry for it exists (sent, queued or
  abandoned).  Seqs count up modulo 2**32.
- Every request that is not abandoned finishes exactly once, with exactly one
  :class:`Finished` event, after all :class:`Reply` events carrying its frames.
- A request is finished by: an NLMSG_ERROR frame (ack or error reply); NLMSG_DONE for a
  dump; a reply without NLM_F_MULTI when the request did not ask for an ack.
- A *group* (:meth:`NetlinkProtocol.send_group`) is many change requests sent without
  NLM_F_ACK and followed by one NLMSG_NOOP that asks for an ack: the barrier.  The
  kernel runs a socket's messages in the order sent and answers an unacked request only
  when it fails (``netlink_rcv_skb``), so when the barrier's ack arrives every member
  without an error reply succeeded.  One ack per group instead of one per request.
- After an overrun (ENOBUFS) a barrier proves nothing: a member's error reply may have
  been the dropped message.  Groups sent before the overrun was seen are *tainted*:
  their members without an error reply finish with OutcomeUnknown.  (The kernel reports
  ENOBUFS on the first read after a drop, before any queued datagram, so a barrier read
  before that report is sound.)
- At most ``max_in_flight`` requests are sent and unfinished at once, and their replies'
  estimated receive-buffer cost stays within ``max_reply_bytes`` (an ack ~1 KiB, a
  GET's data reply up to ~8 KiB); the rest wait in order.  This bounds what the kernel
  queues on the socket (netlink(7): when the receive buffer is full the kernel drops
  messages and reports ENOBUFS).  One request is always allowed in flight.
- At most one dump runs per socket: the kernel answers a second with EBUSY
  (``__netlink_dump_start``).  Later dumps wait; an abandoned dump is still drained to
  its NLMSG_DONE before the next one is sent.
- Only the kernel is believed: a datagram whose sender port id is not 0, or that came to
  a multicast group, or a frame whose port id or seq is not ours, is dropped and counted.
  One exception: the answer to a request with NLM_F_ECHO (the object a delete removed)
  is a unicast copy of the kernel's notification and keeps its group in the sender
  address (``nlmsg_notify``); it is accepted for a pending request that asked for it.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ._codec import decode_body, decode_error_payload, encode_message
from ._frame import HEADER, iter_frames
from .constants import NLM_F, NLMSG
from .errors import (
    AsyncrouteError,
    DecodeError,
    DumpInterrupted,
    OutcomeUnknown,
    kernel_error,
)
from .messages import Body, DoneMessage, Message

__all__ = ["ACK_COST", "REPLY_COST", "Finished", "NetlinkProtocol", "ProtocolStats", "Reply"]

_ERROR_CODE = struct.Struct("=i")
_ECHOED_TYPE = struct.Struct("=H")  # nlmsg_type of the header an error reply echoes
_pack_header = HEADER.pack
# nlmsghdr + the error code of an NLMSG_ERROR; a capped ack is that plus the echoed header.
_ACK_HEAD = struct.Struct("=IHHIIi")
_ACK_SIZE = _ACK_HEAD.size + 16
_SEQ_MASK = 0xFFFFFFFF
_ERROR = int(NLMSG.ERROR)
_DONE = int(NLMSG.DONE)
_MULTI = int(NLM_F.MULTI)
_ACK = int(NLM_F.ACK)
_ECHO = int(NLM_F.ECHO)
_REQUEST = int(NLM_F.REQUEST)
_DUMP_INTR = int(NLM_F.DUMP_INTR)
_NOOP = int(NLMSG.NOOP)
_BARRIER_FLAGS = int(NLM_F.REQUEST | NLM_F.ACK)


class Reply(NamedTuple):
    """A data frame (not an ack) for the request ``seq``."""

    seq: int
    message: Message


class Finished(NamedTuple):
    """The request ``seq`` is complete; ``error`` is None on success.

    For a group (``seq`` is its barrier's), ``failures`` holds ``(position, error)`` for
    each member the kernel refused, and ``error`` is the outcome of every other member.
    """

    seq: int
    error: AsyncrouteError | None
    failures: tuple[tuple[int, AsyncrouteError], ...] = ()


Event = Reply | Finished


@dataclass
class ProtocolStats:
    """Counters of what the core dropped or noticed (never matched to a request)."""

    #: datagrams from a sender port id other than the kernel's (0)
    foreign: int = 0
    #: datagrams addressed to a multicast group
    multicast: int = 0
    #: frames whose seq is not pending, or whose port id is not ours
    unknown_seq: int = 0
    #: frames for requests whose caller stopped waiting
    late: int = 0
    #: datagrams or frames that could not be decoded
    malformed: int = 0
    #: receive-buffer overruns (ENOBUFS)
    overruns: int = 0
    #: abandoned requests forgotten because no reply came for too long
    reaped: int = 0


#: Receive-buffer bytes an ack takes (skb truesize; ~832 measured), with room for an
#: error reply carrying an extended-ACK message.
ACK_COST = 1024
#: Receive-buffer bytes a GET's data reply plus its ack may take: an RTM_NEWLINK reply
#: is ~1.5 KiB of data in a 4 KiB-class skb.
REPLY_COST = 8192
_GET = 2  # rtnetlink message types: NEW ≡ 0, DEL ≡ 1, GET ≡ 2 (mod 4)


class _Entry:
    __slots__ = (
        "abandoned",
        "abandoned_at",
        "cost",
        "count",
        "data",
        "dump",
        "error",
        "failures",
        "first",
        "flags",
        "interrupted",
        "msg_type",
        "sent",
        "seq",
        "tainted",
    )

    def __init__(
        self, seq: int, msg_type: int, flags: int, data: bytes, dump: bool, cost: int
    ) -> None:
        self.cost = cost
        self.seq = seq
        self.msg_type = msg_type
        self.flags = flags
        self.data = data
        self.dump = dump
        self.sent = False
        self.abandoned = False
        self.abandoned_at = 0.0
        self.interrupted = False
        self.error: AsyncrouteError | None = None
        #: a group's members hold the seqs first .. seq-1; a plain request: first == seq
        self.first = seq
        #: requests this entry counts for in the window (a group: members + barrier)
        self.count = 1
        self.failures: list[tuple[int, AsyncrouteError]] = []
        self.tainted = False


class NetlinkProtocol:
    """Sequence numbers, the pending table, the window and the dump queue.

    Args:
        max_in_flight: most requests sent and not yet finished.
        max_reply_bytes: most receive-buffer bytes their replies may take (estimated per
            request: :data:`ACK_COST`, or :data:`REPLY_COST` for a GET); None: no limit.
        max_datagram: most bytes :meth:`data_to_send` puts in one datagram (the kernel
            refuses a send larger than the socket's send buffer).
        port_id: our netlink port id; frames addressed to another port are dropped.
            0 disables the check (a fake kernel).
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        max_reply_bytes: int | None = None,
        max_datagram: int = 65536,
        port_id: int = 0,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be ≥ 1, got {max_in_flight}")
        self.max_in_flight = max_in_flight
        self.max_reply_bytes = max_reply_bytes
        self._cost = 0  # estimated receive-buffer bytes of the replies in flight
        self.max_datagram = max_datagram
        self.port_id = port_id
        self.stats = ProtocolStats()
        self._next_seq = 1
        self._pending: dict[int, _Entry] = {}
        #: pending requests that asked for NLM_F_ECHO
        self._echoes = 0
        self._queue: deque[_Entry] = deque()  # ready to send, in order
        self._dumps: deque[_Entry] = deque()  # waiting for the dump slot
        self._dump: _Entry | None = None  # owns the dump slot (queued, sent or draining)
        self._in_flight = 0

    # ------------------------------------------------------------------ inspection

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet finished (abandoned ones included)."""
        return self._in_flight

    @property
    def pending(self) -> int:
        """Entries that hold a seq: queued, in flight or abandoned-but-unanswered."""
        return len(self._pending)

    def has_data_to_send(self) -> bool:
        """True when :meth:`data_to_send` would return something."""
        queue = self._queue
        while queue and queue[0].abandoned:  # cancelled before they were sent
            queue.popleft()
        return bool(queue) and self._fits(queue[0])

    def _fits(self, entry: _Entry) -> bool:
        if self._in_flight == 0:
            return True
        if self._in_flight + entry.count > self.max_in_flight:
            return False
        return self.max_reply_bytes is None or self._cost + entry.cost <= self.max_reply_bytes

    # ------------------------------------------------------------------ requests

    def _allocate_seq(self) -> int:
        seq = self._next_seq
        pending = self._pending
        while seq == 0 or seq in pending:
            seq = (seq + 1) & _SEQ_MASK
        self._next_seq = (seq + 1) & _SEQ_MASK
        return seq

    def send_request(self, message: Message, *, dump: bool = False, flags: int = 0) -> int:
        """Queue ``message`` and return its seq.  Its bytes come out of :meth:`data_to_send`.

        ``dump`` marks a request answered by a multipart reply ending in NLMSG_DONE;
        ``flags`` are added to the message's own.  Raises ValueError/TypeError (from the
        codec) before anything is queued.
        """
        seq = self._allocate_seq()
        body = message.body
        if type(body) is bytes and not len(body) & 3:
            # A pre-packed body (the route hot path): only the header is left to pack.
            data = (
                _pack_header(16 + len(body), message.type, message.flags | flags, seq, self.port_id)
                + body
            )
        else:
            data = encode_message(message, seq, self.port_id, flags)
        cost = REPLY_COST if not dump and message.type & 3 == _GET else ACK_COST
        entry = _Entry(seq, message.type, message.flags | flags, data, dump, cost)
        self._pending[seq] = entry
        if entry.flags & _ECHO:
            self._echoes += 1
        if not dump:
            self._queue.append(entry)
        elif self._dump is None:
            self._dump = entry
            self._queue.append(entry)
        else:
            self._dumps.append(entry)
        return seq

    def send_group(self, requests: Sequence[tuple[int, int, Body]]) -> int:
        """Queue ``(type, flags, body)`` change requests as one group; return the seq of its
        barrier (which :class:`Finished` will carry).

        NLM_F_REQUEST is added to each request and NLM_F_ACK removed: only a failure is
        answered.  Member ``i`` has seq ``first + i``; failures are reported by position.
        Data replies to members are discarded, so a group is for changes, not GETs.
        """
        count = len(requests)
        if not count:
            raise ValueError("a group needs at least one request")
        first = self._allocate_block(count + 1)
        port_id = self.port_id
        seqs = range(first, first + count)
        frames = [
            encode_message(Message(msg_type, (flags | _REQUEST) & ~_ACK, body), seq, port_id)
            if type(body) is not bytes or len(body) & 3
            else _pack_header(16 + len(body), msg_type, (flags | _REQUEST) & ~_ACK, seq, port_id)
            + body
            for (msg_type, flags, body), seq in zip(requests, seqs, strict=True)
        ]
        gets = sum(1 for msg_type, _, _ in requests if msg_type & 3 == _GET)
        return self._queue_group(first, frames, gets)

    def send_bodies(self, msg_type: int, flags: int, bodies: Sequence[bytes]) -> int:
        """:meth:`send_group` for requests of one type and flags whose bodies are packed
        already (4-byte multiples, as the codec packs them): the bulk hot path, one header
        pack per member."""
        count = len(bodies)
        if not count:
            raise ValueError("a group needs at least one request")
        first = self._allocate_block(count + 1)
        port_id = self.port_id
        flags = (flags | _REQUEST) & ~_ACK
        pack = _pack_header
        frames = [
            pack(16 + len(body), msg_type, flags, seq, port_id) + body
            for body, seq in zip(bodies, range(first, first + count), strict=True)
        ]
        return self._queue_group(first, frames, count if msg_type & 3 == _GET else 0)

    def _queue_group(self, first: int, frames: list[bytes], gets: int) -> int:
        """Queue the member ``frames`` (seqs ``first`` on) and their barrier as one entry."""
        count = len(frames)
        barrier = first + count
        frames.append(_pack_header(16, _NOOP, _BARRIER_FLAGS, barrier, self.port_id))
        cost = ACK_COST * (count + 1 - gets) + REPLY_COST * gets
        entry = _Entry(barrier, _NOOP, _BARRIER_FLAGS, b"".join(frames), False, cost)
        entry.first = first
        entry.count = count + 1
        self._pending.update(dict.fromkeys(range(first, barrier + 1), entry))
        self._queue.append(entry)
        return barrier

    def _allocate_block(self, size: int) -> int:
        """``size`` consecutive free seqs, none of them 0 (a group's never wraps)."""
        start = self._next_seq
        pending = self._pending
        while True:
            if start == 0 or start + size - 1 > _SEQ_MASK:
                start = 1
            if pending.keys().isdisjoint(range(start, start + size)):
                self._next_seq = (start + size) & _SEQ_MASK
                return start
            start += size

    def data_to_send(self) -> list[bytes]:
        """Datagrams to send now: queued requests that fit in the window, coalesced.

        A dump request always travels alone, so that the I/O layer can tell it apart
        (``NetlinkConnection._start_sender``: no read may run while a dump starts).
        """
        datagrams: list[bytes] = []
        chunk: list[bytes] = []
        size = 0
        queue = self._queue
        while queue:
            entry = queue[0]
            if entry.abandoned:  # cancelled before it was sent
                queue.popleft()
                continue
            if not self._fits(entry):
                break
            queue.popleft()
            data = entry.data
            if chunk and (size + len(data) > self.max_datagram or entry.dump):
                datagrams.append(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(data)
            size += len(data)
            if entry.dump:
                datagrams.append(data)
                chunk, size = [], 0
            entry.data = b""
            entry.sent = True
            self._in_flight += entry.count
            self._cost += entry.cost
        if chunk:
            datagrams.append(b"".join(chunk))
        return datagrams

    def abandon(self, seq: int, now: float = 0.0) -> None:
        """The caller no longer waits for ``seq`` (cancelled or timed out) at time ``now``.

        A request not yet sent is dropped.  A sent one keeps its seq until its reply
        arrives, so a late reply is never taken for a newer request's (see
        :meth:`reap_abandoned` for replies that never come).
        """
        entry = self._pending.get(seq)
        if entry is None or entry.abandoned:
            return
        entry.abandoned = True
        entry.abandoned_at = now
        if entry.sent:
            return
        self._forget(entry)
        if entry.dump:
            if entry is self._dump:
                self._dump = None
                self._start_next_dump()
            else:
                self._dumps.remove(entry)

    def reap_abandoned(self, before: float) -> int:
        """Forget sent requests abandoned before time ``before`` whose reply never came.

        The kernel answers every request it received, so this only matters when a
        reply was lost some other way (a fake or broken peer): without it, such an
        entry would hold a window slot for ever.  Dumps are never reaped — the kernel
        keeps a dump running until its DONE has been read, and a new one would get
        EBUSY.  Returns how many were forgotten; a reply arriving later is dropped as
        unknown.
        """
        stale = [
            entry
            for entry in self._entries()
            if entry.abandoned and entry.sent and not entry.dump and entry.abandoned_at < before
        ]
        for entry in stale:
            self._forget(entry)
            self._in_flight -= entry.count
            self._cost -= entry.cost
        self.stats.reaped += len(stale)
        return len(stale)

    # ------------------------------------------------------------------ replies

    def receive_datagram(
        self, data: bytes | bytearray | memoryview, sender_port_id: int = 0, sender_groups: int = 0
    ) -> list[Event]:
        """Turn one received datagram into events.  Never raises on bad input."""
        stats = self.stats
        if sender_port_id != 0:
            stats.foreign += 1
            return []
        if sender_groups != 0 and not self._echoes:
            stats.multicast += 1
            return []
        events: list[Event] = []
        pending = self._pending
        port_id = self.port_id
        if len(data) == _ACK_SIZE and not sender_groups:
            # The common datagram: one capped ack (netlink_ack sends each on its own).
            length, msg_type, _, seq, frame_port, code = _ACK_HEAD.unpack_from(data)
            if length == _ACK_SIZE and msg_type == _ERROR and code == 0:
                entry = pending.get(seq)
                if (
                    entry is None
                    or entry.seq != seq  # a group member: only its failure is answered
                    or not entry.sent
                    or (port_id and frame_port != port_id)
                ):
                    stats.unknown_seq += 1
                else:
                    self._finish(entry, None, events)
                return events
        try:
            for msg_type, flags, seq, frame_port, payload in iter_frames(memoryview(data)):
                entry = pending.get(seq)
                if entry is None or not entry.sent or (port_id and frame_port != port_id):
                    stats.unknown_seq += 1
                    continue
                if sender_groups and not (entry.flags & _ECHO and msg_type > _DONE):
                    stats.multicast += 1  # only the echo of a request that asked for one
                    continue
                if entry.seq != seq:
                    self._member_frame(entry, seq, msg_type, flags, payload)
                    continue
                if msg_type == _ERROR:
                    if len(payload) < 4:
                        stats.malformed += 1
                        continue
                    code = _ERROR_CODE.unpack_from(payload)[0]
                    self._finish(entry, self._error_reply(entry, code, payload, flags), events)
                elif msg_type == _DONE:
                    if flags & _DUMP_INTR:
                        entry.interrupted = True
                    error: AsyncrouteError | None = None
                    try:
                        done = decode_body(msg_type, flags, payload)
                        assert isinstance(done, DoneMessage)
                        if done.error:
                            error = kernel_error(
                                -done.error,
                                seq=seq,
                                msg_type=entry.msg_type,
                                message=done.message,
                                offset=done.offset,
                            )
                    except DecodeError as exc:
                        stats.malformed += 1
                        error = exc
                    self._finish(entry, error, events)
                else:
                    if flags & _DUMP_INTR:
                        entry.interrupted = True
                    if entry.abandoned:
                        stats.late += 1
                    else:
                        try:
                            body = decode_body(msg_type, flags, payload)
                        except DecodeError as exc:
                            stats.malformed += 1
                            entry.error = entry.error or exc
                        else:
                            events.append(
                                Reply(seq, Message(msg_type, flags, body, seq, frame_port))
                            )
                    if not entry.dump and not flags & _MULTI and not entry.flags & _ACK:
                        self._finish(entry, None, events)
        except DecodeError:
            stats.malformed += 1
        return events

    def _member_frame(
        self, group: _Entry, seq: int, msg_type: int, flags: int, payload: memoryview
    ) -> None:
        """A frame for a group member: keep its error reply, drop anything else."""
        if msg_type != _ERROR or len(payload) < 4:
            self.stats.unknown_seq += 1  # members ask for no ack and no data
            return
        code = _ERROR_CODE.unpack_from(payload)[0]
        if code == 0:
            self.stats.unknown_seq += 1
            return
        error = self._error_reply(group, code, payload, flags, seq)
        if error is not None and not group.abandoned:
            group.failures.append((seq - group.first, error))

    def _error_reply(
        self, entry: _Entry, code: int, payload: memoryview, flags: int, seq: int = 0
    ) -> AsyncrouteError | None:
        if code == 0:
            return None
        if code > 0:
            self.stats.malformed += 1
            return DecodeError(f"NLMSG_ERROR with positive code {code}")
        message: str | None = None
        offset: int | None = None
        try:
            decoded = decode_error_payload(payload, flags)
            message, offset = decoded.message, decoded.offset
        except DecodeError:
            self.stats.malformed += 1  # the errno is still good; lose only the details
        msg_type = entry.msg_type
        if seq and seq != entry.seq:  # a group member: the echoed header has its type
            msg_type = _ECHOED_TYPE.unpack_from(payload, 8)[0] if len(payload) >= 10 else 0
        return kernel_error(
            -code, seq=seq or entry.seq, msg_type=msg_type, message=message, offset=offset
        )

    def _entries(self) -> list[_Entry]:
        """Each pending entry once (a group holds one seq per member)."""
        return list({id(entry): entry for entry in self._pending.values()}.values())

    def _forget(self, entry: _Entry) -> None:
        pending = self._pending
        if entry.flags & _ECHO:
            self._echoes -= 1
        if entry.count == 1:
            del pending[entry.seq]
        else:
            for seq in range(entry.first, entry.seq + 1):
                del pending[seq]

    def _finish(self, entry: _Entry, error: AsyncrouteError | None, events: list[Event]) -> None:
        self._forget(entry)
        self._in_flight -= entry.count
        self._cost -= entry.cost
        if entry is self._dump:
            self._dump = None
            self._start_next_dump()
        if entry.abandoned:
            self.stats.late += 1
            return
        if error is None:
            error = entry.error
        if error is None and entry.interrupted:
            error = DumpInterrupted()
        if entry.count == 1:
            events.append(Finished(entry.seq, error))
            return
        if error is None and entry.tainted:
            error = OutcomeUnknown(
                f"receive buffer overrun: replies to seqs {entry.first}..{entry.seq - 1} "
                "may be lost"
            )
        events.append(Finished(entry.seq, error, tuple(entry.failures)))

    def _start_next_dump(self) -> None:
        if self._dumps:
            self._dump = self._dumps.popleft()
            self._queue.append(self._dump)

    # ------------------------------------------------------------------ failures

    def overrun_seen(self) -> None:
        """ENOBUFS was just read: every group sent so far may have lost an error reply,
        so its barrier no longer vouches for its members (see the module docstring)."""
        for entry in self._entries():
            if entry.sent and entry.count > 1:
                entry.tainted = True

    def overrun(self) -> list[Event]:
        """The receive buffer overflowed (ENOBUFS) and the caller has since read every
        datagram left in the socket: replies not seen by now were dropped.

        Every sent request that is not a dump finishes with :class:`OutcomeUnknown`;
        queued ones are untouched.  A running dump goes on: the kernel queues dump data
        with ``__netlink_sendskb`` only when the buffer has room, so none of it is lost.
        """
        self.stats.overruns += 1
        events: list[Event] = []
        for entry in self._entries():
            if entry.sent and not entry.dump:
                error = OutcomeUnknown(
                    f"receive buffer overrun: the reply to seq {entry.seq} may be lost"
                )
                self._finish(entry, error, events)
        return events

    def close(self, error: AsyncrouteError) -> list[Finished]:
        """Finish everything with ``error`` (the connection is closing); reset all state."""
        events = [
            Finished(entry.seq, error, tuple(entry.failures))
            for entry in self._entries()
            if not entry.abandoned
        ]
        self._pending.clear()
        self._echoes = 0
        self._queue.clear()
        self._dumps.clear()
        self._dump = None
        self._in_flight = 0
        self._cost = 0
        return events
