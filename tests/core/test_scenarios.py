"""The sans-I/O core driven with plain bytes: one test per scenario.

Each test queues requests, takes the bytes the core wants to send, decodes them to learn
the seqs (as the kernel would), and feeds hand-built reply datagrams back, checking the
exact events that come out.
"""

from __future__ import annotations

import errno
import struct

import pytest

from asyncroute._codec import decode_datagram, encode_message
from asyncroute._frame import HEADER
from asyncroute._protocol import Finished, Reply
from asyncroute.constants import NLM_F, NLMSG, RTM
from asyncroute.errors import (
    BusyError,
    ConnectionClosed,
    DecodeError,
    DumpInterrupted,
    ExistsError,
    KernelError,
    NotFoundError,
    OutcomeUnknown,
)
from asyncroute.messages import ErrorMessage, LinkMessage, Message
from asyncroute.testing.fake_kernel import ack

from .helpers import (
    PORT_ID,
    Driver,
    Event,
    ack_bytes,
    done_frame,
    dump_frames,
    dump_request,
    error_bytes,
    frames,
    get_request,
    link_reply,
    new_route,
    uncapped_error_bytes,
)

MULTI = int(NLM_F.MULTI)
DUMP_INTR = int(NLM_F.DUMP_INTR)


def replies_for(seq: int, messages: list[Message]) -> list[Event]:
    """The Reply events the core should produce for the data frames in ``messages``."""
    return [Reply(seq, m) for m in messages if m.type not in (NLMSG.ERROR, NLMSG.DONE)]


def only_finished(events: list[Event]) -> Finished:
    assert len(events) == 1, events
    event = events[0]
    assert isinstance(event, Finished), event
    return event


# --------------------------------------------------------------------------- acks and errors


def test_ack_finishes_request() -> None:
    d = Driver()
    seq = d.send(new_route(1))
    assert d.core.pending == 1
    [[request]] = d.flush()
    assert request.seq == seq
    assert request.port_id == PORT_ID
    assert d.core.in_flight == 1

    assert d.receive(ack_bytes(request)) == [Finished(seq, None)]
    assert d.core.pending == 0
    assert d.core.in_flight == 0
    # A second ack for the same seq is a stranger now.
    assert d.receive(ack_bytes(request)) == []
    assert d.core.stats.unknown_seq == 1


def test_error_reply_with_ext_ack() -> None:
    d = Driver()
    seq, request = d.send_and_flush(new_route(1))
    data = error_bytes(request, errno.EEXIST, "exists", 20)
    # The reply is what the kernel sends with NETLINK_CAP_ACK and NETLINK_EXT_ACK on.
    [decoded] = decode_datagram(data)
    assert decoded.flags == int(NLM_F.CAPPED | NLM_F.ACK_TLVS)
    assert len(data) == HEADER.size + 4 + HEADER.size + 12 + 8  # code, echo, "exists\0", offs

    finished = only_finished(d.receive(data))
    assert finished.seq == seq
    error = finished.error
    assert isinstance(error, ExistsError)
    assert isinstance(error, FileExistsError)
    assert error.errno == errno.EEXIST
    assert error.seq == seq
    assert error.msg_type == RTM.NEWROUTE
    assert error.message == "exists"
    assert error.offset == 20
    assert d.core.pending == 0
    assert d.core.stats.malformed == 0


def test_uncapped_error_reply_with_tlvs() -> None:
    d = Driver()
    seq, request = d.send_and_flush(new_route(7))
    request_bytes = d.sent_bytes[seq]
    data = uncapped_error_bytes(request, request_bytes, errno.ENOENT, "no such device", 28)
    [decoded] = decode_datagram(data)
    assert not decoded.flags & NLM_F.CAPPED
    assert isinstance(decoded.body, ErrorMessage)
    assert decoded.body.request_payload == request_bytes[HEADER.size :]

    finished = only_finished(d.receive(data))
    error = finished.error
    assert isinstance(error, NotFoundError)
    assert error.errno == errno.ENOENT
    assert (error.seq, error.msg_type) == (seq, RTM.NEWROUTE)
    assert error.message == "no such device"
    assert error.offset == 28
    assert d.core.stats.malformed == 0


def test_error_reply_with_positive_code_is_a_decode_error() -> None:
    d = Driver()
    seq = d.send(new_route(1))
    d.flush()
    reply = Message(NLMSG.ERROR, int(NLM_F.CAPPED), ErrorMessage(5, (16, 0, 0, seq, PORT_ID)))
    finished = only_finished(d.receive(encode_message(reply, seq, PORT_ID)))
    assert isinstance(finished.error, DecodeError)
    assert d.core.stats.malformed == 1


# --------------------------------------------------------------------------- doit with replies


@pytest.mark.parametrize("same_datagram", [False, True])
def test_get_with_ack_reply_then_ack(same_datagram: bool) -> None:
    d = Driver()
    seq, request = d.send_and_flush(get_request(3, ack=True))
    reply = link_reply(request, 3)
    assert not reply.flags & MULTI
    if same_datagram:
        events = d.receive([reply, ack(request)])
    else:
        events = d.receive([reply])
        # NLM_F_ACK was asked for: the reply alone does not finish the request.
        assert events == [Reply(seq, reply)]
        assert d.core.pending == 1
        events += d.receive(ack_bytes(request))
    assert events == [Reply(seq, reply), Finished(seq, None)]
    assert d.core.pending == 0


def test_get_without_ack_finishes_on_first_non_multi_reply() -> None:
    d = Driver()
    seq, request = d.send_and_flush(get_request(5, ack=False))
    reply = link_reply(request, 5)
    assert d.receive([reply]) == [Reply(seq, reply), Finished(seq, None)]
    assert d.core.pending == 0
    assert d.core.in_flight == 0


def test_get_without_ack_waits_through_multi_replies() -> None:
    d = Driver()
    seq, request = d.send_and_flush(get_request(5, ack=False))
    first = link_reply(request, 1, multi=True)
    last = link_reply(request, 2)
    assert d.receive([first]) == [Reply(seq, first)]
    assert d.core.pending == 1
    assert d.receive([last]) == [Reply(seq, last), Finished(seq, None)]


# --------------------------------------------------------------------------- dumps


def test_dump_over_several_datagrams() -> None:
    d = Driver()
    seq, request = d.send_and_flush(dump_request(), dump=True)
    answer = dump_frames(request, 5)
    assert [m.type for m in answer] == [RTM.NEWLINK] * 5 + [NLMSG.DONE]
    events: list[Event] = []
    for chunk in (answer[0:2], answer[2:3], answer[3:6]):
        events += d.receive(chunk)
    assert events == [*replies_for(seq, answer), Finished(seq, None)]
    bodies = [e.message.body for e in events if isinstance(e, Reply)]
    assert [b.index for b in bodies if isinstance(b, LinkMessage)] == [0, 1, 2, 3, 4]
    assert d.core.pending == 0
    assert d.core.in_flight == 0


def test_empty_dump() -> None:
    d = Driver()
    seq, request = d.send_and_flush(dump_request(), dump=True)
    assert d.receive(dump_frames(request, 0)) == [Finished(seq, None)]


def test_dump_done_with_error() -> None:
    d = Driver()
    seq, request = d.send_and_flush(dump_request(), dump=True)
    data = dump_frames(request, 2)[:2]
    done = done_frame(request, -errno.EMSGSIZE, message="dump too big")
    events = d.receive([*data, done])
    assert events[:2] == replies_for(seq, data)
    finished = only_finished(events[2:])
    assert finished.seq == seq
    assert type(finished.error) is KernelError
    assert finished.error.errno == errno.EMSGSIZE
    assert finished.error.seq == seq
    assert finished.error.msg_type == RTM.GETLINK
    assert finished.error.message == "dump too big"


def test_dump_answered_by_error_reply() -> None:
    d = Driver()
    _, request = d.send_and_flush(dump_request(), dump=True)
    finished = only_finished(d.receive(error_bytes(request, errno.EINVAL, "bad filter")))
    assert isinstance(finished.error, KernelError)
    assert finished.error.errno == errno.EINVAL
    assert finished.error.message == "bad filter"
    # The dump slot is free again.
    second = d.send(dump_request(), dump=True)
    assert d.flush_seqs() == [second]


@pytest.mark.parametrize("where", ["first", "middle", "done"])
def test_dump_interrupted(where: str) -> None:
    d = Driver()
    seq, request = d.send_and_flush(dump_request(), dump=True)
    answer = dump_frames(request, 3)
    index = {"first": 0, "middle": 1, "done": 3}[where]
    flagged = answer[index]
    answer[index] = Message(
        flagged.type, flagged.flags | DUMP_INTR, flagged.body, flagged.seq, flagged.port_id
    )
    events: list[Event] = []
    for message in answer:
        events += d.receive([message])
    assert events[:-1] == replies_for(seq, answer)
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.seq == seq
    assert isinstance(finished.error, DumpInterrupted)
    assert d.core.pending == 0


# --------------------------------------------------------------------------- interleaving


def test_acks_interleaved_with_dump_frames() -> None:
    d = Driver()
    dump_seq = d.send(dump_request(), dump=True)
    a = d.send(new_route(1))
    b = d.send(new_route(2))
    c = d.send(get_request(9))
    # A dump request travels alone; the rest is coalesced.
    dump_datagram, datagram = d.flush()
    assert [m.seq for m in dump_datagram] == [dump_seq]
    assert [m.seq for m in datagram] == [a, b, c]
    dump = dump_frames(d.request(dump_seq), 3)
    req_c = d.request(c)
    reply_c = link_reply(req_c, 9)

    first = d.receive([dump[0], ack(d.request(a)), dump[1], reply_c])
    assert first == [
        Reply(dump_seq, dump[0]),
        Finished(a, None),
        Reply(dump_seq, dump[1]),
        Reply(c, reply_c),
    ]
    second = d.receive(
        frames(dump[2])
        + error_bytes(d.request(b), errno.EEXIST)
        + ack_bytes(req_c)
        + frames(dump[3])
    )
    assert second[0] == Reply(dump_seq, dump[2])
    assert second[1].seq == b
    assert isinstance(second[1], Finished)
    assert isinstance(second[1].error, ExistsError)
    assert second[2:] == [Finished(c, None), Finished(dump_seq, None)]
    assert d.core.pending == 0
    assert d.core.in_flight == 0


# --------------------------------------------------------------------------- one dump at a time


def test_second_dump_waits_for_first_done() -> None:
    d = Driver()
    first = d.send(dump_request(), dump=True)
    second = d.send(dump_request(), dump=True)
    assert d.flush_seqs() == [first]
    assert not d.core.has_data_to_send()
    assert d.flush_seqs() == []
    # A doit request is not held back by the waiting dump.
    doit = d.send(new_route(1))
    assert d.flush_seqs() == [doit]

    answer = dump_frames(d.request(first), 2)
    d.receive(answer[:-1])
    assert not d.core.has_data_to_send()
    assert d.flush_seqs() == []

    assert d.receive(answer[-1:]) == [Finished(first, None)]
    assert d.core.has_data_to_send()
    assert d.flush_seqs() == [second]
    assert d.receive(dump_frames(d.request(second), 0)) == [Finished(second, None)]


def test_three_dumps_queue_in_order() -> None:
    d = Driver()
    seqs = [d.send(dump_request(), dump=True) for _ in range(3)]
    order: list[int] = []
    for _ in range(3):
        [seq] = d.flush_seqs()
        order.append(seq)
        assert d.flush_seqs() == []
        assert d.receive(dump_frames(d.request(seq), 1))[-1] == Finished(seq, None)
    assert order == seqs
    assert d.core.pending == 0


# --------------------------------------------------------------------------- abandon


def test_abandon_running_dump_drains_to_done() -> None:
    d = Driver()
    first = d.send(dump_request(), dump=True)
    second = d.send(dump_request(), dump=True)
    assert d.flush_seqs() == [first]
    answer = dump_frames(d.request(first), 4)
    assert d.receive(answer[:1]) == [Reply(first, answer[0])]

    d.core.abandon(first)
    assert d.core.pending == 2  # the abandoned dump keeps its seq until DONE
    late = d.core.stats.late
    assert d.receive(answer[1:3]) == []
    assert d.receive(answer[3:4]) == []
    assert d.core.stats.late == late + 3
    assert not d.core.has_data_to_send()
    assert d.flush_seqs() == []

    assert d.receive(answer[4:]) == []  # DONE
    assert d.core.stats.late == late + 4
    assert d.core.pending == 1
    assert d.flush_seqs() == [second]
    answer2 = dump_frames(d.request(second), 1)
    assert d.receive(answer2) == [Reply(second, answer2[0]), Finished(second, None)]


def test_abandon_queued_dump_is_never_sent() -> None:
    d = Driver()
    first = d.send(dump_request(), dump=True)
    second = d.send(dump_request(), dump=True)
    third = d.send(dump_request(), dump=True)
    assert d.flush_seqs() == [first]
    d.core.abandon(second)
    assert d.core.pending == 2
    assert d.receive(dump_frames(d.request(first), 0)) == [Finished(first, None)]
    assert d.flush_seqs() == [third]
    assert second not in d.sent
    assert d.receive(dump_frames(d.request(third), 0)) == [Finished(third, None)]
    assert d.flush_seqs() == []
    assert d.core.pending == 0


def test_abandon_unsent_dump_that_owns_the_slot() -> None:
    d = Driver()
    first = d.send(dump_request(), dump=True)
    second = d.send(dump_request(), dump=True)
    d.core.abandon(first)  # before any data_to_send(): the next dump takes the slot
    assert d.flush_seqs() == [second]
    assert first not in d.sent
    assert d.receive(dump_frames(d.request(second), 0)) == [Finished(second, None)]
    assert d.core.pending == 0


def test_abandoned_doit_keeps_its_seq_until_late_ack() -> None:
    d = Driver()
    seq, request = d.send_and_flush(new_route(1))
    d.core.abandon(seq)
    assert d.core.pending == 1
    assert d.core.in_flight == 1

    # Point the allocator at the reserved seq (private attribute: there is no public way
    # to choose a seq) and send more: none may get it.
    d.core._next_seq = seq
    others = [d.send(new_route(i)) for i in range(2, 7)]
    assert seq not in others
    assert others == list(range(seq + 1, seq + 6))
    assert seq not in d.flush_seqs()

    late = d.core.stats.late
    assert d.receive(ack_bytes(request)) == []
    assert d.core.stats.late == late + 1
    assert d.core.pending == 5
    assert d.core.in_flight == 5

    # The seq is free again.
    d.core._next_seq = seq
    assert d.send(new_route(8)) == seq


def test_abandoned_doit_error_reply_is_silent() -> None:
    d = Driver()
    seq, request = d.send_and_flush(get_request(1))
    d.core.abandon(seq)
    assert d.receive([link_reply(request, 1)]) == []
    assert d.receive(error_bytes(request, errno.ENODEV)) == []
    assert d.core.pending == 0
    assert d.core.stats.late == 2


def test_abandon_before_send_is_never_sent() -> None:
    d = Driver()
    a = d.send(new_route(1))
    b = d.send(new_route(2))
    d.core.abandon(a)
    assert d.core.pending == 1
    assert d.flush_seqs() == [b]
    assert a not in d.sent
    assert d.receive(ack_bytes(d.request(b))) == [Finished(b, None)]
    assert d.core.pending == 0


def test_abandon_unknown_or_twice_is_a_no_op() -> None:
    d = Driver()
    seq, request = d.send_and_flush(new_route(1))
    d.core.abandon(seq + 1000)
    d.core.abandon(seq)
    d.core.abandon(seq)
    assert d.core.pending == 1
    assert d.receive(ack_bytes(request)) == []
    d.core.abandon(seq)
    assert d.core.pending == 0


def test_has_data_to_send_is_false_when_only_abandoned_requests_are_queued() -> None:
    """Regression: has_data_to_send() counted requests abandoned before they were sent.

    ``abandon()`` leaves an unsent entry in ``_queue`` (flagged), and has_data_to_send()
    only looks at ``bool(self._queue)``, so it answers True while data_to_send() returns
    nothing.  (The connection then runs a useless flush; a loop that polls until
    has_data_to_send() is False would spin.)
    """
    d = Driver()
    seq = d.send(new_route(1))
    d.core.abandon(seq)
    assert d.core.pending == 0
    # Nothing is left to send, so has_data_to_send() must say so.
    assert d.core.has_data_to_send() is False
    assert d.core.data_to_send() == []


# --------------------------------------------------------------------------- window


def test_window_limits_requests_in_flight() -> None:
    d = Driver(max_in_flight=3)
    seqs = [d.send(new_route(i)) for i in range(10)]
    assert d.core.pending == 10
    assert d.core.has_data_to_send()

    sent = d.flush_seqs()
    assert sent == seqs[:3]
    assert d.core.in_flight == 3
    assert not d.core.has_data_to_send()
    assert d.flush_seqs() == []

    finished: list[int] = []
    while finished != seqs:
        oldest = sent.pop(0)
        assert d.receive(ack_bytes(d.request(oldest))) == [Finished(oldest, None)]
        finished.append(oldest)
        queued = len(seqs) - len(finished) - len(sent)
        assert d.core.has_data_to_send() == (queued > 0)
        more = d.flush_seqs()
        assert len(more) == (1 if queued > 0 else 0)
        sent += more
        assert d.core.in_flight == len(sent) <= 3
        assert not d.core.has_data_to_send()
    assert d.core.pending == 0
    assert d.core.in_flight == 0


def test_window_counts_abandoned_requests_until_answered() -> None:
    d = Driver(max_in_flight=1)
    a = d.send(new_route(1))
    b = d.send(new_route(2))
    assert d.flush_seqs() == [a]
    d.core.abandon(a)
    assert not d.core.has_data_to_send()
    assert d.flush_seqs() == []
    assert d.receive(ack_bytes(d.request(a))) == []
    assert d.core.has_data_to_send()
    assert d.flush_seqs() == [b]


# --------------------------------------------------------------------------- coalescing


def test_many_small_requests_coalesce_into_one_datagram() -> None:
    d = Driver(max_in_flight=1000)
    seqs = [d.send(new_route(i)) for i in range(100)]
    datagrams = d.flush()
    assert len(datagrams) == 1
    assert [m.seq for m in datagrams[0]] == seqs
    assert len(d.datagrams[0]) == sum(len(d.sent_bytes[s]) for s in seqs)


def test_coalescing_respects_max_datagram() -> None:
    frame_size = len(encode_message(new_route(0), 1, PORT_ID))
    max_datagram = frame_size * 7 + frame_size // 2
    d = Driver(max_in_flight=1000, max_datagram=max_datagram)
    seqs = [d.send(new_route(i)) for i in range(100)]
    datagrams = d.flush()
    assert [m.seq for datagram in datagrams for m in datagram] == seqs
    assert all(len(raw) <= max_datagram for raw in d.datagrams)
    assert [len(datagram) for datagram in datagrams] == [7] * 14 + [2]


def test_request_larger_than_max_datagram_goes_alone() -> None:
    d = Driver(max_in_flight=10, max_datagram=16)
    seqs = [d.send(new_route(i)) for i in range(3)]
    datagrams = d.flush()
    assert [[m.seq for m in datagram] for datagram in datagrams] == [[s] for s in seqs]


# --------------------------------------------------------------------------- seq wrap


def test_seq_wraps_and_skips_zero() -> None:
    d = Driver()
    # No public way to reach the top of the seq space: set the allocator's cursor.
    d.core._next_seq = 0xFFFFFFFD
    seqs = [d.send(new_route(i)) for i in range(5)]
    assert seqs == [0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF, 1, 2]
    assert d.flush_seqs() == seqs  # the seqs on the wire are the same
    for seq in seqs:
        assert d.receive(ack_bytes(d.request(seq))) == [Finished(seq, None)]


def test_seq_wrap_skips_pending_seqs() -> None:
    d = Driver()
    one = d.send(new_route(1))
    assert one == 1
    d.flush()
    # Jump to the end of the seq space (private cursor) while seq 1 is still in flight.
    d.core._next_seq = 0xFFFFFFFF
    top = d.send(new_route(2))
    after = d.send(new_route(3))
    assert (top, after) == (0xFFFFFFFF, 2)
    assert d.flush_seqs() == [top, after]
    # Answering seq 1 reaches the old request, not a new one.
    assert d.receive(ack_bytes(d.request(one))) == [Finished(one, None)]


# --------------------------------------------------------------------------- trust


def test_only_the_kernel_is_believed() -> None:
    d = Driver()
    seq, request = d.send_and_flush(new_route(1))
    running_dump = d.send(dump_request(), dump=True)
    waiting_dump = d.send(dump_request(), dump=True)  # queued behind running_dump
    assert d.flush_seqs() == [running_dump]
    good = ack_bytes(request)
    stats = d.core.stats

    # The real ack, but from a user-space sender or to a multicast group: dropped.
    assert d.receive(good, sender_port_id=1234) == []
    assert (stats.foreign, stats.multicast, stats.unknown_seq) == (1, 0, 0)
    assert d.receive(good, sender_groups=1) == []
    assert (stats.foreign, stats.multicast, stats.unknown_seq) == (1, 1, 0)

    # From the kernel, but addressed to another port: dropped.
    wrong_port = Message(request.type, request.flags, request.body, seq, PORT_ID + 1)
    assert d.receive(encode_message(ack(wrong_port))) == []
    assert stats.unknown_seq == 1
    # A dump frame for the running dump, to another port: dropped too.
    [frame, _] = dump_frames(d.request(running_dump), 1)
    stray = Message(frame.type, frame.flags, frame.body, running_dump, PORT_ID + 1)
    assert d.receive([stray]) == []
    assert stats.unknown_seq == 2

    # A seq nobody uses.
    unknown = Message(request.type, request.flags, request.body, seq + 1000, PORT_ID)
    assert d.receive(encode_message(ack(unknown))) == []
    assert stats.unknown_seq == 3

    # A reply for a request that is queued but was never sent is not believed either.
    unsent = Message(request.type, request.flags, request.body, waiting_dump, PORT_ID)
    assert d.receive(encode_message(ack(unsent))) == []
    assert stats.unknown_seq == 4

    # None of that finished anything; the real ack does.
    assert d.core.pending == 3
    assert d.receive(good) == [Finished(seq, None)]
    assert d.core.pending == 2
    assert waiting_dump not in d.sent
    assert d.receive(dump_frames(d.request(running_dump), 0)) == [Finished(running_dump, None)]
    assert d.flush_seqs() == [waiting_dump]


def test_port_id_zero_disables_the_port_check() -> None:
    d = Driver(port_id=0)
    seq, request = d.send_and_flush(new_route(1))
    assert request.port_id == 0
    other = Message(request.type, request.flags, request.body, seq, 999)
    assert d.receive(encode_message(ack(other))) == [Finished(seq, None)]


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x01\x02\x03",  # shorter than a header
        b"\xff" * 32,  # length runs past the datagram
        HEADER.pack(8, NLMSG.ERROR, 0, 1, PORT_ID),  # length below 16
    ],
)
def test_garbage_datagram_is_counted(garbage: bytes) -> None:
    d = Driver()
    seq, request = d.send_and_flush(new_route(1))
    assert seq == 1
    assert d.receive(garbage) == []
    assert d.core.stats.malformed == 1
    assert d.core.pending == 1
    assert d.receive(ack_bytes(request)) == [Finished(seq, None)]


def test_truncated_frame_after_valid_ack() -> None:
    d = Driver()
    a, req_a = d.send_and_flush(new_route(1))
    b, req_b = d.send_and_flush(new_route(2))
    data = ack_bytes(req_a) + ack_bytes(req_b)[:20]
    assert d.receive(data) == [Finished(a, None)]
    assert d.core.stats.malformed == 1
    assert d.core.pending == 1
    assert d.receive(ack_bytes(req_b)) == [Finished(b, None)]


def test_short_error_payload_is_counted_and_ignored() -> None:
    d = Driver()
    seq, request = d.send_and_flush(new_route(1))
    short = HEADER.pack(HEADER.size + 2, NLMSG.ERROR, 0, seq, PORT_ID) + b"\0\0\0\0"
    assert d.receive(short) == []
    assert d.core.stats.malformed == 1
    assert d.receive(ack_bytes(request)) == [Finished(seq, None)]


def test_error_reply_without_echo_keeps_its_errno() -> None:
    d = Driver()
    seq = d.send(new_route(1))
    d.flush()
    # Only the error code, no echoed header: the details are lost, the errno is not.
    short = HEADER.pack(HEADER.size + 4, NLMSG.ERROR, 0, seq, PORT_ID)
    short += struct.pack("=i", -errno.EEXIST)
    finished = only_finished(d.receive(short))
    assert isinstance(finished.error, ExistsError)
    assert (finished.error.seq, finished.error.message, finished.error.offset) == (seq, None, None)
    assert d.core.stats.malformed == 1


def test_events_do_not_alias_the_receive_buffer() -> None:
    d = Driver()
    a, req_a = d.send_and_flush(get_request(1, ack=False))
    b, _ = d.send_and_flush(get_request(2, ack=False))
    raw_reply = Message(99, 0, b"abcd", b, PORT_ID)  # a type the codec keeps as bytes
    buffer = bytearray(frames(link_reply(req_a, 1), raw_reply))
    events = d.core.receive_datagram(memoryview(buffer))
    buffer[:] = bytes(len(buffer))  # the connection reuses its buffer for the next recv
    assert events == [
        Reply(a, link_reply(req_a, 1)),
        Finished(a, None),
        Reply(b, raw_reply),
        Finished(b, None),
    ]
    assert type(raw_reply.body) is bytes


def test_undecodable_reply_fails_its_request() -> None:
    d = Driver()
    seq, request = d.send_and_flush(get_request(1))
    # An RTM_NEWLINK whose ifinfomsg header is cut short.
    bad = HEADER.pack(HEADER.size + 4, RTM.NEWLINK, 0, seq, PORT_ID) + b"\0\0\0\0"
    assert d.receive(bad) == []
    assert d.core.stats.malformed == 1
    finished = only_finished(d.receive(ack_bytes(request)))
    assert isinstance(finished.error, DecodeError)


# --------------------------------------------------------------------------- overrun


def test_overrun_fails_sent_doits_only() -> None:
    d = Driver(max_in_flight=3)
    dump = d.send(dump_request(), dump=True)
    a = d.send(new_route(1))
    b = d.send(new_route(2))
    c = d.send(new_route(3))
    e = d.send(get_request(4))
    assert d.flush_seqs() == [dump, a, b]

    events = d.core.overrun()
    assert [event.seq for event in events] == [a, b]
    for event in events:
        assert isinstance(event, Finished)
        assert isinstance(event.error, OutcomeUnknown)
    assert d.core.stats.overruns == 1
    assert d.core.pending == 3
    assert d.core.in_flight == 1

    # The queued ones go out next; the dump goes on.
    assert d.flush_seqs() == [c, e]
    answer = dump_frames(d.request(dump), 2)
    assert d.receive(answer) == [*replies_for(dump, answer), Finished(dump, None)]
    assert d.receive(ack_bytes(d.request(c))) == [Finished(c, None)]
    assert d.receive(ack_bytes(d.request(e))) == [Finished(e, None)]
    # A late ack for a request the overrun already finished is a stranger.
    assert d.receive(ack_bytes(d.request(a))) == []
    assert d.core.pending == 0


def test_overrun_with_nothing_sent() -> None:
    d = Driver()
    seq = d.send(new_route(1))
    assert d.core.overrun() == []
    assert d.flush_seqs() == [seq]


# --------------------------------------------------------------------------- close


def test_close_finishes_everything() -> None:
    d = Driver(max_in_flight=4)
    sent_a = d.send(new_route(1))
    sent_b = d.send(get_request(2))
    dump1 = d.send(dump_request(), dump=True)
    dump2 = d.send(dump_request(), dump=True)
    abandoned_sent = d.send(new_route(3))
    queued = d.send(new_route(4))
    abandoned_queued = d.send(new_route(5))
    assert d.flush_seqs() == [sent_a, sent_b, dump1, abandoned_sent]
    d.core.abandon(abandoned_sent)
    d.core.abandon(abandoned_queued)
    request_b = d.request(sent_b)
    reply_b = link_reply(request_b, 2)
    assert d.receive([reply_b]) == [Reply(sent_b, reply_b)]

    error = ConnectionClosed("closing")
    events = d.core.close(error)
    assert sorted(e.seq for e in events) == sorted([sent_a, sent_b, dump1, dump2, queued])
    assert all(e == Finished(e.seq, error) and e.error is error for e in events)
    assert d.core.pending == 0
    assert d.core.in_flight == 0
    assert not d.core.has_data_to_send()
    assert d.core.data_to_send() == []
    # Replies after close belong to nobody.
    assert d.receive(ack_bytes(d.request(sent_a))) == []
    assert d.receive(dump_frames(d.request(dump1), 1)) == []


def test_close_then_reuse() -> None:
    d = Driver()
    d.send(new_route(1))
    d.send(dump_request(), dump=True)
    d.core.close(ConnectionClosed())
    dump = d.send(dump_request(), dump=True)
    assert d.flush_seqs() == [dump]  # the dump slot was released by close()
    assert d.receive(dump_frames(d.request(dump), 0)) == [Finished(dump, None)]


def test_busy_error_class_for_ebusy() -> None:
    d = Driver()
    _, request = d.send_and_flush(dump_request(), dump=True)
    finished = only_finished(d.receive(error_bytes(request, errno.EBUSY)))
    assert isinstance(finished.error, BusyError)


def test_replies_are_decoded_messages() -> None:
    d = Driver()
    seq, request = d.send_and_flush(get_request(4, ack=False))
    [event, _] = d.receive([link_reply(request, 4)])
    assert isinstance(event, Reply)
    assert event.message == Message(
        RTM.NEWLINK, 0, LinkMessage(index=4, name=f"if{seq}-4"), seq, PORT_ID
    )


# --------------------------------------------------------------------------- NLM_F_ECHO


def test_echo_is_accepted_though_it_carries_a_group() -> None:
    """The kernel's answer to NLM_F_ECHO is a unicast copy of its notification, still
    addressed to the notification's group (nlmsg_notify): accepted for the request
    that asked for it, while a plain request's multicast copy is still dropped."""
    d = Driver()
    plain_seq, plain = d.send_and_flush(new_route(1))
    echo_seq, echo_request = d.send_and_flush(
        Message(RTM.DELROUTE, int(NLM_F.REQUEST | NLM_F.ACK | NLM_F.ECHO), new_route(2).body)
    )
    copy = Message(RTM.NEWROUTE, 0, plain.body, plain_seq, PORT_ID)
    assert d.receive([copy], sender_groups=1 << 6) == []
    assert d.core.stats.multicast == 1
    removed = Message(RTM.DELROUTE, 0, echo_request.body, echo_seq, PORT_ID)
    events = d.receive([removed], sender_groups=1 << 6)
    assert events == [Reply(echo_seq, removed)]
    assert d.receive(ack_bytes(echo_request)) == [Finished(echo_seq, None)]
    # Nothing asks for an echo any more: group-addressed datagrams are dropped whole.
    assert d.receive([removed], sender_groups=1 << 6) == []
    assert d.core.stats.multicast == 2
    assert d.receive(ack_bytes(plain)) == [Finished(plain_seq, None)]
