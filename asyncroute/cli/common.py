"""What the ``asyncroute`` subcommands share: the common options, running a coroutine,
printing routes and rules (as ``ip`` prints them, or in ``ip -json``'s shape), and
reporting errors with the kernel's own message.

Exit status of every subcommand: 0 success, 1 the operation failed (the kernel refused
it, nothing matched, a command of ``apply`` failed), 2 bad usage or bad input (argparse's
convention; a malformed prefix is a usage error too).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from socket import AF_INET, AF_INET6
from typing import TYPE_CHECKING, Any

from .. import ip_route_words as ip_words
from ..constants import FR_ACT

if TYPE_CHECKING:
    from ..messages import RuleMessage
    from ..multipath import Nexthop
    from ..nexthop import NexthopGroup, NexthopObject
    from ..route import Route
    from ..rule import Rule

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_common_options",
    "describe_error",
    "error_json",
    "hop_text",
    "nexthop_json",
    "nexthop_text",
    "print_json",
    "report_error",
    "route_json",
    "route_text",
    "rule_json",
    "rule_text",
    "run_async",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_word_commands(
    parser: argparse.ArgumentParser,
    dest: str,
    commands: dict[str, tuple[str, str, str, str]],
    syntax: Callable[[str], str],
    what: str,
) -> None:
    """Subcommands that take ``-4``/``-6``, words in iproute2's grammar (``args.spec``),
    ``--netns`` and ``--json``.  ``commands`` maps each name to (summary, description,
    examples, metavar of its words); ``syntax(name)`` is the grammar shown before the
    examples; ``what`` names the object ("route": "the route, as ip route takes it").
    """
    subparsers = parser.add_subparsers(dest=dest, metavar="COMMAND", required=True)
    for name, (summary, description, examples, metavar) in commands.items():
        sub = subparsers.add_parser(
            name,
            help=summary,
            description=description,
            epilog=syntax(name) + "\nexamples:\n" + examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        family = sub.add_mutually_exclusive_group()
        family.add_argument("-4", dest="family", action="store_const", const=4, help="IPv4")
        family.add_argument("-6", dest="family", action="store_const", const=6, help="IPv6")
        listing = name == "list"
        sub.add_argument(
            "spec",
            nargs="*" if listing else "+",
            metavar=metavar,
            help="the filter words" if listing else f"the {what}, as ip {what} takes it",
        )
        add_common_options(sub)


def word_value(words: Sequence[str], index: int, word: str) -> str:
    """``words[index]``, the value of keyword ``word``; ValueError if the line ends."""
    if index >= len(words):
        raise ValueError(f'"{word}" needs a value')
    return words[index]


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--netns NAME`` and ``--json``, which every route/rule/apply command takes."""
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--netns",
        metavar="NAME",
        help="work in the network namespace NAME (under /run/netns) or at that path",
    )
    group.add_argument(
        "--json", action="store_true", help="print the result as JSON (ip -json's shape)"
    )


def run_async(main: Callable[[], Awaitable[int]]) -> int:
    """Run ``main`` on asyncio through anyio and return its exit status."""
    import anyio

    status: int = anyio.run(main)
    return status


def describe_error(error: BaseException) -> str:
    """An error in one line, led by what the kernel said: ``File exists``, then the
    kernel's extended-ACK message (``Nexthop has invalid gateway``) when it sent one."""
    from ..errors import KernelError

    if isinstance(error, KernelError):
        text = error.strerror or f"errno {error.errno}"
        message = error.message
        if message:
            # asyncroute's own NotFoundError texts ("no such device: 'x'", "no route …")
            # say it all; the kernel's extended ACK follows its errno text.
            if error.seq is None or message.lower().startswith(text.lower()):
                return message
            text += f": {message}"
        return text
    return str(error) or type(error).__name__


def error_json(error: BaseException) -> dict[str, Any]:
    """An error as a JSON object: ``error`` (the text of :func:`describe_error`), and for
    a kernel error ``errno``, ``strerror`` and ``kernel_message``."""
    from ..errors import KernelError

    data: dict[str, Any] = {"error": describe_error(error), "type": type(error).__name__}
    if isinstance(error, KernelError):
        data.update(errno=error.errno, strerror=error.strerror, kernel_message=error.message)
    return data


def report_error(args: argparse.Namespace, what: str, error: BaseException) -> int:
    """Print ``asyncroute WHAT: error`` on stderr (a JSON object with ``--json``) and
    return the exit status: 2 for bad input (ValueError), else 1."""
    from ..errors import KernelError

    usage = isinstance(error, ValueError) and not isinstance(error, KernelError)
    if getattr(args, "json", False):
        print(json.dumps({"command": what, **error_json(error)}), file=sys.stderr)
    else:
        print(f"asyncroute {what}: {describe_error(error)}", file=sys.stderr)
    return EXIT_USAGE if usage else EXIT_FAILED


def print_json(data: object) -> None:
    """``data`` as indented JSON on stdout."""
    print(json.dumps(data, indent=2))


def route_json(route: Route) -> dict[str, Any]:
    """``route`` in the shape of one ``ip -json route show`` object, with every field
    spelled out (type, table, protocol and scope included), so that ``asyncroute apply``
    of a listing recreates the same routes."""
    from .batchfile import protocol_name, scope_name, table_name, type_name

    data: dict[str, Any] = {
        "type": type_name(route.type or 1),
        "dst": _dst(route),
        **ip_words.head_json(route._x),
    }
    if route.nexthop_id:
        data["nhid"] = route.nexthop_id
    if route.nexthop is not None and route.nexthop.version != route.prefix.version:
        data["via"] = {"family": "inet6", "host": str(route.nexthop)}
    elif route.nexthop is not None:
        data["gateway"] = str(route.nexthop)
    if route.device:
        data["dev"] = route.device
    data["table"] = table_name(route.table_id)
    data["protocol"] = protocol_name(route.proto or 3)
    data["scope"] = scope_name(route.effective_scope)
    if route.priority:
        data["metric"] = route.priority
    if route.local is not None:
        data["prefsrc"] = str(route.local)
    tail = ip_words.tail_json(route._x, route.mtu)
    other = tail.pop("other_attributes", None)
    data.update(tail)
    if route.nexthops:
        data["nexthops"] = [_hop_json(hop) for hop in route.nexthops]
    if other:
        data["other_attributes"] = other
    return data


def _hop_json(hop: Nexthop) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if hop.encap is not None:
        data["encap"] = ip_words.encap_json(hop.encap)
    if hop.gateway is not None:
        data["gateway"] = str(hop.gateway)
    if hop.realms:
        data["flow"] = ip_words.realms_json(hop.realms)
    if hop.device:
        data["dev"] = hop.device
    data["weight"] = hop.weight
    if hop.onlink:
        data["flags"] = ["onlink"]
    if hop.other_attributes:
        data["other_attributes"] = [[n, value.hex()] for n, value in hop.other_attributes]
    return data


def _dst(route: Route) -> str:
    prefix = route.prefix
    if prefix.prefixlen == 0:
        return "default"
    if prefix.prefixlen == prefix.max_prefixlen:
        return str(prefix.network_address)
    return str(prefix)


def route_text(route: Route, hop_separator: str = " ") -> str:
    """``route`` as ``ip route show`` prints it (table, proto, scope and type only when
    they are not main, boot, global and unicast), on one line: the hops of a multipath
    route come last, each ``nexthop via GW dev D weight W [onlink]`` (the syntax
    ``route upsert`` reads).  ``hop_separator="\\n\\t"`` puts each hop on a line of its
    own, as ``ip route show`` does."""
    from .batchfile import protocol_name, scope_name, table_name, type_name

    out = []
    if route.type not in (0, 1):
        out.append(type_name(route.type))
    out.append(_dst(route))
    out += ip_words.head_words(route._x)
    if route.nexthop_id:
        out += ["nhid", str(route.nexthop_id)]
    if route.nexthop is not None and route.nexthop.version != route.prefix.version:
        out += ["via", "inet6", str(route.nexthop)]
    elif route.nexthop is not None:
        out += ["via", str(route.nexthop)]
    if route.device:
        out += ["dev", route.device]
    if route.table_id != 254:
        out += ["table", table_name(route.table_id)]
    if route.proto not in (0, 3):
        out += ["proto", protocol_name(route.proto)]
    if route.effective_scope:
        out += ["scope", scope_name(route.effective_scope)]
    if route.local is not None:
        out += ["src", str(route.local)]
    if route.priority:
        out += ["metric", str(route.priority)]
    out += ip_words.tail_words(route._x, route.mtu)
    if route.other_attributes:
        out += ["other", ",".join(f"{n}:{value.hex()}" for n, value in route.other_attributes)]
    text = " ".join(out)
    for hop in route.nexthops:
        text += hop_separator + hop_text(hop)
    return text


def hop_text(hop: Nexthop) -> str:
    """``nexthop via GW dev D weight W [onlink]``, as ``ip route`` writes one hop (and
    ``other N:HEX`` for attributes the library does not model)."""
    out = hop._words()
    if hop.other_attributes:
        out += ["other", ",".join(f"{n}:{value.hex()}" for n, value in hop.other_attributes)]
    return " ".join(out)


def rule_json(rule: Rule, family: int | None = None) -> dict[str, Any]:
    """``rule`` in the shape of one ``ip -json rule show`` object, every selector and
    action included (``apply`` reads it back as ``rule add``); ``"family"`` when
    ``family`` is given."""
    return rule_message_json(_shown(rule, family), family=family is not None)


def rule_text(rule: Rule, family: int | None = None) -> str:
    """``rule`` on one line as ``ip rule show`` prints it, every selector and action
    included: ``1000: from all fwmark 0xf00/0xf00 lookup 123``."""
    return rule_message_text(_shown(rule, family))


def _shown(rule: Rule, family: int | None) -> RuleMessage:
    """The message of ``rule`` as the kernel reports it: without a zero fwmark and
    fwmask (Cilium sends both always; the kernel keeps no mark then and lists none)."""
    from ..rule import _family_of

    message = rule._message(_family_of(rule, family))
    if not message.fwmark and not message.fwmask:
        message = dataclasses.replace(message, fwmark=None, fwmask=None)
    return message


_FIB_RULE_INVERT, _FIB_RULE_UNRESOLVED, _IIF_DETACHED, _OIF_DETACHED = 0x2, 0x4, 0x8, 0x10
_HOST_LENGTH: dict[int, int] = {int(AF_INET): 32, int(AF_INET6): 128}


def rule_message_json(
    m: RuleMessage, *, family: bool = False, details: bool = False
) -> dict[str, Any]:
    """A kernel rule message as ``ip -json rule show`` prints it (``ip/iprule.c``,
    ``print_rule``): every selector and action, in ip's order and words, so that
    ``apply`` reads it back as the same rule.  ``details``: also ``protocol`` when it is
    0 or kernel, as ``ip -d`` does; ``family``: also ``"family"`` (``inet``/``inet6``),
    which ``ip`` leaves out and ``apply`` reads."""
    from .._values import ip_protocol_name
    from .batchfile import protocol_name, table_name

    data: dict[str, Any] = {"priority": m.priority or 0}
    if family:
        data["family"] = "inet6" if m.family == AF_INET6 else "inet"
    if m.flags & _FIB_RULE_INVERT:
        data["not"] = None
    host = _HOST_LENGTH.get(m.family, 32)
    for key, address, length in (("src", m.src, m.src_len), ("dst", m.dst, m.dst_len)):
        if address is not None or length:
            data[key] = str(address) if address is not None else "0"
            if length != host or address is None:
                data[f"{key}len"] = length
        elif key == "src":
            data["src"] = "all"
    if m.tos:
        data["tos"] = f"{m.tos:#x}"
    if m.fwmark is not None or m.fwmask is not None:
        data["fwmark"] = f"{m.fwmark or 0:#x}"
        if m.fwmask is not None and m.fwmask != 0xFFFF_FFFF:
            data["fwmask"] = f"{m.fwmask:#x}"
    for key, name, detached in (
        ("iif", m.iifname, _IIF_DETACHED),
        ("oif", m.oifname, _OIF_DETACHED),
    ):
        if name is not None:
            data[key] = name
            if m.flags & detached:
                data[f"{key}_detached"] = None
    if m.l3mdev:
        data["l3mdev"] = None
    if m.uid_range is not None:
        data["uid_start"], data["uid_end"] = m.uid_range
    if m.ip_proto is not None:
        data["ipproto"] = ip_protocol_name(m.ip_proto)
    for key, ports in (("sport", m.sport_range), ("dport", m.dport_range)):
        if ports is not None:
            if ports[0] == ports[1]:
                data[key] = ports[0]
            else:
                data[f"{key}_start"], data[f"{key}_end"] = ports
    if m.tun_id is not None:
        data["tun_id"] = m.tun_id
    table = m.table_number
    if table:
        data["table"] = table_name(table)
        if m.suppress_prefixlen is not None and m.suppress_prefixlen != 0xFFFF_FFFF:
            data["suppress_prefixlen"] = m.suppress_prefixlen
        if m.suppress_ifgroup is not None and m.suppress_ifgroup != 0xFFFF_FFFF:
            group = m.suppress_ifgroup
            data["suppress_ifgroup"] = "default" if group == 0 else str(group)
    if m.flow is not None:
        if m.flow >> 16:
            data["flow_from"] = str(m.flow >> 16)
        data["flow_to"] = str(m.flow & 0xFFFF)
    if m.action == FR_ACT.GOTO:
        data["goto"] = m.goto or 0
        if m.flags & _FIB_RULE_UNRESOLVED:
            data["unresolved"] = None
    elif m.action == FR_ACT.NOP:
        data["nop"] = None
    elif m.action not in (FR_ACT.TO_TBL, FR_ACT.UNSPEC):
        data["action"] = FR_ACT(m.action).name.lower() if m.action in _ACTIONS else str(m.action)
    if m.rule_protocol is not None and (m.rule_protocol not in (0, 2) or details):
        data["protocol"] = protocol_name(m.rule_protocol)
    return data


_ACTIONS = frozenset(a.value for a in FR_ACT)


def rule_message_text(m: RuleMessage) -> str:
    """A kernel rule message on one line, as ``ip rule show`` prints it."""
    data = rule_message_json(m)
    words = [f"{data.pop('priority')}:"]
    if "not" in data:
        words.append("not")
    for key, word in (("src", "from"), ("dst", "to")):
        if key in data:
            text = str(data[key])
            if f"{key}len" in data:
                text += f"/{data[f'{key}len']}"
            words += [word, text]
    if "tos" in data:
        words += ["tos", data["tos"]]
    if "fwmark" in data:
        words += ["fwmark", data["fwmark"] + (f"/{data['fwmask']}" if "fwmask" in data else "")]
    for key in ("iif", "oif"):
        if key in data:
            words += [key, data[key]] + (["[detached]"] if f"{key}_detached" in data else [])
    if "l3mdev" in data:
        words += ["lookup", "[l3mdev-table]"]
    if "uid_start" in data:
        words += ["uidrange", f"{data['uid_start']}-{data['uid_end']}"]
    if "ipproto" in data:
        words += ["ipproto", data["ipproto"]]
    for key in ("sport", "dport"):
        if key in data:
            words += [key, str(data[key])]
        elif f"{key}_start" in data:
            words += [key, f"{data[f'{key}_start']}-{data[f'{key}_end']}"]
    if "tun_id" in data:
        words += ["tun_id", str(data["tun_id"])]
    if "table" in data:
        words += ["lookup", data["table"]]
    if "suppress_prefixlen" in data:
        words += ["suppress_prefixlength", str(data["suppress_prefixlen"])]
    if "suppress_ifgroup" in data:
        words += ["suppress_ifgroup", data["suppress_ifgroup"]]
    if "flow_to" in data:
        realms = data["flow_to"]
        words += ["realms", f"{data['flow_from']}/{realms}" if "flow_from" in data else realms]
    if "goto" in data:
        words += ["goto", str(data["goto"])] + (["[unresolved]"] if "unresolved" in data else [])
    if "nop" in data:
        words.append("nop")
    if "action" in data:
        words.append(data["action"])
    if "protocol" in data:
        words += ["proto", data["protocol"]]
    return " ".join(words)


def _members(nexthop: NexthopGroup) -> str:
    return "/".join(f"{i},{w}" if w != 1 else str(i) for i, w in nexthop.members)


def nexthop_text(nexthop: NexthopObject | NexthopGroup) -> str:
    """A nexthop object or group on one line as ``ip nexthop show`` prints it
    (``id 1 via 192.0.2.1 dev v0``, ``id 10 group 1/3,2``), in the words
    ``nexthop replace`` reads; an IPv6 nexthop is marked ``-6``."""
    from ..nexthop import NexthopGroup
    from .batchfile import protocol_name

    words = [f"id {nexthop.id}"]
    if isinstance(nexthop, NexthopGroup):
        words.append(f"group {_members(nexthop)}")
        if nexthop.resilient:
            words.append("type resilient")
    else:
        if nexthop.family == AF_INET6:
            words.insert(0, "-6")
        if nexthop.gateway is not None:
            words.append(f"via {nexthop.gateway}")
        if nexthop.device:
            words.append(f"dev {nexthop.device}")
        if nexthop.blackhole:
            words.append("blackhole")
    if nexthop.protocol:
        words.append(f"proto {protocol_name(nexthop.protocol)}")
    if not isinstance(nexthop, NexthopGroup) and nexthop.onlink:
        words.append("onlink")
    if nexthop.fdb:
        words.append("fdb")
    return " ".join(words)


def nexthop_json(nexthop: NexthopObject | NexthopGroup) -> dict[str, Any]:
    """A nexthop object or group in the shape of one ``ip -json nexthop show`` object
    (``blackhole`` and ``fdb`` are ``null`` when set, as ``ip`` prints them), plus
    ``family`` for a single nexthop."""
    from ..nexthop import NexthopGroup
    from .batchfile import protocol_name

    data: dict[str, Any] = {"id": nexthop.id}
    if isinstance(nexthop, NexthopGroup):
        data["group"] = [
            {"id": member} if weight == 1 else {"id": member, "weight": weight}
            for member, weight in nexthop.members
        ]
        if nexthop.resilient:
            data["type"] = "resilient"
    else:
        data["family"] = "inet6" if nexthop.family == AF_INET6 else "inet"
        if nexthop.gateway is not None:
            data["gateway"] = str(nexthop.gateway)
        if nexthop.device:
            data["dev"] = nexthop.device
        if nexthop.blackhole:
            data["blackhole"] = None
    if nexthop.protocol:
        data["protocol"] = protocol_name(nexthop.protocol)
    if nexthop.fdb:
        data["fdb"] = None
    data["flags"] = ["onlink"] if not isinstance(nexthop, NexthopGroup) and nexthop.onlink else []
    return data
