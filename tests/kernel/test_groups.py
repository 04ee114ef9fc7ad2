"""Kernel tests of groups: unacked change requests closed by one acked NLMSG_NOOP.

Every test runs in a fresh namespace from the ``netns`` fixture (veth ``v0``/``v1`` up,
``192.0.2.2/24`` on ``v0``, so ``192.0.2.1`` is an on-link gateway and ``203.0.113.1``
is not reachable at all).  What the kernel holds is read back through
:mod:`tests.oracle` (``ip -json``), never through asyncroute.  The raw-socket test uses
no asyncroute at all: it checks on the kernel itself what groups rely on.

Private attributes used:

- ``conn._sock``: the socket's inode (through :mod:`tests.kernel.guard`), to prove each
  connection is inside its test namespace before it writes anything; and the kernel's
  own drop counter (``SO_MEMINFO``), a witness of an overrun independent of asyncroute.
- ``conn._core``: its ``send_group`` is wrapped to record the sizes of the groups the
  connection really sent (the test's bad items must sit at the first and the last
  position of a group), and ``pending``/``in_flight`` show nothing stays reserved.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from ipaddress import IPv4Address

import anyio
import pytest

from asyncroute import (
    NLM_F,
    RTM,
    Connection,
    KernelError,
    Message,
    NotFoundError,
    OutcomeUnknown,
    Route,
    RouteMessage,
)
from asyncroute.connection import group_size
from asyncroute.errors import ExistsError
from asyncroute.testing import Namespace
from tests import oracle
from tests.kernel.guard import connect_in, netlink_inodes

pytestmark = pytest.mark.kernel

AF_INET = 2
RTPROT_BOOT = 3
RTN_UNICAST = 1
TABLE = 100
GATEWAY = IPv4Address("192.0.2.1")
UNREACHABLE = IPv4Address("203.0.113.1")  # no route to it: ENETUNREACH
#: The window given to connections whose group boundaries a test relies on: groups of
#: group_size(129) = 64, a divisor of the batch's yield interval, so that pauses fall
#: on group boundaries (the recorded group sizes are checked all the same).
WINDOW = 129
#: Seconds for late datagrams of an overrun call to land (see the overrun test).
SETTLE = 0.2
#: Seconds a test body may take before it is failed instead of hanging the run.
BODY_LIMIT = 20.0

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, seq, port id
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol,
#                                       scope, type, flags
_RTATTR = struct.Struct("=HH")  # length, type
_ERROR_CODE = struct.Struct("=i")
SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # socket(7): nine u32 counters
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
NLMSG_NOOP, NLMSG_ERROR = 1, 2


# --------------------------------------------------------------------------- helpers


def ifindex(ns: Namespace, name: str = "v0") -> int:
    """The interface index of ``name``, read with ``ip`` (not with asyncroute)."""
    (index,) = [link["ifindex"] for link in oracle.links(ns.name) if link["ifname"] == name]
    return int(index)


def host(base: str, i: int) -> IPv4Address:
    """``base.(i // 256).(i % 256)``."""
    return IPv4Address(f"{base}.{i // 256}.{i % 256}")


def route_message(
    msg_type: int,
    dst: IPv4Address,
    oif: int,
    gateway: IPv4Address = GATEWAY,
    flags: int = int(NLM_F.CREATE | NLM_F.EXCL),
) -> Message:
    return Message(
        msg_type,
        flags,
        RouteMessage(
            family=AF_INET,
            dst_len=32,
            table=TABLE,
            protocol=RTPROT_BOOT,
            type=RTN_UNICAST,
            dst=dst,
            gateway=gateway,
            oif=oif,
        ),
    )


def summary(results: Sequence[object]) -> Counter[str]:
    """Outcomes by kind (the exception's class and errno), for assertion messages."""
    return Counter(
        repr(r) if r is None or r is True else f"{type(r).__name__}({getattr(r, 'errno', '')})"
        for r in results
    )


def record_groups(conn: Connection) -> list[int]:
    """Wrap the connection's core so that the size of every group it seals is recorded
    (private ``conn._core``: the group boundaries are not visible otherwise)."""
    core = conn._core
    sizes: list[int] = []
    send_group: Callable[..., int] = core.send_group
    send_bodies: Callable[..., int] = core.send_bodies

    def recording(requests: Sequence[tuple[int, int, object]]) -> int:
        sizes.append(len(requests))
        return send_group(requests)

    def recording_bodies(msg_type: int, flags: int, bodies: Sequence[bytes]) -> int:
        sizes.append(len(bodies))
        return send_bodies(msg_type, flags, bodies)

    core.send_group = recording  # type: ignore[method-assign]
    core.send_bodies = recording_bodies  # type: ignore[method-assign]
    return sizes


def edges(sizes: Sequence[int]) -> tuple[set[int], set[int]]:
    """The positions of the first and of the last member of each group."""
    firsts: set[int] = set()
    lasts: set[int] = set()
    start = 0
    for size in sizes:
        firsts.add(start)
        lasts.add(start + size - 1)
        start += size
    return firsts, lasts


# =========================================================================== failures by position


@pytest.mark.anyio
async def test_request_many_reports_each_failure_at_its_position(netns: Namespace) -> None:
    """Both backends.  1,000 route changes in groups, with refused ones at chosen
    positions (first and last member of groups included): each result says exactly what
    the kernel did with its request, and the table holds exactly the routes that
    succeeded."""
    count = 1_000
    oif = ifindex(netns)
    with anyio.fail_after(BODY_LIMIT):
        async with connect_in(netns, max_in_flight=WINDOW) as conn:
            size = group_size(conn.max_in_flight)
            assert size == 64
            # position → (errno, message type) of the refusal the kernel will send
            bad: dict[int, tuple[int, int]] = {}
            for position in (0, size - 1, size, 2 * size - 1, 5, 300, count - 2):
                bad[position] = (errno.ENETUNREACH, RTM.NEWROUTE)
            for position in (2 * size, 3 * size - 1, 3 * size, 7, 8, 9, 400, count - 1):
                bad[position] = (errno.ESRCH, RTM.DELROUTE)
            # A duplicate of the route just before it (same group): EEXIST proves the
            # kernel ran the group's members in order.
            for position in (11, 4 * size - 1):
                bad[position] = (errno.EEXIST, RTM.NEWROUTE)

            messages: list[Message] = []
            for i in range(count):
                code = bad.get(i, (0, 0))[0]
                if code == errno.ENETUNREACH:
                    messages.append(
                        route_message(RTM.NEWROUTE, host("198.18", i), oif, UNREACHABLE)
                    )
                elif code == errno.ESRCH:
                    messages.append(route_message(RTM.DELROUTE, host("198.19", i), oif, flags=0))
                elif code == errno.EEXIST:
                    messages.append(route_message(RTM.NEWROUTE, host("198.18", i - 1), oif))
                else:
                    messages.append(route_message(RTM.NEWROUTE, host("198.18", i), oif))
            good = {f"{host('198.18', i)}/32" for i in range(count) if i not in bad}

            sizes = record_groups(conn)
            results = await conn.request_many(messages)

            assert sum(sizes) == count
            firsts, lasts = edges(sizes)
            assert {0, size, 2 * size, 3 * size} <= firsts, sizes
            assert {size - 1, 2 * size - 1, 3 * size - 1, 4 * size - 1, count - 1} <= lasts
            assert len(results) == count
            failed = {i: r for i, r in enumerate(results) if r is not None}
            assert set(failed) == set(bad), summary(results)
            for position, (code, msg_type) in bad.items():
                error = failed[position]
                assert isinstance(error, KernelError), (position, error)
                assert (error.errno, error.msg_type) == (code, msg_type), (position, error)
            assert all(
                isinstance(failed[p], NotFoundError) for p in bad if bad[p][0] == errno.ESRCH
            )
            assert all(isinstance(failed[p], ExistsError) for p in bad if bad[p][0] == errno.EEXIST)
            # The error names the member's own seq: the seqs of one group are consecutive.
            first_error = failed[0]
            last_error = failed[size - 1]
            assert isinstance(first_error, KernelError)
            assert isinstance(last_error, KernelError)
            assert last_error.seq - first_error.seq == size - 1

            stats = conn.stats
            noticed = (stats.overruns, stats.unknown_seq, stats.late, stats.malformed)
            assert noticed == (0, 0, 0, 0), stats
            assert (conn._core.pending, conn._core.in_flight) == (0, 0)
    assert oracle.route_dsts(netns.name, table=TABLE) == good


@pytest.mark.anyio
async def test_upsert_and_delete_many_failures_at_group_edges(netns: Namespace) -> None:
    """Both backends.  The route API over groups: True for each route the kernel took,
    the kernel's error at exactly the positions it refused."""
    count = 600
    routes = [
        Route(f"{host('198.18', i)}/32", nexthop="192.0.2.1", device="v0", table=TABLE)
        for i in range(count)
    ]
    with anyio.fail_after(BODY_LIMIT):
        async with connect_in(netns, max_in_flight=WINDOW) as conn:
            size = group_size(conn.max_in_flight)
            assert size == 64
            # Route i is installed for i not in `skipped`; deleting all of them then fails
            # exactly at `skipped` (ESRCH) — first and last members of groups among them.
            skipped = {0, size - 1, size, 2 * size - 1, 17, 401, count - 1}
            installed = [r for i, r in enumerate(routes) if i not in skipped]
            upserted = await conn.upsert_many(installed)
            assert all(r is True for r in upserted), summary(upserted)
            expected = {f"{host('198.18', i)}/32" for i in range(count) if i not in skipped}
            assert oracle.route_dsts(netns.name, table=TABLE) == expected | {"192.0.2.1/32"}

            sizes = record_groups(conn)
            deleted = await conn.delete_many(routes)
            firsts, lasts = edges(sizes)
            assert {0, size, 2 * size} <= firsts and {size - 1, 2 * size - 1} <= lasts, sizes
            assert len(deleted) == count
            refused = {i for i, r in enumerate(deleted) if r is not True}
            assert refused == skipped, summary(deleted)
            for i in skipped:
                error = deleted[i]
                assert isinstance(error, NotFoundError), (i, error)
                assert (error.errno, error.msg_type) == (errno.ESRCH, RTM.DELROUTE)
            assert conn.stats.overruns == 0, conn.stats
    assert oracle.route_dsts(netns.name, table=TABLE) == {"192.0.2.1/32"}


# =========================================================================== the raw kernel


def raw_socket_in(ns: Namespace) -> socket.socket:
    """A plain NETLINK_ROUTE socket created inside ``ns`` (no asyncroute): ``setns`` on a
    thread of its own, which ends right after."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                    code = ctypes.get_errno()
                    raise OSError(code, os.strerror(code))
            finally:
                os.close(fd)
            made.append(socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    sock = made[0]
    inode = os.fstat(sock.fileno()).st_ino
    try:
        sock.bind((0, 0))  # only bound sockets are listed in /proc/net/netlink
        assert inode in netlink_inodes(ns.name)
        assert inode not in netlink_inodes(None)
    except BaseException:
        sock.close()
        raise
    return sock


def raw_route(seq: int, dst: IPv4Address, gateway: IPv4Address, oif: int) -> bytes:
    """An RTM_NEWROUTE without NLM_F_ACK, packed with ``struct``."""
    attrs = b"".join(
        [
            _RTATTR.pack(8, RTA_DST) + dst.packed,
            _RTATTR.pack(8, RTA_GATEWAY) + gateway.packed,
            _RTATTR.pack(8, RTA_OIF) + struct.pack("=I", oif),
        ]
    )
    body = _RTMSG.pack(AF_INET, 32, 0, 0, TABLE, RTPROT_BOOT, 0, RTN_UNICAST, 0) + attrs
    flags = int(NLM_F.REQUEST | NLM_F.CREATE | NLM_F.EXCL)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM.NEWROUTE, flags, seq, 0) + body


def test_kernel_answers_only_failures_then_the_barrier(netns: Namespace) -> None:
    """What groups rely on, on a plain socket: three RTM_NEWROUTE without NLM_F_ACK (the
    middle one refused) and an acked NLMSG_NOOP in one send give exactly two datagrams:
    the middle one's error, then the NOOP's ack."""
    oif = ifindex(netns)
    sock = raw_socket_in(netns)
    try:
        port = sock.getsockname()[0]
        datagram = b"".join(
            [
                raw_route(101, host("198.18", 1), GATEWAY, oif),
                raw_route(102, host("198.18", 2), UNREACHABLE, oif),
                raw_route(103, host("198.18", 3), GATEWAY, oif),
                _NLMSGHDR.pack(16, NLMSG_NOOP, int(NLM_F.REQUEST | NLM_F.ACK), 104, 0),
            ]
        )
        assert sock.send(datagram) == len(datagram)
        sock.settimeout(5.0)
        replies: list[tuple[int, int, int, int, int]] = []  # type, seq, port, code, echoed
        for _ in range(2):
            data, (sender_port, groups) = sock.recvfrom(65536)
            assert (sender_port, groups) == (0, 0)
            length, msg_type, _flags, seq, to_port = _NLMSGHDR.unpack_from(data)
            assert length == len(data), "one frame per datagram"
            (code,) = _ERROR_CODE.unpack_from(data, 16)
            echoed_type = _NLMSGHDR.unpack_from(data, 20)[1]
            replies.append((msg_type, seq, to_port, code, echoed_type))
        assert replies == [
            (NLMSG_ERROR, 102, port, -errno.ENETUNREACH, RTM.NEWROUTE),
            (NLMSG_ERROR, 104, port, 0, NLMSG_NOOP),
        ]
        # Nothing else: the successful requests got no ack.
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(65536)
    finally:
        sock.close()
    assert oracle.route_dsts(netns.name, table=TABLE) == {"198.18.0.1/32", "198.18.0.3/32"}


# =========================================================================== overrun


def kernel_drops(conn: Connection) -> int:
    """Datagrams the kernel dropped for this socket (``SO_MEMINFO``'s SK_MEMINFO_DROPS):
    a witness of the overrun that is not asyncroute's bookkeeping (private
    ``conn._sock``)."""
    raw = conn._sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * 9)
    return int(struct.unpack("9I", raw)[8])


@pytest.mark.anyio
async def test_overrun_with_groups_never_reports_a_lost_error_as_success(
    netns: Namespace,
) -> None:
    """Both backends.  A small receive buffer with the window forced open, and a few
    thousand requests of which two thirds fail (DELROUTE of absent routes, each answered
    by an error reply; they fill the buffer): the kernel drops replies (ENOBUFS).  A
    DELROUTE's result is then its error or OutcomeUnknown, never None (they all fail in
    the kernel: None would be a lost error reported as success); an add reports None
    only for a route the table really holds; and the connection works afterwards.

    The first LEAD items come alone (the input pauses after them), so their groups are
    answered before the flood: some adds do report None, and the check of those against
    the table is not vacuous.
    """
    count, lead = 3_000, 120
    oif = ifindex(netns)
    outcomes: Counter[str] = Counter()
    overran = 0

    def message(attempt: int, i: int) -> Message:
        if i % 3 == 0:
            return route_message(RTM.NEWROUTE, added(attempt, i), oif)
        return route_message(RTM.DELROUTE, host("198.20", i), oif, flags=0)  # never there

    def added(attempt: int, i: int) -> IPv4Address:
        return host(f"198.{18 + attempt % 2}", (attempt // 2) * count + i)  # fresh ones

    async def items(attempt: int) -> AsyncIterator[Message]:
        for i in range(count):
            if i == lead:
                await anyio.sleep(0.1)
            yield message(attempt, i)

    with anyio.fail_after(BODY_LIMIT * 2):
        # 64 KiB asked → 128 KiB granted: ~150 error replies fit, thousands are in flight.
        async with connect_in(netns, rcvbuf=64 * 1024, max_in_flight=4096, timeout=5) as conn:
            for attempt in range(4):
                before = conn.stats.overruns
                results = await conn.request_many(items(attempt))
                # On asyncio, datagrams handed to the sender thread before the overrun may
                # reach the kernel after request_many returned (their requests already
                # finished as OutcomeUnknown; the replies count as unknown_seq).  Let them
                # land so that they neither flood the next attempt nor change the table
                # after it is read.
                await anyio.sleep(SETTLE)
                present = oracle.route_dsts(netns.name, table=TABLE)
                assert len(results) == count
                outcomes.update(summary(results))
                for i, result in enumerate(results):
                    if i % 3:
                        assert isinstance(result, NotFoundError | OutcomeUnknown), (i, result)
                        if isinstance(result, NotFoundError):
                            assert result.errno == errno.ESRCH
                    elif result is None:
                        assert f"{added(attempt, i)}/32" in present, (i, "reported, not there")
                    else:
                        assert isinstance(result, OutcomeUnknown), (i, result)
                # The lead was answered before the flood: its adds succeeded, its
                # deletes failed, all known.
                assert all(results[i] is None for i in range(0, lead, 3)), summary(results)
                assert all(isinstance(results[i], NotFoundError) for i in range(lead) if i % 3)
                if conn.stats.overruns > before:
                    overran += 1
                    assert any(isinstance(r, OutcomeUnknown) for r in results)
                assert (conn._core.pending, conn._core.in_flight) == (0, 0)
                if overran >= 2:
                    break
            assert overran >= 1, (conn.stats, outcomes)
            assert kernel_drops(conn) > 0
            # The connection is still good: the next requests get their answers.
            extra = host("198.21", 1)
            assert await conn.request(route_message(RTM.NEWROUTE, extra, oif)) is None
            more = [route_message(RTM.NEWROUTE, host("198.21", 2 + i), oif) for i in range(50)]
            assert await conn.request_many(more) == [None] * 50
    expected = {f"{host('198.21', 1 + i)}/32" for i in range(51)}
    assert expected <= oracle.route_dsts(netns.name, table=TABLE)


@pytest.mark.anyio
async def test_bulk_calls_lower_the_switch_interval_only_while_they_run(netns: Namespace) -> None:
    """On asyncio the sender thread needs the GIL after every send: a bulk call lowers
    the interpreter's switch interval while it runs and puts it back after."""
    import asyncio

    before = sys.getswitchinterval()
    seen: list[float] = []

    def routes() -> Iterator[Route]:
        for i in range(3000):
            if i == 1500:
                seen.append(sys.getswitchinterval())
            yield Route(f"198.18.{i >> 8}.{i & 255}/32", device="v0", table=100)

    async with connect_in(netns) as conn:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # trio: no sender thread, the interval is left alone
            assert await conn.upsert_many(routes()) == [True] * 3000
            assert seen == [before]
            return
        assert await conn.upsert_many(routes()) == [True] * 3000
        assert seen == [pytest.approx(conn.switch_interval, abs=2e-6)]
        assert sys.getswitchinterval() == before
        conn.switch_interval = None
        seen.clear()
        assert await conn.delete_many(routes()) == [True] * 3000
        assert seen == [before]
