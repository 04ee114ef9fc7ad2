"""``asyncroute apply FILE``: what ``ip -batch FILE`` does, pipelined.

See :mod:`asyncroute.apply` for the semantics and :mod:`asyncroute.batchfile` for the
input formats.
"""

from __future__ import annotations

import argparse
import gc
import shlex
import sys
from typing import TYPE_CHECKING, Any

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_common_options,
    describe_error,
    error_json,
    print_json,
    report_error,
    run_async,
)

if TYPE_CHECKING:
    from .applier import ApplyResult, Failure

__all__ = ["DESCRIPTION", "EPILOG", "add_arguments", "run"]

DESCRIPTION = """\
Apply the route and rule commands in FILE (- for stdin) in one pipelined stream:
the same requests, in the same order, as `ip -batch FILE` sends, so the kernel ends
in the state ip -batch leaves it in (`route add` fails on an existing route, `replace`
replaces, `del` deletes; no Cilium nexthop routes are added).

FILE is either an iproute2 batch file:
  route add|replace|change|append|prepend|del ROUTE     (ip route syntax, also
      nhid N, onlink, and multipath: nexthop via GW dev D weight W [onlink] ...)
  rule add|del RULE                                       (ip rule syntax)
  with blank lines, # comments, \\ continuations, and optionally -4/-6 in front,
or ip -json output (`ip -json route show`, `ip -json rule show`, or
`asyncroute route list --json`): an array, an object, or one object per line.
JSON routes are applied as `route replace`, JSON rules as `rule add` (an identical
rule counts as unchanged).

Like ip -batch, apply stops at the first failing command; --force (ip's -force)
goes on and tries every command (also after a line that does not parse, where ip 6.1
exits even with -force).  A command that does not parse stops apply before
anything after it is sent.  A request the kernel refuses is known only when its
answer arrives, and the requests already sent after it (at most a window, a few
thousand) have been applied by then: the summary counts them.  With --force the final
state is the one `ip -batch -force` leaves, whatever fails; with --sequential (one
request at a time, far slower) apply stops exactly where ip -batch stops.

Every failure is reported with its line number and the kernel's own message; the exit
status is 1 if anything failed, 2 for unreadable input or bad options.
"""

EPILOG = """\
examples:
  asyncroute apply routes.batch
  asyncroute apply --force --netns blue routes.batch
  asyncroute route list table 100 --json > saved.json && asyncroute apply saved.json
  printf 'route replace 198.51.100.0/24 via 192.0.2.1 dev v0\\n' | asyncroute apply -
  asyncroute apply --dry-run routes.batch      # the equivalent ip commands
  asyncroute apply --sequential routes.batch   # stop exactly where ip -batch would
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``apply``."""
    parser.add_argument("file", metavar="FILE", help="batch file or ip -json output; - for stdin")
    parser.add_argument(
        "--force",
        action="store_true",
        help="go on after a failed command and try every one (ip -batch -force)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="one request at a time: stop exactly where ip -batch stops (far slower)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: print the equivalent ip commands (and parse errors)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_common_options(parser)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as file:
        return file.read()


def run(args: argparse.Namespace) -> int:
    """Run ``asyncroute apply``; the exit status."""
    # A run allocates a few objects per command and frees them at the end: the cyclic
    # collector would only walk them again and again (about 5 % of a large run).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(args)
    finally:
        if enabled:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    try:
        text = _read(args.file)
    except (OSError, UnicodeDecodeError) as exc:
        report_error(args, "apply", exc)
        return EXIT_USAGE
    if args.dry_run:
        return _dry_run(args, text)

    async def main() -> int:
        import asyncroute

        from .applier import apply_text

        try:
            async with asyncroute.connect(args.netns) as conn:
                with _Progress(args, text) as progress:
                    result = await apply_text(
                        conn,
                        text,
                        force=args.force,
                        sequential=args.sequential,
                        progress=progress.update,
                    )
        except BrokenPipeError:
            raise  # the reader went away: cli.main() handles it
        except (OSError, asyncroute.AsyncrouteError) as exc:
            return report_error(args, "apply", exc)
        _report(args, result)
        return EXIT_OK if result.ok else EXIT_FAILED

    return run_async(main)


# ------------------------------------------------------------------ progress


class _Progress:
    """A rich progress bar on stderr while requests are answered: only on a terminal,
    without ``--quiet``, and when rich is installed."""

    def __init__(self, args: argparse.Namespace, text: str) -> None:
        self._bar: Any = None
        self._task: Any = None
        if args.quiet or args.json or not sys.stderr.isatty():
            return
        try:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TimeElapsedColumn,
            )
        except ImportError:
            return
        self._total = _count_commands(text)
        self._bar = Progress(
            "applying",
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            transient=True,
            console=None,
        )

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task("apply", total=self._total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, answered: int) -> None:
        """The batch's progress callback: ``answered`` requests so far."""
        if self._bar is not None:
            self._bar.update(self._task, completed=answered)


def _count_commands(text: str) -> int:
    from .batchfile import looks_like_json

    if looks_like_json(text):
        return text.count('"dst"') + text.count('"priority"') or 1
    count = 0
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped and stripped[0] != "#":
            count += 1
    return count


# ------------------------------------------------------------------ reports


def _where(failure: Failure) -> str:
    if failure.item is not None:
        return f"line {failure.line}, item {failure.item}"
    return f"line {failure.line}"


def _failure_json(failure: Failure) -> dict[str, Any]:
    return {
        "line": failure.line,
        "item": failure.item,
        "command": failure.command,
        **error_json(failure.error),
    }


def _report(args: argparse.Namespace, result: ApplyResult) -> None:
    rate = result.applied / result.seconds if result.seconds > 0 else 0.0
    if args.json:
        print_json(
            {
                "commands": result.commands,
                "applied": result.applied,
                "unchanged": result.unchanged,
                "failed": len(result.failures),
                "failures": [_failure_json(f) for f in result.failures],
                "stopped_at_line": result.stopped_at,
                "sent_after_stop": result.sent_after_stop,
                "applied_after_stop": result.applied_after_stop,
                "seconds": round(result.seconds, 6),
                "routes_per_second": round(result.routes / result.seconds, 1)
                if result.seconds > 0
                else None,
            }
        )
        return
    for failure in result.failures:
        print(
            f"{_where(failure)}: {failure.command}\n    {describe_error(failure.error)}",
            file=sys.stderr,
        )
    if result.stopped_at is not None:
        print(
            f"stopped at line {result.stopped_at} (use --force to go on after a failure)",
            file=sys.stderr,
        )
        if result.sent_after_stop:
            print(
                f"  {result.sent_after_stop} requests after it were in flight already; the "
                f"kernel applied {result.applied_after_stop} of them (--sequential avoids that)",
                file=sys.stderr,
            )
    summary = f"applied {result.applied} of {result.commands} commands"
    if result.unchanged:
        summary += f", {result.unchanged} unchanged"
    if result.failures:
        summary += f", {len(result.failures)} failed"
    summary += f" in {result.seconds:.3f} s ({rate:,.0f}/s"
    if result.routes != result.applied:
        routes = result.routes / result.seconds if result.seconds > 0 else 0.0
        summary += f"; routes {routes:,.0f}/s"
    print(summary + ")")


def _dry_run(args: argparse.Namespace, text: str) -> int:
    from .applier import iter_changes
    from .batchfile import ParseError

    prefix = ["ip"] + (["-n", args.netns] if args.netns else [])
    commands: list[dict[str, Any]] = []
    errors = 0
    for line, item, source, change in iter_changes(text):
        if isinstance(change, ParseError):
            errors += 1
            if args.json:
                commands.append({"line": line, "item": item, "command": source,
                                 **error_json(change)})  # fmt: skip
            else:
                where = f"line {line}" + (f", item {item}" if item is not None else "")
                print(f"{where}: {source}\n    {describe_error(change)}", file=sys.stderr)
            continue
        argv = prefix + change.ip_args()
        if args.json:
            commands.append({"line": line, "item": item, "argv": argv})
        else:
            print(shlex.join(argv))
    if args.json:
        print_json(commands)
    return EXIT_FAILED if errors else EXIT_OK
