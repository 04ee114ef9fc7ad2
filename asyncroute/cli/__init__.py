"""The ``asyncroute`` command (also ``python -m asyncroute``).

Subcommands:
  route    upsert, delete, lookup, list routes (Cilium's operations, ip route's words)
  rule     replace, delete, list policy rules (Cilium's operations, ip rule's words)
  apply    apply a batch file or ip -json output, as ip -batch would, pipelined
  nexthop  replace, delete, show, list nexthop objects (ip nexthop's words)
  monitor  the event stream: one line (or JSON object) per route/rule/nexthop/link event
  bench    measure route programming against iproute2, pyroute2 and the raw netlink floor

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; :data:`SUBCOMMANDS` lists them.  A module is imported when the
parser is built (for its options) and its work is done in ``run()``, which imports the
heavy parts itself.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main"]

_DESCRIPTION = """\
asyncroute: program Linux routes over rtnetlink from async Python.

Every route/rule/apply/nexthop/monitor command takes --netns NAME (work in that
network namespace) and --json (machine-readable output); `asyncroute COMMAND --help`
shows examples.

examples:
  asyncroute route upsert 198.51.100.0/24 via 192.0.2.1 dev v0 table 100 mtu 1400
  asyncroute route lookup 198.51.100.0/24 dev v0 table 100 --json
  asyncroute route list table 100
  asyncroute rule replace priority 100 fwmark 0xf00/0xf00 table 100
  asyncroute apply routes.batch              # like ip -batch routes.batch
  asyncroute nexthop replace id 1 via 192.0.2.1 dev v0
  asyncroute monitor --json                  # like ip monitor, one JSON object a line
  sudo asyncroute bench                      # the full benchmark (what `make bench` runs)
"""

_BENCH_DESCRIPTION = """\
Program routes in bulk in a network namespace and measure asyncroute against
iproute2's `ip -batch`, pyroute2 and the raw netlink floor, in the same run.

Needs root.  Creates a throwaway namespace (veth v0/v1, 192.0.2.2/24 and
2001:db8::2/64 on v0) and always deletes it, unless --netns names an existing one.
Phases run interleaved (A B C A B C) for --rounds rounds; the kernel's route counts are
checked after every phase and medians are printed with the machine, kernel, Python,
pyroute2 and iproute2 versions, then written as JSON (and a PNG with --plot).  Every
tool adds to and deletes from the same table: `ip -batch` and the raw floor start with
the nexthop route (192.0.2.1 dev v0 scope link, table 100) that asyncroute's upsert
installs.

examples:
  sudo asyncroute bench
  sudo python -m asyncroute bench --routes 10000 --rounds 1
"""


@dataclass(frozen=True)
class Subcommand:
    """One ``asyncroute`` subcommand: its name, module (with ``add_arguments`` and
    ``run``), one-line help and ``--help`` description (None: the module's
    ``DESCRIPTION``/``EPILOG`` if it has them)."""

    name: str
    module: str
    help: str
    description: str | None = None


#: The subcommands, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "route",
        "asyncroute.cli.route",
        "upsert, delete, look up or list routes",
        "Routes, written as `ip route` takes them.  `asyncroute route COMMAND --help`\n"
        "shows the syntax and examples.\n\n"
        "examples:\n"
        "  asyncroute route upsert 198.51.100.0/24 via 192.0.2.1 dev v0 table 100 mtu 1400\n"
        "  asyncroute route list table 100 --json",
    ),
    Subcommand(
        "rule",
        "asyncroute.cli.rule",
        "replace, delete or list policy-routing rules",
        "Policy rules, written as `ip rule` takes them.  `asyncroute rule COMMAND --help`\n"
        "shows the syntax and examples.\n\n"
        "examples:\n"
        "  asyncroute rule replace priority 100 fwmark 0xf00/0xf00 table 100\n"
        "  asyncroute rule list -4 --json",
    ),
    Subcommand(
        "apply",
        "asyncroute.cli.apply",
        "apply a batch file or ip -json output (what ip -batch does, pipelined)",
    ),
    Subcommand(
        "nexthop",
        "asyncroute.cli.nexthop",
        "replace, delete, show or list nexthop objects and groups",
        "Nexthop objects (Linux 5.3+), written as `ip nexthop` takes them; routes use\n"
        "them with `nhid ID`.  `asyncroute nexthop COMMAND --help` shows the syntax.\n\n"
        "examples:\n"
        "  asyncroute nexthop replace id 1 via 192.0.2.1 dev v0\n"
        "  asyncroute nexthop replace id 10 group 1/2,3\n"
        "  asyncroute nexthop list --json",
    ),
    Subcommand(
        "monitor",
        "asyncroute.cli.monitor",
        "print route, rule, nexthop and link events as they happen",
    ),
    Subcommand(
        "bench",
        "asyncroute.bench",
        "benchmark route programming (asyncroute vs ip -batch, pyroute2, raw netlink)",
        _BENCH_DESCRIPTION,
    ),
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: one subparser per entry of :data:`SUBCOMMANDS`.

    With ``only``, just that subcommand's module is imported and given its options (the
    others keep their one-line help): ``main`` builds no more than it runs.
    """
    parser = argparse.ArgumentParser(
        prog="asyncroute",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for entry in SUBCOMMANDS:
        if only is not None and entry.name != only:
            commands.add_parser(entry.name, help=entry.help)
            continue
        module = importlib.import_module(entry.module)
        description = entry.description or getattr(module, "DESCRIPTION", None)
        sub = commands.add_parser(
            entry.name,
            help=entry.help,
            description=description,
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(module=entry.module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its status."""
    words = sys.argv[1:] if argv is None else list(argv)
    names = {entry.name for entry in SUBCOMMANDS}
    parser = build_parser(words[0] if words and words[0] in names else None)
    args, extra = parser.parse_known_args(words)
    if extra:
        # argparse stops a '*'/'+' positional at the first option: words after an
        # option (`route list --json table 100`) belong to the route or rule.
        if hasattr(args, "spec") and not any(word.startswith("-") for word in extra):
            args.spec = [*args.spec, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    module = importlib.import_module(args.module)
    try:
        status: int = module.run(args)
    except KeyboardInterrupt:
        print("asyncroute: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`asyncroute route list | head -1`): say
        # nothing more, and keep the interpreter's final flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
