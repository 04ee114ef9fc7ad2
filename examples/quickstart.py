"""Quickstart: install a route, look it up, delete it (asyncio).

Shows ``asyncroute.connect(netns)``, ``conn.upsert``, ``conn.lookup`` and ``conn.delete``
on one route via a gateway.  Run as root, with the name of a network namespace that
has veth ``v0`` up with 192.0.2.2/24 (the layout ``asyncroute.testing``'s ``netns``
fixture makes); without an argument it makes a throwaway one and deletes it after::

    python examples/quickstart.py NETNS
"""

import sys

import anyio

import asyncroute
from asyncroute import NotFoundError, Route
from asyncroute.netns import namespace

ROUTE = Route("198.51.100.0/24", nexthop="192.0.2.1", device="v0")


async def main(netns: str) -> None:
    async with asyncroute.connect(netns) as conn:
        # Installs "192.0.2.1 dev v0 scope link" first, then replaces the prefix route.
        await conn.upsert(ROUTE)

        # lookup() returns the installed route with every field the kernel filled in.
        found = await conn.lookup(ROUTE)
        print(f"installed {found.prefix} via {found.nexthop} dev {found.device}", end=" ")
        print(f"table {found.table_id} proto {found.proto}")

        await conn.delete(ROUTE)
        try:
            await conn.lookup(ROUTE)
        except NotFoundError:
            print(f"deleted {ROUTE.prefix}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        anyio.run(main, sys.argv[1])
    else:  # a throwaway namespace: veth v0/v1, 192.0.2.2/24 on v0; always deleted
        with namespace("asyncroute-example") as ns:
            anyio.run(main, ns.name)
