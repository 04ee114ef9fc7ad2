"""``asyncroute route``: upsert, delete, look up and list routes.

The route is written the way ``ip route`` takes it::

    asyncroute route upsert 198.51.100.0/24 via 192.0.2.1 dev v0 table 100 mtu 1400

``upsert``, ``delete`` and ``lookup`` are Cilium's operations
(:meth:`asyncroute.Connection.upsert` …): ``upsert`` also installs the
``NH/32 dev X scope link`` route in front of a route via NH.  For iproute2's own
``add``/``replace``/``del`` semantics use ``asyncroute apply``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from socket import AF_INET, AF_INET6
from typing import Any

from .common import (
    EXIT_OK,
    add_word_commands,
    print_json,
    report_error,
    route_json,
    route_text,
    run_async,
    word_value,
)

__all__ = ["ROUTE_SYNTAX", "add_arguments", "parse_route_words", "run"]

ROUTE_SYNTAX = """\
ROUTE := [TYPE] PREFIX [via ADDRESS dev NAME | nhid ID] [table TABLE] [mtu N]
         [src ADDRESS | local ADDRESS] [proto PROTO] [scope SCOPE] [type TYPE]
         [metric N | priority N] [NEXTHOP ...]
NEXTHOP := nexthop [via ADDRESS] [dev NAME] [weight 1..256] [onlink]
PREFIX := ADDRESS[/LENGTH] | default        TYPE := unicast | local | blackhole | …
TABLE := main | local | default | NUMBER      PROTO := boot | static | kernel | NUMBER …
SCOPE := global | link | host | NUMBER
A TYPE word before the prefix is the route type (ip's `ip route add local 192.0.2.5`);
`local ADDRESS` after the prefix is the preferred source (Cilium's Route.local).
A multipath (ECMP) route lists its hops last, each after `nexthop`, as ip does;
`nhid ID` uses the nexthop object ID (see `asyncroute nexthop`).
"""

_COMMANDS: dict[str, tuple[str, str, str]] = {
    "upsert": (
        "install or replace a route (Cilium's Upsert)",
        "Install the route, replacing one with the same key (NLM_F_CREATE|NLM_F_REPLACE).\n"
        "A route via a gateway first gets the on-link route to the gateway\n"
        "(NH/32 dev X scope link, in the same table), as Cilium does.",
        "  asyncroute route upsert 198.51.100.0/24 via 192.0.2.1 dev v0 table 100 mtu 1400\n"
        "  asyncroute route upsert local 198.51.100.7 dev v0 table 100\n"
        "  asyncroute route upsert -6 default via 2001:db8::1 dev v0 --json\n"
        "  asyncroute route upsert 203.0.113.0/24 table 100 \\\n"
        "      nexthop via 192.0.2.1 dev v0 weight 3 nexthop via 192.0.2.5 dev v0\n"
        "  asyncroute route upsert 198.51.100.0/24 nhid 10 table 100",
    ),
    "delete": (
        "delete a route (Cilium's Delete)",
        "Delete the route matched by table, prefix, metric, device (and scope for\n"
        "IPv4), and print the route the kernel removed.  IPv6 without a metric means\n"
        "metric 1024.  A multipath route or one via a nexthop object is matched\n"
        "without its hops (give them, or `nhid ID`, in place of the device).\n"
        "Exits 1 with the kernel's message if there is none.",
        "  asyncroute route delete 198.51.100.0/24 dev v0 table 100\n"
        "  asyncroute route delete 198.51.100.0/24 nhid 10 table 100",
    ),
    "lookup": (
        "show the installed route (Cilium's Lookup)",
        "Find the installed route with this table, prefix, metric and device (gateway\n"
        "and scope too when given) and print it with every field.  IPv6 without a\n"
        "metric means metric 1024.  Exits 1 if there is none.",
        "  asyncroute route lookup 198.51.100.0/24 via 192.0.2.1 dev v0 table 100\n"
        "  asyncroute route lookup local 198.51.100.7 dev v0 table 100 --json",
    ),
    "list": (
        "list routes (table main unless `table`)",
        "List routes, filtered by the kernel where it can: [-4|-6] [table TABLE|all]\n"
        "[proto PROTO] [dev NAME] [type TYPE] [scope SCOPE].  The table is main unless\n"
        "given.  --json prints ip -json's shape, which `asyncroute apply` reads back.",
        "  asyncroute route list table 100\n"
        "  asyncroute route list -6 table all proto static --json\n"
        "  asyncroute route list table 100 --json > routes.json   # apply routes.json later",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``route`` subcommands and their options."""
    commands = {
        name: (*texts, "FILTER" if name == "list" else "ROUTE") for name, texts in _COMMANDS.items()
    }
    add_word_commands(
        parser,
        "route_command",
        commands,
        lambda name: "" if name == "list" else ROUTE_SYNTAX,
        "route",
    )


# ------------------------------------------------------------------ words → Route


def _number(text: str, what: str) -> int:
    from .batchfile import strtoul

    return strtoul(text, what)


def _parse_hops(words: Sequence[str]) -> list[Any]:
    """:class:`~asyncroute.Nexthop` objects from ``nexthop via GW dev D weight W
    [onlink] nexthop …`` (``words`` starts with the first ``nexthop``)."""
    from ..multipath import Nexthop

    hops: list[Any] = []
    index = 0
    while index < len(words):
        if words[index] != "nexthop":
            raise ValueError(f'"nexthop" or the end is expected instead of "{words[index]}"')
        fields: dict[str, Any] = {}
        index += 1
        while index < len(words) and words[index] != "nexthop":
            word = words[index]
            if word in ("via", "gw"):
                index += 1
                fields["gateway"] = word_value(words, index, word)
            elif word == "dev":
                index += 1
                fields["device"] = word_value(words, index, word)
            elif word == "weight":
                index += 1
                fields["weight"] = _number(word_value(words, index, word), "weight")
            elif word == "onlink":
                fields["onlink"] = True
            else:
                raise ValueError(f'unknown nexthop word "{word}" (via, dev, weight, onlink)')
            index += 1
        if not fields.keys() & {"gateway", "device"}:
            raise ValueError('"nexthop" needs "via ADDRESS", "dev NAME" or both')
        hops.append(Nexthop(**fields))
    return hops


def parse_route_words(words: Sequence[str], family: int | None = None) -> dict[str, Any]:
    """Keyword arguments for :class:`~asyncroute.Route` from ``ip route``-style words.

    ``family`` (4 or 6) settles ``default``.  The hops of a multipath route come last,
    each after ``nexthop``, as ``ip route`` takes them.  Raises ValueError for a bad
    word.
    """
    from .batchfile import ParseError, protocol_number, scope_number, table_number, type_number

    fields: dict[str, Any] = {}
    prefix: str | None = None
    index = 0
    try:
        while index < len(words):
            word = words[index]
            if word == "nexthop":
                fields["nexthops"] = _parse_hops(words[index:])
                break
            if word == "nhid":
                index += 1
                fields["nexthop_id"] = _number(word_value(words, index, word), "nhid")
            elif word == "onlink":
                raise ValueError(
                    '"onlink" is a property of a hop here: nexthop via ADDRESS dev NAME onlink'
                )
            elif word in ("via", "gw"):
                index += 1
                fields["nexthop"] = word_value(words, index, word)
            elif word in ("dev", "device", "oif"):
                index += 1
                fields["device"] = word_value(words, index, word)
            elif word == "table":
                index += 1
                fields["table"] = table_number(word_value(words, index, word))
            elif word == "mtu":
                index += 1
                fields["mtu"] = _number(word_value(words, index, word), "mtu")
            elif word in ("src", "prefsrc") or (word == "local" and prefix is not None):
                index += 1
                fields["local"] = word_value(words, index, word)
            elif word in ("proto", "protocol"):
                index += 1
                fields["proto"] = protocol_number(word_value(words, index, word))
            elif word == "scope":
                index += 1
                fields["scope"] = scope_number(word_value(words, index, word))
            elif word == "type":
                index += 1
                kind = type_number(word_value(words, index, word))
                if kind is None:
                    raise ValueError(f'unknown route type "{words[index]}"')
                fields["type"] = kind
            elif word in ("metric", "priority", "preference"):
                index += 1
                fields["priority"] = _number(word_value(words, index, word), "metric")
            else:
                if word == "to":
                    index += 1
                    word = word_value(words, index, "to")
                elif prefix is None and not word[:1].isdigit() and word != "default":
                    kind = type_number(word)
                    if kind is not None:
                        fields["type"] = kind
                        index += 1
                        word = word_value(words, index, word)
                if prefix is not None:
                    raise ValueError(f'unexpected "{word}" (the prefix is {prefix})')
                prefix = word
            index += 1
    except ParseError as exc:
        raise ValueError(str(exc)) from None
    if prefix is None:
        raise ValueError("no prefix: give the route's destination, e.g. 198.51.100.0/24")
    if prefix in ("default", "any", "all"):
        addresses = [fields.get("nexthop"), fields.get("local")]
        addresses += [hop.gateway for hop in fields.get("nexthops", ())]
        six = family == 6 or any(":" in str(address) for address in addresses if address)
        prefix = "::/0" if six else "0.0.0.0/0"
    elif "/" not in prefix:
        prefix += "/128" if ":" in prefix else "/32"
    fields["prefix"] = prefix
    return fields


def _filters(words: Sequence[str]) -> dict[str, Any]:
    from .batchfile import ParseError, protocol_number, scope_number, table_number, type_number

    readers: dict[str, tuple[str, Any]] = {
        "table": ("table", table_number),
        "proto": ("protocol", protocol_number),
        "protocol": ("protocol", protocol_number),
        "dev": ("device", str),
        "oif": ("device", str),
        "type": ("type", type_number),
        "scope": ("scope", scope_number),
    }
    filters: dict[str, Any] = {"table": 254}
    index = 0
    while index < len(words):
        word = words[index]
        if word not in readers:
            raise ValueError(f'unknown filter "{word}" (table, proto, dev, type, scope)')
        key, read = readers[word]
        index += 1
        text = word_value(words, index, word)
        if key == "table" and text == "all":
            filters["table"] = None
        else:
            try:
                value = read(text)
            except ParseError as exc:
                raise ValueError(str(exc)) from None
            if value is None:
                raise ValueError(f'unknown route type "{text}"')
            filters[key] = value
        index += 1
    return filters


# ------------------------------------------------------------------ running


def run(args: argparse.Namespace) -> int:
    """Run ``asyncroute route COMMAND``; the exit status."""
    command = args.route_command
    what = f"route {command}"
    try:
        if command == "list":
            filters = _filters(args.spec)
            route = None
        else:
            from ..route import Route

            route = Route(**parse_route_words(args.spec, args.family))
            filters = {}
    except ValueError as exc:
        return report_error(args, what, exc)

    async def main() -> int:
        import asyncroute

        try:
            async with asyncroute.connect(args.netns) as conn:
                if command == "list":
                    return await _list(conn, args, filters)
                assert route is not None
                if command == "upsert":
                    await conn.upsert(route)
                    _show(args, "upserted", route)
                elif command == "delete":
                    _show(args, "deleted", await conn.delete(route))
                else:
                    _show(args, None, await conn.lookup(route))
        except BrokenPipeError:
            raise  # the reader went away: cli.main() handles it
        except (OSError, asyncroute.AsyncrouteError, ValueError) as exc:
            return report_error(args, what, exc)
        return EXIT_OK

    return run_async(main)


def _show(args: argparse.Namespace, done: str | None, route: Any) -> None:
    if args.json:
        print_json(route_json(route) if done is None else {done: route_json(route)})
    elif done is None:
        print(route_text(route, _HOP_LINES))  # an installed route, as ip route shows it
    else:
        print(f"{done}: {route_text(route)}")  # the route as given, on one line


#: ``ip route show`` puts each hop of a multipath route on a line of its own.
_HOP_LINES = "\n\t"


async def _list(conn: Any, args: argparse.Namespace, filters: dict[str, Any]) -> int:
    # listing.py is written alongside; imported here so that the other commands work
    # without it.
    from ..listing import list_routes

    family = {4: AF_INET, 6: AF_INET6}.get(args.family) if args.family else None
    routes = [route async for route in list_routes(conn, family, **filters)]
    if args.json:
        print_json([route_json(route) for route in routes])
    else:
        for route in routes:
            print(route_text(route, _HOP_LINES))
    return EXIT_OK
