"""Rules made with ``ip``, listed with ``asyncroute rule list --json`` and applied with
``asyncroute apply`` into a fresh namespace, come out as the same kernel rules.

The listing must never turn a rule into a different, broader one: ``iif v0 lookup 100``
listed as ``from all lookup 100`` and applied would steer all traffic into table 100.
The kernel is the oracle: ``ip -d -j rule show`` (protocol included) of both namespaces,
both families, must be equal.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from asyncroute.testing import Namespace
from tests.cli.conftest import run_cli

pytestmark = pytest.mark.kernel

#: ``ip rule add`` arguments: every selector and action, IPv4 and IPv6, several tables.
RULE_SHAPES_V4 = [
    "pref 100 iif v0 lookup 100",
    "pref 101 oif v1 lookup 101",
    "pref 102 from 198.51.100.0/24 to 203.0.113.0/24 tos 0x10 lookup 102",
    "pref 103 not fwmark 0x10/0xff lookup 103",
    "pref 104 ipproto tcp sport 1000-2000 dport 53 lookup 104",
    "pref 105 uidrange 1000-2000 lookup 105",
    "pref 106 lookup main suppress_prefixlength 0",
    "pref 107 lookup main suppress_ifgroup 5",
    "pref 108 goto 110",
    "pref 109 nop",
    "pref 110 blackhole",
    "pref 111 unreachable",
    "pref 112 prohibit",
    "pref 113 realms 5/6 lookup 113",
    "pref 114 tun_id 77 lookup 114",
    "pref 115 protocol static fwmark 0x5 lookup 115",
    "pref 116 l3mdev",
    "pref 117 from 198.51.100.0/25 lookup 117",
    "pref 118 iif lo oif v0 lookup 118",
    "pref 119 ipproto udp dport 1000-1010 lookup 1000",
    "pref 120 fwmark 0x20 lookup 70000",
    "pref 121 iif nosuchdev0 lookup 121",  # a device that does not exist: [detached]
    "pref 122 goto 9999",  # a goto target that does not exist: [unresolved]
    "pref 123 sport 22 lookup 123",
]
RULE_SHAPES_V6 = [
    "pref 200 from 2001:db8::/32 iif v0 lookup 200",
    "pref 201 to 2001:db8:1::/48 tos 0x20 lookup 201",
    "pref 202 ipproto ipv6-icmp lookup 202",
    "pref 203 fwmark 0x1/0x1 suppress_prefixlength 64 lookup main",
    "pref 204 unreachable",
]


def _ip_rules(ns: Namespace, family: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ns.ip_json(family, "-d", "rule", "show")
    return result


def test_rules_round_trip_through_list_json_and_apply(
    netns: Namespace, netns2: Namespace, tmp_path: Any
) -> None:
    assert len(RULE_SHAPES_V4) + len(RULE_SHAPES_V6) >= 25
    for family, shapes in (("-4", RULE_SHAPES_V4), ("-6", RULE_SHAPES_V6)):
        for shape in shapes:
            netns.ip(family, "rule", "add", *shape.split())
    listed = run_cli("rule", "list", "--json", "--netns", netns.name)
    assert listed.returncode == 0, listed.stderr
    path = tmp_path / "rules.json"
    path.write_text(listed.stdout)
    applied = run_cli("apply", str(path), "--netns", netns2.name)
    assert applied.returncode == 0, applied.stderr
    for family in ("-4", "-6"):
        assert _ip_rules(netns2, family) == _ip_rules(netns, family)
    # The text listing is ip's, line for line (ip separates the priority with a tab).
    text = run_cli("rule", "list", "-4", "--netns", netns.name).stdout.splitlines()
    shown = subprocess.run(
        ["ip", "-n", netns.name, "-4", "rule", "show"], capture_output=True, text=True, check=True
    ).stdout
    assert text == [line.replace(":\t", ": ", 1).rstrip() for line in shown.splitlines()]
