"""``asyncroute bench``: program routes in bulk and measure asyncroute against iproute2,
pyroute2 and the raw netlink floor, in one run, on this machine.

Everything happens in one network namespace (a throwaway one unless ``--netns`` names
one): veth ``v0``/``v1`` up, ``192.0.2.2/24`` and ``2001:db8::2/64`` on ``v0``, so
``192.0.2.1`` and ``2001:db8::1`` are on-link gateways that no interface holds.  Routes go
to table 100 (the lookup phase also uses main).  The phases run interleaved, A B C A B C,
for ``--rounds`` rounds, and medians are reported.  Honesty rules:

- after every timed operation the kernel's tables are counted with ``ip`` (one
  ``ip -n NS -4|-6 route show table T``, prefix routes only), and a phase whose count is
  wrong fails instead of reporting a rate; tables are emptied between phases;
- every ratio compares figures measured in this run (the median over rounds of the
  per-round ratio);
- a phase that fails prints its reason in its row; no figure is ever made up.

CPU seconds are user+sys of this process (``getrusage(RUSAGE_SELF)`` deltas) for phases
that run in it, and of the ``ip`` child (``wait4``, the same as the RUSAGE_CHILDREN
delta) for ``ip -batch``.  Peak RSS: for in-process phases the process's high-water mark
during the phase (reset through ``/proc/self/clear_refs`` before it; ``ru_maxrss`` growth
when that is not possible), shown with its growth over the RSS at the start; for ``ip``
the child's ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio

from .netns import Namespace, NetnsUnavailable, create_namespace, delete_namespace

__all__ = ["PHASES", "add_arguments", "run"]

T = TypeVar("T")

TABLE = 100
DEVICE = "v0"
GATEWAY4 = "192.0.2.1"
GATEWAY6 = "2001:db8::1"
#: The main-table range of the lookup phase (and its cap on routes).
LOOKUP_RANGE = "198.18.0.0/15"
LOOKUP_MAX = 2 * 65536
#: Most routes: 198.18.0.0 + i stays a valid address up to 198.33.255.255.
MAX_ROUTES = 16 * 65536
PYROUTE2_ROUTES = 10_000
PYROUTE2_CONCURRENCY = 64
RAW_PER_SEND = 128
RAW_WINDOW = 2048
RAW_BUFFER = 32 * 1024 * 1024
RULE_PRIORITY = 1000
SWEEP_WINDOWS = (1, 4, 16, 64, 256, 1024, 4096)
TICK = 0.001
MIB = 1024 * 1024

#: Phase names for ``--only``, in the order each round runs them.
PHASES: dict[str, str] = {
    "upsert_many": "asyncroute upsert_many of N IPv4 routes, then delete_many",
    "ip-batch": "ip -batch route replace of the same N routes (into the same table), then del",
    "raw-floor": "pre-encoded RTM_NEWROUTE/DELROUTE, 128 per send, <= 2048 acks in flight",
    "pyroute2-async": "pyroute2 AsyncIPRoute route('replace'), semaphore 64, min(N, 10,000)",
    "pyroute2-sync": "pyroute2 IPRoute route('replace') loop, min(N, 10,000)",
    "tasks": "asyncroute upsert() from one task per route (--tasks-routes)",
    "ipv6": "N IPv6 /64 via 2001:db8::1: asyncroute, ip -batch and raw floor, add + delete",
    "rules": "--rules fwmark rules: asyncroute replace_rule/delete_rule tasks vs ip -batch",
    "lookup": "lookup() p50/p99 vs a full dump; main table and table 100",
}

_EXAMPLES = """\
examples:
  sudo asyncroute bench                        # everything, 100,000 routes, 3 rounds
  sudo asyncroute bench --routes 10000 --rounds 1 --only upsert_many,ip-batch,raw-floor
  sudo python -m asyncroute bench --sweep --plot bench.png --json bench.json

phases (for --only; each round runs them in this order):
"""


# --------------------------------------------------------------------------- figures


def _prefix4(i: int) -> str:
    return f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32"


def _prefix6(i: int) -> str:
    return f"2001:db8:{1 + (i >> 16):x}:{i & 0xFFFF:x}::/64"


def _percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 of [a, b] is a; p99 of 200 values is the 198th)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclasses.dataclass
class Sample:
    """One timed operation in one round."""

    round: int
    count: int
    seconds: float
    cpu: float | None = None
    rss_peak: float | None = None  # MiB
    rss_growth: float | None = None  # MiB
    maxrss_growth: float | None = None  # MiB, ru_maxrss delta (a high-water mark)
    lag_max: float | None = None  # ms
    lag_p99: float | None = None  # ms
    ticks: int | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds


@dataclasses.dataclass
class Row:
    """One line of the table: a tool doing one kind of change."""

    key: str
    label: str
    phase: str
    kind: str  # v4-add, v4-del, v6-add, v6-del, rule-add, rule-del
    role: str = ""  # "ip" or "raw": the reference of its kind
    samples: list[Sample] = dataclasses.field(default_factory=list)
    errors: list[tuple[int, str]] = dataclasses.field(default_factory=list)

    def median(self, attribute: str) -> float | None:
        values = [getattr(s, attribute) for s in self.samples]
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None


KINDS = {
    "v4-add": "IPv4 add: /32 via 192.0.2.1 dev v0, table 100",
    "v4-del": "IPv4 delete",
    "v6-add": "IPv6 add: /64 via 2001:db8::1 dev v0, table 100",
    "v6-del": "IPv6 delete",
    "rule-add": "rules add: fwmark M/0xffffffff lookup 100, distinct priorities",
    "rule-del": "rules delete",
}


def _ratio(row: Row, reference: Row | None) -> float | None:
    """Median over rounds of this row's rate / the reference's rate in the same round."""
    if reference is None or reference is row:
        return None
    theirs = {s.round: s.rate for s in reference.samples}
    ratios = [s.rate / theirs[s.round] for s in row.samples if s.round in theirs]
    return statistics.median(ratios) if ratios else None


# --------------------------------------------------------------------------- measuring


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (proc(5), clear_refs "5", Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Meter:
    """Wall time, CPU and peak RSS of this process around one operation."""

    def __init__(self) -> None:
        self._t0 = 0.0
        self._ru0: Any = None
        self._rss0: int | None = None
        self._reset = False

    def start(self) -> None:
        self._reset = _reset_peak_rss()
        self._rss0 = _status_kib("VmRSS")
        self._ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self._t0 = time.perf_counter()

    def stop(self, round_number: int, count: int) -> Sample:
        seconds = time.perf_counter() - self._t0
        ru = resource.getrusage(resource.RUSAGE_SELF)
        ru0 = self._ru0
        cpu = (ru.ru_utime - ru0.ru_utime) + (ru.ru_stime - ru0.ru_stime)
        maxrss_growth = (ru.ru_maxrss - ru0.ru_maxrss) / 1024
        peak = _status_kib("VmHWM") if self._reset else None
        sample = Sample(round_number, count, seconds, cpu=cpu, maxrss_growth=maxrss_growth)
        if peak is not None and self._rss0 is not None:
            sample.rss_peak = peak / 1024
            sample.rss_growth = (peak - self._rss0) / 1024
        return sample


async def _ticker(lags: list[float]) -> None:
    """Sleep TICK in a loop and record how late each wake-up is."""
    clock = time.perf_counter
    while True:
        due = clock() + TICK
        await anyio.sleep(TICK)
        lags.append(clock() - due)


async def _timed(
    round_number: int, count: int, operation: Callable[[], Awaitable[T]], *, lag: bool = True
) -> tuple[T, Sample]:
    """Run ``operation`` under a Meter, with the lag ticker beside it."""
    lags: list[float] = []
    gc.collect()
    async with anyio.create_task_group() as tg:
        if lag:
            tg.start_soon(_ticker, lags)
            await anyio.sleep(0)  # let the ticker start
        meter = Meter()
        meter.start()
        result = await operation()
        sample = meter.stop(round_number, count)
        tg.cancel_scope.cancel()
    if lags:
        sample.lag_max = max(lags) * 1000
        sample.lag_p99 = _percentile(lags, 0.99) * 1000
        sample.ticks = len(lags)
    return result, sample


def _measure_sync(round_number: int, count: int, operation: Callable[[], object]) -> Sample:
    gc.collect()
    meter = Meter()
    meter.start()
    operation()
    return meter.stop(round_number, count)


class PhaseError(Exception):
    """A phase could not produce an honest figure (wrong count, failures, tool error)."""


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, PhaseError):
        text = f"{type(exc).__name__}: {text}"
    return " ".join(text.split())[:160]


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
    from ._codec import pack_route_body
    from .constants import RTN, RTPROT

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
    from ._socket import open_netlink_socket
    from .constants import NLM_F, RTM

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
    from .route import Route

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


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git_revision() -> str | None:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    if head.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head.stdout.strip() + ("+changes" if dirty else "")


def machine_info(backend: str) -> dict[str, Any]:
    iproute2 = subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "asyncroute": _version("asyncroute"),
        "git": _git_revision(),
        "anyio": _version("anyio"),
        "backend": backend,
        "pyroute2": _version("pyroute2"),
        "iproute2": iproute2.removeprefix("ip utility, ").removeprefix("iproute2-"),
    }


# --------------------------------------------------------------------------- output


class Progress:
    """A rich progress bar when rich is there (redrawn only between phases, so no
    refresh thread runs while something is timed), else plain lines; nothing with
    --quiet."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.quiet = quiet
        self.done = 0
        self.total = total
        self._rich: Any = None
        self._task: Any = None
        if quiet:
            return
        try:
            rich_progress: Any = importlib.import_module("rich.progress")
            rich_console: Any = importlib.import_module("rich.console")
        except ImportError:
            return
        console = rich_console.Console(stderr=True)
        self._rich = rich_progress.Progress(
            rich_progress.TextColumn("{task.description:<34}"),
            rich_progress.BarColumn(),
            rich_progress.MofNCompleteColumn(),
            rich_progress.TimeElapsedColumn(),
            console=console,
            auto_refresh=False,
            transient=False,
        )
        self._task = self._rich.add_task("starting", total=total)
        self._rich.start()
        self._rich.refresh()

    def begin(self, text: str) -> None:
        if self._rich is not None:
            self._rich.update(self._task, description=text)
            self._rich.refresh()

    def end(self, text: str, result: str) -> None:
        self.done += 1
        if self.quiet:
            return
        line = f"[{self.done}/{self.total}] {text}: {result}"
        if self._rich is not None:
            self._rich.console.print(line, highlight=False, markup=False)
            self._rich.update(self._task, advance=1)
            self._rich.refresh()
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else format(value, spec) + suffix


def _references(rows: dict[str, Row]) -> dict[tuple[str, str], Row]:
    return {(row.kind, row.role): row for row in rows.values() if row.role}


def _row_label(row: Row, rounds: int) -> str:
    label = row.label
    if row.samples and len(row.samples) < rounds:
        label += f" [{len(row.samples)}/{rounds} rounds]"
    return label


def _rss_cell(row: Row) -> str:
    """In-process: "+G", the most the phase raised the process's high-water mark in any
    round; a child (ip): its peak RSS, the largest of the rounds."""
    samples = row.samples
    if samples and samples[0].maxrss_growth is not None:
        growths = [s.rss_growth if s.rss_growth is not None else s.maxrss_growth for s in samples]
        return f"+{max(0.0, max(g for g in growths if g is not None)):,.0f}"
    peaks = [s.rss_peak for s in samples if s.rss_peak is not None]
    return f"{max(peaks):,.0f}" if peaks else "-"


def render_table(ctx: Context, info: dict[str, Any]) -> str:
    rows = ctx.rows
    references = _references(rows)
    out: list[str] = []
    out.append("asyncroute bench")
    out.append(f"  date      {info['date']}")
    out.append(f"  machine   {info['cpu']}, {info['cpus']} CPUs ({info['cpus_usable']} usable)")
    out.append(f"  kernel    {info['kernel']}")
    out.append(
        f"  software  {info['python']}, asyncroute {info['asyncroute']}"
        + (f" ({info['git']})" if info["git"] else "")
        + f", anyio {info['anyio']} on {info['backend']}, pyroute2 {info['pyroute2']}, "
        + f"iproute2 {info['iproute2']}"
    )
    out.append(
        f"  job       {ctx.routes:,} routes, {ctx.rounds} round(s) interleaved, medians; "
        f"namespace {ctx.ns}"
    )
    out.append("")
    header = (
        f"  {'':<44} {'routes':>9} {'routes/s':>10} {'x ip-batch':>10} {'x raw':>7} "
        f"{'CPU s':>7} {'RSS MiB':>9} {'loop lag ms max/p99':>20}"
    )
    out.append(header)
    for kind, title in KINDS.items():
        members = [row for row in rows.values() if row.kind == kind]
        if not members:
            continue
        out.append(title)
        for row in members:
            label = _row_label(row, ctx.rounds)
            if not row.samples:
                reason = row.errors[0][1] if row.errors else "not run"
                out.append(f"  {label:<44} not measured: {reason}")
                continue
            rate = statistics.median(s.rate for s in row.samples)
            vs_ip = _ratio(row, references.get((kind, "ip")))
            vs_raw = _ratio(row, references.get((kind, "raw")))
            rss = _rss_cell(row)
            lag_max, lag_p99 = row.median("lag_max"), row.median("lag_p99")
            lag = "-" if lag_max is None else f"{lag_max:.1f} / {_fmt(lag_p99, '.2f')}"
            out.append(
                f"  {label:<44} {row.samples[0].count:>9,} {rate:>10,.0f} "
                f"{_fmt(vs_ip, '.2f', 'x'):>10} {_fmt(vs_raw, '.2f', 'x'):>7} "
                f"{_fmt(row.median('cpu'), '.2f'):>7} {rss:>9} {lag:>20}"
            )
            for round_number, error in row.errors:
                out.append(f"  {'':<44} round {round_number} failed: {error}")
    if ctx.lookup or any(r.phase == "lookup" for r in rows.values()):
        out.extend(_render_lookup(ctx))
    if ctx.sweep:
        out.extend(_render_sweep(ctx))
    out.append("")
    out.append(
        "Medians over rounds; x columns: median over rounds of the rate ratio within the "
        "round.\nCPU: user+sys of this process (getrusage), or of the ip child (wait4).\n"
        "RSS: +N = growth of this process's peak RSS (a high-water mark, reset before each "
        "phase) during the phase, largest of the rounds; a plain number is the ip child's "
        "peak RSS.\nLoop lag: how late a 1 ms ticker task woke during the phase (median over "
        "rounds of the max and of the p99)."
    )
    return "\n".join(out)


def _render_lookup(ctx: Context) -> list[str]:
    total = min(ctx.routes, LOOKUP_MAX)
    numbered = min(1000, total // 2)
    out = [
        "",
        f"lookup() latency, {ctx.lookups} calls per round, vs a full dump "
        "(RTM_GETROUTE AF_INET, all tables, read to the end)",
    ]
    out.append(f"  {'':<44} {'p50 ms':>9} {'p99 ms':>9} {'dump p50 ms':>12} {'dump/lookup':>12}")
    for key, title in (
        ("main", f"main table, {total:,} routes"),
        ("table", f"table 100, {numbered:,} of {total:,} routes"),
    ):
        latencies = ctx.lookup.get(key, [])
        dumps = ctx.lookup.get(f"dump-{key}", [])
        if not latencies:
            reason = ctx.lookup_error or "not measured"
            out.append(f"  {title:<44} not measured: {reason}")
            continue
        p50, p99 = _percentile(latencies, 0.5) * 1000, _percentile(latencies, 0.99) * 1000
        dump = _percentile(dumps, 0.5) * 1000 if dumps else None
        speedup = None if dump is None else dump / p50
        out.append(
            f"  {title:<44} {p50:>9.3f} {p99:>9.3f} {_fmt(dump, ',.0f'):>12} "
            f"{_fmt(speedup, ',.0f', 'x'):>12}"
        )
    return out


def _render_sweep(ctx: Context) -> list[str]:
    out = ["", f"asyncroute upsert_many of {ctx.routes:,} IPv4 routes by window (max_in_flight)"]
    out.append(f"  {'window':>8} {'routes/s':>10} {'CPU s':>7} {'loop lag ms max/p99':>20}")
    for window, samples in sorted(ctx.sweep.items()):
        if not samples:
            out.append(f"  {window:>8} not measured")
            continue
        rate = statistics.median(s.rate for s in samples)
        cpu = statistics.median(s.cpu or 0.0 for s in samples)
        lag_max = statistics.median(s.lag_max or 0.0 for s in samples)
        lag_p99 = statistics.median(s.lag_p99 or 0.0 for s in samples)
        out.append(f"  {window:>8} {rate:>10,.0f} {cpu:>7.2f} {lag_max:>11.1f} / {lag_p99:.2f}")
    return out


def checks(ctx: Context) -> list[dict[str, Any]]:
    """The issue's "done when" figures that this run measured (none are invented)."""
    rows = ctx.rows
    refs = _references(rows)
    found: list[dict[str, Any]] = []

    def add(name: str, value: float | None, target: float, higher: bool, unit: str) -> None:
        if value is None:
            return
        ok = value >= target if higher else value < target
        found.append({"check": name, "value": value, "target": target, "unit": unit, "ok": ok})

    def ratio(key: str, reference: Row | None) -> float | None:
        row = rows.get(key)
        return None if row is None else _ratio(row, reference)

    add(
        "upsert_many IPv4 vs ip -batch",
        ratio("asyncroute.upsert_many", refs.get(("v4-add", "ip"))),
        2.0,
        True,
        "x",
    )
    add(
        "delete_many IPv4 vs ip -batch",
        ratio("asyncroute.delete_many", refs.get(("v4-del", "ip"))),
        2.0,
        True,
        "x",
    )
    add(
        "upsert_many IPv6 vs ip -batch",
        ratio("asyncroute.upsert_many6", refs.get(("v6-add", "ip"))),
        2.0,
        True,
        "x",
    )
    add(
        "upsert_many vs pyroute2 AsyncIPRoute",
        ratio("asyncroute.upsert_many", rows.get("pyroute2.async")),
        30.0,
        True,
        "x",
    )
    add(
        "upsert() tasks vs upsert_many",
        ratio("asyncroute.tasks", rows.get("asyncroute.upsert_many")),
        0.5,
        True,
        "x",
    )
    lag_rows = [rows[k] for k in ("asyncroute.upsert_many", "asyncroute.delete_many") if k in rows]
    lags = [s.lag_max for row in lag_rows for s in row.samples if s.lag_max is not None]
    add(
        "max event-loop lag, upsert_many/delete_many",
        max(lags) if lags else None,
        20.0,
        False,
        "ms",
    )
    for key, target in (("main", 100.0), ("table", 10.0)):
        latencies, dumps = ctx.lookup.get(key), ctx.lookup.get(f"dump-{key}")
        if latencies and dumps:
            speedup = _percentile(dumps, 0.5) / _percentile(latencies, 0.5)
            add(f"lookup p50 vs full dump ({key})", speedup, target, True, "x")
    return found


def render_checks(found: list[dict[str, Any]], ctx_routes: int) -> str:
    if not found:
        return ""
    lines = ["", "targets the project sets itself, checked against the figures above:"]
    if ctx_routes != 100_000:
        lines[1] += " (the targets are set for the default 100,000 routes)"
    for c in found:
        relation = "≥" if c["unit"] == "x" else "<"
        value = f"{c['value']:,.2f}{c['unit']}" if c["unit"] == "x" else f"{c['value']:.1f} ms"
        target = f"{c['target']:g}{c['unit']}" if c["unit"] == "x" else f"{c['target']:g} ms"
        lines.append(
            f"  [{'met' if c['ok'] else 'below target'}] {c['check']}: {value} "
            f"(target {relation} {target})"
        )
    return "\n".join(lines)


def _sample_json(s: Sample) -> dict[str, Any]:
    data = dataclasses.asdict(s)
    data["rate"] = s.rate
    return data


def to_json(
    ctx: Context, info: dict[str, Any], args: argparse.Namespace, duration: float
) -> dict[str, Any]:
    references = _references(ctx.rows)
    rows = []
    for row in ctx.rows.values():
        rates = [s.rate for s in row.samples]
        ip_ref = references.get((row.kind, "ip"))
        raw_ref = references.get((row.kind, "raw"))
        rows.append(
            {
                "key": row.key,
                "label": row.label,
                "phase": row.phase,
                "kind": row.kind,
                "reference_role": row.role or None,
                "routes": row.samples[0].count if row.samples else None,
                "rounds": [_sample_json(s) for s in row.samples],
                "errors": [{"round": r, "error": e} for r, e in row.errors],
                "median": None
                if not row.samples
                else {
                    "rate": statistics.median(rates),
                    "seconds": row.median("seconds"),
                    "cpu_s": row.median("cpu"),
                    "rss_peak_mib": row.median("rss_peak"),
                    "rss_growth_mib": row.median("rss_growth"),
                    "maxrss_growth_mib": row.median("maxrss_growth"),
                    "lag_max_ms": row.median("lag_max"),
                    "lag_p99_ms": row.median("lag_p99"),
                },
                "vs_ip_batch": _ratio(row, ip_ref),
                "vs_raw_floor": _ratio(row, raw_ref),
            }
        )
    lookup: dict[str, Any] = {}
    for key in ("main", "table"):
        latencies = ctx.lookup.get(key, [])
        dumps = ctx.lookup.get(f"dump-{key}", [])
        if latencies:
            lookup[key] = {
                "calls": len(latencies),
                "p50_ms": _percentile(latencies, 0.5) * 1000,
                "p99_ms": _percentile(latencies, 0.99) * 1000,
                "dumps": len(dumps),
                "dump_p50_ms": _percentile(dumps, 0.5) * 1000 if dumps else None,
                "latencies_ms": [x * 1000 for x in latencies],
                "dumps_ms": [x * 1000 for x in dumps],
            }
    if ctx.lookup_error:
        lookup["error"] = ctx.lookup_error
    return {
        "schema": "asyncroute-bench/1",
        "machine": info,
        "command": sys.argv,
        "config": {
            "routes": ctx.routes,
            "rounds": ctx.rounds,
            "only": args.only,
            "backend": ctx.backend,
            "tasks_routes": ctx.tasks_routes,
            "pyroute2_routes": min(ctx.routes, ctx.pyroute2_routes),
            "rules": ctx.rules,
            "lookups": ctx.lookups,
            "netns": ctx.ns,
            "netns_given": args.netns is not None,
            "sweep": args.sweep,
            "raw_per_send": RAW_PER_SEND,
            "raw_window": RAW_WINDOW,
        },
        "duration_s": duration,
        "rows": rows,
        "lookup": lookup,
        "sweep": {
            str(w): [_sample_json(s) for s in samples] for w, samples in sorted(ctx.sweep.items())
        },
        "checks": checks(ctx),
    }


_TOOL_COLOURS = {
    "asyncroute": "#1f77b4",
    "ip -batch": "#7f7f7f",
    "raw floor": "#2ca02c",
    "pyroute2": "#d62728",
}


def _colour(label: str) -> str:
    for prefix, colour in _TOOL_COLOURS.items():
        if label.startswith(prefix):
            return colour
    return "#9467bd"


def plot(ctx: Context, info: dict[str, Any], path: Path) -> None:
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    pyplot: Any = importlib.import_module("matplotlib.pyplot")
    ticker: Any = importlib.import_module("matplotlib.ticker")
    thousands = ticker.FuncFormatter(lambda value, _position: f"{value:,.0f}")
    bars = [
        (
            f"{KINDS[row.kind].split(':')[0]} · {row.label}",
            statistics.median(s.rate for s in row.samples),
            row.label,
        )
        for row in ctx.rows.values()
        if row.samples
    ]
    sweep = {w: s for w, s in sorted(ctx.sweep.items()) if s}
    panels = int(bool(bars)) + int(bool(sweep))
    if panels == 0:
        raise PhaseError("nothing was measured, so there is nothing to plot")
    height = max(3.0, 0.32 * len(bars) + 1.5) + (4.0 if sweep else 0.0)
    fig = pyplot.figure(figsize=(11, height))
    ratios = ([max(3.0, 0.32 * len(bars) + 1.5)] if bars else []) + ([4.0] if sweep else [])
    grid = fig.add_gridspec(panels, 1, height_ratios=ratios)
    title = (
        f"asyncroute bench — {info['date']} — {info['cpus']} CPUs, {info['kernel']}, "
        f"{info['python']}, {ctx.routes:,} routes, median of {ctx.rounds}"
    )
    fig.suptitle(title, fontsize=9)
    panel = 0
    if bars:
        ax = fig.add_subplot(grid[panel])
        panel += 1
        labels = [b[0] for b in bars][::-1]
        values = [b[1] for b in bars][::-1]
        colours = [_colour(b[2]) for b in bars][::-1]
        ax.barh(range(len(values)), values, color=colours)
        ax.set_yticks(range(len(values)), labels, fontsize=8)
        ax.set_xlabel("routes (or rules) per second, median")
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:,.0f}", va="center", fontsize=7)
        ax.set_xlim(0, max(values) * 1.15)
        ax.xaxis.set_major_formatter(thousands)
        ax.grid(axis="x", alpha=0.3)
    if sweep:
        ax = fig.add_subplot(grid[panel])
        windows = list(sweep)
        rates = [statistics.median(s.rate for s in sweep[w]) for w in windows]
        ax.plot(
            windows,
            rates,
            marker="o",
            color=_TOOL_COLOURS["asyncroute"],
            label="asyncroute upsert_many",
        )
        for key, label in (("ip.replace", "ip -batch"), ("raw.add", "raw floor")):
            row = ctx.rows.get(key)
            if row is not None and row.samples:
                rate = statistics.median(s.rate for s in row.samples)
                ax.axhline(rate, linestyle="--", color=_colour(label), label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(windows, [str(w) for w in windows])
        ax.set_xlabel("window (max_in_flight)")
        ax.set_ylabel("IPv4 routes per second")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(thousands)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot.close(fig)


# --------------------------------------------------------------------------- command


def _default_json_path(now: datetime.datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    cwd = Path.cwd()
    pyproject = cwd / "pyproject.toml"
    in_repo = (
        (cwd / "benchmarks").is_dir()
        and pyproject.is_file()
        and 'name = "asyncroute"' in pyproject.read_text(errors="replace")
    )
    if in_repo:
        return cwd / "benchmarks" / "results" / f"{stamp}.json"
    return cwd / f"asyncroute-bench-{stamp}.json"


def _phase_list(text: str | None) -> list[str]:
    if text is None:
        return list(PHASES)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PHASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown phase(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(PHASES)}"
        )
    return [name for name in PHASES if name in names]


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommand's options."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EXAMPLES + "".join(f"  {name:<15} {text}\n" for name, text in PHASES.items())
    parser.add_argument(
        "--routes",
        type=_positive,
        default=100_000,
        metavar="N",
        help="routes per phase (default 100,000; at most 1,048,576)",
    )
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=3,
        metavar="R",
        help="interleaved rounds; medians are reported (default 3)",
    )
    parser.add_argument("--only", metavar="NAME[,NAME]", help="run only these phases (names below)")
    parser.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="where to write the results (default: benchmarks/results/"
        "<UTC date-time>.json in the asyncroute repository, else "
        "./asyncroute-bench-<UTC date-time>.json)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="bar chart of routes/s per tool (+ the --sweep line chart); needs matplotlib",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also measure upsert_many for windows " + ", ".join(map(str, SWEEP_WINDOWS)),
    )
    parser.add_argument(
        "--netns",
        metavar="NAME",
        help="use this existing namespace (v0 up with 192.0.2.2/24 and "
        "2001:db8::2/64; table 100 empty) instead of a throwaway one",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="anyio backend for the asyncroute phases (default asyncio)",
    )
    parser.add_argument(
        "--tasks-routes",
        type=_positive,
        metavar="N",
        help="routes (= tasks) of the upsert() phase (default: --routes)",
    )
    parser.add_argument(
        "--pyroute2-routes",
        type=_positive,
        default=PYROUTE2_ROUTES,
        metavar="N",
        help="cap on the pyroute2 phases (default 10,000)",
    )
    parser.add_argument(
        "--rules",
        type=_positive,
        default=1000,
        metavar="N",
        help="rules in the rules phase (default 1,000)",
    )
    parser.add_argument(
        "--lookups",
        type=_positive,
        default=200,
        metavar="N",
        help="lookup() calls per layout and round (default 200)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when every phase produced its figures, 1 otherwise."""
    try:
        only = _phase_list(args.only)
    except argparse.ArgumentTypeError as exc:
        print(f"asyncroute bench: --only: {exc}", file=sys.stderr)
        return 2
    if args.routes > MAX_ROUTES:
        print(f"asyncroute bench: --routes is at most {MAX_ROUTES:,}", file=sys.stderr)
        return 2
    if args.rules > 30_000:
        print("asyncroute bench: --rules is at most 30,000", file=sys.stderr)
        return 2
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        print(
            "asyncroute bench: --plot needs matplotlib: pip install 'asyncroute[bench]'",
            file=sys.stderr,
        )
        return 2
    if os.geteuid() != 0:
        print(
            "asyncroute bench: must run as root (it creates a network namespace and "
            "programs routes in it)",
            file=sys.stderr,
        )
        return 2
    if shutil.which("ip") is None:
        print("asyncroute bench: the iproute2 'ip' command is not on PATH", file=sys.stderr)
        return 2

    started = datetime.datetime.now(datetime.UTC)
    json_path: Path = args.json or _default_json_path(started)
    info = machine_info(args.backend)

    # pyroute2's netns= forks a helper and later stops it with SIGTERM.  A forked copy of
    # this process must never run the cleanup below (it would delete the namespace
    # under the benchmark): in any process but this one, a signal ends it at once.
    owner = os.getpid()

    def terminate(signum: int, frame: object) -> None:
        if os.getpid() != owner:
            os._exit(128 + signum)
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}
    created: str | None = None
    try:
        if args.netns is not None:
            _check_netns(args.netns)
            ns = args.netns
        else:
            created = ns = _create_namespace()
        ctx = Context(
            ns=ns,
            oif=_ifindex(ns),
            routes=args.routes,
            rounds=args.rounds,
            backend=args.backend,
            tasks_routes=args.tasks_routes or args.routes,
            pyroute2_routes=args.pyroute2_routes,
            rules=args.rules,
            lookups=args.lookups,
            rows=_declare_rows(only, args.tasks_routes or args.routes, args.rules),
            lookup={},
            sweep={w: [] for w in SWEEP_WINDOWS} if args.sweep else {},
        )
        failed = _run_rounds(ctx, only, args)
    finally:
        if os.getpid() != owner:  # a forked helper unwinding: leave everything alone
            os._exit(1)
        if created is not None:
            _delete_namespace(created)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    duration = (datetime.datetime.now(datetime.UTC) - started).total_seconds()

    print(render_table(ctx, info))
    print(render_checks(checks(ctx), ctx.routes))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(to_json(ctx, info, args, duration), indent=1) + "\n")
    written = [str(json_path)]
    if args.plot is not None:
        try:
            plot(ctx, info, args.plot)
            written.append(str(args.plot))
        except Exception as exc:
            print(f"\nplot not written: {_describe(exc)}")
            failed = True
    print(
        f"\nwrote {', '.join(written)}; {duration:,.0f} s in all"
        + (f"; namespace {created} deleted" if created else "")
    )
    return 1 if failed else 0


def _run_rounds(ctx: Context, only: list[str], args: argparse.Namespace) -> bool:
    steps = args.rounds * (len(only) + (len(SWEEP_WINDOWS) if args.sweep else 0))
    progress = Progress(steps, args.quiet)
    failed = False
    try:
        _clean(ctx.ns)
        for r in range(1, args.rounds + 1):
            for name in only:
                text = f"round {r}/{args.rounds} {name}"
                progress.begin(text)
                before = {k: len(row.samples) for k, row in ctx.rows.items()}
                try:
                    PHASE_RUNNERS[name](ctx, r)
                    problem = None
                except Exception as exc:
                    problem = _describe(exc)
                    failed = True
                # Tables are emptied and checked between phases, also after a failure;
                # if that fails nothing after it could be trusted.
                try:
                    _clean(ctx.ns)
                except Exception as exc:
                    problem = (problem + "; " if problem else "") + _describe(exc)
                    _note_failure(ctx, name, r, before, problem)
                    progress.end(text, "FAILED: " + problem)
                    raise _Abort(problem) from None
                if problem is not None:
                    _note_failure(ctx, name, r, before, problem)
                if problem is None:
                    progress.end(text, _result_line(ctx, name, r))
                else:
                    progress.end(text, "FAILED: " + problem)
            for window in ctx.sweep:
                text = f"round {r}/{args.rounds} sweep window {window}"
                progress.begin(text)
                try:
                    sample = ctx.run_async(_sweep_one, ctx, r, window)
                    ctx.sweep[window].append(sample)
                    result = f"{sample.rate:,.0f}/s"
                except Exception as exc:
                    result = "FAILED: " + _describe(exc)
                    failed = True
                _clean(ctx.ns)
                progress.end(text, result)
    except _Abort as exc:
        print(f"asyncroute bench: stopped: {exc}", file=sys.stderr)
        failed = True
    finally:
        progress.close()
    return failed


class _Abort(Exception):
    pass


def _note_failure(ctx: Context, phase: str, r: int, before: dict[str, int], problem: str) -> None:
    """Rows of the phase that got no sample this round get the reason."""
    if phase == "lookup":
        ctx.lookup_error = f"round {r}: {problem}"
    for key, row in ctx.rows.items():
        if row.phase == phase and len(row.samples) == before[key]:
            row.errors.append((r, problem))


def _result_line(ctx: Context, phase: str, r: int) -> str:
    if phase == "lookup":
        parts = []
        for key in ("main", "table"):
            latencies = ctx.lookup.get(key)
            if latencies:
                parts.append(f"{key} p50 {_percentile(latencies, 0.5) * 1000:.3f} ms")
        return ", ".join(parts)
    parts = [
        f"{row.key} {row.samples[-1].rate:,.0f}/s"
        for row in ctx.rows.values()
        if row.phase == phase and row.samples and row.samples[-1].round == r
    ]
    return ", ".join(parts)
