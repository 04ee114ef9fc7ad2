"""Multipath: an ECMP route with weights, then nexthop objects and a group shared by
many routes, re-pointed all at once by replacing the group.

Shows ``Route(..., nexthops=[Nexthop(gateway, device, weight=W), ...])`` (RTA_MULTIPATH),
``NexthopObject``/``NexthopGroup`` with ``conn.replace_nexthop``, routes using a group by
``Route(..., nexthop_id=N)``, and one ``replace_nexthop`` moving every such route to a
new gateway (checked with the kernel's own routing decision, ``ip route get``).  Run as
root, with the name of a network namespace that has veth ``v0`` up with 192.0.2.2/24 (the
layout ``asyncroute.testing``'s ``netns`` fixture makes); without an argument it makes a
throwaway one::

    python examples/multipath_nexthops.py NETNS
"""

import json
import subprocess
import sys

import anyio

import asyncroute
from asyncroute import Nexthop, NexthopGroup, NexthopObject, Route
from asyncroute.netns import namespace

HOPS = [Nexthop("192.0.2.1", "v0", weight=3), Nexthop("192.0.2.5", "v0")]  # 3:1 of the flows
ECMP = Route("203.0.113.0/24", nexthops=HOPS, table=100)
# Four routes in the main table, all through nexthop group 10.
SHARED = [Route(f"198.51.100.{64 * i}/26", nexthop_id=10) for i in range(4)]


def gateways(netns: str) -> set[str]:
    """Where the kernel sends a packet to each SHARED route (``ip route get``)."""
    found = set()
    for route in SHARED:
        dst = str(route.prefix.network_address + 7)
        out = subprocess.run(["ip", "-n", netns, "-json", "route", "get", dst],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        found.add(json.loads(out)[0]["gateway"])
    return found


async def main(netns: str) -> None:
    async with asyncroute.connect(netns) as conn:
        # 1. ECMP in the route itself: the hops are part of this one route.
        await conn.upsert(ECMP)
        found = await conn.lookup(ECMP)
        hops = ", ".join(f"{h.gateway} weight {h.weight}" for h in found.nexthops)
        print(f"ECMP {found.prefix} table {found.table_id}: {hops}")

        # 2. Nexthop objects: the hops live apart from the routes, which name them by id.
        for nh in (NexthopObject(1, gateway="192.0.2.1", device="v0"),
                   NexthopObject(2, gateway="192.0.2.5", device="v0"),
                   NexthopObject(3, gateway="192.0.2.6", device="v0"),
                   NexthopGroup(10, [(1, 3), (2, 1)])):  # fmt: skip
            await conn.replace_nexthop(nh)
        assert await conn.upsert_many(SHARED) == [True] * len(SHARED)
        group = await conn.get_nexthop(10)
        members = ", ".join(f"nexthop {id} weight {weight}" for id, weight in group.members)
        print(f"group 10: {members}; used by {len(SHARED)} routes")

        # 3. Re-point every route at once: one request replaces the group's members.
        print("each via 192.0.2.1 or 192.0.2.5:", gateways(netns) <= {"192.0.2.1", "192.0.2.5"})
        await conn.replace_nexthop(NexthopGroup(10, [3]))
        print(f"after one replace_nexthop, all {len(SHARED)} via", *gateways(netns))

        await conn.delete_many([ECMP, *SHARED])
        for nh_id in (10, 1, 2, 3):
            await conn.delete_nexthop(nh_id)
        print("left in table 100:", [r async for r in conn.list_routes(table=100)], end=", ")
        print("nexthop objects left:", [n async for n in conn.list_nexthops()])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        anyio.run(main, sys.argv[1])
    else:  # a throwaway namespace: veth v0/v1, 192.0.2.2/24 on v0; always deleted
        with namespace("asyncroute-example") as ns:
            anyio.run(main, ns.name)
