"""Quickstart under trio: install routes, look them up, delete them.

The same calls as ``quickstart.py`` (asyncio), run by ``trio.run``: asyncroute is built
on anyio, so one code base serves both.  Here a trio nursery upserts three routes at
once on one connection (any number of tasks may share it).  Run as root, with the name
of a network namespace that has veth ``v0`` up with 192.0.2.2/24 (the layout
``asyncroute.testing``'s ``netns`` fixture makes); without an argument it makes a
throwaway one and deletes it after::

    python examples/quickstart_trio.py NETNS
"""

import sys

import trio

import asyncroute
from asyncroute import NotFoundError, Route
from asyncroute.netns import namespace

ROUTES = [Route(f"198.51.100.{64 * i}/26", nexthop="192.0.2.1", device="v0") for i in range(3)]


async def main(netns: str) -> None:
    async with asyncroute.connect(netns) as conn:
        async with trio.open_nursery() as nursery:
            for route in ROUTES:
                nursery.start_soon(conn.upsert, route)

        for route in ROUTES:
            found = await conn.lookup(route)
            print(f"installed {found.prefix} via {found.nexthop} dev {found.device}")

        for route in ROUTES:
            await conn.delete(route)
        try:
            await conn.lookup(ROUTES[0])
        except NotFoundError:
            print(f"deleted {len(ROUTES)} routes")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        trio.run(main, sys.argv[1])
    else:  # a throwaway namespace: veth v0/v1, 192.0.2.2/24 on v0; always deleted
        with namespace("asyncroute-example") as ns:
            trio.run(main, ns.name)
