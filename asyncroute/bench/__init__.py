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
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from .measure import (
    _EXAMPLES,
    MAX_ROUTES,
    PHASES,
    PYROUTE2_ROUTES,
    SWEEP_WINDOWS,
    _describe,
    _percentile,
    machine_info,
)
from .phases import (
    PHASE_RUNNERS,
    Context,
    _check_netns,
    _clean,
    _create_namespace,
    _declare_rows,
    _delete_namespace,
    _ifindex,
    _sweep_one,
)
from .report import (
    Progress,
    checks,
    plot,
    render_checks,
    render_table,
    to_json,
)

__all__ = ["PHASES", "add_arguments", "run"]

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
