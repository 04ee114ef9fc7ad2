"""Fuzzing the wire codec and the sans-I/O core with hostile datagrams.

What each property proves (inputs from :mod:`tests.fuzz.strategies`):

* ``decode_datagram`` on arbitrary bytes, on frames of known types around random
  payloads, on well-formed datagrams broken by one to three targeted mutations
  (truncated headers, frame lengths below 16 or past the buffer, misalignment, lying
  attribute lengths, nested attributes that overrun their parent, flipped ack flags,
  lying echoed lengths, garbage extended-ACK TLVs) and on garbage error/done replies
  returns messages or raises DecodeError/ProtocolError — nothing else.
* Whatever it accepts re-encodes to the same messages, and decoding a ``memoryview``
  slice of a larger buffer (as the reader does) gives the same answer as the bytes
  alone: a length past the datagram never reads the bytes after it.
* ``NetlinkProtocol.receive_datagram`` never raises, whatever arrives for requests that
  are pending (a plain request, a GET, a running dump, a group of three, a queued dump,
  an abandoned request), and leaves its books straight: every event is for a request
  that was waiting, each finishes at most once, and once the real answers arrive every
  request has finished exactly once with nothing left pending or in flight.

Budgets (examples under ``make fuzz``; 1/100 under ``make test``) are in the ``@fuzz``
decorators; see :mod:`tests.fuzz.profile`.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence

from hypothesis import example, given, settings
from hypothesis import strategies as st

from asyncroute._codec import decode_datagram, decode_error_payload, encode_messages
from asyncroute._protocol import Finished, NetlinkProtocol, Reply
from asyncroute.constants import NLM_F, NLMSG, RTM
from asyncroute.errors import AsyncrouteError, DecodeError, ProtocolError
from asyncroute.messages import Message
from tests.fuzz import strategies as fs
from tests.fuzz.profile import fuzz, hit

#: The only exceptions bad bytes may raise.
REJECTIONS = (DecodeError, ProtocolError)


def decode_or_reject(data: bytes) -> list[Message] | None:
    """decode_datagram's contract on hostile input: messages, or a rejection."""
    try:
        messages = decode_datagram(data)
    except REJECTIONS:
        messages = None
    # The reader decodes a slice of its 1 MiB buffer: bytes after the datagram must
    # never be read, whatever a length says.
    buffer = bytearray(data) + b"\x41" * 64
    try:
        from_view = decode_datagram(memoryview(buffer)[: len(data)])
    except REJECTIONS:
        from_view = None
    assert from_view == messages
    return messages


def assert_re_encodes(messages: list[Message]) -> None:
    """Anything accepted can be written back: decode ∘ encode is the identity on it.

    Except a raw body (a type the codec does not know) of a length that is not a
    multiple of 4: the encoder counts its padding in nlmsg_len, so it comes back
    longer.  The unit tests make the same exception (``raw_messages``).
    """
    kept = [m for m in messages if not (isinstance(m.body, bytes) and len(m.body) % 4)]
    assert decode_datagram(encode_messages(kept)) == kept


# --------------------------------------------------------------------------- the codec


@fuzz(15_000)
@given(st.binary(max_size=1024))
def test_arbitrary_bytes_are_decoded_or_rejected(data: bytes) -> None:
    hit()
    decode_or_reject(data)


@fuzz(10_000)
@given(fs.framed_garbage())
def test_known_frames_around_random_payloads_are_decoded_or_rejected(data: bytes) -> None:
    hit()
    messages = decode_or_reject(data)
    if messages is not None:
        assert_re_encodes(messages)


@fuzz(35_000)
@given(fs.mutated())
def test_mutated_datagrams_are_decoded_or_rejected(data: bytes) -> None:
    hit()
    messages = decode_or_reject(data)
    if messages is not None:
        assert_re_encodes(messages)


@fuzz(10_000)
@given(fs.garbage_errors(), st.sampled_from([0, 0x100, 0x200, 0x300]))
def test_error_replies_with_garbage_tlvs_are_decoded_or_rejected(data: bytes, flags: int) -> None:
    hit()
    messages = decode_or_reject(data)
    if messages is not None:
        assert_re_encodes(messages)
    # The error payload decoder on its own, with the ack flags the frame does not claim.
    payload = memoryview(data)[16:]
    with contextlib.suppress(*REJECTIONS):
        decode_error_payload(payload, flags)


def test_the_mutations_reach_every_target() -> None:
    """The strategies do what the mutations need: nests, extended-ACK areas and echoed
    headers get built, and most unmutated datagrams decode (the mutations then start
    from bytes the decoder accepts, and each one breaks one thing)."""
    seen = {"nested": 0, "tlv": 0, "echo": 0, "decoded": 0, "total": 0}

    @settings(max_examples=300, database=None)
    @given(fs.layouts())
    def look(layout: fs.Layout) -> None:
        seen["nested"] += bool(layout.nested)
        seen["tlv"] += bool(layout.tlv_areas)
        seen["echo"] += bool(layout.echoes)
        seen["total"] += 1
        with contextlib.suppress(*REJECTIONS):
            decode_datagram(layout.data)
            seen["decoded"] += 1

    look()
    assert seen["nested"] and seen["tlv"] and seen["echo"], seen
    assert seen["decoded"] >= seen["total"] // 2, seen


# --------------------------------------------------------------------------- the core

PORT = 4321
_REQUEST_ACK = int(NLM_F.REQUEST | NLM_F.ACK)
_REQUEST_DUMP = int(NLM_F.REQUEST | NLM_F.DUMP)
_ROUTE_BODY = bytes(12)  # an rtmsg, pre-packed (the core takes bytes bodies as they are)


class PendingCore:
    """A core with one request of every kind waiting for its answer."""

    def __init__(self) -> None:
        core = self.core = NetlinkProtocol(max_in_flight=64, port_id=PORT)
        self.plain = core.send_request(Message(RTM.NEWROUTE, 0, _ROUTE_BODY), flags=_REQUEST_ACK)
        self.get = core.send_request(Message(RTM.GETROUTE, 0, _ROUTE_BODY), flags=_REQUEST_ACK)
        self.dump = core.send_request(
            Message(RTM.GETROUTE, 0, _ROUTE_BODY), dump=True, flags=_REQUEST_DUMP
        )
        self.group = core.send_group([(RTM.NEWROUTE, 0, _ROUTE_BODY)] * 3)
        self.abandoned = core.send_request(
            Message(RTM.DELROUTE, 0, _ROUTE_BODY), flags=_REQUEST_ACK
        )
        # Waits for the dump slot: not sent, so frames for it are not believed.
        self.queued_dump = core.send_request(
            Message(RTM.GETRULE, 0, _ROUTE_BODY), dump=True, flags=_REQUEST_DUMP
        )
        assert core.data_to_send()
        core.abandon(self.abandoned)
        #: requests whose caller waits: each must finish exactly once
        self.waiting = {self.plain, self.get, self.dump, self.group, self.queued_dump}
        self.finished: list[int] = []

    @property
    def seqs(self) -> list[int]:
        return sorted(
            {*self.waiting, self.abandoned, self.group - 1, self.group - 2, self.group - 3}
        )

    def take(self, events: Sequence[Reply | Finished]) -> None:
        """Check a batch of events against what was waiting, and record the finishes."""
        for event in events:
            assert event.seq in self.waiting, f"event for seq {event.seq}, not waiting"
            assert event.seq not in self.finished, f"event for seq {event.seq} after it finished"
            if isinstance(event, Finished):
                assert event.error is None or isinstance(event.error, AsyncrouteError)
                for position, failure in event.failures:
                    assert event.seq == self.group and 0 <= position < 3
                    assert isinstance(failure, AsyncrouteError)
                self.finished.append(event.seq)
            else:
                assert isinstance(event.message, Message)

    def answer_the_rest(self) -> None:
        """The real answers: afterwards nothing may be pending or in flight."""
        core = self.core
        for _ in range(3):  # the queued dump is sent once the first one is done
            core.data_to_send()
            frames = []
            for seq in (self.plain, self.get, self.group, self.abandoned):
                echo = struct.pack("=IHHII", 16, RTM.NEWROUTE, 0, seq, PORT)
                frames.append(
                    _frame(NLMSG.ERROR, int(NLM_F.CAPPED), seq, struct.pack("=i", 0) + echo)
                )
            for seq in (self.dump, self.queued_dump):
                frames.append(_frame(NLMSG.DONE, int(NLM_F.MULTI), seq, struct.pack("=i", 0)))
            for frame in frames:  # one datagram each, as the kernel sends acks
                self.take(core.receive_datagram(frame))
        assert sorted(self.finished) == sorted(self.waiting)
        assert core.pending == 0, core.pending
        assert core.in_flight == 0, core.in_flight
        assert not core.has_data_to_send()


def _frame(msg_type: int, flags: int, seq: int, payload: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(payload), msg_type, flags, seq, PORT) + payload


_SEQS = PendingCore().seqs
#: Seqs of the pending requests (and their neighbours) most of the time, else any.
pending_seqs = st.sampled_from([0, *_SEQS, max(_SEQS) + 1]) | fs.u32
ports = st.sampled_from([PORT, PORT, 0]) | fs.u32
senders = st.sampled_from([(0, 0)] * 6 + [(1, 0), (0, 1)])


#: The smallest datagram that once broke the core: an error reply with code INT32_MIN
#: (see test_regressions.py).  Explicit, so that every run tries it first.
INT32_MIN_ERROR = struct.pack("=IHHIIi", 20, NLMSG.ERROR, 0, 1, PORT, fs.INT32_MIN)


@fuzz(20_000)
@example([INT32_MIN_ERROR], (0, 0))
@given(st.lists(fs.hostile(pending_seqs, ports), min_size=1, max_size=3), senders)
def test_core_never_raises_and_keeps_its_books(
    datagrams: list[bytes], sender: tuple[int, int]
) -> None:
    hit()
    pending = PendingCore()
    for data in datagrams:
        pending.take(pending.core.receive_datagram(data, *sender))
        assert pending.core.in_flight >= 0
    pending.answer_the_rest()
