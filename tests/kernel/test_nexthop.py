"""Kernel tests of nexthop objects (issue 6 item 3): :mod:`asyncroute.nexthop`.

Each test runs in a fresh namespace from the ``netns`` fixture (veth ``v0``/``v1`` up,
``192.0.2.2/24`` and ``2001:db8::2/64`` on ``v0`` only).  Gateways ``192.0.2.1``,
``.3``, ``.4`` and ``2001:db8::1``, ``::3`` are on v0's subnet and held by no interface;
``198.51.100.1`` is off-subnet (usable with ``onlink`` only).  What the kernel holds is
read with ``ip -json`` and compared with what asyncroute wrote, fetched and listed.

Bytes against iproute2: :func:`test_requests_match_iproute2` runs ``ip nexthop`` under
strace, then the same operations through asyncroute (a real connection in a Python
subprocess) under strace, and compares the RTM_NEWNEXTHOP/RTM_DELNEXTHOP frames.  ``ip``
writes attributes in command-line order, so ``via GW dev DEV`` gives NHA_GATEWAY before
NHA_OIF; asyncroute writes NHA_OIF first, as the kernel's own replies do
(``nh_fill_node``) and as ``ip`` does for ``dev DEV via GW`` — both argv orders are
captured and asyncroute's bytes equal the latter exactly.

Kernel facts asserted here (6.18; ``net/ipv4/nexthop.c``):

* Deleting a nexthop removes it from its groups (RTM_NEWNEXTHOP for each shrunk group),
  deletes groups left empty (RTM_DELNEXTHOP) and deletes the routes that used it or an
  emptied group directly — with no RTM_DELROUTE: ``ip monitor route nexthop`` shows::

      Deleted id 1 via 192.0.2.1 dev v0 scope link
      Deleted id 11 group 1
      id 10 group 2

  and nothing for the routes 203.0.113.0/24 (nhid 1) and 198.18.0.0/24 (nhid 11) that
  vanished.  Deleting a group in use drops its routes just as silently.
* Replacing a nexthop that a group and routes use changes them in place (the routes
  report the new gateway) and announces each such route again (RTM_NEWROUTE), IPv4 and
  IPv6, directly or through a group.
* IPv4 routes may use IPv6 nexthops; IPv6 routes refuse IPv4 ones (so a device-only
  nexthop, AF_INET by default as with ``ip``, needs AF_INET6 for IPv6 routes).  IPv4
  takes a local address as gateway, IPv6 does not.
* Requests must carry nh_scope 0 and no state flags.
* A blackhole cannot be one of several members; a nexthop cannot be replaced by a group
  nor the reverse; a multipath group cannot become resilient; a resilient group cannot be
  created without a bucket count but its members can be replaced without one.
* Weights above 256 (``weight_high``, Linux 6.12) are kept; 65535 is the maximum.

Private attribute used: ``conn._sock`` (through ``tests.kernel.guard``).  Routes are
only programmed; no packet is ever sent.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncroute import Connection, KernelError, NotFoundError
from asyncroute.constants import AF_INET, AF_INET6, NLM_F, RT_SCOPE, RTM, RTN, RTPROT
from asyncroute.messages import Message, NexthopMessage, RouteMessage
from asyncroute.nexthop import (
    NexthopGroup,
    NexthopObject,
    delete_nexthop,
    get_nexthop,
    list_nexthops,
    replace_nexthop,
)
from asyncroute.testing import Namespace
from tests.kernel.guard import connect_in

pytestmark = pytest.mark.kernel

TABLE = 100
REPO = Path(__file__).resolve().parents[2]
NEXTHOP_TYPES = (int(RTM.NEWNEXTHOP), int(RTM.DELNEXTHOP))
Value = NexthopObject | NexthopGroup

# --------------------------------------------------------------------------- helpers


def ip_nexthops(ns: Namespace, *args: str) -> list[dict[str, Any]]:
    """``ip -N -json nexthop show ARGS`` (-N: protocols as numbers)."""
    out = ns.ip("-N", "-json", "nexthop", "show", *args).stdout
    return [] if not out.strip() else json.loads(out)


def from_ip(ns: Namespace) -> set[Value]:
    """Every nexthop in ``ns`` as ``ip`` reports it, as asyncroute values.

    ``ip -json`` does not print the family; ``ip -4``/``ip -6`` ask the kernel for one
    family (groups have none and are left out of both).
    """
    families = {e["id"]: AF_INET for e in ns.ip_json("-4", "nexthop", "show")}
    families.update({e["id"]: AF_INET6 for e in ns.ip_json("-6", "nexthop", "show")})
    values: set[Value] = set()
    for entry in ip_nexthops(ns):
        protocol = int(entry.get("protocol", 0))
        if "group" in entry:
            members = [(m["id"], m.get("weight", 1)) for m in entry["group"]]
            values.add(
                NexthopGroup(
                    entry["id"],
                    members,
                    protocol=protocol,
                    fdb="fdb" in entry,
                    resilient=entry.get("type") == "resilient",
                )
            )
        else:
            values.add(
                NexthopObject(
                    entry["id"],
                    entry.get("gateway"),
                    entry.get("dev", ""),
                    blackhole="blackhole" in entry,
                    onlink="onlink" in entry.get("flags", []),
                    protocol=protocol,
                    family=families[entry["id"]],
                    fdb="fdb" in entry,
                )
            )
    return values


def routes(ns: Namespace, family: int = 4) -> dict[str, dict[str, Any]]:
    """dst → entry of the routes in TABLE, per ``ip -json``."""
    return {e["dst"]: e for e in ns.ip_json(f"-{family}", "route", "show", "table", str(TABLE))}


def gateways(entry: dict[str, Any]) -> set[str]:
    """The gateways a route reports: its multipath hops', or its own."""
    if "nexthops" in entry:
        return {hop["gateway"] for hop in entry["nexthops"]}
    return {entry["gateway"]}


async def add_route_via_id(conn: Connection, prefix: str, nexthop_id: int) -> None:
    """``ip route replace PREFIX nhid ID table TABLE``, sent by asyncroute."""
    address, length = prefix.split("/")
    family = AF_INET6 if ":" in address else AF_INET
    body = RouteMessage(
        family=family,
        dst_len=int(length),
        table=TABLE,
        protocol=RTPROT.BOOT,
        scope=RT_SCOPE.UNIVERSE,
        type=RTN.UNICAST,
        dst=ip_address(address),
        nexthop_id=nexthop_id,
    )
    await conn.request(Message(RTM.NEWROUTE, NLM_F.CREATE | NLM_F.REPLACE, body))


async def listed(conn: Connection, **filters: Any) -> list[Value]:
    return [value async for value in list_nexthops(conn, **filters)]


# --------------------------------------------------------------------------- strace

_DUMP_LINE = re.compile(r"\| ([0-9a-f]{5})  (.{49})")


def strace_frames(ns: Namespace, argv: list[str], trace: Path) -> list[bytes]:
    """The RTM_*NEXTHOP frames ``argv`` (run inside ``ns``) sent, from strace's hex dump.

    ``-e write=all`` dumps the data of every sendmsg/sendto; each buffer starts at offset
    00000 and may hold several netlink frames, split here by ``nlmsg_len``.
    """
    command = ["ip", "netns", "exec", ns.name, "strace", "-f", "-qq", "-o", str(trace)]
    command += ["-e", "trace=sendmsg,sendto", "-e", "write=all", "-xx", *argv]
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), check=False)
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    buffers: list[bytearray] = []
    for line in trace.read_text().splitlines():
        match = _DUMP_LINE.search(line)
        if match is None:
            continue
        if int(match[1], 16) == 0:
            buffers.append(bytearray())
        buffers[-1] += bytes.fromhex(match[2].replace(" ", ""))
    frames = []
    for data in buffers:
        offset = 0
        while len(data) - offset >= 16:
            length, msg_type = struct.unpack_from("=IH", data, offset)
            if length < 16 or offset + length > len(data):
                break
            if msg_type in NEXTHOP_TYPES:
                frames.append(bytes(data[offset : offset + length]))
            offset += (length + 3) & ~3
    return frames


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _split(frame: bytes) -> tuple[int, int, int, bytes, list[tuple[int, bytes]]]:
    """(length, type, flags, nhmsg, [(nla_type, padded value)]); seq and port id left out."""
    length, msg_type, flags = struct.unpack_from("=IHH", frame)
    attributes, offset = [], 24
    while offset < len(frame):
        nla_len, nla_type = struct.unpack_from("=HH", frame, offset)
        end = offset + ((nla_len + 3) & ~3)
        attributes.append((nla_type, frame[offset + 4 : end]))
        offset = end
    return length, msg_type, flags, frame[16:24], attributes


#: ``ip`` argv (after ``ip``) and the same operation through asyncroute: a value for
#: replace_nexthop, an int for delete_nexthop.  In this order every command succeeds.
IP_CASES: list[tuple[list[str], Value | int]] = [
    (
        ["nexthop", "add", "id", "1", "via", "192.0.2.1", "dev", "v0"],
        NexthopObject(1, "192.0.2.1", "v0"),
    ),
    (["nexthop", "add", "id", "2", "blackhole"], NexthopObject(2, blackhole=True)),
    (
        ["-6", "nexthop", "add", "id", "3", "via", "2001:db8::1", "dev", "v0"],
        NexthopObject(3, "2001:db8::1", "v0"),
    ),
    (
        ["nexthop", "replace", "id", "2", "via", "192.0.2.3", "dev", "v0"],
        NexthopObject(2, "192.0.2.3", "v0"),
    ),
    (["nexthop", "add", "id", "10", "group", "1/2"], NexthopGroup(10, [1, 2])),
    (["nexthop", "add", "id", "11", "group", "1,3/2,5"], NexthopGroup(11, [(1, 3), (2, 5)])),
    (["nexthop", "del", "id", "10"], 10),
    (
        ["nexthop", "replace", "id", "1", "dev", "v0", "via", "192.0.2.1"],
        NexthopObject(1, "192.0.2.1", "v0"),
    ),
    (
        ["-6", "nexthop", "replace", "id", "3", "dev", "v0", "via", "2001:db8::1"],
        NexthopObject(3, "2001:db8::1", "v0"),
    ),
    (
        [
            "nexthop",
            "replace",
            "id",
            "6",
            "via",
            "198.51.100.1",
            "dev",
            "v0",
            "onlink",
            "proto",
            "99",
        ],
        NexthopObject(6, "198.51.100.1", "v0", onlink=True, protocol=99),
    ),
    (
        ["nexthop", "replace", "id", "7", "dev", "v0", "via", "198.51.100.1", "onlink"],
        NexthopObject(7, "198.51.100.1", "v0", onlink=True),
    ),
    (
        ["-6", "nexthop", "replace", "id", "5", "blackhole"],
        NexthopObject(5, blackhole=True, family=AF_INET6),
    ),
    (["nexthop", "replace", "id", "4", "dev", "v0"], NexthopObject(4, device="v0")),
    (
        ["nexthop", "replace", "id", "12", "group", "1,256/3", "proto", "static"],
        NexthopGroup(12, [(1, 256), 3], protocol=RTPROT.STATIC),
    ),
    (
        ["nexthop", "replace", "id", "13", "group", "4", "proto", "99"],
        NexthopGroup(13, [4], protocol=99),
    ),
]

_OURS = """
import anyio
from ipaddress import IPv4Address, IPv6Address
import asyncroute
from asyncroute.nexthop import (
    NexthopGroup, NexthopObject, delete_nexthop, replace_nexthop
)

async def main():
    async with asyncroute.connect({ns!r}) as conn:
{calls}

anyio.run(main)
"""


def _via_before_dev(argv: list[str]) -> bool:
    return "via" in argv and "dev" in argv and argv.index("via") < argv.index("dev")


def test_requests_match_iproute2(netns: Namespace, tmp_path: Path) -> None:
    """asyncroute sends what ``ip nexthop`` sends, captured the same way (strace)."""
    assert shutil.which("strace"), "strace is needed (it is installed here and in CI)"
    theirs = []
    for argv, _ in IP_CASES:
        frames = strace_frames(netns, ["ip", *argv], tmp_path / "ip.trace")
        assert len(frames) == 1, argv
        theirs.append(frames[0])
    state_after_ip = from_ip(netns)
    netns.ip("nexthop", "flush")
    assert from_ip(netns) == set()

    calls = []
    for _, op in IP_CASES:
        if isinstance(op, int):
            calls.append(f"await delete_nexthop(conn, {op})")
        else:
            calls.append(f"await replace_nexthop(conn, {op!r})")
    script = tmp_path / "ours.py"
    body = textwrap.indent("\n".join(calls), " " * 8)
    script.write_text(_OURS.format(ns=netns.name, calls=body))
    ours = strace_frames(netns, [sys.executable, str(script)], tmp_path / "ours.trace")
    assert len(ours) == len(theirs)
    # The kernel accepted every request of both, and ended in the same state.
    assert from_ip(netns) == state_after_ip

    exact = 0
    for (argv, _), mine, ip in zip(IP_CASES, ours, theirs, strict=True):
        length, msg_type, flags, nhmsg, attributes = _split(mine)
        ip_length, ip_type, ip_flags, ip_nhmsg, ip_attributes = _split(ip)
        assert (length, msg_type, nhmsg) == (ip_length, ip_type, ip_nhmsg), argv
        if argv[argv.index("nexthop") + 1] == "add":
            # `add` is CREATE|EXCL; replace_nexthop is an upsert: CREATE|REPLACE.
            assert ip_flags == NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL
            assert flags == NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE
        else:
            assert flags == ip_flags, argv
        if attributes == ip_attributes:
            exact += 1
            # Byte for byte but the flags (above), seq and port id.
            assert mine[:6] + mine[16:] == ip[:6] + ip[16:], argv
        else:
            # Only `via … dev …` may differ, and only in order (see the module docstring).
            assert _via_before_dev(argv), argv
            assert sorted(attributes) == sorted(ip_attributes), argv
    assert exact == sum(not _via_before_dev(argv) for argv, _ in IP_CASES)


# --------------------------------------------------------------------------- behaviour


@pytest.mark.anyio
async def test_create_get_list_like_ip(netns: Namespace) -> None:
    values: list[Value] = [
        NexthopObject(1, "192.0.2.1", "v0"),
        NexthopObject(2, "192.0.2.3", "v0", protocol=RTPROT.STATIC),
        NexthopObject(3, "2001:db8::1", "v0"),
        NexthopObject(4, device="v0"),
        NexthopObject(5, device="v1", family=AF_INET6),
        NexthopObject(6, "198.51.100.1", "v0", onlink=True, protocol=99),
        NexthopObject(7, blackhole=True),
        NexthopObject(8, blackhole=True, family=AF_INET6),
        NexthopObject(9, "192.0.2.30", fdb=True),
        NexthopGroup(10, [1, 2]),
        NexthopGroup(11, [(1, 3), (2, 5), (6, 256)], protocol=99),
        NexthopGroup(12, [1, 3]),  # IPv4 and IPv6 members in one group
        NexthopGroup(13, [7]),  # a blackhole may be a group's only member
    ]
    async with connect_in(netns) as conn:
        for value in values:
            await replace_nexthop(conn, value)
        for value in values:
            assert await get_nexthop(conn, value.id) == value
        assert await listed(conn) == sorted(values, key=lambda v: v.id)
        assert from_ip(netns) == set(values)
        # Replacing with the same value changes nothing.
        for value in values:
            await replace_nexthop(conn, value)
        assert from_ip(netns) == set(values)


@pytest.mark.anyio
async def test_list_filters_match_ip(netns: Namespace) -> None:
    async with connect_in(netns) as conn:
        for value in (
            NexthopObject(1, "192.0.2.1", "v0"),
            NexthopObject(2, "2001:db8::1", "v0"),
            NexthopObject(3, device="v1"),
            NexthopObject(4, device="v1", family=AF_INET6),
            NexthopObject(5, blackhole=True),
            NexthopGroup(10, [1, 3]),
            NexthopGroup(11, [2, 4]),
        ):
            await replace_nexthop(conn, value)

        def ids(*args: str) -> list[int]:
            return [entry["id"] for entry in ip_nexthops(netns, *args)]

        def ip_family(flag: str) -> list[int]:
            return [e["id"] for e in netns.ip_json(flag, "nexthop", "show")]

        assert [v.id for v in await listed(conn, family=AF_INET)] == ip_family("-4") == [1, 3, 5]
        assert [v.id for v in await listed(conn, family=AF_INET6)] == ip_family("-6") == [2, 4]
        assert [v.id for v in await listed(conn, device="v1")] == ids("dev", "v1") == [3, 4]
        assert [v.id for v in await listed(conn, device="v0")] == ids("dev", "v0") == [1, 2]
        assert [v.id for v in await listed(conn, groups_only=True)] == ids("groups") == [10, 11]
        with pytest.raises(NotFoundError):
            await listed(conn, device="nosuch")


class Monitor:
    """``ip monitor route nexthop`` in ``ns``, its lines collected by a thread."""

    def __init__(self, ns: Namespace) -> None:
        self.process = subprocess.Popen(
            ["ip", "-n", ns.name, "monitor", "route", "nexthop"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def seen(self, prefix: str, start: int = 0) -> int | None:
        """Index of the first line from ``start`` on that starts with ``prefix``."""
        for index in range(start, len(self.lines)):
            if self.lines[index].startswith(prefix):
                return index
        return None

    async def wait_for(self, prefix: str, start: int = 0) -> int:
        with anyio.fail_after(5):
            while (index := self.seen(prefix, start)) is None:
                await anyio.sleep(0.01)
        return index

    async def subscribed(self, conn: Connection) -> None:
        """Return once ``ip monitor`` receives events: it subscribes a moment after it
        starts, so change nexthop 90 until the change shows."""
        with anyio.fail_after(5):
            protocol = 0
            while self.seen("id 90 ") is None:
                protocol += 1
                await replace_nexthop(conn, NexthopObject(90, device="v1", protocol=protocol))
                await anyio.sleep(0.02)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(5)
        self._reader.join(5)


async def between_marks(monitor: Monitor, conn: Connection, mark: int, action: Any) -> list[str]:
    """The lines ``action()`` caused: those after a change to nexthop ``mark`` (made and
    seen first) and before a change to nexthop ``mark + 1`` (made and seen after)."""
    await replace_nexthop(conn, NexthopObject(mark, device="v1"))
    first = await monitor.wait_for(f"id {mark} ")
    await action()
    await replace_nexthop(conn, NexthopObject(mark + 1, device="v1"))
    last = await monitor.wait_for(f"id {mark + 1} ", first)
    return monitor.lines[first + 1 : last]


@pytest.mark.anyio
async def test_routes_follow_a_replaced_nexthop(netns: Namespace) -> None:
    async with connect_in(netns) as conn:
        await replace_nexthop(conn, NexthopObject(1, "192.0.2.1", "v0"))
        await replace_nexthop(conn, NexthopObject(2, "192.0.2.3", "v0"))
        await replace_nexthop(conn, NexthopObject(3, "2001:db8::1", "v0"))
        await replace_nexthop(conn, NexthopGroup(10, [1, 2]))
        await add_route_via_id(conn, "198.51.100.0/24", 10)
        await add_route_via_id(conn, "2001:db8:100::/64", 3)
        netns.ip("route", "add", "203.0.113.0/24", "nhid", "2", "table", str(TABLE))
        v4 = routes(netns)
        assert v4["198.51.100.0/24"]["nhid"] == 10
        assert gateways(v4["198.51.100.0/24"]) == {"192.0.2.1", "192.0.2.3"}
        assert gateways(v4["203.0.113.0/24"]) == {"192.0.2.3"}

        # Change the gateway of nexthop 2, a member of group 10, and of nexthop 3: the
        # group and the routes follow, and the kernel announces the routes again.
        monitor = Monitor(netns)
        try:
            await monitor.subscribed(conn)

            async def replace_both() -> None:
                await replace_nexthop(conn, NexthopObject(2, "192.0.2.4", "v0"))
                await replace_nexthop(conn, NexthopObject(3, "2001:db8::3", "v0"))

            announced = await between_marks(monitor, conn, 91, replace_both)
        finally:
            monitor.close()
        assert await get_nexthop(conn, 2) == NexthopObject(2, "192.0.2.4", "v0")
        assert await get_nexthop(conn, 10) == NexthopGroup(10, [1, 2])
        v4 = routes(netns)
        assert gateways(v4["198.51.100.0/24"]) == {"192.0.2.1", "192.0.2.4"}
        assert gateways(v4["203.0.113.0/24"]) == {"192.0.2.4"}
        v6 = routes(netns, 6)
        assert v6["2001:db8:100::/64"]["nhid"] == 3
        assert gateways(v6["2001:db8:100::/64"]) == {"2001:db8::3"}
        # Each nexthop change, then the routes that use it (in the kernel's order, which
        # is not asserted); multipath hops are continuation lines.
        heads = [line.split(" table ")[0] for line in announced if not line.startswith("nexthop")]
        second = heads.index("id 3 via 2001:db8::3 dev v0 scope link")
        assert heads[0] == "id 2 via 192.0.2.4 dev v0 scope link"
        assert sorted(heads[1:second]) == [
            "198.51.100.0/24 nhid 10",
            "203.0.113.0/24 nhid 2 via 192.0.2.4 dev v0",
        ]
        assert heads[second + 1 :] == ["2001:db8:100::/64 nhid 3 via 2001:db8::3 dev v0"]

        # A group's members can change too; its routes follow.
        await replace_nexthop(conn, NexthopGroup(10, [(2, 7)]))
        assert gateways(routes(netns)["198.51.100.0/24"]) == {"192.0.2.4"}


@pytest.mark.anyio
async def test_family_decides_which_routes_may_use_a_nexthop(netns: Namespace) -> None:
    """IPv4 routes may use IPv6 nexthops (RFC 5549); IPv6 routes refuse IPv4 ones — so
    a nexthop without a gateway (family AF_INET by default) needs AF_INET6 for both."""
    async with connect_in(netns) as conn:
        await replace_nexthop(conn, NexthopObject(4, device="v0"))
        await replace_nexthop(conn, NexthopObject(5, device="v0", family=AF_INET6))
        await replace_nexthop(conn, NexthopObject(6, "2001:db8::1", "v0"))
        await replace_nexthop(conn, NexthopGroup(10, [4, 6]))
        await add_route_via_id(conn, "198.51.100.0/25", 4)
        await add_route_via_id(conn, "198.51.100.128/25", 5)
        await add_route_via_id(conn, "203.0.113.0/24", 6)
        await add_route_via_id(conn, "198.18.0.0/24", 10)
        await add_route_via_id(conn, "2001:db8:101::/64", 5)
        for prefix, nexthop_id in (("2001:db8:100::/64", 4), ("2001:db8:102::/64", 10)):
            with pytest.raises(KernelError) as caught:
                await add_route_via_id(conn, prefix, nexthop_id)
            assert caught.value.errno == errno.EINVAL
            assert "IPv6 routes can not use an IPv4 nexthop" in (caught.value.message or "")
        assert set(routes(netns)) == {
            "198.51.100.0/25",
            "198.51.100.128/25",
            "203.0.113.0/24",
            "198.18.0.0/24",
        }
        assert set(routes(netns, 6)) == {"2001:db8:101::/64"}


@pytest.mark.anyio
async def test_delete_updates_groups_and_silently_drops_routes(netns: Namespace) -> None:
    async with connect_in(netns) as conn:
        await replace_nexthop(conn, NexthopObject(1, "192.0.2.1", "v0"))
        await replace_nexthop(conn, NexthopObject(2, "192.0.2.3", "v0"))
        await replace_nexthop(conn, NexthopGroup(10, [1, 2]))
        await replace_nexthop(conn, NexthopGroup(11, [1]))
        await add_route_via_id(conn, "198.51.100.0/24", 10)
        await add_route_via_id(conn, "198.18.0.0/24", 11)
        await add_route_via_id(conn, "203.0.113.0/24", 1)
        assert set(routes(netns)) == {"198.51.100.0/24", "198.18.0.0/24", "203.0.113.0/24"}

        monitor = Monitor(netns)
        try:
            await monitor.subscribed(conn)
            after_delete = await between_marks(monitor, conn, 91, lambda: delete_nexthop(conn, 1))
            remaining = routes(netns)
            # A group that a route uses.
            after_group = await between_marks(monitor, conn, 93, lambda: delete_nexthop(conn, 10))
        finally:
            monitor.close()

        # Group 11 held only nexthop 1 and went with it; group 10 shrank.
        with pytest.raises(NotFoundError):
            await get_nexthop(conn, 1)
        with pytest.raises(NotFoundError):
            await get_nexthop(conn, 11)
        assert await get_nexthop(conn, 2) == NexthopObject(2, "192.0.2.3", "v0")
        assert set(remaining) == {"198.51.100.0/24"}
        assert gateways(remaining["198.51.100.0/24"]) == {"192.0.2.3"}
        assert routes(netns) == {}
        # What the kernel announced: the nexthop and group deletions and the shrunk
        # group — and not one route deletion.
        assert after_delete == [
            "Deleted id 1 via 192.0.2.1 dev v0 scope link",
            "Deleted id 11 group 1",
            "id 10 group 2",
        ]
        assert after_group == ["Deleted id 10 group 2"]


@pytest.mark.anyio
async def test_kernel_refusals(netns: Namespace) -> None:
    async with connect_in(netns) as conn:
        await replace_nexthop(conn, NexthopObject(1, "192.0.2.1", "v0"))
        await replace_nexthop(conn, NexthopObject(2, blackhole=True))
        await replace_nexthop(conn, NexthopGroup(10, [1]))
        einval, enetunreach = errno.EINVAL, errno.ENETUNREACH
        refused: list[tuple[Value, int, str]] = [
            (
                NexthopObject(10, "192.0.2.3", "v0"),
                einval,
                "Can not replace a nexthop group with a nexthop",
            ),
            (NexthopGroup(1, [2]), einval, "Can not replace a nexthop with a nexthop group"),
            (NexthopGroup(11, [1, 77]), einval, "Invalid nexthop id"),
            (
                NexthopGroup(11, [1, 2]),
                einval,
                "Blackhole nexthop can not be used in a group with more than 1 path",
            ),
            (
                NexthopGroup(11, [10]),
                einval,
                "group can not be a nexthop within a group",
            ),
            # Off-subnet without onlink; an IPv6 local address (IPv4 takes one, as a
            # nexthop of scope host).
            (NexthopObject(3, "198.51.100.1", "v0"), enetunreach, "Nexthop has invalid gateway"),
            (NexthopObject(3, "2001:db8::2", "v0"), einval, "Gateway can not be a local address"),
            (
                NexthopGroup(10, [1], resilient=True),
                einval,
                "Can not replace a nexthop group with one of a different type",
            ),
        ]
        # What NexthopObject cannot express: a scope, a state flag (RTNH_F_DEAD).
        for body, message in (
            (NexthopMessage(AF_INET, scope=253, id=3, oif=3), "Invalid values in ancillary header"),
            (NexthopMessage(AF_INET, flags=1, id=3, oif=3), "Invalid nexthop flags"),
        ):
            with pytest.raises(KernelError) as caught:
                await conn.request(Message(RTM.NEWNEXTHOP, NLM_F.CREATE | NLM_F.REPLACE, body))
            assert caught.value.errno == errno.EINVAL
            assert message in (caught.value.message or "")
        for value, code, message in refused:
            with pytest.raises(KernelError) as caught:
                await replace_nexthop(conn, value)
            # The kernel's wording (extended ACK), less a trailing period some versions add.
            assert caught.value.errno == code, value
            assert message in (caught.value.message or ""), value
        with pytest.raises(NotFoundError):
            await get_nexthop(conn, 77)
        with pytest.raises(NotFoundError):
            await delete_nexthop(conn, 77)
        with pytest.raises(NotFoundError):
            await replace_nexthop(conn, NexthopObject(3, "192.0.2.3", "nosuch"))
        assert {v.id for v in await listed(conn)} == {1, 2, 10}


def _kernel_at_least(major: int, minor: int) -> bool:
    found = re.match(r"(\d+)\.(\d+)", platform.release())
    assert found is not None
    return (int(found[1]), int(found[2])) >= (major, minor)


@pytest.mark.anyio
async def test_weights_above_256(netns: Namespace) -> None:
    group = NexthopGroup(40, [(1, 300), (2, 65535)])
    async with connect_in(netns) as conn:
        await replace_nexthop(conn, NexthopObject(1, "192.0.2.1", "v0"))
        await replace_nexthop(conn, NexthopObject(2, "192.0.2.3", "v0"))
        if not _kernel_at_least(6, 12):
            # weight_high was a reserved byte that had to be 0.
            with pytest.raises(KernelError):
                await replace_nexthop(conn, group)
            return
        await replace_nexthop(conn, group)
        assert await get_nexthop(conn, 40) == group
        assert await listed(conn, groups_only=True) == [group]
        # iproute2 before 6.12 reads only the low byte: 300 shows as 44, 65535 as 255.
        # 65536 does not fit the kernel's u16 weight.
        with pytest.raises(KernelError, match="Invalid argument") as caught:
            await conn.request(
                Message(
                    RTM.NEWNEXTHOP,
                    NLM_F.CREATE | NLM_F.REPLACE,
                    NexthopMessage(id=41, group=((1, 65536),)),
                )
            )
        assert caught.value.message == "Invalid value for weight"


@pytest.mark.anyio
async def test_resilient_group_members_can_be_replaced(netns: Namespace) -> None:
    async with connect_in(netns) as conn:
        for n, gateway in ((1, "192.0.2.1"), (2, "192.0.2.3"), (3, "192.0.2.4")):
            await replace_nexthop(conn, NexthopObject(n, gateway, "v0"))
        netns.ip("nexthop", "add", "id", "20", "group", "1/2", "type", "resilient", "buckets", "8")
        assert await get_nexthop(conn, 20) == NexthopGroup(20, [1, 2], resilient=True)
        await replace_nexthop(conn, NexthopGroup(20, [1, (3, 2)], resilient=True))
        assert await get_nexthop(conn, 20) == NexthopGroup(20, [1, (3, 2)], resilient=True)
        (entry,) = ip_nexthops(netns, "id", "20")
        assert entry["resilient_args"]["buckets"] == 8  # kept from the creation
        assert from_ip(netns) >= {NexthopGroup(20, [1, (3, 2)], resilient=True)}
        with pytest.raises(KernelError, match="Invalid argument") as caught:
            await replace_nexthop(conn, NexthopGroup(21, [1, 2], resilient=True))
        assert "Number of buckets not specified" in (caught.value.message or "")
        with pytest.raises(KernelError):
            await replace_nexthop(conn, NexthopGroup(20, [1, 2]))  # resilient → multipath
