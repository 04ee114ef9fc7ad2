"""``asyncroute monitor``: the event stream (:mod:`asyncroute.events`), one line per event.

In the spirit of ``ip monitor``::

    $ asyncroute monitor
    asyncroute monitor: listening for route, rule, nexthop events
    route added 198.51.100.0/24 via 192.0.2.1 dev v0 table 100
    route removed 198.51.100.0/24 via 192.0.2.1 dev v0 table 100
    nexthop removed id 1 via 192.0.2.1 dev v0

or, with ``--json``, one JSON object per line: ``event`` (the library's event class:
``RouteAdded`` …) and the object in the shape the other commands print it (a route as
``asyncroute route list --json`` prints it).  stdout is flushed after every event.

The "listening" line goes to stderr once the stream is subscribed (every change after
it is reported), like tcpdump's "listening on …": scripts and tests wait for it before
making changes.  ``--quiet`` leaves it out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from socket import AF_INET, AF_INET6
from typing import TYPE_CHECKING, Any

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_common_options,
    nexthop_json,
    nexthop_text,
    report_error,
    route_json,
    route_text,
    rule_json,
    rule_text,
    run_async,
)

if TYPE_CHECKING:
    from ..connection import NetlinkConnection
    from ..events import Event
    from ..messages import LinkMessage, Message, NexthopMessage
    from ..nexthop import NexthopGroup, NexthopObject
    from ..rule import Rule

__all__ = ["DESCRIPTION", "EPILOG", "OBJECTS", "EventPrinter", "add_arguments", "run"]

#: The words naming what to watch, in the order the ready line lists them.
OBJECTS = ("route", "rule", "nexthop", "link")
_DEFAULT = ("route", "rule", "nexthop")

DESCRIPTION = """\
Print route, rule, nexthop and link changes as they happen, one line per event (as
ip monitor does), or with --json one JSON object per line.  Watches routes, rules
and nexthop objects unless OBJECTs are named (route, rule, nexthop, link, all);
-4 or -6 leaves out the routes, rules and nexthops of the other family (nexthop
groups, which have none, and links are always shown).

Once subscribed it says "listening …" on stderr (unless --quiet): every change made
after that line is reported, in the kernel's order.  Routes the kernel removes without
saying so (with their nexthop object) are reported too, marked "implied by …"; if
the kernel drops notifications (an overrun), "resync: …" says where.

Lines: `route added|replaced|removed ROUTE` (ROUTE as `asyncroute route upsert` reads
it), `rule added|removed RULE`, `nexthop added|removed NEXTHOP`, `link
added|changed|removed INDEX: NAME <FLAGS> mtu N state S`, `resync: REASON`.
JSON objects: {"event": "RouteAdded", "replaced": false, "route": {...}},
{"event": "RouteRemoved", "route": {...}, "implied_by": null}, {"event": "RuleAdded",
"rule": {...}}, {"event": "NexthopAdded", "id": 1, "nexthop": {...}}, {"event":
"LinkChanged", "link": {...}}, {"event": "Resync", "reason": "..."}.

Exit status: 0 when --count events were printed or --timeout ran out (without
--count); 1 if --timeout ran out before --count events, or on an error; 130 on Ctrl-C.
"""

EPILOG = """\
examples:
  asyncroute monitor                          # routes, rules, nexthops until Ctrl-C
  asyncroute monitor route link --netns blue
  asyncroute monitor -4 route                 # IPv4 routes only
  asyncroute monitor --json --count 2         # exit after two events
  asyncroute monitor rule --timeout 10        # exit after ten seconds
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``monitor``."""
    family = parser.add_mutually_exclusive_group()
    family.add_argument(
        "-4", dest="family", action="store_const", const=4, help="only IPv4 routes, rules, nexthops"
    )
    family.add_argument(
        "-6", dest="family", action="store_const", const=6, help="only IPv6 routes, rules, nexthops"
    )
    parser.add_argument(
        "spec",
        nargs="*",
        metavar="OBJECT",
        help="what to watch: route, rule, nexthop, link or all (default: route rule nexthop)",
    )
    parser.add_argument(
        "--count", type=int, metavar="N", help="exit after N events (Resync events count)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="exit after SECONDS of listening (exit 1 if --count events did not come)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help='no "listening" line on stderr')
    add_common_options(parser)


def _objects(words: Sequence[str]) -> tuple[str, ...]:
    chosen: set[str] = set()
    for word in words:
        name = word.lower()
        if name.endswith("s") and name[:-1] in OBJECTS:
            name = name[:-1]  # "routes" is "route"
        if name == "all":
            chosen.update(OBJECTS)
        elif name in OBJECTS:
            chosen.add(name)
        else:
            raise ValueError(f'unknown object "{word}" (route, rule, nexthop, link, all)')
    return tuple(name for name in OBJECTS if name in (chosen or _DEFAULT))


# ------------------------------------------------------------------ formatting

# linux/if.h: the interface flags ip link prints, in its order.
_IFF_NAMES = (
    (0x1, "UP"),
    (0x2, "BROADCAST"),
    (0x8, "LOOPBACK"),
    (0x10, "POINTOPOINT"),
    (0x1000, "MULTICAST"),
    (0x100, "PROMISC"),
    (0x200, "ALLMULTI"),
    (0x10000, "LOWER_UP"),
    (0x20000, "DORMANT"),
)
# linux/if.h IF_OPER_*
_OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")


def _flag_names(flags: int) -> list[str]:
    return [name for bit, name in _IFF_NAMES if flags & bit]


def _operstate(value: int | None) -> str:
    if value is None:
        return "UNKNOWN"
    return _OPERSTATES[value] if 0 <= value < len(_OPERSTATES) else str(value)


class EventPrinter:
    """Turns events into output lines; resolves the device names of nexthop objects
    (through a connection of its own, opened at the first need and kept in ``stack``)."""

    def __init__(self, netns: str | None, stack: AsyncExitStack, as_json: bool) -> None:
        self._netns = netns
        self._stack = stack
        self._json = as_json
        self._conn: NetlinkConnection | None = None
        self._names: dict[int, str] = {}

    async def _device(self, index: int) -> str:
        name = self._names.get(index)
        if name is not None:
            return name
        from .._links import device_name
        from ..errors import NotFoundError

        if self._conn is None:
            import asyncroute

            self._conn = await self._stack.enter_async_context(asyncroute.connect(self._netns))
        try:
            name = await device_name(self._conn, index)
        except NotFoundError:
            return f"if{index}"  # gone already: ip's name for it (ll_index_to_name)
        if len(self._names) >= 4096:
            self._names.clear()
        self._names[index] = name
        return name

    async def _nexthop(self, body: NexthopMessage) -> NexthopObject | NexthopGroup | None:
        from ..nexthop import nexthop_from_message

        device = await self._device(body.oif) if body.oif and not body.group else ""
        try:
            return nexthop_from_message(body, device)
        except (ValueError, TypeError):
            return None  # something NexthopObject cannot hold: the id is printed

    @staticmethod
    def _implied(message: Message | None) -> tuple[str, dict[str, Any] | None]:
        """``(text, JSON)`` of the message that implies a removal the kernel did not
        announce."""
        from ..constants import RTM
        from ..messages import LinkMessage, NexthopMessage

        if message is None:
            return "", None
        body = message.body
        try:
            kind = f"RTM_{RTM(message.type).name}"
        except ValueError:
            kind = str(message.type)
        data: dict[str, Any] = {"message": kind}
        if isinstance(body, NexthopMessage):
            data["id"] = body.id
            return f" (implied by nexthop {body.id} removed)", data
        if isinstance(body, LinkMessage):
            data.update(ifindex=body.index, ifname=body.name)
            gone = message.type == RTM.DELLINK
            state = "removed" if gone else "down"
            return f" (implied by link {body.name or body.index} {state})", data
        return f" (implied by {kind})", data

    @staticmethod
    def family_of(event: Event) -> int | None:
        """The address family of ``event`` (AF_INET, AF_INET6), or None if it has none
        (a link, a nexthop group, a Resync)."""
        from .. import events as ev
        from ..messages import NexthopMessage

        if isinstance(event, ev.RouteAdded | ev.RouteRemoved):
            return event.route.family
        if isinstance(event, ev.RuleAdded | ev.RuleRemoved):
            return event.family
        if isinstance(event, ev.NexthopAdded | ev.NexthopRemoved):
            body = event.message.body
            if isinstance(body, NexthopMessage) and body.family in (AF_INET, AF_INET6):
                return body.family
        return None

    @staticmethod
    def _link(link: LinkMessage) -> tuple[str, dict[str, Any]]:
        flags = _flag_names(link.flags)
        text = f"{link.index}: {link.name or '?'} <{','.join(flags)}>"
        if link.mtu is not None:
            text += f" mtu {link.mtu}"
        text += f" state {_operstate(link.operstate)}"
        data: dict[str, Any] = {
            "ifindex": link.index,
            "ifname": link.name,
            "flags": flags,
            "mtu": link.mtu,
            "operstate": _operstate(link.operstate),
        }
        return text, data

    @staticmethod
    def _rule(rule: Rule, family: int) -> tuple[str, dict[str, Any]]:
        """The rule as ``rule list`` prints it: every selector and action."""
        text = ("-6 " if family == AF_INET6 else "") + rule_text(rule, family)
        return text, rule_json(rule, family)

    async def render(self, event: Event) -> str:
        """The output line for ``event`` (without the newline)."""
        from .. import events as ev
        from ..messages import NexthopMessage

        data: dict[str, Any] = {"event": type(event).__name__}
        text: str
        if isinstance(event, ev.RouteAdded):
            text = f"route {'replaced' if event.replaced else 'added'} {route_text(event.route)}"
            data.update(replaced=event.replaced, route=route_json(event.route))
        elif isinstance(event, ev.RouteRemoved):
            implied, implied_json = self._implied(event.implied_by)
            text = f"route removed {route_text(event.route)}{implied}"
            data.update(route=route_json(event.route), implied_by=implied_json)
        elif isinstance(event, ev.RuleAdded | ev.RuleRemoved):
            rule_words, rule_data = self._rule(event.rule, event.family)
            verb = "added" if isinstance(event, ev.RuleAdded) else "removed"
            text = f"rule {verb} {rule_words}"
            data["rule"] = rule_data
        elif isinstance(event, ev.NexthopAdded | ev.NexthopRemoved):
            body = event.message.body
            value = await self._nexthop(body) if isinstance(body, NexthopMessage) else None
            verb = "added" if isinstance(event, ev.NexthopAdded) else "removed"
            text = f"nexthop {verb} " + (nexthop_text(value) if value else f"id {event.id}")
            data.update(id=event.id, nexthop=nexthop_json(value) if value else None)
            if isinstance(event, ev.NexthopRemoved):
                implied, implied_json = self._implied(event.implied_by)
                text += implied
                data["implied_by"] = implied_json
        elif isinstance(event, ev.LinkAdded | ev.LinkChanged | ev.LinkRemoved):
            link_verb = (
                "added"
                if isinstance(event, ev.LinkAdded)
                else "changed"
                if isinstance(event, ev.LinkChanged)
                else "removed"
            )
            link_text, data["link"] = self._link(event.link)
            text = f"link {link_verb} {link_text}"
        else:
            text = f"resync: {event.reason}"
            data["reason"] = event.reason
        if self._json:
            return json.dumps(data)
        return text


# ------------------------------------------------------------------ running


def _ready(args: argparse.Namespace, objects: Sequence[str]) -> None:
    if args.quiet:
        return
    family = {4: "inet", 6: "inet6"}.get(args.family)
    if args.json:
        line = json.dumps({"listening": list(objects), "family": family, "netns": args.netns})
    else:
        where = f" in {args.netns}" if args.netns else ""
        only = {"inet": "IPv4 ", "inet6": "IPv6 "}.get(family or "", "")
        line = f"asyncroute monitor: listening for {only}{', '.join(objects)} events{where}"
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run ``asyncroute monitor``; the exit status."""
    try:
        objects = _objects(args.spec)
        if args.count is not None and args.count < 1:
            raise ValueError(f"--count must be at least 1, got {args.count}")
        if args.timeout is not None and not args.timeout > 0:
            raise ValueError(f"--timeout must be positive, got {args.timeout}")
    except ValueError as exc:
        return report_error(args, "monitor", exc)

    async def main() -> int:
        import anyio

        import asyncroute

        from ..events import subscribe

        count = args.count
        seen = 0
        try:
            async with AsyncExitStack() as stack:
                events = await stack.enter_async_context(
                    subscribe(
                        args.netns,
                        routes="route" in objects,
                        rules="rule" in objects,
                        nexthops="nexthop" in objects,
                        links="link" in objects,
                    )
                )
                printer = EventPrinter(args.netns, stack, args.json)
                _ready(args, objects)
                unwanted = {4: AF_INET6, 6: AF_INET}.get(args.family)
                with anyio.move_on_after(args.timeout):
                    async for event in events:
                        if unwanted is not None and printer.family_of(event) == unwanted:
                            continue
                        print(await printer.render(event), flush=True)
                        seen += 1
                        if count is not None and seen >= count:
                            break
        except BrokenPipeError:
            raise  # the reader went away: cli.main() handles it
        except (OSError, asyncroute.AsyncrouteError, ValueError) as exc:
            return report_error(args, "monitor", exc)
        return EXIT_FAILED if count is not None and seen < count else EXIT_OK

    return run_async(main)
