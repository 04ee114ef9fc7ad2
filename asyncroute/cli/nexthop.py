"""``asyncroute nexthop``: replace, delete, show and list nexthop objects (Linux 5.3+).

The nexthop is written the way ``ip nexthop`` takes it::

    asyncroute nexthop replace id 1 via 192.0.2.1 dev v0
    asyncroute nexthop replace id 2 blackhole
    asyncroute nexthop replace id 10 group 1/2,3

Routes use one with ``nhid ID`` (``asyncroute route upsert 198.51.100.0/24 nhid 10``).
``replace`` creates the object or replaces the one with its id
(:meth:`asyncroute.Connection.replace_nexthop`); routes and groups using the id follow
at once.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from socket import AF_INET, AF_INET6
from typing import TYPE_CHECKING, Any

from .common import (
    EXIT_OK,
    add_word_commands,
    nexthop_json,
    nexthop_text,
    print_json,
    report_error,
    run_async,
    word_value,
)

if TYPE_CHECKING:
    from ..nexthop import NexthopGroup, NexthopObject

__all__ = ["NEXTHOP_SYNTAX", "add_arguments", "parse_group", "parse_nexthop_words", "run"]

NEXTHOP_SYNTAX = """\
NEXTHOP := id ID [via [inet|inet6] ADDRESS] [dev NAME] [onlink] [proto PROTO] [fdb]
         | id ID blackhole [proto PROTO]
         | id ID group ID[,WEIGHT][/ID[,WEIGHT]]... [type mpath|resilient] [proto PROTO] [fdb]
A nexthop without a gateway (dev only, blackhole) is IPv4 unless -6; IPv6 routes can use
only IPv6 nexthops.  Group weights are 1..65535 (above 256 needs Linux 6.12).
"""

_COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "replace": (
        "create or replace a nexthop object or group",
        "Create the nexthop object (or group), or replace the one with the same id\n"
        "(NLM_F_CREATE|NLM_F_REPLACE).  Routes and groups that use the id follow at once.",
        "  asyncroute nexthop replace id 1 via 192.0.2.1 dev v0\n"
        "  asyncroute nexthop replace -6 id 2 blackhole\n"
        "  asyncroute nexthop replace id 10 group 1/3,2 --json",
        "NEXTHOP",
    ),
    "delete": (
        "delete a nexthop object or group",
        "Delete the nexthop object or group ID.  The kernel also removes it from the\n"
        "groups holding it and deletes the routes that use it.  Exits 1 if there is none.",
        "  asyncroute nexthop delete id 10",
        "id ID",
    ),
    "show": (
        "show one nexthop object or group",
        "Print the nexthop object or group ID as the kernel holds it.  Exits 1 if there\nis none.",
        "  asyncroute nexthop show id 10\n  asyncroute nexthop show id 1 --json",
        "id ID",
    ),
    "list": (
        "list nexthop objects and groups",
        "List the nexthop objects and groups, filtered by the kernel: [-4|-6] [dev NAME]\n"
        "or [groups].  A family or a device leaves groups out (the kernel's filter).\n"
        "--json prints ip -json nexthop show's shape.",
        "  asyncroute nexthop list\n  asyncroute nexthop list dev v0 --json\n"
        "  asyncroute nexthop list groups",
        "FILTER",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``nexthop`` subcommands and their options."""
    add_word_commands(
        parser,
        "nexthop_command",
        _COMMANDS,
        lambda name: NEXTHOP_SYNTAX if name == "replace" else "",
        "nexthop",
    )


# ------------------------------------------------------------------ words → nexthop


def _number(text: str, what: str) -> int:
    from .batchfile import ParseError, strtoul

    try:
        return strtoul(text, what)
    except ParseError as exc:
        raise ValueError(str(exc)) from None


def parse_group(text: str) -> list[tuple[int, int]]:
    """``ID[,WEIGHT]/ID[,WEIGHT]…`` (iproute2's group syntax) as ``(id, weight)`` pairs."""
    members = []
    for part in text.split("/"):
        member, comma, weight = part.partition(",")
        members.append(
            (_number(member, "group member id"), _number(weight, "weight") if comma else 1)
        )
    return members


def parse_nexthop_words(
    words: Sequence[str], family: int | None = None
) -> NexthopObject | NexthopGroup:
    """A :class:`~asyncroute.NexthopObject` or :class:`~asyncroute.NexthopGroup` from
    ``ip nexthop``-style words; ``family`` (4 or 6) for one without a gateway.  Raises
    ValueError for a bad word."""
    from ..nexthop import NexthopGroup, NexthopObject
    from .batchfile import ParseError, protocol_number

    fields: dict[str, Any] = {}
    group: list[tuple[int, int]] | None = None
    index = 0
    while index < len(words):
        word = words[index]
        if word == "id":
            index += 1
            fields["id"] = _number(word_value(words, index, word), "id")
        elif word in ("via", "gw"):
            index += 1
            text = word_value(words, index, word)
            if text in ("inet", "inet6"):
                family = 4 if text == "inet" else 6
                index += 1
                text = word_value(words, index, word)
            fields["gateway"] = text
        elif word == "dev":
            index += 1
            fields["device"] = word_value(words, index, word)
        elif word in ("onlink", "blackhole", "fdb"):
            fields[word] = True
        elif word in ("proto", "protocol"):
            index += 1
            try:
                fields["protocol"] = protocol_number(word_value(words, index, word))
            except ParseError as exc:
                raise ValueError(str(exc)) from None
        elif word == "group":
            index += 1
            group = parse_group(word_value(words, index, word))
        elif word == "type":
            index += 1
            kind = word_value(words, index, word)
            if kind not in ("mpath", "resilient"):
                raise ValueError(f'unknown group type "{kind}" (mpath, resilient)')
            fields["resilient"] = kind == "resilient"
        else:
            raise ValueError(
                f'unknown word "{word}" (id, via, dev, onlink, blackhole, group, type, proto, fdb)'
            )
        index += 1
    if "id" not in fields:
        raise ValueError('a nexthop needs "id ID"')
    if group is not None:
        extra = fields.keys() - {"id", "protocol", "fdb", "resilient"}
        if extra:
            raise ValueError(f"a group takes no {', '.join(sorted(extra))}")
        return NexthopGroup(members=group, **fields)
    if "resilient" in fields:
        raise ValueError('"type" is for groups')
    if family is not None:
        fields["family"] = AF_INET6 if family == 6 else AF_INET
    return NexthopObject(**fields)


def _id_only(words: Sequence[str]) -> int:
    if len(words) != 2 or words[0] != "id":
        raise ValueError('expected "id ID"')
    return _number(words[1], "id")


def _filters(words: Sequence[str], family: int | None) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if family is not None:
        filters["family"] = AF_INET6 if family == 6 else AF_INET
    index = 0
    while index < len(words):
        word = words[index]
        if word == "dev":
            index += 1
            filters["device"] = word_value(words, index, word)
        elif word == "groups":
            filters["groups_only"] = True
        else:
            raise ValueError(f'unknown filter "{word}" (dev NAME, groups)')
        index += 1
    return filters


# ------------------------------------------------------------------ running


def run(args: argparse.Namespace) -> int:
    """Run ``asyncroute nexthop COMMAND``; the exit status."""
    command = args.nexthop_command
    what = f"nexthop {command}"
    nexthop: Any = None
    try:
        if command == "replace":
            nexthop = parse_nexthop_words(args.spec, args.family)
        elif command in ("delete", "show"):
            nexthop = _id_only(args.spec)
        else:
            filters = _filters(args.spec, args.family)
    except (ValueError, TypeError) as exc:
        return report_error(args, what, ValueError(str(exc)))

    async def main() -> int:
        import asyncroute

        try:
            async with asyncroute.connect(args.netns) as conn:
                if command == "replace":
                    await conn.replace_nexthop(nexthop)
                    _show(args, "replaced", nexthop)
                elif command == "delete":
                    await conn.delete_nexthop(nexthop)
                    if args.json:
                        print_json({"deleted": {"id": nexthop}})
                    else:
                        print(f"deleted: id {nexthop}")
                elif command == "show":
                    _show(args, None, await conn.get_nexthop(nexthop))
                else:
                    found = [nh async for nh in conn.list_nexthops(**filters)]
                    if args.json:
                        print_json([nexthop_json(nh) for nh in found])
                    else:
                        for nh in found:
                            print(nexthop_text(nh))
        except BrokenPipeError:
            raise  # the reader went away: cli.main() handles it
        except (OSError, asyncroute.AsyncrouteError, ValueError) as exc:
            return report_error(args, what, exc)
        return EXIT_OK

    return run_async(main)


def _show(args: argparse.Namespace, done: str | None, nexthop: Any) -> None:
    if args.json:
        print_json(nexthop_json(nexthop) if done is None else {done: nexthop_json(nexthop)})
    else:
        print(nexthop_text(nexthop) if done is None else f"{done}: {nexthop_text(nexthop)}")
