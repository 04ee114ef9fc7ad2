"""Regression tests for a bug the fuzz properties found (fixed in 3bd75cb).

**An error reply whose code is INT32_MIN killed the reader.**  ``NLMSG_ERROR.error`` is an
``int``; the core turns ``code < 0`` into ``kernel_error(-code)``, and for ``-2**31``
that is ``2**31``, which ``os.strerror()`` (in ``KernelError.__init__``) refused with
OverflowError.  ``NetlinkProtocol.receive_datagram`` promises never to raise on bad
input, so nothing above it caught that:

* trio: the exception left the reader task and ``_trio_driver`` closed the connection —
  one datagram closed it, every waiting caller got ConnectionClosed;
* asyncio: the exception left ``_on_readable`` (the event loop logged it); the events
  of that datagram were lost and the request waited until its timeout.

The same path was taken for NLMSG_DONE with that code and for a group member's error
reply.  ``test_core_never_raises_and_keeps_its_books`` and
``test_poisoned_datagrams_never_kill_the_reader`` found it within a few thousand
examples (and now try it first, as an explicit example); these tests pin the minimal
cases.
"""

from __future__ import annotations

import struct

import anyio
import pytest

from asyncroute._protocol import Finished, NetlinkProtocol
from asyncroute.constants import AF_INET, NLM_F, NLMSG, RTM
from asyncroute.errors import AsyncrouteError
from asyncroute.messages import Message, RouteMessage
from asyncroute.testing.fake_kernel import FakeKernel

INT32_MIN = -(2**31)
NEWROUTE = Message(RTM.NEWROUTE, int(NLM_F.CREATE), RouteMessage(family=AF_INET))


def error_frame(seq: int, port: int, code: int = INT32_MIN) -> bytes:
    """A capped NLMSG_ERROR with ``code`` (default INT32_MIN) for ``seq``."""
    echo = struct.pack("=IHHII", 16, RTM.NEWROUTE, 0, seq, port)
    payload = struct.pack("=i", code) + echo
    return struct.pack("=IHHII", 16 + len(payload), NLMSG.ERROR, NLM_F.CAPPED, seq, port) + payload


def int_min_done(seq: int, port: int) -> bytes:
    payload = struct.pack("=i", INT32_MIN)
    return struct.pack("=IHHII", 20, NLMSG.DONE, NLM_F.MULTI, seq, port) + payload


@pytest.mark.parametrize("kind", ["error", "done", "group member"])
def test_core_rejects_an_error_code_of_int32_min(kind: str) -> None:
    core = NetlinkProtocol(max_in_flight=8, port_id=7)
    flags = int(NLM_F.REQUEST | NLM_F.ACK)
    if kind == "group member":
        seq = core.send_group([(RTM.NEWROUTE, 0, bytes(12))])
        target = seq - 1
    else:
        dump = kind == "done"
        flags |= int(NLM_F.DUMP) if dump else 0
        seq = target = core.send_request(NEWROUTE, dump=dump, flags=flags)
    core.data_to_send()
    frame = int_min_done(target, 7) if kind == "done" else error_frame(target, 7)
    events = core.receive_datagram(frame)  # raises OverflowError today
    if kind == "group member":  # the member's failure is reported with the barrier's ack
        assert events == []
        (finished,) = core.receive_datagram(error_frame(seq, 7, code=0))
        assert isinstance(finished, Finished) and finished.seq == seq
        assert len(finished.failures) == 1
        assert isinstance(finished.failures[0][1], AsyncrouteError)
    else:
        (finished,) = events
        assert isinstance(finished, Finished) and finished.seq == seq
        assert isinstance(finished.error, AsyncrouteError)
    assert core.pending == 0


@pytest.mark.anyio
async def test_an_error_code_of_int32_min_does_not_kill_the_connection() -> None:
    held: list[Message] = []

    def handler(request: Message) -> list[Message] | None:
        held.append(request)
        return None

    kernel = FakeKernel(handler)
    outcome: list[object] = []

    async def call(conn: object) -> None:
        try:
            outcome.append(await conn.request(NEWROUTE))  # type: ignore[attr-defined]
        except AsyncrouteError as exc:
            outcome.append(exc)

    async with kernel.connect(timeout=2) as conn:
        async with anyio.create_task_group() as group:
            group.start_soon(call, conn)
            with anyio.fail_after(2):
                while not held:
                    await anyio.sleep(0)
            kernel.send(error_frame(held[0].seq, held[0].port_id))
            with anyio.fail_after(1):  # answered by the error reply, not by a timeout
                while not outcome:
                    await anyio.sleep(0.001)
        assert isinstance(outcome[0], AsyncrouteError), outcome
        assert not conn.closed
