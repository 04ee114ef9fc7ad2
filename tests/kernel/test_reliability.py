"""Kernel reliability tests: overruns, cancellation, interrupted dumps, forged replies.

Every test runs in a fresh namespace from the ``netns`` fixture (veth ``v0``/``v1`` up,
``192.0.2.2/24`` on ``v0``, so ``192.0.2.1`` is an on-link gateway) and on both anyio
backends unless it says otherwise.  Every connection is proven to be inside its test
namespace before it writes (:mod:`tests.kernel.guard`); what the kernel holds is read
back with ``ip -json`` (:mod:`tests.oracle`, or ``ip`` directly for addresses), never
through asyncroute.

Private attributes used, each because the public API cannot express the situation:

- ``conn._sock``: the kernel's own drop counter (``SO_MEMINFO``), a witness independent
  of asyncroute; joining the route multicast group on the connection's own socket.
- ``conn._core``: ``overrun_seen`` and ``receive_datagram`` are wrapped to time the first
  ENOBUFS and to see the multicast copies; ``pending``/``in_flight``/``_pending`` show
  what stays reserved.
- ``conn._waiters``: no caller is left waiting; ``conn._abandon`` is wrapped to learn
  whether a cancelled request had been sent.
- ``conn._on_readable``: paused and resumed so that forged datagrams are queued while a
  dump is running.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import socket
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from ipaddress import IPv4Address
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asyncroute import (
    NLM_F,
    NLMSG,
    RTM,
    AddressMessage,
    Connection,
    DumpInterrupted,
    Message,
    NotFoundError,
    OutcomeUnknown,
    RouteMessage,
)
from asyncroute._socket import open_netlink_socket
from asyncroute.testing import Namespace
from tests import oracle
from tests.kernel.guard import connect_in, netlink_inodes

pytestmark = pytest.mark.kernel

AF_INET = 2
RTPROT_BOOT = 3
RTN_UNICAST = 1
TABLE = 100
GATEWAY = IPv4Address("192.0.2.1")
#: Seconds a test body may take before it is failed instead of hanging the run.
BODY_LIMIT = 30.0
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = RTM.NEWADDR, RTM.DELADDR, RTM.GETADDR
#: linux/rtnetlink.h RTNLGRP_IPV4_ROUTE; linux/netlink.h SOL_NETLINK, NETLINK_ADD_MEMBERSHIP
RTNLGRP_IPV4_ROUTE = 7
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
#: socket(7) SO_MEMINFO: nine u32 counters, SK_MEMINFO_DROPS the last.
SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)
#: Asked receive buffer of the small-buffer tests: the kernel grants twice that, 456 KiB,
#: room for ~550 acks (~832 bytes of skb each), while a send carries thousands.
SMALL_RCVBUF = 228 * 1024

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, seq, port id
_ERRNO = struct.Struct("=i")


# --------------------------------------------------------------------------- helpers


def ifindex(ns: Namespace, name: str = "v0") -> int:
    """The interface index of ``name``, read with ``ip`` (not with asyncroute)."""
    (index,) = [link["ifindex"] for link in oracle.links(ns.name) if link["ifname"] == name]
    return int(index)


def host(base: str, i: int) -> IPv4Address:
    """``base.(i // 256).(i % 256)``."""
    return IPv4Address(f"{base}.{i // 256}.{i % 256}")


def add_route(dst: IPv4Address, oif: int) -> Message:
    return Message(
        RTM.NEWROUTE,
        NLM_F.CREATE | NLM_F.EXCL,
        RouteMessage(
            family=AF_INET,
            dst_len=32,
            table=TABLE,
            protocol=RTPROT_BOOT,
            type=RTN_UNICAST,
            dst=dst,
            gateway=GATEWAY,
            oif=oif,
        ),
    )


def delete_absent_route(dst: IPv4Address, oif: int) -> Message:
    """A DELROUTE the kernel refuses (ESRCH): its answer is an error reply, not silence."""
    add = add_route(dst, oif)
    return Message(RTM.DELROUTE, 0, add.body)


def route_dump(table: int = TABLE) -> Message:
    # NETLINK_GET_STRICT_CHK is on: the kernel filters the dump by the header's table.
    return Message(RTM.GETROUTE, body=RouteMessage(family=AF_INET, table=table))


def kernel_drops(conn: Connection) -> int:
    """Datagrams the kernel dropped for this socket because its buffer was full."""
    raw = conn._sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * 9)
    return int(struct.unpack("9I", raw)[8])


def kinds(outcomes: Sequence[object]) -> Counter[str]:
    return Counter("None" if o is None else type(o).__name__ for o in outcomes)


def time_overruns(conn: Connection) -> list[float]:
    """Wrap the private ``conn._core.overrun_seen``: the times at which a drain of the
    socket read ENOBUFS (the kernel reports a drop on the first read after it)."""
    core = conn._core
    seen: list[float] = []
    original = core.overrun_seen

    def overrun_seen() -> None:
        seen.append(time.monotonic())
        original()

    core.overrun_seen = overrun_seen  # type: ignore[method-assign]
    return seen


async def drained(conn: Connection, limit: float = 5.0) -> None:
    """Wait (bounded) until no request holds a seq: late replies have all arrived."""
    with anyio.fail_after(limit):
        while conn._core.pending:
            await anyio.sleep(0.005)


# =========================================================================== 1: overruns


@pytest.mark.anyio
@pytest.mark.parametrize("via", ["tasks", "request_many"])
async def test_overrun_settles_every_request_within_a_second(netns: Namespace, via: str) -> None:
    """A 456 KiB receive buffer and the window forced open (4,096): 5,000 requests
    overflow it.  Each one completes or gets OutcomeUnknown, the last within 1 s of the
    first ENOBUFS, and the next request on the connection succeeds.

    "tasks": 5,000 route adds, a task and a ``request`` each (every ack is a reply).
    "request_many": groups answer only failures, so half the items are deletes of absent
    routes, whose error replies fill the buffer.
    """
    count = 5_000
    oif = ifindex(netns)
    settled: list[float] = []
    with anyio.fail_after(BODY_LIMIT):
        async with connect_in(netns, rcvbuf=SMALL_RCVBUF, max_in_flight=4096, timeout=10) as conn:
            overruns = time_overruns(conn)
            start = time.monotonic()
            if via == "tasks":
                messages = [add_route(host("198.18", i), oif) for i in range(count)]
                outcomes: list[object] = [None] * count

                async def one(index: int) -> None:
                    try:
                        outcomes[index] = await conn.request(messages[index])
                    except Exception as exc:
                        outcomes[index] = exc
                    settled.append(time.monotonic())

                async with anyio.create_task_group() as group:
                    for i in range(count):
                        group.start_soon(one, i)
            else:
                messages = [
                    add_route(host("198.18", i), oif)
                    if i % 2 == 0
                    else delete_absent_route(host("198.20", i), oif)
                    for i in range(count)
                ]
                outcomes = list(await conn.request_many(messages))
                settled.append(time.monotonic())
            end = time.monotonic()
            stats = conn.stats
            assert overruns, f"no ENOBUFS: the test cannot judge the overrun ({stats})"
            assert stats.overruns >= 1
            assert kernel_drops(conn) > 0
            # The next request works at once.
            assert await conn.request(add_route(host("198.21", 1), oif)) is None
            await drained(conn)
            assert conn._waiters == {}
            assert conn._core.in_flight == 0

    after = max(settled) - overruns[0]
    print(
        f"\n{via}: {count} requests in {end - start:.3f} s; {len(overruns)} drains read "
        f"ENOBUFS; last settled {after * 1000:.0f} ms after the first; {kinds(outcomes)}"
    )
    assert after <= 1.0, after
    assert len(outcomes) == count
    present = oracle.route_dsts(netns.name, table=TABLE)
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, OutcomeUnknown):
            continue
        if via == "request_many" and i % 2:
            assert isinstance(outcome, NotFoundError) and outcome.errno == errno.ESRCH, outcome
        else:
            assert outcome is None, (i, outcome)
            assert f"{host('198.18', i)}/32" in present, (i, "acked, not in the table")
    assert any(isinstance(o, OutcomeUnknown) for o in outcomes)
    assert "198.21.0.1/32" in present


@pytest.mark.anyio
@pytest.mark.parametrize("via", ["tasks", "request_many"])
async def test_window_prevents_overruns_with_a_small_buffer(netns: Namespace, via: str) -> None:
    """The same 456 KiB buffer with the default window: 50,000 requests, no overrun —
    neither asyncroute's count nor the kernel's drop counter.

    "request_many": every other item is a delete of an absent route, so the kernel
    answers half the members with an error reply: the window must leave room for them.
    """
    count = 50_000
    oif = ifindex(netns)
    with anyio.fail_after(BODY_LIMIT * 2):
        async with connect_in(netns, rcvbuf=SMALL_RCVBUF, timeout=10) as conn:
            window = conn.max_in_flight
            start = time.monotonic()
            if via == "tasks":
                messages = [add_route(host("198.18", i), oif) for i in range(count)]
                failures: list[object] = []

                async def one(message: Message) -> None:
                    try:
                        await conn.request(message)
                    except Exception as exc:
                        failures.append(exc)

                async with anyio.create_task_group() as group:
                    for message in messages:
                        group.start_soon(one, message)
                expected = {f"{host('198.18', i)}/32" for i in range(count)}
            else:
                results = await conn.request_many(
                    add_route(host("198.18", i), oif)
                    if i % 2 == 0
                    else delete_absent_route(host("198.20", i), oif)
                    for i in range(count)
                )
                failures = [r for i, r in enumerate(results) if (r is not None) != (i % 2 == 1)]
                assert all(isinstance(r, NotFoundError) for r in results[1::2]), kinds(
                    results[1::2]
                )
                expected = {f"{host('198.18', i)}/32" for i in range(0, count, 2)}
            elapsed = time.monotonic() - start
            stats = conn.stats
            drops = kernel_drops(conn)
    print(
        f"\n{via}: {count} requests in {elapsed:.2f} s, window {window}, rcvbuf "
        f"{conn.rcvbuf}; overruns {stats.overruns}, kernel drops {drops}"
    )
    assert not failures, kinds(failures)
    assert (stats.overruns, drops) == (0, 0), stats
    assert (stats.unknown_seq, stats.late, stats.malformed) == (0, 0, 0), stats
    assert oracle.route_dsts(netns.name, table=TABLE) == expected


# =========================================================================== 3: cancellation


@pytest.mark.anyio
async def test_cancelling_a_tenth_of_10000_requests_in_flight(netns: Namespace) -> None:
    """10,000 route adds in flight at once (window 10,000, a 32 MiB buffer), each from
    its own task; 1,000 of the tasks, picked with a fixed seed, are cancelled at random
    moments: a tenth before they start, the others once a random number of requests
    (drawn from the same seed) have completed.  The others all
    complete; afterwards no seq stays reserved and no waiter is left, every request
    cancelled after it was sent had its ack counted as late, the table holds exactly the
    requests that reached the kernel, and a dump and a request work.

    Each cancelled task ends up in one of three states, told apart by wrapping the
    private ``conn._submit`` (seq → task) and ``conn._abandon`` (was the entry sent?):
    abandoned before it was sent (never reaches the kernel), abandoned after (applied;
    its ack is late), or completed before the cancellation landed (applied, no late ack).
    On asyncio even the tasks cancelled before they start get their request sent: anyio
    delivers the cancellation one turn of the loop later, and the flush runs first.
    """
    count, cancelled_count = 10_000, 1_000
    rng = random.Random(0x5EED)
    oif = ifindex(netns)
    messages = [add_route(host("198.18", i), oif) for i in range(count)]
    index_of = {id(message): i for i, message in enumerate(messages)}
    victims = rng.sample(range(count), cancelled_count)
    # When to cancel, as a number of completed requests: -1 for "before it starts".
    moments = sorted(
        (-1 if n < cancelled_count // 10 else rng.randrange(count - cancelled_count), i)
        for n, i in enumerate(victims)
    )
    completions = 0
    scopes = [anyio.CancelScope() for _ in range(count)]
    outcome: list[str] = [""] * count
    seq_to_index: dict[int, int] = {}
    abandoned: dict[int, bool] = {}  # index → was it sent when abandoned

    with anyio.fail_after(BODY_LIMIT):
        async with connect_in(
            netns, rcvbuf=16 * 1024 * 1024, max_in_flight=count, timeout=20
        ) as conn:
            submit: Callable[..., Any] = conn._submit
            abandon: Callable[[int], None] = conn._abandon

            def recording_submit(message: Message, **kw: Any) -> Any:
                waiter, seq = submit(message, **kw)
                seq_to_index[seq] = index_of[id(message)]
                return waiter, seq

            def recording_abandon(seq: int) -> None:
                entry = conn._core._pending.get(seq)
                if seq in seq_to_index:
                    abandoned[seq_to_index[seq]] = entry is not None and entry.sent
                abandon(seq)

            conn._submit = recording_submit  # type: ignore[method-assign]
            conn._abandon = recording_abandon  # type: ignore[method-assign]

            async def one(index: int) -> None:
                nonlocal completions
                with scopes[index]:
                    try:
                        result = await conn.request(messages[index])
                    except Exception as exc:
                        outcome[index] = repr(exc)
                        return
                    finally:
                        completions += 1
                    outcome[index] = "ok" if result is None else repr(result)
                if scopes[index].cancelled_caught:
                    outcome[index] = "cancelled"

            async def canceller() -> None:
                for moment, index in moments:
                    while completions < moment:
                        await anyio.sleep(0)
                    scopes[index].cancel()

            start = anyio.current_time()
            async with anyio.create_task_group() as group:
                for moment, index in moments:
                    if moment < 0:
                        scopes[index].cancel()
                group.start_soon(canceller)
                for i in range(count):
                    group.start_soon(one, i)
            elapsed = anyio.current_time() - start
            max_in_flight = conn.max_in_flight
            await drained(conn)
            assert conn._core.pending == 0
            assert conn._core.in_flight == 0
            assert conn._waiters == {}
            stats = conn.stats
            conn._submit = submit  # type: ignore[method-assign]
            conn._abandon = abandon  # type: ignore[method-assign,assignment]
            # A dump and a request still work.
            dumped = {
                f"{m.body.dst}/{m.body.dst_len}"
                async for m in conn.dump(route_dump())
                if isinstance(m.body, RouteMessage)
            }
            assert await conn.request(add_route(host("198.19", 1), oif)) is None

    victim_set = set(victims)
    completed = {i for i in range(count) if outcome[i] == "ok"}
    cancelled = {i for i in range(count) if outcome[i] == "cancelled"}
    sent_then_abandoned = {i for i, sent in abandoned.items() if sent}
    never_sent = {i for i, sent in abandoned.items() if not sent}
    done_first = cancelled - set(abandoned)  # the ack won the race with the cancellation
    print(
        f"\n{count} requests (window {max_in_flight}) in {elapsed * 1000:.0f} ms: "
        f"{len(completed)} completed; {len(cancelled)} cancelled: {len(never_sent)} "
        f"before they were sent, {len(sent_then_abandoned)} in flight, {len(done_first)} "
        f"after their ack; late {stats.late}"
    )
    assert set(outcome) <= {"ok", "cancelled"}, Counter(outcome)
    # Every task that was not picked completed; a picked one completed or was cancelled.
    assert set(range(count)) - victim_set <= completed
    assert cancelled <= victim_set
    assert set(abandoned) <= cancelled
    # Each kind of cancellation happened, so each check below means something.
    assert len(sent_then_abandoned) >= 100, (len(never_sent), len(sent_then_abandoned))
    assert stats.late == len(sent_then_abandoned), stats
    assert (stats.unknown_seq, stats.overruns, stats.malformed, stats.reaped) == (0, 0, 0, 0)
    expected = {f"{host('198.18', i)}/32" for i in completed | sent_then_abandoned | done_first}
    installed = oracle.route_dsts(netns.name, table=TABLE)
    assert installed - {"198.19.0.1/32"} == expected
    assert dumped == expected
    assert {f"{host('198.18', i)}/32" for i in completed} <= installed


# =========================================================================== 2: address dumps


def address_add(address: IPv4Address, index: int) -> Message:
    body = AddressMessage(family=AF_INET, prefixlen=32, index=index, address=address, local=address)
    return Message(RTM_NEWADDR, NLM_F.CREATE | NLM_F.EXCL, body)


#: Every IPv4 address of the namespace.  Not filtered by device: the kernel flags only an
#: unfiltered address dump as interrupted (``inet_dump_ifaddr`` sets ``cb->seq`` only on
#: the path that walks every device; a dump filtered by index has none to compare).
ADDRESS_DUMP = Message(RTM_GETADDR, 0, AddressMessage(family=AF_INET))


def dumped_addresses(messages: Sequence[Message]) -> list[str]:
    found = []
    for message in messages:
        body = message.body
        assert message.type == RTM_NEWADDR and isinstance(body, AddressMessage), message
        found.append(f"{body.local}/{body.prefixlen}")
    return found


def oracle_addresses(ns: Namespace) -> set[str]:
    """The namespace's IPv4 addresses as ``ip -json addr`` lists them (no asyncroute)."""
    out = subprocess.run(
        ["ip", "-n", ns.name, "-4", "-json", "addr", "show"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {
        f"{info['local']}/{info['prefixlen']}"
        for link in json.loads(out)
        for info in link.get("addr_info", [])
    }


def _raw_address_request(msg_type: int, flags: int, seq: int, index: int, addr: bytes) -> bytes:
    """RTM_NEWADDR/RTM_DELADDR of ``addr``/32, packed with ``struct`` (not asyncroute)."""
    body = struct.pack("=BBBBI", AF_INET, 32, 0, 0, index)
    body += struct.pack("=HH", 8, 2) + addr + struct.pack("=HH", 8, 1) + addr  # LOCAL, ADDRESS
    header = _NLMSGHDR.pack(16 + len(body), msg_type, flags, seq, 0)
    return header + body


class Churn:
    """A thread that adds and removes one address after another on its own netlink
    socket (in the namespace), each change acked before the next.  It stops after a
    removal, so when it has stopped none of its addresses is left."""

    def __init__(self, ns: Namespace, index: int, base: str) -> None:
        sock, _info = open_netlink_socket(ns.name, rcvbuf=1 << 20, sndbuf=1 << 20)
        self.sock = sock
        inode = os.fstat(sock.fileno()).st_ino
        assert inode in netlink_inodes(ns.name), "the churn socket is not in the namespace"
        self.index = index
        self.addresses = {f"{base}.{i}/32" for i in range(1, 255)}
        self._packed = [IPv4Address(f"{base}.{i}").packed for i in range(1, 255)]
        self.changes = 0
        self.errors: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="address-churn", daemon=True)

    def _change(self, msg_type: int, flags: int, seq: int, addr: bytes) -> None:
        request = _raw_address_request(
            msg_type, NLM_F.REQUEST | NLM_F.ACK | flags, seq, self.index, addr
        )
        self.sock.send(request)
        while True:
            data = self.sock.recv(65536)
            _length, reply_type, _flags, reply_seq, _port = _NLMSGHDR.unpack_from(data)
            if reply_type == NLMSG.ERROR and reply_seq == seq:
                code = _ERRNO.unpack_from(data, 16)[0]
                if code:
                    self.errors.append(-code)
                self.changes += 1
                return

    def _run(self) -> None:
        self.sock.settimeout(5.0)
        seq = 0
        while not self.stop.is_set():
            addr = self._packed[seq // 2 % len(self._packed)]
            self._change(RTM_NEWADDR, NLM_F.CREATE | NLM_F.EXCL, seq + 1, addr)
            self._change(RTM_DELADDR, 0, seq + 2, addr)
            seq += 2

    def __enter__(self) -> Churn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.sock.close()
        assert not self.thread.is_alive()


#: Devices the 20,000 addresses are spread over: ``v1`` and the ``a*`` ends of nine more
#: veth pairs.  IPv4 keeps a device's addresses in a list that each add walks, so adding
#: 20,000 to one device takes ~13 s on this kernel (10,000: 2.4 s); over ten, ~0.8 s.
ADDRESS_DEVICES = ["v1", *(f"a{d}" for d in range(1, 10))]


@pytest.mark.anyio
async def test_address_dump_under_churn(netns: Namespace, tmp_path: Any) -> None:
    """20,000 addresses are added with ``request_many`` (RTM_NEWADDR), then the
    namespace's addresses are dumped (RTM_GETADDR) while another thread adds and
    removes addresses: within 20 dumps one is flagged (DumpInterrupted, carrying every
    message received, the flagged ones among them).  ``dump(retry_interrupted=5)`` then
    returns a consistent set: the churn is stopped once its first attempt is over, and
    the result equals what ``ip -json addr`` lists afterwards, or that plus the one
    address the churn held at the instant of a consistent attempt."""
    count = 20_000
    batch = tmp_path / "links.batch"
    batch.write_text("".join(f"link add a{d} type veth peer name b{d}\n" for d in range(1, 10)))
    subprocess.run(["ip", "-n", netns.name, "-batch", str(batch)], check=True)
    indexes = {link["ifname"]: int(link["ifindex"]) for link in oracle.links(netns.name)}
    devices = [indexes[name] for name in ADDRESS_DEVICES]
    before = oracle_addresses(netns)  # lo's and v0's
    added = {f"{host('198.18', i + 1)}/32" for i in range(count)}
    with anyio.fail_after(BODY_LIMIT):
        async with connect_in(netns, timeout=20) as conn:
            start = time.monotonic()
            results = await conn.request_many(
                address_add(host("198.18", i + 1), devices[i % len(devices)]) for i in range(count)
            )
            added_in = time.monotonic() - start
            assert results == [None] * count, kinds(results)
            base = oracle_addresses(netns)
            assert base == before | added

            start = time.monotonic()
            quiet = dumped_addresses([m async for m in conn.dump(ADDRESS_DUMP)])
            dump_time = time.monotonic() - start
            assert sorted(quiet) == sorted(base)

            attempts = 0
            dump_once = conn._dump_once

            def counting_dump_once(*args: Any) -> Any:
                nonlocal attempts
                attempts += 1
                if attempts == 2:
                    churn.stop.set()  # the first attempt is over: let the next ones settle
                return dump_once(*args)

            interrupted: DumpInterrupted | None = None
            dumps = 0
            with Churn(netns, indexes["v1"], "198.19.255") as churn:
                while interrupted is None and dumps < 20:
                    dumps += 1
                    try:
                        async for _ in conn.dump(ADDRESS_DUMP):
                            pass
                    except DumpInterrupted as exc:
                        interrupted = exc
                changes_before = churn.changes
                conn._dump_once = counting_dump_once  # type: ignore[method-assign,assignment]
                retried = dumped_addresses(
                    [m async for m in conn.dump(ADDRESS_DUMP, retry_interrupted=5)]
                )
                conn._dump_once = dump_once  # type: ignore[method-assign]
            assert not churn.errors, churn.errors
            after = oracle_addresses(netns)
            # The connection is still fine.
            assert await conn.request(address_add(IPv4Address("198.19.0.1"), devices[0])) is None

    assert interrupted is not None, f"none of {dumps} dumps was interrupted"
    flagged = sum(1 for m in interrupted.messages if m.flags & NLM_F.DUMP_INTR)
    received = dumped_addresses(interrupted.messages)
    print(
        f"\n{count} addresses added in {added_in:.2f} s; a quiet dump took "
        f"{dump_time * 1000:.0f} ms; dump {dumps} was interrupted ({churn.changes} changes "
        f"in all, {changes_before} before the retrying dump): {len(received)} messages, "
        f"{flagged} flagged; the retrying dump made {attempts} attempts"
    )
    assert flagged > 0
    assert set(received) - base <= churn.addresses
    assert after == base
    assert len(retried) == len(set(retried)), "a consistent dump repeated an address"
    extra = set(retried) - after
    assert set(retried) >= after
    assert extra <= churn.addresses and len(extra) <= 1, extra


# ========================================================================= 5: forgeries, multicast


@contextlib.contextmanager
def reading_paused(conn: Connection) -> Iterator[None]:
    """Stop the connection reading its socket for a while (datagrams queue up meanwhile).

    asyncio: the reader callback of the private ``conn._sock`` is removed, then the
    private ``conn._on_readable`` registered again.  trio: the reader task calls
    ``conn._on_readable`` after each wake-up; it is shadowed by a no-op on the instance.
    """
    loop = conn._loop
    if loop is not None:
        fd = conn._sock.fileno()
        assert loop.remove_reader(fd)
        try:
            yield
        finally:
            loop.add_reader(fd, conn._on_readable)
    else:
        conn._on_readable = lambda: None  # type: ignore[method-assign]
        try:
            yield
        finally:
            del conn._on_readable


def _frame(msg_type: int, flags: int, seq: int, port_id: int, payload: bytes) -> bytes:
    return _NLMSGHDR.pack(16 + len(payload), msg_type, flags, seq, port_id) + payload


def _forged_route_part(seq: int, port_id: int, dst: IPv4Address) -> bytes:
    """A dump part as the kernel writes it: one RTM_NEWROUTE with NLM_F_MULTI."""
    rtmsg = struct.pack("=BBBBBBBBI", AF_INET, 32, 0, 0, TABLE, RTPROT_BOOT, 0, RTN_UNICAST, 0)
    attrs = struct.pack("=HH", 8, 1) + dst.packed  # RTA_DST
    return _frame(RTM.NEWROUTE, NLM_F.MULTI, seq, port_id, rtmsg + attrs)


def _forged_done(seq: int, port_id: int) -> bytes:
    return _frame(NLMSG.DONE, NLM_F.MULTI, seq, port_id, _ERRNO.pack(0))


@pytest.mark.anyio
async def test_forged_dump_part_and_done_are_ignored(netns: Namespace, tmp_path: Any) -> None:
    """Another userspace socket in the namespace sends the connection a dump part (a
    route that does not exist) and an NLMSG_DONE, both carrying the running dump's seq
    and the connection's port id, queued right behind the kernel's first part.  The dump
    yields exactly the table — not the forged route, and not cut short by the forged
    DONE — and both datagrams are counted as foreign.  (The forged ack and error reply
    to a doit request: tests/kernel/test_engine.py.)"""
    routes = 3_000  # ~6 parts of 32 KiB: the dump is still running when the forgeries land
    batch = tmp_path / "routes.batch"
    batch.write_text(
        "".join(
            f"route add {host('198.18', i)} via {GATEWAY} dev v0 table {TABLE}\n"
            for i in range(routes)
        )
    )
    subprocess.run(["ip", "-n", netns.name, "-batch", str(batch)], check=True)
    expected = oracle.route_dsts(netns.name, table=TABLE)
    assert len(expected) == routes
    forged_dst = IPv4Address("203.0.113.99")
    with anyio.fail_after(BODY_LIMIT):
        forger, forger_info = await anyio.to_thread.run_sync(
            lambda: open_netlink_socket(netns.name, rcvbuf=65536, sndbuf=65536)
        )
        try:
            async with connect_in(netns, timeout=10) as conn:
                assert forger_info.port_id not in (0, conn.port_id)
                dumped: list[str] = []

                async def run_dump() -> None:
                    async for m in conn.dump(route_dump()):
                        assert isinstance(m.body, RouteMessage)
                        dumped.append(f"{m.body.dst}/{m.body.dst_len}")

                async with anyio.create_task_group() as group:
                    with reading_paused(conn):
                        group.start_soon(run_dump)
                        with anyio.fail_after(5):
                            while conn._core.in_flight != 1:
                                await anyio.sleep(0.001)
                        (seq,) = conn._core._pending
                        await anyio.sleep(0.01)  # the kernel has queued its first part
                        target = (conn.port_id, 0)
                        forger.sendto(_forged_route_part(seq, conn.port_id, forged_dst), target)
                        forger.sendto(_forged_done(seq, conn.port_id), target)
                stats = conn.stats
                assert await conn.request(add_route(host("198.19", 1), ifindex(netns))) is None
        finally:
            forger.close()
    if stats.foreign == 0:
        pytest.fail(f"the forged datagrams never reached the connection ({stats})")
    assert stats.foreign == 2, stats
    assert stats.unknown_seq == 0, stats
    assert f"{forged_dst}/32" not in dumped
    assert len(dumped) == routes
    assert set(dumped) == expected


def _reply_events_for(frame: bytes, port_id: int, seq: int, request: Message) -> list[object]:
    """Self-check: what a core waiting for ``seq`` makes of ``frame`` when it comes from
    the kernel by unicast (no group).  Returns the events."""
    from asyncroute._protocol import NetlinkProtocol

    core = NetlinkProtocol(max_in_flight=1, port_id=port_id)
    core._next_seq = seq
    assert core.send_request(request, flags=int(NLM_F.REQUEST | NLM_F.ACK)) == seq
    assert core.data_to_send()
    return list(core.receive_datagram(frame, 0, 0))


@pytest.mark.anyio
async def test_multicast_copy_with_our_seq_is_not_the_reply(netns: Namespace) -> None:
    """The connection's own socket joins RTNLGRP_IPV4_ROUTE, then adds and deletes a
    route.  The kernel multicasts each change as an RTM_NEWROUTE/RTM_DELROUTE carrying
    the request's seq and port id — the same seq the ack carries, and sent before it.
    The request still returns None (its ack), not the notification; the copies are
    counted as multicast and never as unknown or late."""
    oif = ifindex(netns)
    seen: list[tuple[int, bytes]] = []  # (sender groups, datagram) of every datagram read
    results: list[object] = []
    with anyio.fail_after(BODY_LIMIT):
        async with connect_in(netns, timeout=10) as conn:
            conn._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_IPV4_ROUTE)
            core = conn._core
            receive = core.receive_datagram

            def recording(data: Any, sender_port: int = 0, sender_groups: int = 0) -> Any:
                seen.append((sender_groups, bytes(data)))
                return receive(data, sender_port, sender_groups)

            core.receive_datagram = recording  # type: ignore[method-assign,assignment]
            add = add_route(IPv4Address("198.51.100.7"), oif)
            results.append(await conn.request(add))
            results.append(await conn.request(Message(RTM.DELROUTE, 0, add.body)))
            core.receive_datagram = receive  # type: ignore[method-assign]
            stats = conn.stats
            port_id = conn.port_id

    assert results == [None, None]
    headers = [(groups, _NLMSGHDR.unpack_from(data), data) for groups, data in seen]
    acks = [(h[3], h[4]) for groups, h, _ in headers if not groups and h[1] == NLMSG.ERROR]
    copies = [(h, data) for groups, h, data in headers if groups]
    assert len(acks) == 2
    ours = [(h, data) for h, data in copies if (h[3], h[4]) in acks]
    print(
        f"\n{len(seen)} datagrams read: {len(copies)} multicast copies, {len(ours)} of them "
        f"with our seq and port id; stats {stats}"
    )
    assert [h[1] for h, _ in ours] == [RTM.NEWROUTE, RTM.DELROUTE], ours
    assert [(h[3], h[4]) for h, _ in ours] == acks
    assert stats.multicast == len(copies) >= 2, stats
    assert (stats.unknown_seq, stats.late, stats.foreign, stats.malformed) == (0, 0, 0, 0)
    # Self-check: the same bytes, had they come by unicast, would have been taken as
    # the add's reply — only the group check keeps them out.
    (header, data), _ = ours
    events = _reply_events_for(data, port_id, header[3], add)
    assert events and type(events[0]).__name__ == "Reply", events


# =========================================================================== 4: real sockets


def sender_threads() -> int:
    """The number of live threads a netlink connection started (its sender thread)."""
    return sum(t.name.startswith("asyncroute") for t in threading.enumerate())


@pytest.mark.anyio
async def test_open_close_cycles_leak_no_fds_or_threads(
    netns: Namespace, anyio_backend: str
) -> None:
    """30 connections to the kernel opened and closed, each closed with requests still
    pending: as many file descriptors and threads afterwards as before (a real netlink
    connection also starts a sender thread on asyncio).  Only the connection's own
    threads are counted: worker threads of the async library's pool retire on their own
    when idle, so the process-wide count can drop during the run.  The fake-kernel
    version is tests/transport/test_connection.py's
    ``test_connect_close_cycles_leak_no_fds``."""
    oif = ifindex(netns)
    seen_senders = 0

    async def cycle(n: int) -> Counter[str]:
        nonlocal seen_senders
        outcomes: Counter[str] = Counter()

        async def one(i: int) -> None:
            try:
                await conn.request(add_route(host("198.18", n * 100 + i), oif))
                outcomes["None"] += 1
            except Exception as exc:
                outcomes[type(exc).__name__] += 1

        async with anyio.create_task_group() as group, connect_in(netns, timeout=10) as conn:
            for i in range(100):
                group.start_soon(one, i)
            await anyio.sleep(0)
            seen_senders = max(seen_senders, sender_threads())
            # Close at once, or 5-20 ms later (100 requests take ~4-20 ms here).
            await anyio.sleep(0.005 * (n % 5))
        return outcomes

    with anyio.fail_after(BODY_LIMIT):
        await cycle(0)  # warm up: the worker thread pool, lazily opened files
        fds = len(os.listdir("/proc/self/fd"))
        threads = sender_threads()
        outcomes: Counter[str] = Counter()
        for n in range(1, 31):
            outcomes += await cycle(n)
        after_fds = len(os.listdir("/proc/self/fd"))
        after_threads = sender_threads()
    print(f"\n30 cycles: fds {fds} → {after_fds}, threads {threads} → {after_threads}; {outcomes}")
    assert (after_fds, after_threads) == (fds, threads)
    # The thread count above means something only if the sender threads are found by name.
    assert seen_senders > 0 or anyio_backend == "trio", "no sender thread seen while open"
    assert set(outcomes) <= {"None", "ConnectionClosed"}, outcomes
    assert outcomes["ConnectionClosed"] > 0, "no cycle closed with a request pending"
    assert outcomes["None"] > 0, "no request was answered before its connection closed"
