"""What the benchmark measures and how: the job's constants, samples and rows, the CPU,
RSS and loop-lag meter, the machine's description.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import importlib
import importlib.metadata
import importlib.util
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio

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
    root = Path(__file__).resolve().parents[2]  # the checkout: asyncroute/bench/measure.py
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
