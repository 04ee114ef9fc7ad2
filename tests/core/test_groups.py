"""Groups on the sans-I/O core: many change requests closed by one acked NLMSG_NOOP.

``NetlinkProtocol.send_group`` queues members that ask for no ack, followed by a
*barrier* (NLMSG_NOOP with NLM_F_REQUEST|NLM_F_ACK).  The kernel answers an unacked
request only when it fails and runs a socket's messages in order, so the barrier's ack
settles every member that got no error reply.  These tests play the kernel with hand-built
reply bytes and check the exact events, counters, window and seqs.

Private attribute used: ``core._next_seq`` (the seq allocator's cursor), the only way to
reach the top of the seq space without sending 2**32 requests.
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from asyncroute._codec import encode_message
from asyncroute._frame import HEADER, iter_frames
from asyncroute._protocol import ACK_COST, REPLY_COST, Finished, NetlinkProtocol
from asyncroute.constants import NLM_F, NLMSG, RTM
from asyncroute.errors import (
    ERRNO_CLASSES,
    ConnectionClosed,
    ExistsError,
    KernelError,
    NotFoundError,
    OutcomeUnknown,
)
from asyncroute.messages import Body, DoneMessage, LinkMessage, Message
from asyncroute.testing.fake_kernel import ack, error_reply

from .helpers import (
    PORT_ID,
    Driver,
    Event,
    ack_bytes,
    error_bytes,
    frames,
    link_reply,
    new_route,
)

REQUEST = int(NLM_F.REQUEST)
ACK = int(NLM_F.ACK)
MULTI = int(NLM_F.MULTI)
CREATE_EXCL = int(NLM_F.CREATE | NLM_F.EXCL)
NOOP = int(NLMSG.NOOP)
TOP = 0xFFFFFFFF

Member = tuple[int, int, Body]


# --------------------------------------------------------------------------- helpers


def members(count: int, start: int = 0, msg_type: int = RTM.NEWROUTE) -> list[Member]:
    """``count`` route change requests (distinct routes), as ``send_group`` takes them.

    The flags carry NLM_F_ACK on purpose: the core must clear it.
    """
    out: list[Member] = []
    for i in range(start, start + count):
        message = new_route(i, ack=True)
        out.append((msg_type, message.flags, message.body))
    return out


def driver(
    *,
    max_in_flight: int = 1000,
    max_reply_bytes: int | None = None,
    max_datagram: int = 65536,
) -> Driver:
    """A :class:`Driver` whose core may also have a byte budget."""
    d = Driver(max_in_flight=max_in_flight, max_datagram=max_datagram)
    d.core = NetlinkProtocol(
        max_in_flight=max_in_flight,
        max_reply_bytes=max_reply_bytes,
        max_datagram=max_datagram,
        port_id=PORT_ID,
    )
    return d


def member_seqs(barrier: int, count: int) -> list[int]:
    return list(range(barrier - count, barrier))


def only_finished(events: list[Event]) -> Finished:
    assert len(events) == 1, events
    event = events[0]
    assert isinstance(event, Finished), event
    return event


def check_error(
    error: object, cls: type[KernelError], code: int, seq: int, msg_type: int
) -> KernelError:
    """``error`` is a ``cls`` for ``code`` naming the request ``seq`` of type ``msg_type``."""
    assert isinstance(error, cls), error
    assert error.errno == code
    assert error.seq == seq
    assert error.msg_type == msg_type
    return error


def expected_frame(msg_type: int, flags: int, body: Body, seq: int) -> bytes:
    """A member's frame built independently of the core: header by struct, payload by
    the codec."""
    payload = encode_message(Message(msg_type, 0, body))[HEADER.size :]
    return HEADER.pack(HEADER.size + len(payload), msg_type, flags, seq, PORT_ID) + payload


def barrier_frame(seq: int) -> bytes:
    return HEADER.pack(16, NOOP, REQUEST | ACK, seq, PORT_ID)


# --------------------------------------------------------------------------- bytes


def test_group_bytes_members_then_barrier() -> None:
    d = driver()
    group = members(5, msg_type=RTM.NEWROUTE)
    group[2] = (RTM.DELROUTE, 0, group[2][2])  # no flags at all: REQUEST is added
    # A pre-packed (4-byte aligned) body takes the header-only fast path.
    packed = encode_message(Message(RTM.NEWROUTE, 0, group[3][2]))[HEADER.size :]
    assert len(packed) % 4 == 0
    group[3] = (RTM.NEWROUTE, group[3][1], packed)
    barrier = d.core.send_group(group)
    first = barrier - 5
    assert first == 1
    assert d.core.pending == 6
    assert d.core.in_flight == 0

    [datagram] = d.core.data_to_send()
    expected = b"".join(
        expected_frame(msg_type, (flags | REQUEST) & ~ACK, body, first + i)
        for i, (msg_type, flags, body) in enumerate(group)
    )
    expected += barrier_frame(barrier)
    assert datagram == expected
    # The same, read back frame by frame.
    parsed = list(iter_frames(memoryview(datagram)))
    assert [f.seq for f in parsed] == [*range(first, barrier), barrier]
    assert all(f.port_id == PORT_ID for f in parsed)
    for frame, (msg_type, flags, _) in zip(parsed, group, strict=False):
        assert frame.type == msg_type
        assert frame.flags & REQUEST
        assert not frame.flags & ACK
        assert frame.flags & ~(REQUEST | ACK) == flags & ~(REQUEST | ACK)
    noop = parsed[-1]
    assert (noop.type, noop.flags, len(noop.payload)) == (NOOP, REQUEST | ACK, 0)
    assert len(datagram) - sum(HEADER.size + len(f.payload) for f in parsed[:-1]) == 16
    assert d.core.in_flight == 6
    assert d.core.data_to_send() == []


def test_unaligned_bytes_body_is_encoded_like_any_other() -> None:
    d = driver()
    barrier = d.core.send_group([(RTM.NEWROUTE, 0, b"abc")])
    [datagram] = d.core.data_to_send()
    member = encode_message(Message(RTM.NEWROUTE, REQUEST, b"abc"), barrier - 1, PORT_ID)
    assert datagram == member + barrier_frame(barrier)


def test_empty_group_is_refused() -> None:
    d = driver()
    with pytest.raises(ValueError):
        d.core.send_group([])
    assert d.core.pending == 0
    assert not d.core.has_data_to_send()


def test_groups_and_requests_coalesce_into_one_datagram() -> None:
    d = driver()
    g1 = d.core.send_group(members(3))
    plain = d.send(new_route(100))
    g2 = d.core.send_group(members(4, start=10))
    [datagram] = d.core.data_to_send()
    seqs = [f.seq for f in iter_frames(memoryview(datagram))]
    assert seqs == [*member_seqs(g1, 3), g1, plain, *member_seqs(g2, 4), g2]
    assert (g1, plain, g2) == (4, 5, 10)
    assert d.core.in_flight == 4 + 1 + 5


def test_coalescing_never_splits_a_group() -> None:
    size = len(encode_message(new_route(0), 1, PORT_ID))
    group_bytes = 3 * size + 16
    # Room for one group and a little more, never for two.
    d = driver(max_datagram=group_bytes + size)
    barriers = [d.core.send_group(members(3, start=10 * i)) for i in range(4)]
    datagrams = d.core.data_to_send()
    assert len(datagrams) == 4
    for datagram, barrier in zip(datagrams, barriers, strict=True):
        assert len(datagram) == group_bytes
        assert [f.seq for f in iter_frames(memoryview(datagram))] == [
            *member_seqs(barrier, 3),
            barrier,
        ]
    # Room for exactly two groups: they share a datagram.
    d = driver(max_datagram=2 * group_bytes)
    barriers = [d.core.send_group(members(3, start=10 * i)) for i in range(5)]
    assert [len(raw) for raw in d.core.data_to_send()] == [2 * group_bytes] * 2 + [group_bytes]
    # A group larger than max_datagram goes alone, whole.
    d = driver(max_datagram=64)
    barrier = d.core.send_group(members(3))
    plain = d.send(new_route(50))
    [alone, after] = d.core.data_to_send()
    assert len(alone) == group_bytes
    assert [f.seq for f in iter_frames(memoryview(after))] == [plain]
    assert barrier == 4


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("count", [1, 2, 128])
def test_barrier_ack_finishes_the_group(count: int) -> None:
    d = driver()
    barrier = d.core.send_group(members(count))
    assert d.core.pending == count + 1
    d.flush()
    assert d.core.in_flight == count + 1
    noop = d.request(barrier)
    assert (noop.type, noop.flags) == (NOOP, REQUEST | ACK)
    ack_datagram = ack_bytes(noop)
    assert len(ack_datagram) == 36  # the capped ack: the core's fast path
    assert d.receive(ack_datagram) == [Finished(barrier, None, ())]
    assert (d.core.pending, d.core.in_flight) == (0, 0)
    # A second ack for the barrier is a stranger.
    assert d.receive(ack_datagram) == []
    assert d.core.stats.unknown_seq == 1


def test_barrier_ack_inside_a_longer_datagram() -> None:
    d = driver()
    g1 = d.core.send_group(members(2))
    g2 = d.core.send_group(members(3, start=5))
    d.flush()
    events = d.receive([ack(d.request(g1)), ack(d.request(g2))])
    assert events == [Finished(g1, None, ()), Finished(g2, None, ())]
    assert (d.core.pending, d.core.in_flight) == (0, 0)


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("same_datagram", [False, True])
def test_member_failures_by_position(same_datagram: bool) -> None:
    n = 10
    d = driver()
    group = members(n)
    group[4] = (RTM.DELROUTE, 0, group[4][2])
    barrier = d.core.send_group(group)
    d.flush()
    first = barrier - n
    answers = [
        error_reply(d.request(first), errno.EEXIST, "route exists", 20),
        error_reply(d.request(first + 4), errno.ESRCH),
        error_reply(d.request(first + n - 1), errno.ENETUNREACH, "Nexthop has invalid gateway"),
        ack(d.request(barrier)),
    ]
    if same_datagram:
        events = d.receive(answers)
    else:
        events = []
        for answer in answers[:-1]:
            assert d.receive([answer]) == []  # a member's failure does not finish it
            assert d.core.pending == n + 1
        events = d.receive([answers[-1]])
    finished = only_finished(events)
    assert finished.seq == barrier
    assert finished.error is None
    assert [position for position, _ in finished.failures] == [0, 4, n - 1]
    (_, f0), (_, f4), (_, f9) = finished.failures
    e0 = check_error(f0, ExistsError, errno.EEXIST, first, RTM.NEWROUTE)
    assert (e0.message, e0.offset) == ("route exists", 20)
    check_error(f4, NotFoundError, errno.ESRCH, first + 4, RTM.DELROUTE)
    e9 = check_error(f9, KernelError, errno.ENETUNREACH, first + n - 1, RTM.NEWROUTE)
    assert type(e9) is KernelError
    assert e9.message == "Nexthop has invalid gateway"
    assert (d.core.pending, d.core.in_flight) == (0, 0)
    assert d.core.stats.unknown_seq == d.core.stats.malformed == 0


def test_member_error_type_comes_from_the_echoed_header() -> None:
    """The group entry's own type is NLMSG_NOOP; a member's error names the member's."""
    d = driver()
    barrier = d.core.send_group([*members(1), *members(1, start=1, msg_type=RTM.DELROUTE)])
    d.flush()
    events = d.receive(error_bytes(d.request(barrier - 1), errno.ESRCH))
    events += d.receive(ack_bytes(d.request(barrier)))
    [(position, error)] = only_finished(events).failures
    assert position == 1
    check_error(error, NotFoundError, errno.ESRCH, barrier - 1, RTM.DELROUTE)


def test_member_error_without_echo_keeps_its_errno() -> None:
    d = driver()
    barrier = d.core.send_group(members(2))
    d.flush()
    short = HEADER.pack(HEADER.size + 4, NLMSG.ERROR, 0, barrier - 2, PORT_ID)
    short += (-errno.EEXIST).to_bytes(4, "little", signed=True)
    assert d.receive(short) == []
    finished = only_finished(d.receive(ack_bytes(d.request(barrier))))
    [(position, error)] = finished.failures
    assert position == 0
    check_error(error, ExistsError, errno.EEXIST, barrier - 2, 0)
    assert d.core.stats.malformed == 1


@pytest.mark.parametrize("alone", [True, False])
def test_frames_a_member_never_gets_are_strangers(alone: bool) -> None:
    """An ack, a data frame or a DONE for a member's seq: counted, never finishing."""
    n = 4
    d = driver()
    barrier = d.core.send_group(members(n))
    d.flush()
    first = barrier - n
    member = d.request(first + 1)
    strays = [
        ack(member),
        ack(d.request(first)),
        link_reply(d.request(first + 2), 7),
        link_reply(d.request(first + 2), 8, multi=True),
        Message(NLMSG.DONE, MULTI, DoneMessage(), first + 3, PORT_ID),
    ]
    if alone:
        for stray in strays:
            assert d.receive([stray]) == []
    else:
        assert d.receive(strays) == []
    assert d.core.stats.unknown_seq == len(strays)
    assert d.core.stats.late == 0
    assert d.core.pending == n + 1
    assert d.core.in_flight == n + 1
    assert d.receive(ack_bytes(d.request(barrier))) == [Finished(barrier, None, ())]


def test_frames_for_an_unsent_group_are_strangers() -> None:
    d = driver(max_in_flight=2)
    plain = d.send(new_route(1))
    barrier = d.core.send_group(members(3, start=10))
    assert d.flush_seqs() == [plain]
    d.flush()
    noop = Message(NOOP, REQUEST | ACK, b"", barrier, PORT_ID)
    member = Message(RTM.NEWROUTE, REQUEST, b"", barrier - 1, PORT_ID)
    assert d.receive(encode_message(ack(noop))) == []
    assert d.receive(encode_message(error_reply(member, errno.EEXIST))) == []
    assert d.core.stats.unknown_seq == 2
    assert d.core.pending == 5


def test_error_reply_to_the_barrier_fails_the_other_members() -> None:
    """Not something the kernel does for a NOOP; the core still reports it, once."""
    d = driver()
    barrier = d.core.send_group(members(3))
    d.flush()
    d.receive(error_bytes(d.request(barrier - 2), errno.EEXIST))
    finished = only_finished(d.receive(error_bytes(d.request(barrier), errno.EPERM)))
    assert isinstance(finished.error, KernelError)
    assert finished.error.errno == errno.EPERM
    assert [p for p, _ in finished.failures] == [1]
    assert d.core.pending == 0


def test_data_frame_for_the_barrier_does_not_finish_it() -> None:
    d = driver()
    barrier = d.core.send_group(members(1))
    d.flush()
    events = d.receive([link_reply(d.request(barrier), 1)])
    assert not any(isinstance(e, Finished) for e in events), events
    assert d.core.pending == 2
    assert d.receive(ack_bytes(d.request(barrier))) == [Finished(barrier, None, ())]


# --------------------------------------------------------------------------- window


def test_window_counts_a_group_as_members_plus_one() -> None:
    d = driver(max_in_flight=10)
    g1 = d.core.send_group(members(4))
    g2 = d.core.send_group(members(4, start=10))
    g3 = d.core.send_group(members(4, start=20))
    sent = d.flush_seqs()
    assert sent == [*member_seqs(g1, 4), g1, *member_seqs(g2, 4), g2]
    assert d.core.in_flight == 10
    assert d.core.pending == 15
    assert not d.core.has_data_to_send()
    assert d.core.data_to_send() == []
    assert d.receive(ack_bytes(d.request(g1))) == [Finished(g1, None, ())]
    assert d.core.in_flight == 5
    assert d.core.has_data_to_send()
    assert d.flush_seqs() == [*member_seqs(g3, 4), g3]
    assert d.core.in_flight == 10


def test_window_nearly_full_holds_a_group_and_everything_behind_it() -> None:
    d = driver(max_in_flight=6)
    p1 = d.send(new_route(1))
    group = d.core.send_group(members(5, start=10))  # counts 6: 1 + 6 > 6
    p2 = d.send(new_route(2))  # would fit, but requests go in order
    assert d.flush_seqs() == [p1]
    assert not d.core.has_data_to_send()
    assert d.receive(ack_bytes(d.request(p1))) == [Finished(p1, None)]
    assert d.flush_seqs() == [*member_seqs(group, 5), group]
    assert d.core.in_flight == 6
    assert d.flush_seqs() == []
    assert d.receive(ack_bytes(d.request(group))) == [Finished(group, None, ())]
    assert d.flush_seqs() == [p2]


def test_a_group_larger_than_the_window_goes_alone() -> None:
    d = driver(max_in_flight=4)
    group = d.core.send_group(members(9))
    plain = d.send(new_route(100))
    assert d.flush_seqs() == [*member_seqs(group, 9), group]
    assert d.core.in_flight == 10
    assert not d.core.has_data_to_send()
    assert d.receive(ack_bytes(d.request(group))) == [Finished(group, None, ())]
    assert d.flush_seqs() == [plain]


def test_byte_budget_counts_an_ack_per_member_and_barrier() -> None:
    d = driver(max_reply_bytes=10 * ACK_COST)
    g1 = d.core.send_group(members(4))  # 5 acks' worth
    g2 = d.core.send_group(members(5, start=10))  # 6: 5 + 6 > 10
    g3 = d.core.send_group(members(4, start=20))  # 5
    assert d.flush_seqs() == [*member_seqs(g1, 4), g1]
    assert not d.core.has_data_to_send()
    assert d.receive(ack_bytes(d.request(g1))) == [Finished(g1, None, ())]
    assert d.flush_seqs() == [*member_seqs(g2, 5), g2]
    assert d.receive(ack_bytes(d.request(g2))) == [Finished(g2, None, ())]
    assert d.flush_seqs() == [*member_seqs(g3, 4), g3]
    # Exactly at the budget fits: 5 + 5 = 10.
    g4 = d.core.send_group(members(4, start=30))
    assert d.flush_seqs() == [*member_seqs(g4, 4), g4]
    assert d.core.in_flight == 10


def test_byte_budget_counts_a_reply_for_a_get_member() -> None:
    budget = REPLY_COST + 2 * ACK_COST
    d = driver(max_reply_bytes=budget)
    p1 = d.send(new_route(1))
    get = (int(RTM.GETLINK), REQUEST, LinkMessage(index=1))
    g1 = d.core.send_group([get])  # REPLY_COST + ACK_COST: exactly fills the budget
    assert d.flush_seqs() == [p1, g1 - 1, g1]
    p2 = d.send(new_route(2))
    assert d.flush_seqs() == []
    assert d.receive(ack_bytes(d.request(p1))) == [Finished(p1, None)]
    assert d.flush_seqs() == [p2]  # 2 acks + a GET reply fit
    p3 = d.send(new_route(3))
    assert d.flush_seqs() == []
    # With the GET group gone, route requests are back to one ack each.
    assert d.receive(ack_bytes(d.request(g1))) == [Finished(g1, None, ())]
    assert d.flush_seqs() == [p3]
    g2 = d.core.send_group([get, get])  # 2 * REPLY_COST + ACK_COST > the rest
    assert d.flush_seqs() == []
    d.receive(ack_bytes(d.request(p2)))
    d.receive(ack_bytes(d.request(p3)))
    # Nothing in flight: one entry is always allowed, whatever it costs.
    assert d.flush_seqs() == [g2 - 2, g2 - 1, g2]


# --------------------------------------------------------------------------- overrun


def test_overrun_seen_taints_sent_groups_only() -> None:
    d = driver()
    g1 = d.core.send_group(members(5))
    plain = d.send(new_route(100))
    d.flush()
    assert d.receive(error_bytes(d.request(g1 - 5 + 2), errno.EEXIST)) == []
    g2 = d.core.send_group(members(3, start=10))  # queued, not sent
    d.core.overrun_seen()
    d.flush()
    # A member's error reply read after the report still counts.
    assert d.receive(error_bytes(d.request(g1 - 1), errno.ESRCH)) == []

    finished = only_finished(d.receive(ack_bytes(d.request(g1))))
    assert finished.seq == g1
    assert isinstance(finished.error, OutcomeUnknown)
    assert [p for p, _ in finished.failures] == [2, 4]
    check_error(finished.failures[0][1], ExistsError, errno.EEXIST, g1 - 3, RTM.NEWROUTE)
    check_error(finished.failures[1][1], NotFoundError, errno.ESRCH, g1 - 1, RTM.NEWROUTE)
    # A plain request is answered by its own ack: not tainted.
    assert d.receive(ack_bytes(d.request(plain))) == [Finished(plain, None)]
    # A group sent after the overrun was seen is believed.
    assert d.receive(ack_bytes(d.request(g2))) == [Finished(g2, None, ())]
    assert (d.core.pending, d.core.in_flight) == (0, 0)
    assert d.core.stats.overruns == 0  # overrun_seen() only marks; overrun() counts


def test_overrun_seen_with_all_members_failed_reports_only_failures() -> None:
    d = driver()
    barrier = d.core.send_group(members(2))
    d.flush()
    d.core.overrun_seen()
    d.receive(error_bytes(d.request(barrier - 2), errno.EEXIST))
    d.receive(error_bytes(d.request(barrier - 1), errno.EEXIST))
    finished = only_finished(d.receive(ack_bytes(d.request(barrier))))
    assert [p for p, _ in finished.failures] == [0, 1]
    # Every member is accounted for by its failure; "error" covers no member, and is
    # OutcomeUnknown all the same.  (The batch then writes it over no position.)
    assert isinstance(finished.error, OutcomeUnknown)


def test_overrun_finishes_sent_groups_and_leaves_queued_ones() -> None:
    d = driver(max_in_flight=7)
    g1 = d.core.send_group(members(3))  # 4
    plain = d.send(new_route(100))  # 1
    g2 = d.core.send_group(members(2, start=10))  # 3: 4 + 1 + 3 > 7, waits
    assert d.flush_seqs() == [*member_seqs(g1, 3), g1, plain]
    d.receive(error_bytes(d.request(g1 - 3), errno.EEXIST))
    events = d.core.overrun()
    assert [e.seq for e in events] == [g1, plain]
    group_event, plain_event = events
    assert isinstance(group_event, Finished)
    assert isinstance(group_event.error, OutcomeUnknown)
    [(position, error)] = group_event.failures
    assert position == 0
    check_error(error, ExistsError, errno.EEXIST, g1 - 3, RTM.NEWROUTE)
    assert isinstance(plain_event, Finished)
    assert isinstance(plain_event.error, OutcomeUnknown)
    assert plain_event.failures == ()
    assert d.core.stats.overruns == 1
    assert (d.core.pending, d.core.in_flight) == (3, 0)
    # Replies to what overrun() finished are strangers now.
    assert d.receive(ack_bytes(d.request(g1))) == []
    assert d.receive(error_bytes(d.request(g1 - 1), errno.EEXIST)) == []
    assert d.core.stats.unknown_seq == 2
    # The queued group goes out afterwards and is believed.
    assert d.flush_seqs() == [*member_seqs(g2, 2), g2]
    assert d.receive(ack_bytes(d.request(g2))) == [Finished(g2, None, ())]
    assert (d.core.pending, d.core.in_flight) == (0, 0)


def test_close_reports_each_group_once() -> None:
    d = driver(max_in_flight=6)
    g1 = d.core.send_group(members(4))
    g2 = d.core.send_group(members(6, start=10))  # queued
    plain = d.send(new_route(100))  # queued
    abandoned = d.core.send_group(members(2, start=20))
    d.core.abandon(abandoned)
    d.flush()
    d.receive(error_bytes(d.request(g1 - 1), errno.EEXIST))
    error = ConnectionClosed("closing")
    events = d.core.close(error)
    assert sorted(e.seq for e in events) == sorted([g1, g2, plain])
    by_seq = {e.seq: e for e in events}
    assert all(e.error is error for e in events)
    assert [p for p, _ in by_seq[g1].failures] == [3]
    assert by_seq[g2].failures == by_seq[plain].failures == ()
    assert (d.core.pending, d.core.in_flight) == (0, 0)
    assert d.core.data_to_send() == []
    assert d.receive(ack_bytes(d.request(g1))) == []


# --------------------------------------------------------------------------- abandon


def test_abandon_queued_group_is_never_sent() -> None:
    d = driver(max_in_flight=3)
    plain = d.send(new_route(1))
    group = d.core.send_group(members(4, start=10))
    after = d.send(new_route(2))
    assert d.flush_seqs() == [plain]
    assert d.core.pending == 7
    d.core.abandon(group)
    assert d.core.pending == 2  # its five seqs are free at once
    assert d.receive(ack_bytes(d.request(plain))) == [Finished(plain, None)]
    assert d.flush_seqs() == [after]
    assert all(seq not in d.sent for seq in range(group - 4, group + 1))
    # Abandoning by a member's seq works too, and twice is a no-op.
    g2 = d.core.send_group(members(2, start=20))
    d.core.abandon(g2 - 1)
    d.core.abandon(g2)
    assert d.core.pending == 1
    assert d.core.stats.late == 0


def test_abandon_sent_group_keeps_its_seqs_until_the_barrier() -> None:
    d = driver()
    group = d.core.send_group(members(3))
    d.flush()
    d.core.abandon(group, now=5.0)
    assert (d.core.pending, d.core.in_flight) == (4, 4)
    # The allocator does not hand out the group's seqs while they are reserved.
    d.core._next_seq = group - 3
    plain = d.send(new_route(100))
    assert plain == group + 1
    d.flush()
    # A member's error reply and the barrier ack: no events.
    assert d.receive(error_bytes(d.request(group - 2), errno.EEXIST)) == []
    assert d.receive(ack_bytes(d.request(group))) == []
    assert d.core.stats.late >= 1  # the barrier's ack at least
    assert d.core.stats.unknown_seq == 0
    assert (d.core.pending, d.core.in_flight) == (1, 1)
    assert d.receive(ack_bytes(d.request(plain))) == [Finished(plain, None)]


def test_reap_abandoned_group_frees_its_window_slots() -> None:
    d = driver(max_in_flight=5)
    group = d.core.send_group(members(4))
    plain = d.send(new_route(100))
    d.flush()
    assert d.core.in_flight == 5
    d.core.abandon(group, now=10.0)
    assert d.core.reap_abandoned(before=10.0) == 0  # not older than the cut-off
    assert d.core.reap_abandoned(before=11.0) == 1
    assert d.core.stats.reaped == 1
    assert (d.core.pending, d.core.in_flight) == (1, 0)
    assert d.flush_seqs() == [plain]
    # The barrier's ack, should it ever come, is a stranger.
    assert d.receive(ack_bytes(d.request(group))) == []
    assert d.core.stats.unknown_seq == 1
    assert d.core.stats.late == 0


def test_reap_leaves_groups_not_abandoned() -> None:
    d = driver()
    group = d.core.send_group(members(2))
    d.flush()
    assert d.core.reap_abandoned(before=1e9) == 0
    assert d.receive(ack_bytes(d.request(group))) == [Finished(group, None, ())]


# --------------------------------------------------------------------------- seqs


def test_group_never_wraps_or_uses_seq_zero() -> None:
    d = driver()
    d.core._next_seq = TOP - 2  # three seqs left: not enough for 3 members + barrier
    group = d.core.send_group(members(3))
    assert member_seqs(group, 3) == [1, 2, 3]
    assert group == 4
    # Exactly enough room at the top: the group ends on 2**32 - 1.
    d.core._next_seq = TOP - 3
    top = d.core.send_group(members(3, start=10))
    assert top == TOP
    assert member_seqs(top, 3) == [TOP - 3, TOP - 2, TOP - 1]
    # The next seq after 2**32 - 1 is 1, or the next free one.
    after = d.send(new_route(100))
    assert after == 5
    sent = d.flush_seqs()
    assert 0 not in sent
    assert sent == [1, 2, 3, 4, TOP - 3, TOP - 2, TOP - 1, TOP, 5]
    assert d.receive(ack_bytes(d.request(top))) == [Finished(top, None, ())]
    assert d.receive(ack_bytes(d.request(group))) == [Finished(group, None, ())]


@pytest.mark.parametrize("cursor", [0, 1, TOP])
def test_group_skips_pending_seqs(cursor: int) -> None:
    d = driver()
    d.core._next_seq = 3
    busy = d.send(new_route(1))  # seq 3 stays pending
    assert busy == 3
    d.core._next_seq = cursor
    group = d.core.send_group(members(4))
    block = [*member_seqs(group, 4), group]
    assert busy not in block
    assert 0 not in block
    assert block == list(range(block[0], block[0] + 5))
    assert block[0] >= 4  # above the pending seq, not across it
    other = d.core.send_group(members(4, start=10))
    assert set(block).isdisjoint(range(other - 4, other + 1))
    assert d.core.pending == 11


# --------------------------------------------------------------------------- property


ERRNOS = (errno.EEXIST, errno.ESRCH, errno.ENETUNREACH, errno.EINVAL, errno.ENODEV)
TYPES = (int(RTM.NEWROUTE), int(RTM.DELROUTE))


@dataclass
class Item:
    """One entry as the test queued it: a group (``members``) or a plain request."""

    seq: int  # the barrier's, for a group
    first: int
    kinds: list[tuple[int, int]]  # (msg_type, errno or 0) per member; one for a plain one
    group: bool
    finished: int = 0

    @property
    def count(self) -> int:
        return len(self.kinds) + 1 if self.group else 1

    @property
    def seqs(self) -> list[int]:
        return list(range(self.first, self.seq + 1))


member_spec = st.tuples(st.sampled_from(TYPES), st.sampled_from((0, 0, 0, *ERRNOS)))
item_spec = st.one_of(
    st.tuples(st.just(True), st.lists(member_spec, min_size=1, max_size=20)),
    st.tuples(st.just(False), st.lists(member_spec, min_size=1, max_size=1)),
)


class GroupModel:
    def __init__(self, data: st.DataObject, window: int, max_datagram: int, cursor: int) -> None:
        self.data = data
        self.window = window
        self.d = driver(max_in_flight=window, max_datagram=max_datagram)
        self.d.core._next_seq = cursor
        self.queued: deque[Item] = deque()
        self.sent: deque[Item] = deque()  # sent and not yet answered, in send order
        self.items: list[Item] = []
        self.counter = 0

    @property
    def core(self) -> NetlinkProtocol:
        return self.d.core

    def live_seqs(self) -> set[int]:
        return {seq for item in (*self.queued, *self.sent) for seq in item.seqs}

    def queue(self, group: bool, kinds: list[tuple[int, int]]) -> None:
        live = self.live_seqs()
        self.counter += len(kinds)
        if group:
            requests = [
                (msg_type, *members(1, start=self.counter + i)[0][1:])
                for i, (msg_type, _) in enumerate(kinds)
            ]
            seq = self.core.send_group(requests)
            first = seq - len(kinds)
        else:
            msg_type = kinds[0][0]
            message = new_route(self.counter)
            seq = self.core.send_request(Message(msg_type, message.flags, message.body))
            first = seq
        item = Item(seq, first, kinds, group)
        assert 0 not in item.seqs
        assert 1 <= first <= seq <= TOP  # a group never wraps
        assert live.isdisjoint(item.seqs), f"seqs {item.seqs} overlap pending ones"
        self.queued.append(item)
        self.items.append(item)
        assert self.core.pending == len(self.live_seqs())

    def flush(self) -> None:
        datagrams = self.d.flush()
        for datagram in datagrams:
            seqs = [m.seq for m in datagram]
            # Whole entries, in queue order: a group is never split across datagrams.
            while seqs:
                item = self.queued.popleft()
                assert seqs[: item.count] == item.seqs
                for i, message in enumerate(datagram[: item.count]):
                    if item.group and i == item.count - 1:
                        assert (message.type, message.flags) == (NOOP, REQUEST | ACK)
                    else:
                        assert message.type == item.kinds[i][0]
                        assert message.flags & REQUEST
                        assert bool(message.flags & ACK) != item.group
                seqs = seqs[item.count :]
                datagram = datagram[item.count :]
                self.sent.append(item)
        in_flight = sum(item.count for item in self.sent)
        assert self.core.in_flight == in_flight
        assert in_flight <= self.window or len(self.sent) == 1
        # It sent everything the window allows.
        if self.queued:
            assert self.sent
            assert in_flight + self.queued[0].count > self.window
        assert not self.core.has_data_to_send()

    def answer(self, count: int) -> None:
        """The kernel answers the ``count`` oldest sent entries, in order, in datagrams
        cut at random points."""
        chosen = [self.sent.popleft() for _ in range(min(count, len(self.sent)))]
        if not chosen:
            return
        plan: list[tuple[Item, Message, bool]] = []  # (item, frame, finishes it)
        for item in chosen:
            if item.group:
                for i, (_, code) in enumerate(item.kinds):
                    if code:
                        request = self.d.request(item.first + i)
                        plan.append((item, error_reply(request, code), False))
                plan.append((item, ack(self.d.request(item.seq)), True))
            else:
                request = self.d.request(item.seq)
                code = item.kinds[0][1]
                reply = error_reply(request, code) if code else ack(request)
                plan.append((item, reply, True))
        cuts = self.data.draw(
            st.lists(st.booleans(), min_size=len(plan) - 1, max_size=len(plan) - 1), "cuts"
        )
        chunks: list[list[tuple[Item, Message, bool]]] = [[plan[0]]]
        for cut, step in zip(cuts, plan[1:], strict=True):
            if cut:
                chunks.append([])
            chunks[-1].append(step)
        for chunk in chunks:
            events = self.d.receive(frames(*(frame for _, frame, _ in chunk)))
            expected = [item for item, _, last in chunk if last]
            assert [e.seq for e in events] == [item.seq for item in expected]
            for event, item in zip(events, expected, strict=True):
                assert isinstance(event, Finished)
                self.check(item, event)

    def check(self, item: Item, event: Finished) -> None:
        assert item.finished == 0, f"{item} finished twice"
        item.finished += 1
        if not item.group:
            msg_type, code = item.kinds[0]
            assert event.failures == ()
            if code:
                check_error(
                    event.error, ERRNO_CLASSES.get(code, KernelError), code, item.seq, msg_type
                )
                assert type(event.error) is ERRNO_CLASSES.get(code, KernelError)
            else:
                assert event.error is None
            return
        assert event.error is None
        failing = [(i, kind) for i, kind in enumerate(item.kinds) if kind[1]]
        assert [p for p, _ in event.failures] == [i for i, _ in failing]
        for (_, error), (i, (msg_type, code)) in zip(event.failures, failing, strict=True):
            expected = ERRNO_CLASSES.get(code, KernelError)
            check_error(error, expected, code, item.first + i, msg_type)
            assert type(error) is expected


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    window=st.integers(1, 48),
    max_datagram=st.sampled_from([65536, 300]),
    cursor=st.sampled_from([1, TOP - 30, TOP]),
    plan=st.lists(st.tuples(item_spec, st.integers(0, 3)), min_size=1, max_size=25),
    data=st.data(),
)
def test_groups_finish_exactly_once_with_their_failures(
    window: int,
    max_datagram: int,
    cursor: int,
    plan: Sequence[tuple[tuple[bool, list[tuple[int, int]]], int]],
    data: st.DataObject,
) -> None:
    model = GroupModel(data, window, max_datagram, cursor)
    for (group, kinds), answers in plan:
        model.queue(group, kinds)
        model.flush()
        model.answer(answers)
    for _ in range(len(model.items) + 1):
        model.flush()
        model.answer(len(model.sent))
    assert not model.queued and not model.sent
    assert all(item.finished == 1 for item in model.items)
    core = model.core
    assert (core.pending, core.in_flight) == (0, 0)
    assert core.data_to_send() == []
    stats = core.stats
    assert (stats.unknown_seq, stats.late, stats.malformed) == (0, 0, 0)
