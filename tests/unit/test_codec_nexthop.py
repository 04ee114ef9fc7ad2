"""Nexthop objects without a kernel: the NexthopMessage codec and asyncroute.nexthop's values.

* Hypothesis: ``decode(encode(m)) == m`` for any NexthopMessage (1,000 examples), and
  arbitrary nhmsg payloads decode or raise DecodeError, never anything else.
* Golden bytes (DESIGN.md §5): requests ``ip nexthop`` sent and replies the kernel sent,
  decoded to the expected messages and, where asyncroute writes the attributes in the
  capture's order, encoded back to the same bytes.
* The requests :func:`replace_nexthop`, :func:`delete_nexthop` and :func:`get_nexthop`
  send, through a recording stand-in for the connection, against the same captures; and
  the values :func:`get_nexthop` / :func:`list_nexthops` build from the captured replies.
* Validation of :class:`NexthopObject` and :class:`NexthopGroup`.

``tests/kernel/test_nexthop.py`` repeats the request comparison live: it runs ``ip
nexthop`` under strace in a namespace and compares with what asyncroute sends.

How the captures were made (as root, kernel 6.18.44-fc-v669, iproute2-6.1.0):

    ip netns add nhgold; (lo up; veth v0/v1 up — v0 got ifindex 3; 192.0.2.2/24 and
    2001:db8::2/64 nodad on v0)
    ip netns exec nhgold strace -qq -e trace=sendmsg -e write=all -xx ip <command>

run in the order of REQUESTS below (so that each command succeeded: ``replace id 2``
turned the blackhole into a gateway before the groups used it).  ``ip`` numbers its
requests with ``time(NULL)`` (1795838733) and sends port id 0.  The replies come from a
script that opened ``socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE)`` with NETLINK_EXT_ACK
and NETLINK_GET_STRICT_CHK, bound it (the kernel assigned port 3968), sent
RTM_GETNEXTHOP {NHA_ID n} with seq 1, 2, … and printed ``recv(65536).hex()``.  Group 40
(weights 300 and 65535) was created by a raw request, as ``ip`` 6.1 takes weights up to
256 only.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncroute._codec import decode_datagram, encode_message, encode_messages
from asyncroute.constants import AF_INET, AF_INET6, NLM_F, RTM, RTNH_F
from asyncroute.errors import DecodeError, NotFoundError, ProtocolError
from asyncroute.messages import LinkMessage, Message, NexthopMessage
from asyncroute.nexthop import (
    MAX_GROUP_WEIGHT,
    NexthopGroup,
    NexthopObject,
    delete_nexthop,
    get_nexthop,
    list_nexthops,
    replace_nexthop,
)

EXAMPLES = 1000
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Attribute numbers written out (linux/nexthop.h), not imported from the codec, so that
# a wrong number in the codec cannot agree with itself.
NHA_ID, NHA_GROUP, NHA_GROUP_TYPE, NHA_BLACKHOLE, NHA_OIF, NHA_GATEWAY = 1, 2, 3, 4, 5, 6
NHA_GROUPS, NHA_MASTER, NHA_FDB, NHA_OP_FLAGS = 9, 10, 11, 14
NHA_KNOWN = {NHA_ID, NHA_GROUP, NHA_GROUP_TYPE, NHA_BLACKHOLE, NHA_OIF, NHA_GATEWAY,
             NHA_GROUPS, NHA_MASTER, NHA_FDB}  # fmt: skip
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000

# --------------------------------------------------------------------------- hypothesis

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
addresses = st.one_of(
    st.none(),
    st.builds(IPv4Address, st.integers(0, 2**32 - 1)),
    st.builds(IPv6Address, st.integers(0, 2**128 - 1)),
)
#: The codec's wire range: ``weight - 1`` in a low byte and ``weight_high``.
wire_weights = st.integers(1, 65536)
groups = st.lists(st.tuples(u32, wire_weights), max_size=5).map(tuple)
_other_number = st.integers(0, 0x3FFF).filter(lambda n: n not in NHA_KNOWN)
_other_flags = st.sampled_from([0, NLA_F_NESTED, NLA_F_NET_BYTEORDER])
other_attributes = st.lists(
    st.tuples(st.builds(lambda n, f: n | f, _other_number, _other_flags), st.binary(max_size=16)),
    max_size=3,
).map(tuple)


@st.composite
def nexthop_messages(draw: st.DrawFn) -> Message:
    body = NexthopMessage(
        family=draw(u8),
        scope=draw(u8),
        protocol=draw(u8),
        flags=draw(u32),
        id=draw(st.none() | u32),
        group=draw(groups),
        group_type=draw(st.none() | u16),
        blackhole=draw(st.booleans()),
        oif=draw(st.none() | u32),
        gateway=draw(addresses),
        dump_groups=draw(st.booleans()),
        dump_master=draw(st.none() | u32),
        fdb=draw(st.booleans()),
        other=draw(other_attributes),
    )
    msg_type = draw(st.sampled_from([RTM.NEWNEXTHOP, RTM.DELNEXTHOP, RTM.GETNEXTHOP]))
    return Message(msg_type, draw(u16), body, draw(u32), draw(u32))


@PROPERTY
@given(nexthop_messages())
def test_nexthop_round_trip(message: Message) -> None:
    assert decode_datagram(encode_message(message)) == [message]


@PROPERTY
@given(st.lists(nexthop_messages(), min_size=2, max_size=4))
def test_nexthop_datagram_round_trip(messages: list[Message]) -> None:
    assert decode_datagram(encode_messages(messages)) == messages


@PROPERTY
@given(st.sampled_from([RTM.NEWNEXTHOP, RTM.DELNEXTHOP, RTM.GETNEXTHOP]), st.binary(max_size=80))
def test_arbitrary_nhmsg_payload_decodes_or_raises_decode_error(msg_type: int, data: bytes) -> None:
    """Whatever the payload, DecodeError or a message that re-encodes to itself."""
    frame = struct.pack("=IHHII", 16 + len(data), msg_type, 0, 1, 0) + data
    frame += b"\0" * (-len(frame) % 4)
    try:
        decoded = decode_datagram(frame)
    except DecodeError:
        return
    assert decode_datagram(encode_messages(decoded)) == decoded


def test_weight_outside_the_wire_range_is_a_value_error() -> None:
    for weight in (0, 65537):
        with pytest.raises(ValueError, match="weight"):
            encode_message(Message(RTM.NEWNEXTHOP, 0, NexthopMessage(id=1, group=((2, weight),))))


# --------------------------------------------------------------------------- golden bytes

KERNEL = "6.18.44-fc-v669"  # uname -r
IPROUTE2 = "iproute2-6.1.0"  # ip -V
V0 = 3  # ifindex of v0 in the capture namespace
IP_SEQ = 1795838733  # ip's nlmsg_seq: time(NULL)
KERNEL_PORT = 3968  # the port id the kernel gave the reply script's socket
ADD = NLM_F.REQUEST | NLM_F.ACK | NLM_F.EXCL | NLM_F.CREATE
REPLACE = NLM_F.REQUEST | NLM_F.ACK | NLM_F.REPLACE | NLM_F.CREATE
DELETE = NLM_F.REQUEST | NLM_F.ACK
ONLINK = int(RTNH_F.ONLINK)
RT_SCOPE_LINK, RT_SCOPE_HOST = 253, 254
RTPROT_STATIC = 4
ARGV_ORDER = "ip writes attributes in command-line order: NHA_GATEWAY (via) before NHA_OIF (dev)"


@dataclass(frozen=True)
class Golden:
    name: str
    command: str
    hex: str
    expected: Message
    #: False when the capture's attribute order differs from asyncroute's (see ``why``).
    encode_matches: bool = True
    why: str = ""

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex)


def _request(msg_type: int, flags: int, body: NexthopMessage) -> Message:
    return Message(msg_type, flags, body, IP_SEQ, 0)


def _reply(seq: int, body: NexthopMessage) -> Message:
    return Message(RTM.NEWNEXTHOP, 0, body, seq, KERNEL_PORT)


GW1 = ip_address("192.0.2.1")
GW3 = ip_address("192.0.2.3")
GW6 = ip_address("2001:db8::1")
OFFLINK = ip_address("198.51.100.1")

#: Requests ``ip nexthop`` sent (nlmsghdr | nhmsg: family, scope, protocol, resvd,
#: flags | attributes).
REQUESTS = [
    Golden(
        "add-via-dev",
        "ip nexthop add id 1 via 192.0.2.1 dev v0",
        "30000000 6800 0506 0d530a6b 00000000"  # len 48, NEWNEXTHOP, ADD
        "02 00 00 00 00000000"  # AF_INET, scope 0, proto 0, flags 0
        "0800 0100 01000000"  # NHA_ID 1
        "0800 0600 c0000201"  # NHA_GATEWAY 192.0.2.1
        "0800 0500 03000000",  # NHA_OIF 3
        _request(RTM.NEWNEXTHOP, ADD, NexthopMessage(AF_INET, id=1, oif=V0, gateway=GW1)),
        encode_matches=False,
        why=ARGV_ORDER,
    ),
    Golden(
        "add-blackhole",
        "ip nexthop add id 2 blackhole",
        "24000000 6800 0506 0d530a6b 00000000"
        "02 00 00 00 00000000"  # AF_INET: ip's default family for a blackhole
        "0800 0100 02000000"  # NHA_ID 2
        "0400 0400",  # NHA_BLACKHOLE
        _request(RTM.NEWNEXTHOP, ADD, NexthopMessage(AF_INET, id=2, blackhole=True)),
    ),
    Golden(
        "add-ipv6-via-dev",
        "ip -6 nexthop add id 3 via 2001:db8::1 dev v0",
        "3c000000 6800 0506 0d530a6b 00000000"
        "0a 00 00 00 00000000"  # AF_INET6
        "0800 0100 03000000"  # NHA_ID 3
        "1400 0600 20010db8000000000000000000000001"  # NHA_GATEWAY 2001:db8::1
        "0800 0500 03000000",  # NHA_OIF 3
        _request(RTM.NEWNEXTHOP, ADD, NexthopMessage(AF_INET6, id=3, oif=V0, gateway=GW6)),
        encode_matches=False,
        why=ARGV_ORDER,
    ),
    Golden(
        "replace-via-dev",
        "ip nexthop replace id 2 via 192.0.2.3 dev v0",
        "30000000 6800 0505 0d530a6b 00000000"  # REPLACE
        "02 00 00 00 00000000"
        "0800 0100 02000000"
        "0800 0600 c0000203"  # NHA_GATEWAY 192.0.2.3
        "0800 0500 03000000",
        _request(RTM.NEWNEXTHOP, REPLACE, NexthopMessage(AF_INET, id=2, oif=V0, gateway=GW3)),
        encode_matches=False,
        why=ARGV_ORDER,
    ),
    Golden(
        "add-group",
        "ip nexthop add id 10 group 1/2",
        "34000000 6800 0506 0d530a6b 00000000"
        "00 00 00 00 00000000"  # AF_UNSPEC: a group has no family
        "0800 0100 0a000000"  # NHA_ID 10
        # NHA_GROUP: struct nexthop_grp {id, weight - 1, weight_high, resvd}, twice
        "1400 0200 01000000 00 00 0000 02000000 00 00 0000",
        _request(RTM.NEWNEXTHOP, ADD, NexthopMessage(id=10, group=((1, 1), (2, 1)))),
    ),
    Golden(
        "add-group-weights",
        "ip nexthop add id 11 group 1,3/2,5",
        "34000000 6800 0506 0d530a6b 00000000"
        "00 00 00 00 00000000"
        "0800 0100 0b000000"
        "1400 0200 01000000 02 00 0000 02000000 04 00 0000",  # weights 3 and 5, minus one
        _request(RTM.NEWNEXTHOP, ADD, NexthopMessage(id=11, group=((1, 3), (2, 5)))),
    ),
    Golden(
        "del",
        "ip nexthop del id 10",
        "20000000 6900 0500 0d530a6b 00000000"  # len 32, DELNEXTHOP, REQUEST|ACK
        "00 00 00 00 00000000"
        "0800 0100 0a000000",
        _request(RTM.DELNEXTHOP, DELETE, NexthopMessage(id=10)),
    ),
    Golden(
        "replace-dev-via",
        "ip nexthop replace id 1 dev v0 via 192.0.2.1",
        "30000000 6800 0505 0d530a6b 00000000"
        "02 00 00 00 00000000"
        "0800 0100 01000000"
        "0800 0500 03000000"  # NHA_OIF first: dev came first on the command line
        "0800 0600 c0000201",
        _request(RTM.NEWNEXTHOP, REPLACE, NexthopMessage(AF_INET, id=1, oif=V0, gateway=GW1)),
    ),
    Golden(
        "replace-onlink-proto",
        "ip nexthop replace id 6 via 198.51.100.1 dev v0 onlink proto 99",
        "30000000 6800 0505 0d530a6b 00000000"
        "02 00 63 00 04000000"  # protocol 99, flags RTNH_F_ONLINK
        "0800 0100 06000000"
        "0800 0600 c6336401"
        "0800 0500 03000000",
        _request(
            RTM.NEWNEXTHOP,
            REPLACE,
            NexthopMessage(AF_INET, protocol=99, flags=ONLINK, id=6, oif=V0, gateway=OFFLINK),
        ),
        encode_matches=False,
        why=ARGV_ORDER,
    ),
    Golden(
        "replace-ipv6-blackhole",
        "ip -6 nexthop replace id 5 blackhole",
        "24000000 6800 0505 0d530a6b 000000000a 00 00 00 000000000800 0100 050000000400 0400",
        _request(RTM.NEWNEXTHOP, REPLACE, NexthopMessage(AF_INET6, id=5, blackhole=True)),
    ),
    Golden(
        "replace-dev",
        "ip nexthop replace id 4 dev v0",
        "28000000 6800 0505 0d530a6b 00000000"
        "02 00 00 00 00000000"  # AF_INET: ip's default family for a device-only nexthop
        "0800 0100 04000000"
        "0800 0500 03000000",
        _request(RTM.NEWNEXTHOP, REPLACE, NexthopMessage(AF_INET, id=4, oif=V0)),
    ),
    Golden(
        "replace-group-weight-256-proto",
        "ip nexthop replace id 12 group 1,256/3 proto static",
        "34000000 6800 0505 0d530a6b 00000000"
        "00 00 04 00 00000000"  # RTPROT_STATIC
        "0800 0100 0c000000"
        "1400 0200 01000000 ff 00 0000 03000000 00 00 0000",
        _request(
            RTM.NEWNEXTHOP,
            REPLACE,
            NexthopMessage(protocol=RTPROT_STATIC, id=12, group=((1, 256), (3, 1))),
        ),
    ),
]

#: Replies the kernel sent to RTM_GETNEXTHOP {NHA_ID n} after the requests above.
REPLIES = [
    Golden(
        "reply-via-dev",
        "GET id 1",
        "30000000 6800 0000 01000000 800f0000"  # len 48, NEWNEXTHOP, flags 0, seq 1
        "02 fd 00 00 00000000"  # AF_INET, scope link (the kernel's choice)
        "0800 0100 01000000"
        "0800 0500 03000000"  # the kernel writes NHA_OIF before NHA_GATEWAY
        "0800 0600 c0000201",
        _reply(1, NexthopMessage(AF_INET, RT_SCOPE_LINK, id=1, oif=V0, gateway=GW1)),
    ),
    Golden(
        "reply-ipv6-via-dev",
        "GET id 3",
        "3c000000 6800 0000 02000000 800f0000"
        "0a fd 00 00 00000000"
        "0800 0100 03000000"
        "0800 0500 03000000"
        "1400 0600 20010db8000000000000000000000001",
        _reply(2, NexthopMessage(AF_INET6, RT_SCOPE_LINK, id=3, oif=V0, gateway=GW6)),
    ),
    Golden(
        "reply-ipv6-blackhole",
        "GET id 5",
        "24000000 6800 0000 03000000 800f0000"
        "0a 00 00 00 00000000"  # scope universe
        "0800 0100 05000000"
        "0400 0400",
        _reply(3, NexthopMessage(AF_INET6, id=5, blackhole=True)),
    ),
    Golden(
        "reply-onlink-proto",
        "GET id 6",
        "30000000 6800 0000 04000000 800f0000"
        "02 fd 63 00 04000000"
        "0800 0100 06000000"
        "0800 0500 03000000"
        "0800 0600 c6336401",
        _reply(
            4,
            NexthopMessage(AF_INET, RT_SCOPE_LINK, 99, ONLINK, id=6, oif=V0, gateway=OFFLINK),
        ),
    ),
    Golden(
        "reply-dev",
        "GET id 4",
        "28000000 6800 0000 05000000 800f0000"
        "02 fe 00 00 00000000"  # scope host: a device-only nexthop
        "0800 0100 04000000"
        "0800 0500 03000000",
        _reply(5, NexthopMessage(AF_INET, RT_SCOPE_HOST, id=4, oif=V0)),
    ),
    Golden(
        "reply-group-weights",
        "GET id 11",
        "44000000 6800 0000 06000000 800f0000"
        "00 00 00 00 00000000"
        "0800 0100 0b000000"
        "0600 0300 0000 0000"  # NHA_GROUP_TYPE 0 (multipath), before NHA_GROUP
        "1400 0200 01000000 02 00 0000 02000000 04 00 0000"
        # NHA_OP_FLAGS NHA_OP_FLAG_RESP_GRP_RESVD_0 (Linux 6.12): weight_high is valid
        "0800 0e00 00000080",
        _reply(
            6,
            NexthopMessage(
                id=11,
                group=((1, 3), (2, 5)),
                group_type=0,
                other=((NHA_OP_FLAGS, b"\x00\x00\x00\x80"),),
            ),
        ),
        encode_matches=False,
        why="the kernel writes NHA_GROUP_TYPE (3) before NHA_GROUP (2) (nla_put_nh_group)",
    ),
    Golden(
        "reply-group-weights-above-256",
        "GET id 40",
        "44000000 6800 0000 07000000 800f0000"
        "00 00 00 00 00000000"
        "0800 0100 28000000"
        "0600 0300 0000 0000"
        # weight 300: 299 = 0x012b (low 2b, weight_high 01); 65535: 0xfffe
        "1400 0200 01000000 2b 01 0000 02000000 fe ff 0000"
        "0800 0e00 00000080",
        _reply(
            7,
            NexthopMessage(
                id=40,
                group=((1, 300), (2, 65535)),
                group_type=0,
                other=((NHA_OP_FLAGS, b"\x00\x00\x00\x80"),),
            ),
        ),
        encode_matches=False,
        why="the kernel writes NHA_GROUP_TYPE (3) before NHA_GROUP (2) (nla_put_nh_group)",
    ),
]
CASES = REQUESTS + REPLIES


def split_attributes(frame: bytes) -> tuple[bytes, list[tuple[int, bytes]]]:
    """``(nlmsghdr + nhmsg, [(nla_type, value with padding)])`` of one frame."""
    head, offset, attributes = frame[:24], 24, []
    while offset < len(frame):
        length, nla_type = struct.unpack_from("=HH", frame, offset)
        end = offset + ((length + 3) & ~3)
        attributes.append((nla_type, frame[offset + 4 : end]))
        offset = end
    return head, attributes


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_decode_golden(case: Golden) -> None:
    assert decode_datagram(case.data) == [case.expected]


@pytest.mark.parametrize("case", [c for c in CASES if c.encode_matches], ids=lambda c: c.name)
def test_encode_golden(case: Golden) -> None:
    assert encode_message(case.expected) == case.data


@pytest.mark.parametrize("case", [c for c in CASES if not c.encode_matches], ids=lambda c: c.name)
def test_encode_golden_same_attributes_other_order(case: Golden) -> None:
    """Only the order differs (see ``why``): same header, same attributes byte for byte."""
    encoded = encode_message(case.expected)
    assert encoded != case.data  # else the case should say encode_matches=True
    ours, theirs = split_attributes(encoded), split_attributes(case.data)
    assert ours[0] == theirs[0]
    assert sorted(ours[1]) == sorted(theirs[1])


# --------------------------------------------------------------------------- the API


class Recorder:
    """Stands in for a NetlinkConnection: records requests, answers from a script.

    RTM_GETLINK is answered from ``links`` (name → ifindex) as the kernel would;
    RTM_GETNEXTHOP from ``nexthops`` (id → reply message); a dump with ``dump``.
    """

    def __init__(
        self,
        links: dict[str, int] | None = None,
        nexthops: dict[int, Message] | None = None,
        dump: list[Message] | None = None,
    ) -> None:
        self.links = {"v0": V0} if links is None else links
        self.nexthops = nexthops or {}
        self.dumped = dump or []
        self.sent: list[Message] = []
        self.dumps: list[tuple[Message, int]] = []

    async def request(self, message: Message, *, timeout: float | None = None) -> Message | None:
        self.sent.append(message)
        body = message.body
        if isinstance(body, LinkMessage):
            for name, index in self.links.items():
                if body.name == name or body.index == index:
                    return Message(RTM.NEWLINK, 0, LinkMessage(index=index, name=name))
            raise NotFoundError(19, message="no such device")
        if message.type == RTM.GETNEXTHOP:
            assert isinstance(body, NexthopMessage) and body.id is not None
            if body.id not in self.nexthops:
                raise NotFoundError(2, message="Nexthop id does not exist")
            return self.nexthops[body.id]
        return None

    request_shared = request

    async def dump(
        self, message: Message, *, timeout: float | None = None, retry_interrupted: int = 0
    ) -> AsyncIterator[Message]:
        self.dumps.append((message, retry_interrupted))
        for reply in self.dumped:
            yield reply


def _wire(message: Message) -> bytes:
    """What the connection sends: REQUEST|ACK added, seq and port id as ip's."""
    flags = NLM_F.REQUEST | NLM_F.ACK
    return encode_message(message, seq=IP_SEQ, port_id=0, extra_flags=flags)


def _golden(name: str) -> Golden:
    return next(c for c in CASES if c.name == name)


#: (value, the capture replace_nexthop must match: flags aside where ip used ``add``).
API_CASES: list[tuple[NexthopObject | NexthopGroup, str]] = [
    (NexthopObject(1, "192.0.2.1", "v0"), "replace-dev-via"),
    (NexthopObject(2, blackhole=True), "add-blackhole"),
    (NexthopObject(3, "2001:db8::1", "v0"), "add-ipv6-via-dev"),
    (NexthopObject(2, "192.0.2.3", "v0"), "replace-via-dev"),
    (NexthopGroup(10, [1, 2]), "add-group"),
    (NexthopGroup(11, [(1, 3), (2, 5)]), "add-group-weights"),
    (NexthopObject(6, "198.51.100.1", "v0", onlink=True, protocol=99), "replace-onlink-proto"),
    (NexthopObject(5, blackhole=True, family=AF_INET6), "replace-ipv6-blackhole"),
    (NexthopObject(4, device="v0"), "replace-dev"),
    (NexthopGroup(12, [(1, 256), 3], protocol=RTPROT_STATIC), "replace-group-weight-256-proto"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("value", "name"), API_CASES, ids=[n for _, n in API_CASES])
async def test_replace_nexthop_sends_what_ip_sends(
    value: NexthopObject | NexthopGroup, name: str
) -> None:
    """Byte for byte but the seq, after the flags: ``ip … add`` means CREATE|EXCL where
    replace_nexthop sends CREATE|REPLACE; and the attribute order where ``why`` says."""
    conn = Recorder()
    await replace_nexthop(conn, value)  # type: ignore[arg-type]
    request = conn.sent[-1]
    assert request.flags == NLM_F.CREATE | NLM_F.REPLACE
    ours = _wire(request)
    case = _golden(name)
    theirs = case.data
    if case.expected.flags == ADD:
        flags = struct.pack("=H", REPLACE)
        theirs = theirs[:6] + flags + theirs[8:]
    if case.encode_matches:
        assert ours == theirs
    else:
        assert split_attributes(ours)[0] == split_attributes(theirs)[0]
        assert sorted(split_attributes(ours)[1]) == sorted(split_attributes(theirs)[1])


@pytest.mark.anyio
async def test_replace_nexthop_looks_up_the_device_once() -> None:
    conn = Recorder()
    await replace_nexthop(conn, NexthopObject(1, "192.0.2.1", "v0"))  # type: ignore[arg-type]
    assert [m.type for m in conn.sent] == [RTM.GETLINK, RTM.NEWNEXTHOP]
    conn = Recorder()
    await replace_nexthop(conn, NexthopGroup(10, [1]))  # type: ignore[arg-type]
    await replace_nexthop(conn, NexthopObject(2, blackhole=True))  # type: ignore[arg-type]
    assert [m.type for m in conn.sent] == [RTM.NEWNEXTHOP, RTM.NEWNEXTHOP]


@pytest.mark.anyio
async def test_replace_nexthop_unknown_device() -> None:
    conn = Recorder(links={})
    with pytest.raises(NotFoundError):
        await replace_nexthop(conn, NexthopObject(1, "192.0.2.1", "nosuch"))  # type: ignore[arg-type]
    assert all(m.type != RTM.NEWNEXTHOP for m in conn.sent)


@pytest.mark.anyio
async def test_replace_nexthop_resilient_group_sends_the_group_type() -> None:
    conn = Recorder()
    await replace_nexthop(conn, NexthopGroup(20, [1, 2], resilient=True))  # type: ignore[arg-type]
    body = conn.sent[-1].body
    assert isinstance(body, NexthopMessage)
    assert (body.group_type, body.group) == (1, ((1, 1), (2, 1)))
    # As ``ip nexthop replace id 20 group 1/2 type resilient`` (without buckets) writes it.
    assert split_attributes(_wire(conn.sent[-1]))[1][-1] == (NHA_GROUP_TYPE, b"\x01\x00\x00\x00")


@pytest.mark.anyio
async def test_delete_nexthop_sends_what_ip_sends() -> None:
    conn = Recorder()
    await delete_nexthop(conn, 10)  # type: ignore[arg-type]
    assert _wire(conn.sent[-1]) == _golden("del").data


#: The replies above, as values (device names from ifindex 3 = "v0").
REPLY_VALUES: dict[str, NexthopObject | NexthopGroup] = {
    "reply-via-dev": NexthopObject(1, "192.0.2.1", "v0"),
    "reply-ipv6-via-dev": NexthopObject(3, "2001:db8::1", "v0"),
    "reply-ipv6-blackhole": NexthopObject(5, blackhole=True, family=AF_INET6),
    "reply-onlink-proto": NexthopObject(6, "198.51.100.1", "v0", onlink=True, protocol=99),
    "reply-dev": NexthopObject(4, device="v0"),
    "reply-group-weights": NexthopGroup(11, [(1, 3), (2, 5)]),
    "reply-group-weights-above-256": NexthopGroup(40, [(1, 300), (2, 65535)]),
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(REPLY_VALUES))
async def test_get_nexthop_from_the_kernels_reply(name: str) -> None:
    reply = decode_datagram(_golden(name).data)[0]
    assert isinstance(reply.body, NexthopMessage) and reply.body.id is not None
    conn = Recorder(nexthops={reply.body.id: reply})
    value = await get_nexthop(conn, reply.body.id)  # type: ignore[arg-type]
    assert value == REPLY_VALUES[name]
    # The GET itself: nhmsg all zero and NHA_ID, as `ip nexthop get id N` sends it.
    assert conn.sent[0].type == RTM.GETNEXTHOP
    assert conn.sent[0].body == NexthopMessage(id=reply.body.id)


@pytest.mark.anyio
async def test_get_nexthop_not_found() -> None:
    with pytest.raises(NotFoundError):
        await get_nexthop(Recorder(), 99)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_get_nexthop_device_gone_is_not_found() -> None:
    reply = decode_datagram(_golden("reply-via-dev").data)[0]
    conn = Recorder(links={}, nexthops={1: reply})
    with pytest.raises(NotFoundError, match="device"):
        await get_nexthop(conn, 1)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_get_nexthop_unknown_group_type_is_a_protocol_error() -> None:
    body = NexthopMessage(id=7, group=((1, 1),), group_type=9)
    conn = Recorder(nexthops={7: Message(RTM.NEWNEXTHOP, 0, body)})
    with pytest.raises(ProtocolError, match="group type"):
        await get_nexthop(conn, 7)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_list_nexthops_values_and_one_name_lookup_per_device() -> None:
    replies = [decode_datagram(_golden(name).data)[0] for name in REPLY_VALUES]
    conn = Recorder(dump=replies)
    found = [value async for value in list_nexthops(conn)]  # type: ignore[arg-type]
    assert found == list(REPLY_VALUES.values())
    assert [m.type for m in conn.sent] == [RTM.GETLINK]  # four nexthops on v0, one lookup
    query, retries = conn.dumps[0]
    assert query.type == RTM.GETNEXTHOP and query.body == NexthopMessage()
    assert retries > 0


@pytest.mark.anyio
async def test_list_nexthops_filters_go_to_the_kernel() -> None:
    conn = Recorder()
    assert [v async for v in list_nexthops(conn, family=AF_INET6)] == []  # type: ignore[arg-type]
    assert [v async for v in list_nexthops(conn, device="v0")] == []  # type: ignore[arg-type]
    assert [v async for v in list_nexthops(conn, groups_only=True)] == []  # type: ignore[arg-type]
    assert [m.body for m, _ in conn.dumps] == [
        NexthopMessage(family=AF_INET6),
        NexthopMessage(oif=V0),
        NexthopMessage(dump_groups=True),
    ]


@pytest.mark.anyio
async def test_list_nexthops_skips_a_nexthop_whose_device_is_gone() -> None:
    replies = [
        decode_datagram(_golden(n).data)[0] for n in ("reply-via-dev", "reply-group-weights")
    ]
    conn = Recorder(links={}, dump=replies)
    assert [v async for v in list_nexthops(conn)] == [  # type: ignore[arg-type]
        NexthopGroup(11, [(1, 3), (2, 5)])
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"family": 4}, "family"),
        ({"family": AF_INET, "groups_only": True}, "groups_only"),
        ({"device": "v0", "groups_only": True}, "groups_only"),
        ({"device": ""}, "device"),
        ({"device": "a/b"}, "device"),
    ],
)
async def test_list_nexthops_bad_filters(kwargs: dict[str, Any], match: str) -> None:
    conn = Recorder()
    with pytest.raises(ValueError, match=match):
        [v async for v in list_nexthops(conn, **kwargs)]  # type: ignore[arg-type]
    assert conn.sent == [] and conn.dumps == []


# --------------------------------------------------------------------------- values


def test_nexthop_object_fields_and_defaults() -> None:
    nh = NexthopObject(1, "192.0.2.1", "v0")
    assert (nh.id, nh.gateway, nh.device, nh.family) == (1, GW1, "v0", AF_INET)
    assert (nh.blackhole, nh.onlink, nh.fdb, nh.protocol) == (False, False, False, 0)
    assert NexthopObject(3, GW6, "v0").family == AF_INET6
    # Without a gateway the family defaults to AF_INET, as with `ip nexthop`.
    assert NexthopObject(4, device="v0").family == AF_INET
    assert NexthopObject(2, blackhole=True).family == AF_INET
    assert NexthopObject(2, blackhole=True, family=AF_INET6).family == AF_INET6
    assert NexthopObject(30, "192.0.2.30", fdb=True).device == ""


def test_nexthop_object_is_a_hashable_value() -> None:
    a = NexthopObject(1, "192.0.2.1", "v0")
    b = NexthopObject(1, GW1, "v0", family=AF_INET)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != NexthopObject(1, "192.0.2.1", "v0", onlink=True)
    with pytest.raises(AttributeError):
        a.id = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id": 0, "device": "v0"}, "id"),
        ({"id": 2**32, "device": "v0"}, "id"),
        ({"id": 1, "gateway": "192.0.2.300", "device": "v0"}, "gateway"),
        ({"id": 1, "gateway": "192.0.2.1/24", "device": "v0"}, "gateway"),
        ({"id": 1, "device": "a" * 16}, "device"),
        ({"id": 1, "device": "a/b"}, "device"),
        ({"id": 1}, "device"),  # neither blackhole nor fdb: a device is required
        ({"id": 1, "gateway": "192.0.2.1"}, "device"),
        ({"id": 1, "blackhole": True, "gateway": "192.0.2.1"}, "gateway"),
        ({"id": 1, "blackhole": True, "device": "v0"}, "device"),
        ({"id": 1, "blackhole": True, "fdb": True}, "fdb"),
        ({"id": 1, "device": "v0", "onlink": True}, "onlink"),  # no gateway
        ({"id": 1, "gateway": "192.0.2.1", "fdb": True, "device": "v0"}, "device"),
        ({"id": 1, "gateway": "192.0.2.1", "device": "v0", "protocol": 256}, "protocol"),
        ({"id": 1, "gateway": "192.0.2.1", "device": "v0", "family": AF_INET6}, "gateway"),
        ({"id": 1, "device": "v0", "family": 4}, "family"),
    ],
)
def test_nexthop_object_rejects(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        NexthopObject(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": "1", "device": "v0"},
        {"id": True, "device": "v0"},
        {"id": 1, "device": "v0", "blackhole": 1},
        {"id": 1, "gateway": 17, "device": "v0"},
    ],
)
def test_nexthop_object_rejects_types(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        NexthopObject(**kwargs)


def test_nexthop_group_members() -> None:
    group = NexthopGroup(10, [1, (2, 5), (3, MAX_GROUP_WEIGHT)])
    assert group.members == ((1, 1), (2, 5), (3, 65535))
    assert (group.protocol, group.fdb, group.resilient) == (0, False, False)
    assert group == NexthopGroup(10, ((1, 1), (2, 5), (3, 65535)))
    assert group != NexthopGroup(10, [(2, 5), 1, (3, 65535)])  # the kernel keeps the order
    assert len({group, NexthopGroup(10, [1, (2, 5), (3, 65535)])}) == 1


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ([], "at least one"),
        ([0], "id"),
        ([2**32], "id"),
        ([(1, 0)], "weight"),
        ([(1, 65536)], "weight"),
        ([1, 1], "twice"),
        ([1, (1, 3)], "twice"),
        ([10], "itself"),
        ([(1, 2, 3)], "pair"),
    ],
)
def test_nexthop_group_rejects(members: list[Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        NexthopGroup(10, members)


def test_nexthop_group_rejects_types() -> None:
    with pytest.raises(TypeError):
        NexthopGroup(10, "1,2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        NexthopGroup(10, [1], resilient=1)  # type: ignore[arg-type]
