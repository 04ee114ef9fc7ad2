"""A reconciling agent: keep a desired set of routes installed whatever else happens.

The agent owns table 100.  It installs what is missing, then watches the event stream
(``conn.subscribe()``): when routes leave the table (one, or all at once by a flush) it
lets the burst end, re-lists the table and puts back what is missing in one
``upsert_many``; after a ``Resync`` (notifications were lost) it does the same.  The
"something else" here is ``ip``, run by the program: it deletes one route, then flushes
the table; the program stops after the second repair.  Run as root, with the name of a
network namespace that has veth ``v0`` up with 192.0.2.2/24 (what
``asyncroute.testing``'s ``netns`` fixture makes); without one it makes its own::

    python examples/reconcile_agent.py NETNS
"""

import sys

import anyio

import asyncroute
from asyncroute import AF_INET, RTPROT, Resync, Route, RouteRemoved
from asyncroute.netns import namespace

TABLE = 100
# proto=static marks the routes as ours.  Listings read type 1 (unicast): .replace(type=0).
OURS = dict(nexthop="192.0.2.1", device="v0", table=TABLE, proto=RTPROT.STATIC)
DESIRED = {Route(f"203.0.113.{16 * i}/28", **OURS) for i in range(4)}
QUIET = 0.2  # a burst of removals (a flush) is over after this long without an event


async def reconcile(conn: asyncroute.Connection) -> int:
    """Install whatever is missing; return how many routes were put back."""
    listing = conn.list_routes(AF_INET, table=TABLE, protocol=RTPROT.STATIC)
    missing = list(DESIRED - {route.replace(type=0) async for route in listing})
    for route, result in zip(missing, await conn.upsert_many(missing), strict=True):
        if result is not True:  # the exception; a real agent would try again later
            print(f"could not put back {route.prefix}: {result!r}")
    return len(missing)


def removed_from_table(event: asyncroute.Event) -> bool:
    return isinstance(event, RouteRemoved) and event.route.table_id == TABLE


async def agent(conn, events, repairs) -> None:
    """Repair the table after every burst of removals, and after every Resync."""
    async for event in events:
        if not (isinstance(event, Resync) or removed_from_table(event)):
            continue
        removed = int(removed_from_table(event))
        while True:  # let the burst end: read events until QUIET passes without one
            with anyio.move_on_after(QUIET) as quiet:
                removed += removed_from_table(await anext(events))
            if quiet.cancelled_caught:
                break
        print(f"{removed} routes left table {TABLE}; put back {await reconcile(conn)}")
        await repairs.send(None)


async def main(netns: str) -> None:
    async with asyncroute.connect(netns) as conn, conn.subscribe(rules=False) as events:
        print(f"installed {await reconcile(conn)} routes in table {TABLE}")
        repairs, repaired = anyio.create_memory_object_stream[None]()
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent, conn, events, repairs)
            for change in ("del 203.0.113.32/28 table 100", "flush table 100"):
                print(f"ip route {change}")
                await anyio.run_process(["ip", "-n", netns, "route", *change.split()])
                await repaired.receive()  # wait for the agent's repair
            tg.cancel_scope.cancel()  # a real agent runs until it is stopped
        present = {route.replace(type=0) async for route in conn.list_routes(table=TABLE)}
        print(f"table {TABLE}: {len(DESIRED & present)} of {len(DESIRED)} routes present")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        anyio.run(main, sys.argv[1])
    else:  # a throwaway namespace: veth v0/v1, 192.0.2.2/24 on v0; always deleted
        with namespace("asyncroute-example") as ns:
            anyio.run(main, ns.name)
