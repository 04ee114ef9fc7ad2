"""Kernel acceptance tests of the engine: :func:`asyncroute.connect` against a real kernel.

Every test runs in a fresh namespace from the ``netns`` fixture (veth ``v0``/``v1`` up,
``192.0.2.2/24`` and ``2001:db8::2/64`` on ``v0``).  asyncroute programs the kernel;
:mod:`tests.oracle` (``ip -json``, no asyncroute) says what the kernel holds.

Every connection is checked to be inside its test namespace (the kernel's
``/proc/net/netlink`` listing) before it writes anything, so a namespace bug in
asyncroute fails a test instead of touching the host's routes.

A few tests reach into private attributes where the public API cannot express the
situation under test; each use says why in a comment:

- ``conn._sock``: its inode (namespace check), the kernel's own drop counter
  (``SO_MEMINFO``, a witness independent of asyncroute's bookkeeping), and pausing the
  asyncio reader (forged replies).
- ``conn._core``: the seq of a pending request, and the in-flight count.
- ``conn._on_readable``: to re-register the asyncio reader after pausing it.

The last two tests are regressions: the window once ignored how much of the buffer a
running dump may fill, and after an overrun the connection sent again before draining
the congested socket, so callers hung instead of getting OutcomeUnknown.

Tests marked "both backends" take the module-wide ``anyio_backend`` fixture (asyncio and
trio); the others pin asyncio with a direct ``anyio_backend`` parametrization.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import struct
import subprocess
from collections.abc import AsyncIterator, Sequence
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_network
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import asyncroute
from asyncroute import (
    NLM_F,
    NLMSG,
    RTM,
    BusyError,
    Connection,
    ExistsError,
    KernelError,
    LinkMessage,
    Message,
    OutcomeUnknown,
    RouteMessage,
)
from asyncroute._protocol import Finished, NetlinkProtocol
from asyncroute._socket import open_netlink_socket
from asyncroute.testing import Namespace
from tests import oracle
from tests.kernel.guard import assert_in_namespace, connect_in

pytestmark = pytest.mark.kernel

ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])

AF_INET = 2
AF_INET6 = 10
RTPROT_BOOT = 3
RTN_UNICAST = 1
TABLE = 100
OTHER_TABLE = 200
GATEWAY4 = IPv4Address("192.0.2.1")
GATEWAY6 = IPv6Address("2001:db8::1")
#: Seconds a whole test body may take before it is failed instead of hanging the run.
BODY_LIMIT = 60.0
#: Per-request timeout given to connections: long enough for 10,000 queued requests.
REQUEST_TIMEOUT = 20.0

# socket(7) SO_MEMINFO: nine u32 counters; SK_MEMINFO_DROPS counts datagrams the kernel
# dropped because the receive buffer was full (netlink_overrun increments sk_drops).
SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)
SK_MEMINFO_VARS = 9
SK_MEMINFO_DROPS = 8

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, seq, port id
_ERRNO = struct.Struct("=i")


# --------------------------------------------------------------------------- helpers


def _ifindex(ns: Namespace, name: str = "v0") -> int:
    """The interface index of ``name``, read with ``ip`` (not with asyncroute)."""
    (index,) = [link["ifindex"] for link in oracle.links(ns.name) if link["ifname"] == name]
    return int(index)


def _host4(base: str, i: int) -> IPv4Address:
    """``base.(i // 256).(i % 256)``: 198.18.x.y for i < 65,536."""
    return IPv4Address(f"{base}.{i // 256}.{i % 256}")


def _route4(
    dst: IPv4Address,
    oif: int,
    *,
    dst_len: int = 32,
    table: int = TABLE,
    gateway: IPv4Address = GATEWAY4,
    flags: int = NLM_F.CREATE | NLM_F.EXCL,
) -> Message:
    return Message(
        RTM.NEWROUTE,
        flags,
        RouteMessage(
            family=AF_INET,
            dst_len=dst_len,
            table=table,
            protocol=RTPROT_BOOT,
            type=RTN_UNICAST,
            dst=dst,
            gateway=gateway,
            oif=oif,
        ),
    )


def _route6(dst: IPv6Address, dst_len: int, oif: int, *, table: int = TABLE) -> Message:
    return Message(
        RTM.NEWROUTE,
        NLM_F.CREATE | NLM_F.EXCL,
        RouteMessage(
            family=AF_INET6,
            dst_len=dst_len,
            table=table,
            protocol=RTPROT_BOOT,
            type=RTN_UNICAST,
            dst=dst,
            gateway=GATEWAY6,
            oif=oif,
        ),
    )


async def _request_all(conn: Connection, messages: Sequence[Message]) -> list[object]:
    """Issue every message as its own task, all at once; return each outcome in order.

    An outcome is the request's return value or the exception it raised, so a test can
    prove that no exception at all reached any caller.
    """
    outcomes: list[object] = [None] * len(messages)

    async def one(index: int, message: Message) -> None:
        try:
            outcomes[index] = await conn.request(message)
        except Exception as exc:  # every failure is an outcome to report, not to raise
            outcomes[index] = exc

    async with anyio.create_task_group() as group:
        for index, message in enumerate(messages):
            group.start_soon(one, index, message)
    return outcomes


def _failures(outcomes: Sequence[object]) -> list[object]:
    return [outcome for outcome in outcomes if outcome is not None]


def _summary(failures: Sequence[object]) -> str:
    kinds: dict[str, int] = {}
    for failure in failures:
        kinds[type(failure).__name__] = kinds.get(type(failure).__name__, 0) + 1
    return f"{len(failures)} callers did not get None: {kinds}; first: {failures[:3]!r}"


def _kernel_drops(conn: Connection) -> int:
    """Datagrams the kernel dropped for this socket (SO_MEMINFO, the kernel's count).

    Private ``conn._sock``: asyncroute has no public way to reach the socket, and this
    counter must not come from asyncroute's own bookkeeping.
    """
    raw = conn._sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * SK_MEMINFO_VARS)
    return int(struct.unpack(f"{SK_MEMINFO_VARS}I", raw)[SK_MEMINFO_DROPS])


@contextlib.asynccontextmanager
async def _connect(
    ns: Namespace,
    *,
    rcvbuf: int | None = None,
    max_in_flight: int | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> AsyncIterator[Connection]:
    """``asyncroute.connect(ns.name, ...)``, checked to be inside ``ns`` before use."""
    async with connect_in(ns, rcvbuf=rcvbuf, max_in_flight=max_in_flight, timeout=timeout) as conn:
        yield conn


def _load_routes(ns: Namespace, tmp_path: Path, lines: Sequence[str]) -> None:
    """Program routes with ``ip -n NS -batch FILE`` (one ``ip`` process for all)."""
    batch = tmp_path / "routes.batch"
    batch.write_text("".join(f"{line}\n" for line in lines))
    subprocess.run(
        ["ip", "-n", ns.name, "-batch", str(batch)], check=True, capture_output=True, text=True
    )


def _route_dump(family: int, table: int) -> Message:
    # NETLINK_GET_STRICT_CHK is on: the kernel filters the dump by the header's table.
    return Message(RTM.GETROUTE, body=RouteMessage(family=family, table=table))


def _dst_prefix(message: Message) -> str:
    body = message.body
    assert isinstance(body, RouteMessage), body
    return f"{body.dst}/{body.dst_len}"


# --------------------------------------------------------------------------- 1: 10,000 adds


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("rcvbuf", "small_window"),
    [
        pytest.param(None, False, id="default-buffer"),
        # 64 KiB asked → 128 KiB granted: less than one send's worth of acks (a 32 KiB
        # datagram carries ~480 route requests, ~832 bytes of buffer per ack).
        pytest.param(64 * 1024, True, id="rcvbuf-64KiB"),
        # ~456 KiB granted: a window of a few hundred, so many requests really are in
        # flight together while the buffer still cannot hold a whole send's acks.
        pytest.param(228 * 1024, True, id="rcvbuf-228KiB"),
    ],
)
async def test_10000_concurrent_adds_on_one_connection(
    netns: Namespace, rcvbuf: int | None, small_window: bool
) -> None:
    """Both backends.  Every add returns None, the kernel holds exactly the 10,000
    routes, and nothing overflowed: not asyncroute's counter, not the kernel's."""
    count = 10_000
    oif = _ifindex(netns)
    expected = {f"{_host4('198.18', i)}/32" for i in range(count)}
    messages = [_route4(_host4("198.18", i), oif) for i in range(count)]
    with anyio.fail_after(BODY_LIMIT):
        async with _connect(netns, rcvbuf=rcvbuf, timeout=REQUEST_TIMEOUT) as conn:
            if small_window:
                assert conn.max_in_flight < 300, (conn.rcvbuf, conn.max_in_flight)
            outcomes = await _request_all(conn, messages)
            drops = _kernel_drops(conn)
            stats = conn.stats
    assert not _failures(outcomes), _summary(_failures(outcomes))
    assert stats.overruns == 0, stats
    assert drops == 0, f"the kernel dropped {drops} replies"
    assert (stats.unknown_seq, stats.late, stats.malformed) == (0, 0, 0), stats
    assert oracle.route_dsts(netns.name, table=TABLE) == expected


@pytest.mark.anyio
async def test_small_buffer_does_overflow_without_the_window(netns: Namespace) -> None:
    """Both backends.  Control for the test above: the same 10,000 adds with the same
    128 KiB buffer but a window forced to 4096 make the kernel drop acks (ENOBUFS), so
    the small-buffer variant passing is the window's doing, not a roomy kernel's."""
    count = 10_000
    oif = _ifindex(netns)
    messages = [_route4(_host4("198.18", i), oif) for i in range(count)]
    with anyio.fail_after(BODY_LIMIT):
        async with _connect(
            netns, rcvbuf=64 * 1024, max_in_flight=4096, timeout=REQUEST_TIMEOUT
        ) as conn:
            outcomes = await _request_all(conn, messages)
            drops = _kernel_drops(conn)
            stats = conn.stats
    failures = _failures(outcomes)
    assert drops > 0
    assert stats.overruns >= 1, stats
    assert failures, "an overrun must reach the callers whose replies may be lost"
    # The documented outcome of an overrun; a TimeoutError here would be a hung caller.
    assert all(isinstance(f, OutcomeUnknown) for f in failures), _summary(failures)
    # The kernel applied every request; only the acks were lost.
    assert len(oracle.route_dsts(netns.name, table=TABLE)) == count


# --------------------------------------------------------------------------- 2: dumps + writes


def _two_raw_dumps_in_one_datagram(ns: Namespace, table: int) -> dict[int, int]:
    """Control: send two RTM_GETROUTE dumps in one datagram on a plain netlink socket.

    Returns ``{seq: error}`` for how each ended: 0 for NLMSG_DONE, the negative errno of
    an NLMSG_ERROR.  Uses no asyncroute code past opening the socket in the namespace.
    """
    sock, _info = open_netlink_socket(ns.name, rcvbuf=1 << 20, sndbuf=1 << 20)
    try:
        sock.settimeout(5.0)
        rtmsg = struct.pack("=BBBBBBBBI", AF_INET, 0, 0, 0, table, 0, 0, 0, 0)
        flags = NLM_F.REQUEST | NLM_F.DUMP
        size = _NLMSGHDR.size + len(rtmsg)
        sock.send(
            b"".join(_NLMSGHDR.pack(size, RTM.GETROUTE, flags, seq, 0) + rtmsg for seq in (1, 2))
        )
        ended: dict[int, int] = {}
        while len(ended) < 2:
            data = sock.recv(1 << 20)
            offset = 0
            while offset < len(data):
                length, msg_type, _flags, seq, _port = _NLMSGHDR.unpack_from(data, offset)
                if msg_type == NLMSG.DONE:
                    ended[seq] = 0
                elif msg_type == NLMSG.ERROR:
                    ended[seq] = _ERRNO.unpack_from(data, offset + _NLMSGHDR.size)[0]
                offset += (length + 3) & ~3
        return ended
    finally:
        sock.close()


@pytest.mark.anyio
async def test_dumps_and_writes_interleaved(netns: Namespace, tmp_path: Path) -> None:
    """Both backends.  Dump A of a 20,000-route table is sent; while the kernel runs it,
    1,000 writes and a second dump B of the same table are requested on the same
    connection.  Every write succeeds, each dump yields the full table exactly once, and
    no EBUSY (the kernel's answer to a second dump on a socket) reaches a caller.

    Why B is not requested after A's first message: the connection drains up to 512
    datagrams per wake-up and the kernel makes the next dump datagram during each read,
    so a 20,000-route dump (~42 datagrams) is read whole before any task runs again; by
    the time a caller sees A's first message, A is over in the kernel.  Instead A is
    requested first and B one scheduling round later, when A has been sent but none of
    its replies has been read: A is running in the kernel when B is requested.
    """
    count, writes = 20_000, 1_000
    expected_a = {f"{_host4('198.18', i)}/32" for i in range(count)}
    _load_routes(
        netns,
        tmp_path,
        [f"route add {dst} via {GATEWAY4} dev v0 table {TABLE}" for dst in sorted(expected_a)],
    )
    assert len(oracle.route_dsts(netns.name, table=TABLE)) == count
    # Control: unserialised, the second dump is refused (so this test can fail).
    raw = await anyio.to_thread.run_sync(_two_raw_dumps_in_one_datagram, netns, TABLE)
    assert raw == {1: 0, 2: -errno.EBUSY}, raw

    oif = _ifindex(netns)
    write_messages = [_route4(_host4("198.19", i), oif, table=OTHER_TABLE) for i in range(writes)]
    dump_a: list[Message] = []
    dump_b: list[Message] = []
    errors: list[BaseException] = []
    write_outcomes: list[object] = []
    a_finished = anyio.Event()
    a_unread_when_b_requested: list[bool] = []

    with anyio.fail_after(BODY_LIMIT):
        async with _connect(netns, timeout=REQUEST_TIMEOUT) as conn:

            async def run_a() -> None:
                try:
                    async for message in conn.dump(_route_dump(AF_INET, TABLE)):
                        dump_a.append(message)
                except Exception as exc:
                    errors.append(exc)
                finally:
                    a_finished.set()

            async def run_b() -> None:
                await anyio.lowlevel.checkpoint()  # A is requested (and sent) first
                a_unread_when_b_requested.append(not dump_a and not a_finished.is_set())
                try:
                    async for message in conn.dump(_route_dump(AF_INET, TABLE)):
                        dump_b.append(message)
                except Exception as exc:
                    errors.append(exc)

            async def run_writes() -> None:
                await anyio.lowlevel.checkpoint()
                write_outcomes.extend(await _request_all(conn, write_messages))

            async with anyio.create_task_group() as group:
                group.start_soon(run_a)
                group.start_soon(run_writes)
                group.start_soon(run_b)
            stats = conn.stats

    assert not any(isinstance(e, BusyError) for e in [*errors, *write_outcomes])
    assert not errors, errors
    assert a_unread_when_b_requested == [True]
    assert len(write_outcomes) == writes
    assert not _failures(write_outcomes), _summary(_failures(write_outcomes))
    assert stats.overruns == 0, stats
    for name, dump in (("A", dump_a), ("B", dump_b)):
        assert all(m.type == RTM.NEWROUTE for m in dump), name
        assert {m.body.table_number for m in dump if isinstance(m.body, RouteMessage)} == {TABLE}
        prefixes = [_dst_prefix(m) for m in dump]
        assert len(prefixes) == count, (name, len(prefixes))
        assert len(set(prefixes)) == count, f"dump {name} repeated a route"
        assert set(prefixes) == expected_a, name
    expected_writes = {f"{_host4('198.19', i)}/32" for i in range(writes)}
    assert oracle.route_dsts(netns.name, table=OTHER_TABLE) == expected_writes
    assert len(oracle.route_dsts(netns.name, table=TABLE)) == count


# --------------------------------------------------------------------------- 3: forged replies


def _forged_error_reply(seq: int, port_id: int, error: int, request_type: int) -> bytes:
    """An NLMSG_ERROR frame as the kernel writes it with NETLINK_CAP_ACK: error code and
    the echoed request header (``NLM_F_CAPPED``), addressed to ``port_id`` and ``seq``."""
    echoed = _NLMSGHDR.pack(_NLMSGHDR.size, request_type, NLM_F.REQUEST | NLM_F.ACK, seq, port_id)
    payload = _ERRNO.pack(-error) + echoed
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), NLMSG.ERROR, NLM_F.CAPPED, seq, port_id)
    return header + payload


def test_forged_reply_would_be_believed_from_the_kernel() -> None:
    """Self-check of the forgery: had it come from port 0 (the kernel), the core would
    have finished the request with it.  So only the sender check can reject it below."""
    core = NetlinkProtocol(max_in_flight=1, port_id=4242)
    seq = core.send_request(_route4(IPv4Address("198.18.0.1"), 2))
    assert core.data_to_send()
    forged = _forged_error_reply(seq, 4242, errno.EEXIST, RTM.NEWROUTE)
    (event,) = core.receive_datagram(forged, 0, 0)
    assert isinstance(event, Finished)
    assert event.seq == seq
    assert isinstance(event.error, ExistsError)


@pytest.mark.anyio
@ASYNCIO_ONLY
@pytest.mark.parametrize("when", ["before-request", "after-request"])
async def test_forged_replies_from_another_socket_are_dropped(netns: Namespace, when: str) -> None:
    """A second userspace netlink socket in the namespace sends the connection a forged
    error reply (EEXIST) and a forged ack carrying the pending request's seq and the
    connection's port id.  The request must end with the kernel's real ack (None), and
    both forged datagrams must be dropped as foreign.

    "before-request": the forgeries are queued on the connection's socket before the
    request is even sent, so they are read before the real ack; a connection that
    believed them would raise ExistsError.  "after-request": the request is in flight and
    its real ack queued, unread, when the forgeries arrive.

    Reading is paused by removing the asyncio reader of the private ``conn._sock`` and
    resumed by re-registering the private ``conn._on_readable``; the seq is read from the
    private ``conn._core`` (``_next_seq`` before sending, ``_pending`` after).
    """
    oif = _ifindex(netns)
    message = _route4(IPv4Address("198.18.0.1"), oif)
    with anyio.fail_after(BODY_LIMIT):
        forger, forger_info = await anyio.to_thread.run_sync(
            lambda: open_netlink_socket(netns.name, rcvbuf=65536, sndbuf=65536)
        )
        try:
            async with _connect(netns, timeout=REQUEST_TIMEOUT) as conn:
                assert forger_info.port_id not in (0, conn.port_id)
                loop = asyncio.get_running_loop()
                fd = conn._sock.fileno()

                def forge(seq: int) -> None:
                    target = (conn.port_id, 0)
                    forger.sendto(
                        _forged_error_reply(seq, conn.port_id, errno.EEXIST, RTM.NEWROUTE), target
                    )
                    forger.sendto(_forged_error_reply(seq, conn.port_id, 0, RTM.NEWROUTE), target)

                assert loop.remove_reader(fd)
                try:
                    predicted = conn._core._next_seq
                    if when == "before-request":
                        forge(predicted)
                    task = asyncio.ensure_future(conn.request(message))
                    for _ in range(100):  # let the request be encoded and sent
                        await asyncio.sleep(0)
                        if conn._core.in_flight == 1:
                            break
                    assert conn._core.in_flight == 1, "the request was not sent"
                    (seq,) = conn._core._pending
                    assert seq == predicted
                    if when == "after-request":
                        forge(seq)
                finally:
                    loop.add_reader(fd, conn._on_readable)
                result = await task
                stats = conn.stats
        finally:
            forger.close()

    if stats.foreign == 0:
        pytest.fail(
            "the kernel did not deliver the forged unicast datagrams to the connection "
            f"(stats {stats}); the test cannot judge the sender check"
        )
    assert result is None
    assert stats.foreign == 2, stats
    assert stats.unknown_seq == 0, stats
    assert oracle.route_dsts(netns.name, table=TABLE) == {"198.18.0.1/32"}


# --------------------------------------------------------------------------- 4: namespaces


def _own_namespace_table_dsts(table: int) -> set[str]:
    """Destinations in ``table`` of the test process's own namespace (read-only ``ip``)."""
    proc = subprocess.run(
        ["ip", "-4", "-json", "route", "show", "table", str(table)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        assert "FIB table does not exist" in proc.stderr, proc.stderr
        return set()
    if not proc.stdout.strip():
        return set()
    return {str(route["dst"]) for route in json.loads(proc.stdout)}


def _namespace_links() -> tuple[str, str]:
    return os.readlink("/proc/thread-self/ns/net"), os.readlink("/proc/self/ns/net")


@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_connection_lives_in_the_named_namespace(netns: Namespace) -> None:
    before = _namespace_links()
    assert before[1] != f"net:[{os.stat(netns.path).st_ino}]", "test runs inside netns?"
    oif = _ifindex(netns)
    with anyio.fail_after(BODY_LIMIT):
        async with asyncroute.connect(netns=netns.name, timeout=REQUEST_TIMEOUT) as conn:
            assert_in_namespace(conn, netns)
            assert _namespace_links() == before
            reply = await conn.request(
                _route4(IPv4Address("198.51.100.0"), oif, dst_len=24, table=TABLE)
            )
            assert reply is None
            assert _namespace_links() == before
        assert _namespace_links() == before
        # Worker threads (where the socket is opened) are not left in the namespace.
        for _ in range(4):
            worker = await anyio.to_thread.run_sync(lambda: os.readlink("/proc/thread-self/ns/net"))
            assert worker == before[1]
    assert oracle.route_dsts(netns.name, table=TABLE) == {"198.51.100.0/24"}
    assert "198.51.100.0/24" not in _own_namespace_table_dsts(TABLE)


@pytest.mark.anyio
@ASYNCIO_ONLY
@pytest.mark.parametrize("as_path", [str, Path], ids=["str-path", "pathlib"])
async def test_connect_by_namespace_path(netns: Namespace, as_path: type) -> None:
    before = _namespace_links()
    oif = _ifindex(netns)
    with anyio.fail_after(BODY_LIMIT):
        async with asyncroute.connect(netns=as_path(netns.path)) as conn:
            assert_in_namespace(conn, netns)
            links = {
                m.body.name
                async for m in conn.dump(Message(RTM.GETLINK, body=LinkMessage()))
                if isinstance(m.body, LinkMessage)
            }
            await conn.request(_route4(IPv4Address("203.0.113.0"), oif, dst_len=24))
    assert links == {"lo", "v0", "v1"}
    assert oracle.route_dsts(netns.name, table=TABLE) == {"203.0.113.0/24"}
    assert "203.0.113.0/24" not in _own_namespace_table_dsts(TABLE)
    assert _namespace_links() == before


@pytest.mark.anyio
@ASYNCIO_ONLY
@pytest.mark.parametrize("name", ["no-such-ns", "/run/netns/asyncroute-test-no-such-ns"])
async def test_connect_to_missing_namespace(netns: Namespace, name: str) -> None:
    before = _namespace_links()
    with pytest.raises(FileNotFoundError):
        async with asyncroute.connect(netns=name):
            pytest.fail("connected to a namespace that does not exist")
    assert _namespace_links() == before


# --------------------------------------------------------------------------- 5: IPv6


@pytest.mark.anyio
async def test_1000_concurrent_ipv6_adds(netns: Namespace) -> None:
    """Both backends."""
    count = 1_000
    oif = _ifindex(netns)
    networks = [IPv6Network(f"2001:db8:1:{x:x}::/64") for x in range(count)]
    messages = [_route6(net.network_address, net.prefixlen, oif) for net in networks]
    with anyio.fail_after(BODY_LIMIT):
        async with _connect(netns, timeout=REQUEST_TIMEOUT) as conn:
            outcomes = await _request_all(conn, messages)
            stats = conn.stats
    assert not _failures(outcomes), _summary(_failures(outcomes))
    assert stats.overruns == 0, stats
    listed = {ip_network(dst) for dst in oracle.route_dsts(netns.name, table=TABLE, family=6)}
    assert listed == set(networks)
    assert oracle.route_dsts(netns.name, table=TABLE, family=4) == set()


# --------------------------------------------------------------------------- 6: errors


@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_error_replies(netns: Namespace) -> None:
    oif = _ifindex(netns)
    unreachable = _route4(
        IPv4Address("198.51.100.0"), oif, dst_len=24, gateway=IPv4Address("203.0.113.1")
    )
    good = _route4(IPv4Address("198.51.100.0"), oif, dst_len=24)
    with anyio.fail_after(BODY_LIMIT):
        async with _connect(netns, timeout=REQUEST_TIMEOUT) as conn:
            with pytest.raises(KernelError) as info:
                await conn.request(unreachable)
            assert await conn.request(good) is None
            with pytest.raises(ExistsError) as exists:
                await conn.request(good)
            with pytest.raises(FileExistsError):
                await conn.request(good)
            stats = conn.stats
    error = info.value
    assert error.errno in (errno.ENETUNREACH, errno.EINVAL), error
    assert isinstance(error.message, str) and error.message.strip(), error
    assert error.message in str(error)
    assert error.msg_type == RTM.NEWROUTE
    assert error.seq > 0
    assert exists.value.errno == errno.EEXIST
    assert isinstance(exists.value, FileExistsError)
    assert isinstance(exists.value, KernelError)
    assert stats.malformed == 0, stats
    assert oracle.route_dsts(netns.name, table=TABLE) == {"198.51.100.0/24"}
    (route,) = oracle.routes(netns.name, table=TABLE)
    assert route["gateway"] == str(GATEWAY4)


# --------------------------------------------------------------------------- regressions


@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_window_holds_while_a_dump_runs(netns: Namespace, tmp_path: Path) -> None:
    routes, writes = 40_000, 10_000
    _load_routes(
        netns,
        tmp_path,
        [
            f"route add {_host4('198.18', i)} via {GATEWAY4} dev v0 table {TABLE}"
            for i in range(routes)
        ],
    )
    oif = _ifindex(netns)
    messages = [_route4(_host4("198.19", i), oif, table=OTHER_TABLE) for i in range(writes)]
    dumped: list[Message] = []
    with anyio.fail_after(BODY_LIMIT):
        async with _connect(netns, rcvbuf=400_000, timeout=3) as conn:
            outcomes: list[object] = []

            async def dump() -> None:
                async for message in conn.dump(_route_dump(AF_INET, TABLE)):
                    dumped.append(message)

            async def write() -> None:
                outcomes.extend(await _request_all(conn, messages))

            async with anyio.create_task_group() as group:
                group.start_soon(dump)
                group.start_soon(write)
            drops = _kernel_drops(conn)
            stats = conn.stats
            in_flight = conn._core.in_flight  # private: slots held by lost requests
    assert len(dumped) == routes
    assert not _failures(outcomes), _summary(_failures(outcomes))
    assert (stats.overruns, drops, in_flight) == (0, 0, 0), stats


@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_overrun_leaves_no_caller_hanging(netns: Namespace) -> None:
    count = 20_000
    oif = _ifindex(netns)
    messages = [_route4(_host4("198.18", i), oif) for i in range(count)]
    with anyio.fail_after(BODY_LIMIT):
        # 16,384 acks (~13 MB) cannot fit an 8 MiB buffer: an overrun is certain.
        async with _connect(netns, rcvbuf=4 * 1024 * 1024, max_in_flight=16_384, timeout=2) as conn:
            outcomes = await _request_all(conn, messages)
            in_flight = conn._core.in_flight  # private: slots held by lost requests
    failures = _failures(outcomes)
    assert failures
    assert all(isinstance(f, OutcomeUnknown) for f in failures), _summary(failures)
    assert in_flight == 0
