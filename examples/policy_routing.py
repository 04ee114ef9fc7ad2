"""Policy routing: send fwmark-ed traffic to table 100, which has its own default route.

Shows ``Rule(priority=..., mark=..., mask=..., table=...)``, ``conn.replace_rule`` and
``replace_rule_ipv6`` (idempotent: the kernel has no rule replace, so asyncroute adds a
rule only if none matches), ``conn.list_rules``, the routing decision the kernel then
makes for marked and unmarked packets (``ip route get``), and the clean-up.  Run as root,
with the name of a network namespace that has veth ``v0`` up with 192.0.2.2/24 and
2001:db8::2/64 (the layout ``asyncroute.testing``'s ``netns`` fixture makes); without an
argument it makes a throwaway one::

    python examples/policy_routing.py NETNS
"""

import json
import subprocess
import sys

import anyio

import asyncroute
from asyncroute import AF_INET, AF_INET6, Route, Rule
from asyncroute.netns import namespace

RULE = Rule(priority=100, mark=0x100, mask=0xFF00, table=100)  # mark & 0xff00 == 0x100
DEFAULTS = [
    Route("0.0.0.0/0", nexthop="192.0.2.1", device="v0", table=100),
    Route("::/0", nexthop="2001:db8::1", device="v0", table=100),
]


def route_get(netns: str, dst: str, *mark: str) -> str:
    """The kernel's routing decision for a packet to ``dst`` (``ip route get``)."""
    proc = subprocess.run(["ip", "-n", netns, "-json", "route", "get", dst, *mark],
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        return "unreachable"
    (found,) = json.loads(proc.stdout)
    return f"via {found['gateway']} dev {found['dev']} table {found.get('table', 'main')}"


async def main(netns: str) -> None:
    async with asyncroute.connect(netns) as conn:
        assert await conn.upsert_many(DEFAULTS) == [True, True]
        for _ in range(2):  # the second round finds the rules and adds nothing
            await conn.replace_rule(RULE)
            await conn.replace_rule_ipv6(RULE)
        for family, name in ((AF_INET, "IPv4"), (AF_INET6, "IPv6")):
            async for rule in conn.list_rules(family, Rule(table=100)):
                print(f"{name} rule {rule}")

        for dst in ("203.0.113.7", "2001:db8:ff::7"):
            print(f"{dst} marked 0x1ff: {route_get(netns, dst, 'mark', '0x1ff')}")
            print(f"{dst} unmarked: {route_get(netns, dst)}")

        await conn.delete_rule(RULE)
        await conn.delete_rule_ipv6(RULE)
        await conn.delete_route_table(100)  # the defaults and the nexthop routes upsert added
        left = [r for f in (AF_INET, AF_INET6) async for r in conn.list_rules(f, RULE)]
        print(f"rules left for table 100: {len(left)}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        anyio.run(main, sys.argv[1])
    else:  # a throwaway namespace: veth v0/v1 with addresses on v0; always deleted
        with namespace("asyncroute-example") as ns:
            anyio.run(main, ns.name)
