"""The phases: ``ip`` and the namespace, the raw netlink floor, and each tool's timed
work, checked against the kernel's tables after every operation.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import os
import socket
import struct
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio

from ..netns import Namespace, NetnsUnavailable, create_namespace, delete_namespace
from .measure import (
    DEVICE,
    GATEWAY4,
    GATEWAY6,
    LOOKUP_MAX,
    LOOKUP_RANGE,
    PYROUTE2_CONCURRENCY,
    RAW_BUFFER,
    RAW_PER_SEND,
    RAW_WINDOW,
    RULE_PRIORITY,
    TABLE,
    PhaseError,
    Row,
    Sample,
    T,
    _describe,
    _measure_sync,
    _prefix4,
    _prefix6,
    _timed,
)

# --------------------------------------------------------------------------- ip and the namespace


def _ip(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise PhaseError(f"ip -n {ns} {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _ip_json(ns: str, *args: str) -> Any:
    out = _ip(ns, "-json", *args).stdout
    return json.loads(out) if out.strip() else []


def _create_namespace() -> str:
    try:
        return create_namespace("asyncroute-bench").name
    except NetnsUnavailable as exc:
        raise SystemExit(f"asyncroute bench: {exc}") from None


def _delete_namespace(name: str) -> None:
    delete_namespace(Namespace(name))


def _ifindex(ns: str) -> int:
    links = _ip_json(ns, "link", "show", "dev", DEVICE)
    return int(links[0]["ifindex"])


def _count(ns: str, version: int, table: str | int = TABLE) -> tuple[int, int]:
    """(prefix routes, all routes) in one table: prefix routes are those via a gateway
    (the nexthop route ``192.0.2.1 dev v0 scope link`` and connected routes are not)."""
    proc = _ip(ns, f"-{version}", "route", "show", "table", str(table), check=False)
    if proc.returncode != 0:
        if "does not exist" in proc.stderr:
            return 0, 0
        raise PhaseError(f"ip route show table {table}: {proc.stderr.strip()}")
    lines = proc.stdout.splitlines()
    return sum(1 for line in lines if " via " in line), len(lines)


def _expect(ns: str, who: str, version: int, wanted: int, table: str | int = TABLE) -> None:
    found, _ = _count(ns, version, table)
    if found != wanted:
        raise PhaseError(f"{who}: expected {wanted:,} routes in table {table}, found {found:,}")


def _bench_rules(ns: str) -> list[dict[str, Any]]:
    return [r for r in _ip_json(ns, "rule", "show") if str(r.get("table")) == str(TABLE)]


def _flush(ns: str, *args: str) -> None:
    proc = _ip(ns, *args, check=False)
    if proc.returncode != 0 and "does not exist" not in proc.stderr:
        raise PhaseError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _clean(ns: str) -> None:
    """Empty what the benchmark uses and check it is empty: tables 100 (v4, v6), its
    rules, and 198.18.0.0/15 in main."""
    _flush(ns, "-4", "route", "flush", "table", str(TABLE))
    _flush(ns, "-6", "route", "flush", "table", str(TABLE))
    _flush(ns, "-4", "route", "flush", "root", LOOKUP_RANGE, "table", "main")
    rules = _bench_rules(ns)
    if rules:
        _run_ip_batch(ns, 0, 0, (f"rule del pref {r['priority']} table {TABLE}" for r in rules))
    left = _leftovers(ns)
    if left:
        raise PhaseError("could not empty the tables: " + ", ".join(left))


def _leftovers(ns: str) -> list[str]:
    """What the benchmark's tables, rules and main-table range still hold."""
    counts = (
        ("IPv4 table 100", _count(ns, 4)[1]),
        ("IPv6 table 100", _count(ns, 6)[1]),
        ("rules to table 100", len(_bench_rules(ns))),
        ("routes in 198.18.0.0/15 in main", _count_lookup_range(ns)),
    )
    return [f"{what}: {n}" for what, n in counts if n]


def _count_lookup_range(ns: str) -> int:
    out = _ip(ns, "-4", "route", "show", "root", LOOKUP_RANGE, "table", "main").stdout
    return len(out.splitlines())


def _check_netns(ns: str) -> None:
    """An existing namespace must look like ours and hold nothing the benchmark touches."""
    if not os.path.lexists(f"/run/netns/{ns}"):
        raise SystemExit(f"asyncroute bench: no namespace {ns!r} in /run/netns")
    try:
        links = _ip_json(ns, "address", "show", "dev", DEVICE)
    except PhaseError as exc:
        raise SystemExit(f"asyncroute bench: --netns {ns}: {exc}") from None
    link = links[0] if links else {}
    addresses = {f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])}
    missing = {"192.0.2.2/24", "2001:db8::2/64"} - addresses
    if missing or "UP" not in link.get("flags", []):
        raise SystemExit(
            f"asyncroute bench: --netns {ns} needs {DEVICE} up with 192.0.2.2/24 and "
            f"2001:db8::2/64 (missing: {', '.join(sorted(missing)) or 'UP flag'})"
        )
    busy = _leftovers(ns)
    if busy:
        raise SystemExit(
            f"asyncroute bench: --netns {ns} is not empty ({', '.join(busy)}); the benchmark "
            "flushes table 100 and 198.18.0.0/15, so it wants them empty to begin with"
        )


def _run_ip_batch(ns: str, round_number: int, count: int, lines: Iterable[str]) -> Sample:
    """Write ``lines`` to a file (not timed) and time ``ip -n NS -batch FILE``."""
    with tempfile.TemporaryDirectory(prefix="asyncroute-bench-") as tmp:
        path = Path(tmp, "batch")
        with path.open("w") as f:
            for line in lines:
                f.write(line)
                f.write("\n")
        errors = Path(tmp, "stderr")
        with errors.open("w") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                ["ip", "-n", ns, "-batch", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            text = errors.read_text().strip().splitlines()
            raise PhaseError(f"ip -batch exited {proc.returncode}: {' '.join(text[:2])}")
    return Sample(
        round_number,
        count,
        seconds,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_peak=usage.ru_maxrss / 1024,
    )


# --------------------------------------------------------------------------- the raw floor

_HEADER = struct.Struct("=IHHII")
_ERROR_CODE = struct.Struct("=i")
_NLMSG_ERROR = 2


def _raw_bodies(family: int, n: int, oif: int, delete: bool) -> Iterator[bytes]:
    from .._codec import pack_route_body
    from ..constants import RTN, RTPROT

    if family == socket.AF_INET:
        gateway, plen, size = socket.inet_pton(socket.AF_INET, GATEWAY4), 32, 4
    else:
        gateway, plen, size = socket.inet_pton(socket.AF_INET6, GATEWAY6), 64, 16
    for i in range(n):
        if family == socket.AF_INET:
            dst = ((198 << 24) | ((18 + (i >> 16)) << 16) | (i & 0xFFFF)).to_bytes(size, "big")
        else:
            dst = socket.inet_pton(socket.AF_INET6, _prefix6(i).split("/")[0])
        if delete:
            yield pack_route_body(family, plen, TABLE, 0, 0, 0, dst, oif)
        else:
            yield pack_route_body(
                family, plen, TABLE, RTPROT.BOOT, 0, RTN.UNICAST, dst, oif, gateway
            )


def _raw_datagrams(msg_type: int, flags: int, bodies: Iterable[bytes]) -> list[tuple[bytes, int]]:
    """Frames (16-byte header + body), RAW_PER_SEND to a datagram: (bytes, frames)."""
    datagrams: list[tuple[bytes, int]] = []
    frames: list[bytes] = []
    pack = _HEADER.pack
    for seq, body in enumerate(bodies, 1):
        frames.append(pack(16 + len(body), msg_type, flags, seq, 0) + body)
        if len(frames) == RAW_PER_SEND:
            datagrams.append((b"".join(frames), len(frames)))
            frames = []
    if frames:
        datagrams.append((b"".join(frames), len(frames)))
    return datagrams


def _raw_send(sock: socket.socket, datagrams: list[tuple[bytes, int]]) -> Counter[int]:
    """Send every datagram, ≤ RAW_WINDOW unacknowledged; drain acks with recv_into.
    Returns errno → count of error replies."""
    buffer = bytearray(256 * 1024)
    unpack_header = _HEADER.unpack_from
    unpack_code = _ERROR_CODE.unpack_from
    errors: Counter[int] = Counter()
    in_flight = 0

    def drain() -> int:
        size = sock.recv_into(buffer)
        acks = offset = 0
        while offset + 16 <= size:
            length, kind, _, _, _ = unpack_header(buffer, offset)
            if length < 16:
                break
            if kind == _NLMSG_ERROR:
                acks += 1
                code = unpack_code(buffer, offset + 16)[0]
                if code:
                    errors[-code] += 1
            offset += (length + 3) & ~3
        return acks

    for data, frames in datagrams:
        while in_flight + frames > RAW_WINDOW:
            in_flight -= drain()
        sock.send(data)
        in_flight += frames
    while in_flight > 0:
        in_flight -= drain()
    return errors


def _raw_phase(ns: str, round_number: int, family: int, n: int, oif: int, delete: bool) -> Sample:
    from .._socket import open_netlink_socket
    from ..constants import NLM_F, RTM

    if delete:
        msg_type, flags = int(RTM.DELROUTE), int(NLM_F.REQUEST | NLM_F.ACK)
    else:
        msg_type = int(RTM.NEWROUTE)
        flags = int(NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE)
    datagrams = _raw_datagrams(msg_type, flags, _raw_bodies(family, n, oif, delete))
    sock, _ = open_netlink_socket(ns, rcvbuf=RAW_BUFFER, sndbuf=RAW_BUFFER)
    try:
        sock.setblocking(True)
        # A kernel-side receive timeout, so that a lost ack fails instead of hanging
        # (no poll() before each recv, as settimeout() would add).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 30, 0))
        errors: Counter[int] = Counter()

        def work() -> None:
            errors.update(_raw_send(sock, datagrams))

        sample = _measure_sync(round_number, n, work)
    finally:
        sock.close()
    if errors:
        code, times = errors.most_common(1)[0]
        raise PhaseError(f"{sum(errors.values())} error replies, e.g. {times}x {os.strerror(code)}")
    return sample


# --------------------------------------------------------------------------- phases


@dataclasses.dataclass
class Context:
    ns: str
    oif: int
    routes: int
    rounds: int
    backend: str
    tasks_routes: int
    pyroute2_routes: int
    rules: int
    lookups: int
    rows: dict[str, Row]
    lookup: dict[str, list[float]]
    sweep: dict[int, list[Sample]]
    lookup_error: str = ""

    def record(self, key: str, sample: Sample) -> None:
        self.rows[key].samples.append(sample)

    def run_async(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        return anyio.run(function, *args, backend=self.backend)


def _declare_rows(only: Sequence[str], tasks: int, rules: int) -> dict[str, Row]:
    rows = [
        Row("asyncroute.upsert_many", "asyncroute upsert_many", "upsert_many", "v4-add"),
        Row("ip.replace", "ip -batch route replace", "ip-batch", "v4-add", "ip"),
        Row(
            "raw.add",
            f"raw floor ({RAW_PER_SEND}/send, window {RAW_WINDOW})",
            "raw-floor",
            "v4-add",
            "raw",
        ),
        Row("asyncroute.tasks", f"asyncroute upsert() x {tasks:,} tasks", "tasks", "v4-add"),
        Row("tasks.floor", f"(floor: {tasks:,} tasks, no netlink)", "tasks", "v4-add"),
        Row(
            "pyroute2.async",
            f"pyroute2 AsyncIPRoute, semaphore {PYROUTE2_CONCURRENCY}",
            "pyroute2-async",
            "v4-add",
        ),
        Row("pyroute2.sync", "pyroute2 IPRoute loop", "pyroute2-sync", "v4-add"),
        Row("asyncroute.delete_many", "asyncroute delete_many", "upsert_many", "v4-del"),
        Row("ip.del", "ip -batch route del", "ip-batch", "v4-del", "ip"),
        Row("raw.del", "raw floor", "raw-floor", "v4-del", "raw"),
        Row("asyncroute.upsert_many6", "asyncroute upsert_many", "ipv6", "v6-add"),
        Row("ip.replace6", "ip -batch route replace", "ipv6", "v6-add", "ip"),
        Row("raw.add6", "raw floor", "ipv6", "v6-add", "raw"),
        Row("asyncroute.delete_many6", "asyncroute delete_many", "ipv6", "v6-del"),
        Row("ip.del6", "ip -batch route del", "ipv6", "v6-del", "ip"),
        Row("raw.del6", "raw floor", "ipv6", "v6-del", "raw"),
        Row(
            "asyncroute.replace_rule",
            f"asyncroute replace_rules ({rules:,} rules)",
            "rules",
            "rule-add",
        ),
        Row("ip.rule_add", "ip -batch rule add", "rules", "rule-add", "ip"),
        Row(
            "asyncroute.delete_rule",
            f"asyncroute delete_rules ({rules:,} rules)",
            "rules",
            "rule-del",
        ),
        Row("ip.rule_del", "ip -batch rule del", "rules", "rule-del", "ip"),
    ]
    return {row.key: row for row in rows if row.phase in only}


async def _asyncroute_bulk(ctx: Context, r: int, version: int) -> None:
    import asyncroute
    from asyncroute import Route

    n = ctx.routes
    suffix = "" if version == 4 else "6"

    if version == 4:

        def routes() -> Iterator[Route]:
            for i in range(n):
                yield Route(
                    f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32",
                    nexthop="192.0.2.1",
                    device="v0",
                    table=100,
                )

    else:

        def routes() -> Iterator[Route]:
            for i in range(n):
                yield Route(
                    f"2001:db8:{1 + (i >> 16):x}:{i & 0xFFFF:x}::/64",
                    nexthop="2001:db8::1",
                    device="v0",
                    table=100,
                )

    async with asyncroute.connect(ctx.ns) as conn:
        results, sample = await _timed(r, n, lambda: conn.upsert_many(routes()))
        _check_results(results, "upsert_many")
        _expect(ctx.ns, "upsert_many", version, n)
        ctx.record("asyncroute.upsert_many" + suffix, sample)
        results, sample = await _timed(r, n, lambda: conn.delete_many(routes()))
        _check_results(results, "delete_many")
        _expect(ctx.ns, "delete_many", version, 0)
        ctx.record("asyncroute.delete_many" + suffix, sample)
        if conn.stats.overruns:
            raise PhaseError(f"{conn.stats.overruns} receive-buffer overruns (ENOBUFS)")


def _check_results(results: Sequence[object], who: str) -> None:
    failed = [r for r in results if r is not True]
    if failed:
        raise PhaseError(f"{who}: {len(failed):,} of {len(results):,} failed, e.g. {failed[0]!r}")


def phase_upsert_many(ctx: Context, r: int) -> None:
    ctx.run_async(_asyncroute_bulk, ctx, r, 4)


def _add_nexthop_route(ns: str, version: int) -> None:
    """Put the nexthop route that asyncroute's upsert installs (``NH dev v0 scope link``
    in table 100, Cilium's semantics) into the table before ``ip -batch`` and the raw
    floor add theirs (not timed), so that every tool adds to and deletes from the same
    table.  It matters: with this one route the kernel's trie is shaped differently,
    and the raw floor deletes 100,000 routes ~17 % slower (docs/performance.md)."""
    from ..route import Route

    prefix, gateway = (_prefix4(0), GATEWAY4) if version == 4 else (_prefix6(0), GATEWAY6)
    route = Route(prefix, nexthop=gateway, device=DEVICE, table=TABLE)
    _ip(ns, *route.nexthop_route().to_ip_command()[1:])


def _ip_pair(ctx: Context, r: int, version: int) -> None:
    n = ctx.routes
    prefix, gateway = (_prefix4, GATEWAY4) if version == 4 else (_prefix6, GATEWAY6)
    suffix = "" if version == 4 else "6"
    tail = f"via {gateway} dev {DEVICE} table {TABLE}"
    _add_nexthop_route(ctx.ns, version)
    sample = _run_ip_batch(ctx.ns, r, n, (f"route replace {prefix(i)} {tail}" for i in range(n)))
    _expect(ctx.ns, "ip -batch route replace", version, n)
    ctx.record("ip.replace" + suffix, sample)
    sample = _run_ip_batch(ctx.ns, r, n, (f"route del {prefix(i)} {tail}" for i in range(n)))
    _expect(ctx.ns, "ip -batch route del", version, 0)
    ctx.record("ip.del" + suffix, sample)


def phase_ip_batch(ctx: Context, r: int) -> None:
    _ip_pair(ctx, r, 4)


def _raw_pair(ctx: Context, r: int, version: int) -> None:
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    suffix = "" if version == 4 else "6"
    _add_nexthop_route(ctx.ns, version)
    sample = _raw_phase(ctx.ns, r, family, ctx.routes, ctx.oif, delete=False)
    _expect(ctx.ns, "raw floor add", version, ctx.routes)
    ctx.record("raw.add" + suffix, sample)
    sample = _raw_phase(ctx.ns, r, family, ctx.routes, ctx.oif, delete=True)
    _expect(ctx.ns, "raw floor del", version, 0)
    ctx.record("raw.del" + suffix, sample)


def phase_raw_floor(ctx: Context, r: int) -> None:
    _raw_pair(ctx, r, 4)


async def _pyroute2_async(ctx: Context, r: int, n: int) -> Sample:
    import asyncio

    pyroute2: Any = importlib.import_module("pyroute2")
    oif = ctx.oif
    async with pyroute2.AsyncIPRoute(netns=ctx.ns) as ipr:
        semaphore = asyncio.Semaphore(PYROUTE2_CONCURRENCY)

        async def one(i: int) -> None:
            async with semaphore:
                await ipr.route(
                    "replace",
                    dst=f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32",
                    gateway=GATEWAY4,
                    oif=oif,
                    table=TABLE,
                )

        async def everything() -> None:
            # pyroute2 may hang when replies are lost (netlink-facts §3): bound the wait.
            with anyio.fail_after(max(120.0, n / 200)):
                await asyncio.gather(*(one(i) for i in range(n)))

        _, sample = await _timed(r, n, everything, lag=False)
    return sample


def phase_pyroute2_async(ctx: Context, r: int) -> None:
    n = min(ctx.routes, ctx.pyroute2_routes)
    sample = anyio.run(_pyroute2_async, ctx, r, n, backend="asyncio")
    _expect(ctx.ns, "pyroute2 AsyncIPRoute", 4, n)
    ctx.record("pyroute2.async", sample)


def phase_pyroute2_sync(ctx: Context, r: int) -> None:
    pyroute2: Any = importlib.import_module("pyroute2")
    n = min(ctx.routes, ctx.pyroute2_routes)
    oif = ctx.oif
    with pyroute2.IPRoute(netns=ctx.ns) as ipr:

        def work() -> None:
            for i in range(n):
                ipr.route(
                    "replace",
                    dst=f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32",
                    gateway=GATEWAY4,
                    oif=oif,
                    table=TABLE,
                )

        sample = _measure_sync(r, n, work)
    _expect(ctx.ns, "pyroute2 IPRoute", 4, n)
    ctx.record("pyroute2.sync", sample)


async def _tasks(ctx: Context, r: int) -> None:
    import asyncroute
    from asyncroute import Route

    n = ctx.tasks_routes
    async with asyncroute.connect(ctx.ns) as conn:
        failures: list[BaseException] = []

        async def one(i: int) -> None:
            try:
                await conn.upsert(
                    Route(
                        f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32",
                        nexthop="192.0.2.1",
                        device="v0",
                        table=100,
                    )
                )
            except Exception as exc:
                failures.append(exc)

        async def everything() -> None:
            with anyio.fail_after(max(300.0, n / 100)):
                async with anyio.create_task_group() as tg:
                    for i in range(n):
                        tg.start_soon(one, i)

        _, sample = await _timed(r, n, everything)
        if conn.stats.overruns:
            raise PhaseError(f"{conn.stats.overruns} receive-buffer overruns (ENOBUFS)")
        if failures:
            raise PhaseError(f"{len(failures):,} of {n:,} upserts failed, e.g. {failures[0]!r}")
    _expect(ctx.ns, "upsert() tasks", 4, n)
    ctx.record("asyncroute.tasks", sample)
    ctx.record("tasks.floor", await _task_floor(r, n))


async def _task_floor(r: int, n: int) -> Sample:
    """What n tasks cost with no netlink at all: each is spawned the same way, awaits
    an event and a timeout like a request does, and is woken by a callback.  The
    tasks row is bounded by this (and by CPython's cyclic GC, which these n live tasks
    make run often)."""

    async def everything() -> None:
        events = [anyio.Event() for _ in range(n)]

        async def one(i: int) -> None:
            with anyio.fail_after(300):
                await events[i].wait()

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
            await anyio.sleep(0)
            for event in events:
                event.set()

    _, sample = await _timed(r, n, everything)
    return sample


def phase_tasks(ctx: Context, r: int) -> None:
    ctx.run_async(_tasks, ctx, r)


def phase_ipv6(ctx: Context, r: int) -> None:
    # The three tools one after the other, each table emptied and checked in between.
    problems: list[str] = []
    steps: list[Callable[[], None]] = [
        lambda: ctx.run_async(_asyncroute_bulk, ctx, r, 6),
        lambda: _ip_pair(ctx, r, 6),
        lambda: _raw_pair(ctx, r, 6),
    ]
    for step in steps:
        try:
            step()
        except Exception as exc:
            problems.append(_describe(exc))
        _clean(ctx.ns)
    if problems:
        raise PhaseError("; ".join(problems))


def _rule_count(ns: str) -> int:
    return len(_bench_rules(ns))


async def _asyncroute_rules(ctx: Context, r: int) -> None:
    import asyncroute
    from asyncroute import Rule

    n = ctx.rules
    rules = [
        Rule(priority=RULE_PRIORITY + i, mark=i + 1, mask=0xFFFFFFFF, table=TABLE) for i in range(n)
    ]
    async with asyncroute.connect(ctx.ns) as conn:
        for method, key, wanted in (
            (conn.replace_rules, "asyncroute.replace_rule", n),
            (conn.delete_rules, "asyncroute.delete_rule", 0),
        ):

            async def everything(method: Any = method, key: str = key) -> None:
                with anyio.fail_after(max(300.0, n / 10)):
                    results = await method(rules)
                _check_results(results, key)

            _, sample = await _timed(r, n, everything)
            found = _rule_count(ctx.ns)
            if found != wanted:
                raise PhaseError(f"{key}: expected {wanted:,} rules to table 100, found {found:,}")
            ctx.record(key, sample)


def phase_rules(ctx: Context, r: int) -> None:
    problems: list[str] = []
    try:
        ctx.run_async(_asyncroute_rules, ctx, r)
    except Exception as exc:
        problems.append(_describe(exc))
    _clean(ctx.ns)
    try:
        n = ctx.rules

        def line(verb: str, i: int) -> str:
            mark = f"fwmark {i + 1:#x}/0xffffffff"
            return f"rule {verb} {mark} table {TABLE} pref {RULE_PRIORITY + i}"

        sample = _run_ip_batch(ctx.ns, r, n, (line("add", i) for i in range(n)))
        if (found := _rule_count(ctx.ns)) != n:
            raise PhaseError(f"ip -batch rule add: expected {n:,} rules, found {found:,}")
        ctx.record("ip.rule_add", sample)
        sample = _run_ip_batch(ctx.ns, r, n, (line("del", i) for i in range(n)))
        if (found := _rule_count(ctx.ns)) != 0:
            raise PhaseError(f"ip -batch rule del: {found:,} rules left")
        ctx.record("ip.rule_del", sample)
    except Exception as exc:
        problems.append(_describe(exc))
    if problems:
        raise PhaseError("; ".join(problems))


async def _lookups(ctx: Context, total: int, numbered: int) -> None:
    """Time ``--lookups`` lookup() calls and two full dumps, for one layout."""
    import asyncroute
    from asyncroute import RTM, Message, Route, RouteMessage

    key = "main" if numbered == 0 else "table"
    table = 0 if numbered == 0 else TABLE
    # Spread over the routes of the table asked about.
    candidates = range(numbered, total) if numbered == 0 else range(numbered)
    count = len(candidates)
    picks = [candidates[(k * count) // ctx.lookups % count] for k in range(ctx.lookups)]
    clock = time.perf_counter
    async with asyncroute.connect(ctx.ns) as conn:
        latencies = ctx.lookup.setdefault(key, [])
        for i in picks:
            wanted = Route(_prefix4(i), nexthop=GATEWAY4, device=DEVICE, table=table)
            started = clock()
            found = await conn.lookup(wanted)
            latencies.append(clock() - started)
            if found.prefix != wanted.prefix or found.table != (table or 254):
                raise PhaseError(f"lookup({wanted.prefix}) returned {found}")
        dumps = ctx.lookup.setdefault(f"dump-{key}", [])
        for _ in range(2):
            started = clock()
            seen = 0
            async for _message in conn.dump(Message(RTM.GETROUTE, 0, RouteMessage(family=2))):
                seen += 1
            dumps.append(clock() - started)
            if seen < total:
                raise PhaseError(f"full dump returned {seen:,} routes, expected ≥ {total:,}")


def phase_lookup(ctx: Context, r: int) -> None:
    total = min(ctx.routes, LOOKUP_MAX)
    numbered = min(1000, total // 2)
    tail = f"via {GATEWAY4} dev {DEVICE}"
    _run_ip_batch(ctx.ns, r, total, (f"route replace {_prefix4(i)} {tail}" for i in range(total)))
    _expect(ctx.ns, "lookup setup", 4, total, "main")
    ctx.run_async(_lookups, ctx, total, 0)
    # Move the first `numbered` routes to table 100: it holds them, main the rest.
    lines = [f"route del {_prefix4(i)} {tail}" for i in range(numbered)]
    lines += [f"route replace {_prefix4(i)} {tail} table {TABLE}" for i in range(numbered)]
    _run_ip_batch(ctx.ns, r, total, lines)
    _expect(ctx.ns, "lookup setup", 4, total - numbered, "main")
    _expect(ctx.ns, "lookup setup", 4, numbered)
    ctx.run_async(_lookups, ctx, total, numbered)


async def _sweep_one(ctx: Context, r: int, window: int) -> Sample:
    import asyncroute
    from asyncroute import Route

    n = ctx.routes

    def routes() -> Iterator[Route]:
        for i in range(n):
            yield Route(
                f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32",
                nexthop="192.0.2.1",
                device="v0",
                table=100,
            )

    async with asyncroute.connect(ctx.ns, max_in_flight=window) as conn:
        results, sample = await _timed(r, n, lambda: conn.upsert_many(routes()))
    _check_results(results, f"upsert_many window {window}")
    _expect(ctx.ns, f"upsert_many window {window}", 4, n)
    return sample


PHASE_RUNNERS: dict[str, Callable[[Context, int], None]] = {
    "upsert_many": phase_upsert_many,
    "ip-batch": phase_ip_batch,
    "raw-floor": phase_raw_floor,
    "pyroute2-async": phase_pyroute2_async,
    "pyroute2-sync": phase_pyroute2_sync,
    "tasks": phase_tasks,
    "ipv6": phase_ipv6,
    "rules": phase_rules,
    "lookup": phase_lookup,
}
