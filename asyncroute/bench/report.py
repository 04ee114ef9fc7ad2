"""The output: progress lines, the table, the checks against the project's targets, the
JSON results and the chart.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import statistics
import sys
from pathlib import Path
from typing import Any

from .measure import (
    KINDS,
    LOOKUP_MAX,
    RAW_PER_SEND,
    RAW_WINDOW,
    PhaseError,
    Row,
    Sample,
    _percentile,
    _ratio,
)
from .phases import (
    Context,
)

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
