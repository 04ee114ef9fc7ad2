"""A model-based test of the sans-I/O core: a random-operation driver under hypothesis.

The driver plays both sides: the caller (send doit and dump requests, flush, abandon)
and the kernel (answer any subset of the sent requests, frames interleaved in any order
across requests but in order within one request, split into datagrams at random; plus
spoofed, stray and malformed datagrams and ENOBUFS overruns).  A plain-Python model
predicts every event exactly, and the invariants are checked after each step.

A hand-rolled driver rather than ``hypothesis.stateful``: the stateful runner's swarm
testing switched the "kernel answers" rule off in most runs; here each operation has a
fixed weight.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import hypothesis.strategies as st
from hypothesis import given, settings

from asyncroute._codec import encode_message
from asyncroute._frame import HEADER
from asyncroute._protocol import Finished, NetlinkProtocol, Reply
from asyncroute.constants import NLM_F, NLMSG, RTM
from asyncroute.errors import DumpInterrupted, KernelError, OutcomeUnknown
from asyncroute.messages import Message
from asyncroute.testing.fake_kernel import ack, error_reply

from .helpers import (
    PORT_ID,
    Driver,
    Event,
    done_frame,
    dump_frames,
    dump_request,
    get_request,
    link_reply,
    new_route,
)

ERRNOS = (errno.EEXIST, errno.ENOENT, errno.EPERM, errno.EINVAL, errno.EBUSY, errno.ENODEV)
DUMP_INTR = int(NLM_F.DUMP_INTR)
T = TypeVar("T")

Kind = Literal["route", "get", "dump"]
State = Literal["queued", "sent", "gone"]


@dataclass
class Spec:
    """How the kernel will answer one request."""

    kind: Kind
    ack: bool = True  # "get": ask for an ack after the reply
    errno: int = 0  # answer with an error reply instead
    frames: int = 0  # "dump": data frames before NLMSG_DONE
    intr_at: int | None = None  # "dump": index of the frame (frames = DONE) with DUMP_INTR
    done_errno: int = 0  # "dump": errno carried by NLMSG_DONE


@dataclass(repr=False)
class Req:
    """The model of one request: what the core should know about it."""

    seq: int
    spec: Spec
    state: State = "queued"  # "gone": the core holds no entry for it any more
    abandoned: bool = False
    plan: list[Message] = field(default_factory=list)  # the kernel's answer, once sent
    cursor: int = 0  # frames of ``plan`` the kernel has delivered
    replies: int = 0  # Reply events seen
    finished: int = 0  # Finished events seen
    overrun: bool = False  # finished by overrun(): its frames are strays now

    def __repr__(self) -> str:
        flags = " abandoned" * self.abandoned + " overrun" * self.overrun
        progress = f"{self.cursor}/{len(self.plan)} frames"
        return f"<seq {self.seq} {self.spec.kind} {self.state}{flags} {progress}>"

    @property
    def dump(self) -> bool:
        return self.spec.kind == "dump"

    @property
    def answering(self) -> bool:
        """The kernel still has frames to send for it."""
        return self.cursor < len(self.plan)


def build_request(spec: Spec, i: int) -> Message:
    if spec.kind == "route":
        return new_route(i)
    if spec.kind == "get":
        return get_request(i, ack=spec.ack)
    return dump_request()


def build_plan(spec: Spec, request: Message) -> list[Message]:
    """The frames the kernel sends for ``request``, in order; the last one finishes it."""
    if spec.errno:
        return [error_reply(request, spec.errno, f"errno {spec.errno}", 16)]
    if spec.kind == "route":
        return [ack(request)]
    if spec.kind == "get":
        reply = link_reply(request, 1)
        return [reply, ack(request)] if spec.ack else [reply]
    plan = dump_frames(request, spec.frames)[:-1]
    plan.append(done_frame(request, -spec.done_errno))
    if spec.intr_at is not None:
        m = plan[spec.intr_at]
        plan[spec.intr_at] = Message(m.type, m.flags | DUMP_INTR, m.body, m.seq, m.port_id)
    return plan


def check_error(req: Req, error: object) -> None:
    """``error`` is what ``req``'s Finished event should carry."""
    spec = req.spec
    expected_errno = spec.errno or (spec.done_errno if req.dump else 0)
    if expected_errno:
        assert isinstance(error, KernelError), (req, error)
        assert error.errno == expected_errno
        assert error.seq == req.seq
    elif req.dump and spec.intr_at is not None:
        assert isinstance(error, DumpInterrupted), (req, error)
    else:
        assert error is None, (req, error)


specs = st.one_of(
    st.builds(Spec, kind=st.just("route"), errno=st.sampled_from((0, 0, *ERRNOS))),
    st.builds(Spec, kind=st.just("get"), ack=st.booleans(), errno=st.sampled_from((0, 0, *ERRNOS))),
)


@st.composite
def dump_specs(draw: st.DrawFn) -> Spec:
    frames = draw(st.integers(0, 4))
    outcome = draw(st.sampled_from(["ok", "ok", "intr", "done_error", "error_reply"]))
    if outcome == "error_reply":
        return Spec("dump", errno=draw(st.sampled_from(ERRNOS)))
    if outcome == "done_error":
        return Spec("dump", frames=frames, done_errno=draw(st.sampled_from(ERRNOS)))
    if outcome == "intr":
        return Spec("dump", frames=frames, intr_at=draw(st.integers(0, frames)))
    return Spec("dump", frames=frames)


def garbage() -> st.SearchStrategy[bytes]:
    """Datagrams whose first frame cannot be parsed (so nothing in them can match)."""
    short = st.binary(min_size=1, max_size=HEADER.size - 1)
    fields = st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1))

    @st.composite
    def bad_length(draw: st.DrawFn) -> bytes:
        tail = draw(st.binary(max_size=24))
        too_short = st.integers(0, HEADER.size - 1)
        too_long = st.integers(HEADER.size + len(tail) + 1, 2**32 - 1)
        length = draw(st.one_of(too_short, too_long))
        msg_type, flags, seq = draw(fields)
        return HEADER.pack(length, msg_type, flags, seq, PORT_ID) + tail

    return st.one_of(short, bad_length())


Datagram = list[tuple[Req, Message]]

#: Operations and their weights (a name repeated is drawn more often).
OPERATIONS = (
    *("send", "send", "send", "flush", "flush"),
    *("answer", "answer", "answer", "answer"),
    *("abandon", "disturb", "disturb", "jump"),
)
DISTURBANCES = ("foreign", "multicast", "port", "seq", "garbage", "garbage", "overrun")


class Model:
    """The core under test, the model of every request, and the kernel's side."""

    def __init__(self, data: st.DataObject, window: int, max_datagram: int) -> None:
        self.data = data
        self.window = window
        self.max_datagram = max_datagram
        self.driver = Driver(max_in_flight=window, max_datagram=max_datagram)
        self.reqs: list[Req] = []  # every request, in creation order
        self.by_seq: dict[int, Req] = {}  # the latest request given each seq
        self.counter = 0

    @property
    def core(self) -> NetlinkProtocol:
        return self.driver.core

    def draw(self, strategy: st.SearchStrategy[T], label: str) -> T:
        return self.data.draw(strategy, label=label)

    # ------------------------------------------------------------------ model queries

    def in_state(self, state: State) -> list[Req]:
        return [r for r in self.reqs if r.state == state]

    def queued(self) -> list[Req]:
        return [r for r in self.in_state("queued") if not r.abandoned]

    def active_dump(self) -> Req | None:
        dumps = [r for r in self.in_state("sent") if r.dump]
        assert len(dumps) <= 1, f"two dumps sent and unfinished: {dumps}"
        return dumps[0] if dumps else None

    def sendable(self) -> bool:
        """The model's answer to: would data_to_send() send something now?"""
        if len(self.in_state("sent")) >= self.window:
            return False
        queued = self.queued()
        if any(not r.dump for r in queued):
            return True
        return self.active_dump() is None and any(r.dump for r in queued)

    def answering(self) -> list[Req]:
        return [r for r in self.reqs if r.answering]

    # ------------------------------------------------------------------ caller side

    def send(self) -> None:
        """Send a few doit and dump requests; maybe flush, as the connection does."""
        batch = self.draw(st.lists(st.one_of(specs, dump_specs()), min_size=1, max_size=5), "send")
        for spec in batch:
            self.counter += 1
            request = build_request(spec, self.counter)
            seq = self.driver.send(request, dump=spec.kind == "dump")
            assert seq != 0
            old = self.by_seq.get(seq)
            if old is not None:
                assert old.state == "gone", f"seq {seq} reused while {old} holds it"
                # Frames of a request finished by overrun() that the kernel had not sent
                # yet: say they were lost with the overrun, or they would answer this one.
                del old.plan[old.cursor :]
            req = Req(seq, spec)
            self.reqs.append(req)
            self.by_seq[seq] = req
        if self.draw(st.booleans(), "then flush"):
            self.flush()

    def flush(self) -> None:
        doits_before = [r.seq for r in self.queued() if not r.dump]
        dumps_before = [r.seq for r in self.queued() if r.dump]
        dump_running = self.active_dump() is not None
        datagrams = self.driver.flush()
        raws = self.driver.datagrams[len(self.driver.datagrams) - len(datagrams) :]
        for raw, datagram in zip(raws, datagrams, strict=True):
            # Only a request too big on its own may exceed max_datagram.
            assert len(raw) <= self.max_datagram or len(datagram) == 1
        sent = [m for datagram in datagrams for m in datagram]
        for message in sent:
            req = self.by_seq[message.seq]
            assert req.state == "queued", f"seq {req.seq} sent twice"
            assert not req.abandoned, f"seq {req.seq} sent after it was abandoned"
            assert message.port_id == PORT_ID
            req.state = "sent"
            req.plan = build_plan(req.spec, message)
        # FIFO among doits and among dumps; a dump only when the slot is free.
        sent_doits = [m.seq for m in sent if not self.by_seq[m.seq].dump]
        sent_dumps = [m.seq for m in sent if self.by_seq[m.seq].dump]
        assert sent_doits == doits_before[: len(sent_doits)]
        assert sent_dumps == dumps_before[: len(sent_dumps)]
        assert len(sent_dumps) <= (0 if dump_running else 1)
        # It sent all that the window and the dump slot allow.
        assert not self.sendable()
        assert self.core.data_to_send() == []

    def abandon(self) -> None:
        live = [r for r in self.reqs if r.state != "gone" and not r.abandoned]
        # A dead request whose seq went to a newer one is not the core's to forget.
        dead = [
            r for r in self.reqs if (r.state == "gone" or r.abandoned) and self.by_seq[r.seq] is r
        ]
        choices = live or dead
        if not choices:
            return
        req = self.draw(st.sampled_from(choices), "abandon")
        self.core.abandon(req.seq)  # a no-op for a seq already gone or abandoned
        if req in live:
            req.abandoned = True
            if req.state == "queued":
                req.state = "gone"

    def jump(self) -> None:
        """Move the seq allocator onto seqs in use, 0, or the top of the seq space.

        ``_next_seq`` is private; setting it is the only way to make the allocator meet
        pending seqs without sending 2**32 requests.
        """
        targets = sorted({*self.by_seq, 0, 0xFFFFFFFF})
        self.core._next_seq = self.draw(st.sampled_from(targets), "jump to seq")

    # ------------------------------------------------------------------ kernel side

    def answer(self, *, everything: bool = False) -> None:
        """The kernel answers some sent requests (all of them when ``everything``)."""
        if not everything and self.draw(st.booleans(), "flush first"):
            self.flush()
        candidates = self.answering()
        if not candidates:
            return
        if everything:
            chosen = candidates
        else:
            chosen = self.draw(
                st.lists(st.sampled_from(candidates), min_size=1, unique_by=lambda r: r.seq),
                "answered",
            )
        tokens: list[Req] = []
        for req in chosen:
            remaining = len(req.plan) - req.cursor
            count = remaining if everything else self.draw(st.integers(1, remaining), "frames")
            tokens += [req] * count
        order = self.draw(st.permutations(tokens), "order")
        position = {id(req): req.cursor for req in chosen}
        frames: Datagram = []
        for req in order:
            frames.append((req, req.plan[position[id(req)]]))
            position[id(req)] += 1
        cuts = self.draw(
            st.lists(st.booleans(), min_size=len(frames) - 1, max_size=len(frames) - 1), "cuts"
        )
        datagrams: list[Datagram] = [[frames[0]]]
        for cut, frame in zip(cuts, frames[1:], strict=True):
            if cut:
                datagrams.append([])
            datagrams[-1].append(frame)
        tail = self.draw(st.one_of(st.just(b""), garbage()), "trailing garbage")
        self.deliver(datagrams, tail)

    def deliver(self, datagrams: list[Datagram], trailing_garbage: bytes) -> None:
        """Send ``datagrams`` (frames from the requests' plans) and check every event."""
        stats = self.core.stats
        for i, datagram in enumerate(datagrams):
            last = i == len(datagrams) - 1
            expected: list[tuple[Req, Message | None]] = []  # None: a Finished event
            late = unknown = 0
            for req, frame in datagram:
                assert frame is req.plan[req.cursor]
                req.cursor += 1
                if req.state != "sent":
                    assert req.overrun
                    unknown += 1  # overrun() finished it already: a stray
                    continue
                if req.abandoned:
                    late += 1
                elif frame.type not in (NLMSG.ERROR, NLMSG.DONE):
                    expected.append((req, frame))
                if not req.answering:  # its last frame finishes it
                    req.state = "gone"
                    if not req.abandoned:
                        expected.append((req, None))
            data = b"".join(encode_message(frame) for _, frame in datagram)
            if last:
                data += trailing_garbage
            before = (stats.late, stats.unknown_seq, stats.malformed)
            events = self.driver.receive(data)
            self.check_events(events, expected)
            assert stats.late - before[0] >= late
            assert stats.unknown_seq - before[1] == unknown
            assert stats.malformed - before[2] == (1 if trailing_garbage and last else 0)

    def check_events(self, events: list[Event], expected: list[tuple[Req, Message | None]]) -> None:
        assert len(events) == len(expected), (events, expected)
        for event, (req, frame) in zip(events, expected, strict=True):
            assert event.seq == req.seq
            assert not req.abandoned
            assert req.finished == 0, f"seq {req.seq}: an event after its Finished"
            if frame is None:
                assert isinstance(event, Finished), event
                data_frames = [m for m in req.plan if m.type not in (NLMSG.ERROR, NLMSG.DONE)]
                assert req.replies == len(data_frames), "Finished before all its Replies"
                check_error(req, event.error)
                req.finished += 1
            else:
                assert isinstance(event, Reply), event
                assert event.message.seq == req.seq
                assert event.message == frame
                req.replies += 1

    # ------------------------------------------------------------------ noise

    def disturb(self) -> None:
        """Noise on the socket: a spoofed or stray frame, garbage, or an ENOBUFS."""
        what = self.draw(st.sampled_from(DISTURBANCES), "disturb")
        if what == "overrun":
            self.overrun()
        elif what == "garbage":
            before = self.core.stats.malformed
            assert self.driver.receive(self.draw(garbage(), "garbage")) == []
            assert self.core.stats.malformed == before + 1
        else:
            self.spoof(what)

    def overrun(self) -> None:
        events = self.core.overrun()
        expected = {r.seq for r in self.in_state("sent") if not r.dump and not r.abandoned}
        assert sorted(e.seq for e in events) == sorted(expected)
        for event in events:
            assert isinstance(event, Finished)
            assert isinstance(event.error, OutcomeUnknown)
            self.by_seq[event.seq].finished += 1
        for req in self.in_state("sent"):
            if not req.dump:
                req.state = "gone"
                req.overrun = True  # the kernel may still send its frames: strays

    def spoof(self, mode: str) -> None:
        stats = self.core.stats
        before = (stats.foreign, stats.multicast, stats.unknown_seq)
        live = [r for r in self.answering() if r.state == "sent"]
        if mode != "seq" and live:
            req = self.draw(st.sampled_from(live), "spoofed request")
            frame = req.plan[req.cursor]  # the frame the kernel would send next
        else:
            mode = "seq"
            busy = {r.seq for r in self.in_state("sent")}
            seq = self.draw(
                st.one_of(
                    st.sampled_from(sorted(self.by_seq) or [0]), st.integers(0, 2**32 - 1)
                ).filter(lambda s: s not in busy),
                "stray seq",
            )
            frame = ack(Message(RTM.NEWROUTE, int(NLM_F.REQUEST), b"", seq, PORT_ID))
        if mode == "port":
            frame = Message(frame.type, frame.flags, frame.body, frame.seq, PORT_ID + 1)
        events = self.driver.receive(
            encode_message(frame),
            sender_port_id=7 if mode == "foreign" else 0,
            sender_groups=1 if mode == "multicast" else 0,
        )
        assert events == []
        after = (stats.foreign, stats.multicast, stats.unknown_seq)
        bumped = {"foreign": 0, "multicast": 1, "port": 2, "seq": 2}[mode]
        assert [a - b for a, b in zip(after, before, strict=True)] == [
            int(i == bumped) for i in range(3)
        ]

    # ------------------------------------------------------------------ invariants

    def check_invariants(self) -> None:
        sent = self.in_state("sent")
        assert self.core.in_flight == len(sent) <= self.window
        assert self.core.pending == len(sent) + len(self.queued())
        self.active_dump()  # at most one dump sent and unfinished
        if self.sendable():
            assert self.core.has_data_to_send()
        for req in self.reqs:
            assert req.finished <= 1
            if req.abandoned:
                assert req.finished == 0

    def drain(self) -> None:
        """Answer everything; then every request not abandoned finished exactly once."""
        for _ in range(2 * len(self.reqs) + 2):
            self.flush()
            if not self.answering() and not self.queued():
                break
            self.answer(everything=True)
            self.check_invariants()
        assert not self.answering()
        assert not self.queued()
        assert self.core.pending == 0
        assert self.core.in_flight == 0
        assert self.core.data_to_send() == []
        for req in self.reqs:
            if req.abandoned:
                assert req.finished == 0
            else:
                assert req.finished == 1, f"seq {req.seq} never finished: {req}"


@settings(max_examples=300, deadline=None)
@given(
    window=st.integers(1, 4),
    max_datagram=st.sampled_from([65536, 100]),
    first_seq=st.sampled_from([1, 0xFFFFFFFC]),
    data=st.data(),
)
def test_core_matches_model(
    window: int, max_datagram: int, first_seq: int, data: st.DataObject
) -> None:
    model = Model(data, window, max_datagram)
    # Start near the top of the seq space in half the runs, to cross the wrap (private
    # attribute: the core has no public way to choose seqs).
    model.core._next_seq = first_seq
    operations = {
        "send": model.send,
        "flush": model.flush,
        "answer": model.answer,
        "abandon": model.abandon,
        "disturb": model.disturb,
        "jump": model.jump,
    }
    for _ in range(data.draw(st.integers(0, 40), label="steps")):
        operations[data.draw(st.sampled_from(OPERATIONS), label="operation")]()
        model.check_invariants()
    model.drain()
