"""The address message (``struct ifaddrmsg``, RTM_NEWADDR/RTM_DELADDR/RTM_GETADDR).

* Encoding equals pyroute2's ``ifaddrmsg.encode()`` (every header field set explicitly,
  attributes in ascending number), 1,000 examples.
* ``decode(encode(m)) == m``, unknown attributes included, alone and among other
  messages in one datagram; 1,000 examples each.
* Arbitrary ifaddrmsg payloads decode or raise ``DecodeError``, nothing else.
* A datagram the kernel sent (part of an RTM_GETADDR dump, captured on Linux 6.18 in a
  fresh test namespace) decodes to the expected fields and re-encodes to its bytes.

Message types and attribute numbers are written out here (linux/rtnetlink.h,
linux/if_addr.h), not imported from the codec, so that a wrong number there cannot agree
with itself.
"""

from __future__ import annotations

import contextlib
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

import asyncroute
from asyncroute._codec import decode_datagram, encode_message, encode_messages
from asyncroute.constants import AF_INET, AF_INET6, NLM_F, RTM
from asyncroute.errors import DecodeError
from asyncroute.messages import Address, AddressMessage, Message, RouteMessage

EXAMPLES = 1000
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST = 1, 2, 3, 4
IFA_CACHEINFO, IFA_FLAGS, IFA_RT_PRIORITY, IFA_PROTO = 6, 8, 9, 11
MODELLED = {IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_FLAGS, IFA_RT_PRIORITY, IFA_PROTO}
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


#: An attribute's address may be of either family, whatever the header says (the codec
#: packs by length, as pyroute2 does).
addresses: st.SearchStrategy[Address | None] = optional(
    st.builds(IPv4Address, st.integers(0, 2**32 - 1))
    | st.builds(IPv6Address, st.integers(0, 2**128 - 1))
)
#: Text that survives an asciiz attribute: no NUL (ASCII and multi-byte UTF-8).
labels = optional(st.text("abv019:-_.\xe9\u0394\u2603\U0001d11e", max_size=16))


@dataclass(frozen=True)
class Header:
    type: int
    flags: int
    seq: int
    port_id: int


headers = st.builds(Header, st.sampled_from([RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR]), u16, u32, u32)


@st.composite
def address_bodies(draw: st.DrawFn) -> AddressMessage:
    family = draw(st.sampled_from([0, AF_INET, AF_INET6]) | u8)
    return AddressMessage(
        family=family,
        prefixlen=draw(u8),
        flags=draw(u8),
        scope=draw(u8),
        index=draw(u32),
        address=draw(addresses),
        local=draw(addresses),
        label=draw(labels),
        broadcast=draw(addresses),
        extended_flags=draw(optional(u32)),
        rt_priority=draw(optional(u32)),
        protocol=draw(optional(u8)),
    )


_BODIES = address_bodies()


def pyroute2_address(header: Header, body: AddressMessage) -> bytes:
    m = ifaddrmsg()
    m["header"] = {
        "type": header.type,
        "flags": header.flags,
        "sequence_number": header.seq,
        "pid": header.port_id,
    }
    m["family"] = body.family
    m["prefixlen"] = body.prefixlen
    m["flags"] = body.flags
    m["scope"] = body.scope
    m["index"] = body.index
    attrs: list[tuple[str, Any]] = []  # ascending attribute number
    if body.address is not None:
        attrs.append(("IFA_ADDRESS", str(body.address)))
    if body.local is not None:
        attrs.append(("IFA_LOCAL", str(body.local)))
    if body.label is not None:
        attrs.append(("IFA_LABEL", body.label))
    if body.broadcast is not None:
        attrs.append(("IFA_BROADCAST", str(body.broadcast)))
    if body.extended_flags is not None:
        attrs.append(("IFA_FLAGS", body.extended_flags))
    if body.rt_priority is not None:
        attrs.append(("IFA_RT_PRIORITY", body.rt_priority))
    if body.protocol is not None:
        attrs.append(("IFA_PROTO", body.protocol))
    m["attrs"] = attrs
    m.encode()
    return bytes(m.data)


@PROPERTY
@given(headers, _BODIES)
def test_address_encoding_equals_pyroute2(header: Header, body: AddressMessage) -> None:
    message = Message(header.type, header.flags, body, header.seq, header.port_id)
    assert encode_message(message) == pyroute2_address(header, body)


# --------------------------------------------------------------------------- round trips


def _raw_attributes() -> st.SearchStrategy[tuple[tuple[int, bytes], ...]]:
    """Unmodelled attributes (IFA_CACHEINFO among them), maybe with flag bits."""
    allowed = [n for n in range(1, 0x4000) if n not in MODELLED]
    number = st.sampled_from([IFA_CACHEINFO, 5, 7, 10, 12]) | st.integers(0, len(allowed) - 1).map(
        allowed.__getitem__
    )
    flag_bits = st.sampled_from([0, NLA_F_NESTED, NLA_F_NET_BYTEORDER])
    attribute = st.tuples(st.builds(lambda n, f: n | f, number, flag_bits), st.binary(max_size=20))
    return st.lists(attribute, max_size=3).map(tuple)


@st.composite
def address_messages(draw: st.DrawFn) -> Message:
    header = draw(headers)
    body = draw(_BODIES)
    body = AddressMessage(
        **{name: getattr(body, name) for name in AddressMessage.__slots__ if name != "other"},
        other=draw(_raw_attributes()),
    )
    return Message(header.type, header.flags, body, header.seq, header.port_id)


_MESSAGES = address_messages()


@PROPERTY
@given(_MESSAGES)
def test_address_round_trip(message: Message) -> None:
    encoded = encode_message(message)
    assert decode_datagram(encoded) == [message]
    # Re-encoding the decoded message gives the same bytes.
    assert encode_message(decode_datagram(encoded)[0]) == encoded


_ROUTE = Message(RTM.NEWROUTE, 0, RouteMessage(family=AF_INET, dst_len=8), 1, 2)


@PROPERTY
@given(st.lists(_MESSAGES, min_size=1, max_size=3))
def test_address_round_trip_in_a_datagram(messages: list[Message]) -> None:
    datagram = encode_messages([*messages, _ROUTE])
    assert decode_datagram(datagram) == [*messages, _ROUTE]


@PROPERTY
@given(st.sampled_from([RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR]), st.binary(max_size=120))
def test_garbage_payload_raises_only_decode_error(msg_type: int, payload: bytes) -> None:
    padded = payload + b"\0" * (-len(payload) % 4)
    frame = struct.pack("=IHHII", 16 + len(padded), msg_type, 0, 0, 0) + padded
    with contextlib.suppress(DecodeError):
        decode_datagram(frame)


@pytest.mark.parametrize(
    ("value", "field"),
    [(b"\x01\x02\x03", "IFA_ADDRESS"), (b"\x01\x02\x03\x04\x05", "IFA_FLAGS")],
)
def test_bad_attribute_lengths_raise_decode_error(value: bytes, field: str) -> None:
    number = IFA_ADDRESS if field == "IFA_ADDRESS" else IFA_FLAGS
    body = AddressMessage(family=AF_INET, other=((number, value),))
    with pytest.raises(DecodeError, match=field):
        decode_datagram(encode_message(Message(RTM_NEWADDR, 0, body)))


def test_short_header_raises_decode_error() -> None:
    frame = struct.pack("=IHHII", 20, RTM_NEWADDR, 0, 0, 0) + b"\x02\x18\x00\x00"
    with pytest.raises(DecodeError, match="ifaddrmsg"):
        decode_datagram(frame)


def test_label_with_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode_message(Message(RTM_NEWADDR, 0, AddressMessage(label="v0\0x")))


# --------------------------------------------------------------------------- the kernel's bytes

#: A datagram of an RTM_GETADDR dump (family AF_INET, NLM_F_MULTI) as Linux 6.18 sent it
#: to port 0x36f2 for a fresh test namespace: ``127.0.0.1/8`` on ``lo`` (index 1) and
#: ``192.0.2.2/24`` on ``v0`` (index 3), each with IFA_ADDRESS, IFA_LOCAL, IFA_LABEL,
#: IFA_FLAGS and IFA_CACHEINFO, in that order.  Captured with a plain socket.
KERNEL_DUMP_PART = bytes.fromhex(
    "4c0000001400020001000000f2360000020880fe01000000080001007f000001080002007f000001"
    "070003006c6f0000080008008000000014000600ffffffffffffffffce311000ce311000"
    "4c0000001400020001000000f2360000021880000300000008000100c000020208000200c0000202"
    "0700030076300000080008008000000014000600ffffffffffffffffd0311000d0311000"
)
IFA_F_PERMANENT = 0x80
RT_SCOPE_HOST = 254


def test_kernel_dump_reply_decodes() -> None:
    lo, v0 = decode_datagram(KERNEL_DUMP_PART)
    for message in (lo, v0):
        assert (message.type, message.flags, message.seq, message.port_id) == (
            RTM_NEWADDR,
            int(NLM_F.MULTI),
            1,
            0x36F2,
        )
    assert lo.body == AddressMessage(
        family=AF_INET,
        prefixlen=8,
        flags=IFA_F_PERMANENT,
        scope=RT_SCOPE_HOST,
        index=1,
        address=IPv4Address("127.0.0.1"),
        local=IPv4Address("127.0.0.1"),
        label="lo",
        extended_flags=IFA_F_PERMANENT,
        other=((IFA_CACHEINFO, bytes.fromhex("ffffffffffffffffce311000ce311000")),),
    )
    body = v0.body
    assert isinstance(body, AddressMessage)
    assert (body.family, body.prefixlen, body.flags, body.scope, body.index) == (
        AF_INET,
        24,
        IFA_F_PERMANENT,
        0,
        3,
    )
    assert body.address == body.local == IPv4Address("192.0.2.2")
    assert (body.label, body.broadcast, body.protocol) == ("v0", None, None)
    # The kernel writes the modelled attributes in ascending order and IFA_CACHEINFO
    # (6) after IFA_FLAGS (8), where `other` goes: re-encoding gives its bytes back.
    assert encode_messages([lo, v0]) == KERNEL_DUMP_PART


def test_address_message_is_public() -> None:
    assert asyncroute.AddressMessage is AddressMessage
    assert "AddressMessage" in asyncroute.__all__
