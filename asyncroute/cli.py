"""The ``asyncroute`` command (also ``python -m asyncroute``).

Subcommands:
  bench   measure route programming against iproute2, pyroute2 and the raw netlink floor

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; the module is imported only when its subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
asyncroute: program Linux routes over rtnetlink from async Python.

examples:
  sudo asyncroute bench                   # the full benchmark (what `make bench` runs)
  sudo python -m asyncroute bench --routes 10000 --rounds 1
  asyncroute bench --help                 # phases and options
"""

_BENCH_DESCRIPTION = """\
Program routes in bulk in a network namespace and measure asyncroute against
iproute2's `ip -batch`, pyroute2 and the raw netlink floor, in the same run.

Needs root.  Creates a throwaway namespace (veth v0/v1, 192.0.2.2/24 and
2001:db8::2/64 on v0) and always deletes it, unless --netns names an existing one.
Phases run interleaved (A B C A B C) for --rounds rounds; the kernel's route counts are
checked after every phase and medians are printed with the machine, kernel, Python,
pyroute2 and iproute2 versions, then written as JSON (and a PNG with --plot).
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="asyncroute",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench = commands.add_parser(
        "bench",
        help="benchmark route programming (asyncroute vs ip -batch, pyroute2, raw netlink)",
        description=_BENCH_DESCRIPTION,
    )
    # Only the option definitions are imported here; the benchmark's work is in run().
    from .bench import add_arguments

    add_arguments(bench)
    bench.set_defaults(module="asyncroute.bench")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args.module)
    try:
        status: int = module.run(args)
    except KeyboardInterrupt:
        print("asyncroute: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
