"""iproute2's names and defaults: how ``ip`` reads and prints tables, protocols, scopes
and route types (its built-in names and those under /etc/iproute2), numbers
(``strtoul``), and which table and scope it gives a route when the command says none.

One place for what :meth:`Route.to_ip_command` and the command line (the batch parser,
the listings) must agree on.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence

from ._values import U32_MAX
from .constants import AF_INET6, RT_SCOPE, RT_TABLE, RTM, RTN

__all__ = [
    "LOCAL_TABLE_TYPES",
    "ParseError",
    "default_scope",
    "default_table",
    "ip_protocol_number",
    "matches",
    "protocol_name",
    "protocol_number",
    "scope_name",
    "scope_number",
    "strtoul",
    "table_name",
    "table_number",
    "type_name",
    "type_number",
]


class ParseError(ValueError):
    """A command that cannot be turned into a request; the message says why."""


# ------------------------------------------------------------------ ip's little helpers


def matches(word: str, keyword: str) -> bool:
    """iproute2's ``matches()``: ``word`` is a non-empty prefix of ``keyword``."""
    return bool(word) and keyword.startswith(word)


def strtoul(text: str, what: str, maximum: int = U32_MAX) -> int:
    """A number as iproute2's ``get_unsigned(…, 0)`` reads it: C ``strtoul`` with base 0
    (``0x…`` hex, ``0…`` octal, else decimal), at most ``maximum``."""
    digits, base = text, 10
    if text[:2] in ("0x", "0X"):
        digits, base = text[2:], 16
    elif len(text) > 1 and text[0] == "0":
        digits, base = text[1:], 8
    if not digits or not digits.isascii() or not digits.isalnum():
        raise ParseError(f'invalid {what} "{text}"')
    try:
        value = int(digits, base)
    except ValueError:
        raise ParseError(f'invalid {what} "{text}"') from None
    if value > maximum:
        raise ParseError(f'invalid {what} "{text}" (at most {maximum})')
    return value


# iproute2's built-in names (lib/rt_names.c); files under /etc/iproute2 add more.
_BUILTIN_TABLES = {"unspec": 0, "default": 253, "main": 254, "local": 255}
_BUILTIN_PROTOCOLS = {
    "unspec": 0,
    "redirect": 1,
    "kernel": 2,
    "boot": 3,
    "static": 4,
    "gated": 8,
    "ra": 9,
    "mrt": 10,
    "zebra": 11,
    "bird": 12,
    "dnrouted": 13,
    "xorp": 14,
    "ntk": 15,
    "dhcp": 16,
    "keepalived": 18,
    "babel": 42,
    "openr": 99,
    "bgp": 186,
    "isis": 187,
    "ospf": 188,
    "rip": 189,
    "eigrp": 192,
}
_BUILTIN_SCOPES = {
    "global": 0,
    "universe": 0,
    "site": 200,
    "link": 253,
    "host": 254,
    "nowhere": 255,
}
_TYPE_NAMES: dict[int, str] = {
    RTN.UNSPEC: "unspec",
    RTN.UNICAST: "unicast",
    RTN.LOCAL: "local",
    RTN.BROADCAST: "broadcast",
    RTN.ANYCAST: "anycast",
    RTN.MULTICAST: "multicast",
    RTN.BLACKHOLE: "blackhole",
    RTN.UNREACHABLE: "unreachable",
    RTN.PROHIBIT: "prohibit",
    RTN.THROW: "throw",
    RTN.NAT: "nat",
    RTN.XRESOLVE: "xresolve",
}
_CONFIG_DIRS = ("/etc/iproute2", "/usr/share/iproute2", "/usr/lib/iproute2")
_name_cache: dict[str, dict[str, int]] = {}


def _read_names(filename: str, builtin: Mapping[str, int], maximum: int) -> dict[str, int]:
    """``name → number`` from iproute2's config files (``NUMBER NAME`` lines), over the
    built-in names; read once per process."""
    cached = _name_cache.get(filename)
    if cached is not None:
        return cached
    names = dict(builtin)
    paths = []
    for directory in _CONFIG_DIRS:
        paths.append(os.path.join(directory, filename))
        extra = os.path.join(directory, f"{filename}.d")
        if os.path.isdir(extra):
            paths += sorted(
                os.path.join(extra, name) for name in os.listdir(extra) if name.endswith(".conf")
            )
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                lines = file.read().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2:
                try:
                    number = strtoul(fields[0], filename, maximum)
                except ParseError:
                    continue
                names.setdefault(fields[1], number)
    _name_cache[filename] = names
    return names


def _number_or_name(
    text: str, builtin: Mapping[str, int], filename: str, what: str, maximum: int
) -> int:
    """``text`` as a built-in name, a name from iproute2's ``filename``, or a number."""
    known = builtin.get(text)
    if known is not None:
        return known
    names = _read_names(filename, builtin, maximum)
    if text in names:
        return names[text]
    return strtoul(text, what, maximum)


def table_number(text: str) -> int:
    """A routing table id from ``main``, ``local``, ``default``, a name in
    ``rt_tables``, or a number."""
    return _number_or_name(text, _BUILTIN_TABLES, "rt_tables", "table id", U32_MAX)


def protocol_number(text: str) -> int:
    """A route protocol from its name (``boot``, ``static``, ``kernel``, ``bgp`` …,
    ``rt_protos``) or a number 0..255."""
    return _number_or_name(text, _BUILTIN_PROTOCOLS, "rt_protos", "protocol", 255)


def scope_number(text: str) -> int:
    """A route scope from its name (``global``, ``link``, ``host`` …, ``rt_scopes``) or
    a number 0..255."""
    return _number_or_name(text, _BUILTIN_SCOPES, "rt_scopes", "scope", 255)


def type_number(text: str) -> int | None:
    """A route type as ``rtnl_rtntype_a2n()`` reads it, or None if ``text`` is none."""
    if text in ("local", "nat", "throw"):
        return int({"local": RTN.LOCAL, "nat": RTN.NAT, "throw": RTN.THROW}[text])
    if text == "brd" or matches(text, "broadcast"):
        return int(RTN.BROADCAST)
    for kind in ("anycast", "multicast", "prohibit", "unreachable", "blackhole", "xresolve"):
        if matches(text, kind):
            return int(RTN[kind.upper()])
    if matches(text, "unicast"):
        return int(RTN.UNICAST)
    try:
        return strtoul(text, "type", 255)
    except ParseError:
        return None


def _reverse(names: Mapping[str, int], number: int, preferred: Sequence[str] = ()) -> str:
    for name in preferred:
        if names.get(name) == number:
            return name
    for name, value in names.items():
        if value == number:
            return name
    return str(number)


def table_name(number: int) -> str:
    """``main``, ``local``, ``default`` or the number (iproute2's spelling)."""
    if number in (253, 254, 255):
        return {253: "default", 254: "main", 255: "local"}[number]
    return str(number)


def protocol_name(number: int) -> str:
    """iproute2's name of a route protocol, or the number."""
    return _reverse(_BUILTIN_PROTOCOLS, number)


def ip_protocol_number(text: str) -> int:
    """An IP protocol from its name (``tcp``) or number, as ``ip rule … ipproto`` reads
    it."""
    if text[:1].isdigit():
        return strtoul(text, "ipproto", 255)
    try:
        return socket.getprotobyname(text)
    except OSError:
        raise ParseError(f'invalid ipproto "{text}"') from None


def scope_name(number: int) -> str:
    """iproute2's name of a scope (``global`` for 0), or the number."""
    return _reverse(_BUILTIN_SCOPES, number, ("global",))


def type_name(number: int) -> str:
    """iproute2's name of a route type, or the number."""
    return _TYPE_NAMES.get(number, str(number))


# ------------------------------------------------------------------ addresses


LOCAL_TABLE_TYPES = frozenset((RTN.LOCAL, RTN.BROADCAST, RTN.NAT, RTN.ANYCAST))


def default_table(rtype: int) -> int:
    """The table ``ip route`` puts a route of type ``rtype`` in when none is given."""
    return RT_TABLE.LOCAL if rtype in LOCAL_TABLE_TYPES else RT_TABLE.MAIN


def default_scope(msg_type: int, family: int, rtype: int, gateway: bool) -> int:
    """The scope ``iproute_modify()`` sends when the command gives none; ``gateway``:
    the route has a gateway, ``nexthop``s or an ``nhid`` (``gw_ok || nhs_ok || nhid``)."""
    if family == AF_INET6:
        return RT_SCOPE.UNIVERSE
    if rtype in (RTN.LOCAL, RTN.NAT):
        return RT_SCOPE.HOST
    if rtype in (RTN.BROADCAST, RTN.MULTICAST, RTN.ANYCAST):
        return RT_SCOPE.LINK
    if rtype in (RTN.UNICAST, RTN.UNSPEC):
        if msg_type == RTM.DELROUTE:
            return RT_SCOPE.NOWHERE
        if not gateway:
            return RT_SCOPE.LINK
        return RT_SCOPE.UNIVERSE
    return RT_SCOPE.NOWHERE if msg_type == RTM.DELROUTE else RT_SCOPE.UNIVERSE
