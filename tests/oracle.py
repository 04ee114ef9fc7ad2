"""Kernel-state oracle: what ``ip -json`` says is in a network namespace.

Tests compare what asyncroute did against this module's view of the kernel.  It never
imports asyncroute (not even :mod:`asyncroute.testing`) so that it cannot share a bug
with the code under test; namespaces are named by string.  Each function makes exactly
one ``ip`` call, so reading a table of 20,000+ routes stays one dump and one JSON parse.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

__all__ = ["links", "route_dsts", "routes", "rules"]


def _family_flag(family: int) -> str:
    if family not in (4, 6):
        raise ValueError(f"family must be 4 or 6, not {family!r}")
    return f"-{family}"


def _ip_json(ns_name: str, *args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        ["ip", "-n", ns_name, "-json", *args], check=True, capture_output=True, text=True
    )
    if not proc.stdout.strip():
        return []
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def routes(ns_name: str, *, table: int | str = "main", family: int = 4) -> list[dict[str, Any]]:
    """The routes of one table, as ``ip -n NS -4|-6 -json route show table T`` lists them.

    A table that does not exist is empty.  (IPv4 reports a table that has never held a
    route as an error, "ipv4: FIB table does not exist", with ``[`` on stdout and exit
    status 2; IPv6 prints ``[]``.)
    """
    try:
        return _ip_json(ns_name, _family_flag(family), "route", "show", "table", str(table))
    except subprocess.CalledProcessError as exc:
        if "FIB table does not exist" in (exc.stderr or ""):
            return []
        exc.add_note(f"stderr: {(exc.stderr or '').strip()}")
        raise


def rules(ns_name: str, family: int = 4) -> list[dict[str, Any]]:
    """The policy routing rules, as ``ip -n NS -4|-6 -json rule show`` lists them."""
    return _ip_json(ns_name, _family_flag(family), "rule", "show")


def route_dsts(ns_name: str, *, table: int | str = "main", family: int = 4) -> set[str]:
    """The set of destinations in one table, each as ``address/prefixlen``.

    ``ip`` prints a host route without its prefix length ("198.18.0.1",
    "2001:db8::5"); here it becomes "198.18.0.1/32" or "2001:db8::5/128".  The default
    route stays "default", as ``ip`` prints it.  Routes that differ only in other
    fields (metric, tos, type, device) collapse into one entry; use :func:`routes` to
    see them apart.
    """
    host_len = "/32" if family == 4 else "/128"
    dsts: set[str] = set()
    for route in routes(ns_name, table=table, family=family):
        dst: str = route["dst"]
        if dst != "default" and "/" not in dst:
            dst += host_len
        dsts.add(dst)
    return dsts


def links(ns_name: str) -> list[dict[str, Any]]:
    """The links, as ``ip -n NS -json link show`` lists them."""
    return _ip_json(ns_name, "link", "show")
