"""Lightweight tunnel encapsulation of a route: :class:`Encap` (RTA_ENCAP_TYPE + RTA_ENCAP).

A route with an encapsulation (``ip route add … encap ip id 5 dst 192.0.2.9 dev v0``)
hands its packets to a tunnel with per-route metadata.  The kernel keeps the metadata
as a nest of attributes whose layout depends on the type.  :class:`Encap` holds the
type and the nest's bytes exactly as the kernel reported them, so a listed route is
written back byte for byte whatever its type; :meth:`Encap.ip`, :meth:`Encap.ip6` and
:meth:`Encap.mpls` build the common ones, and :meth:`Encap.fields` reads them back.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from ._frame import NLA_TYPE_MASK, align, iter_attributes
from ._values import IPAddress, check_uint, parse_address

__all__ = ["ENCAP_TYPE", "Encap"]


class ENCAP_TYPE(enum.IntEnum):
    """``LWTUNNEL_ENCAP_*`` (``linux/lwtunnel.h``), named as ``ip route … encap`` names them."""

    MPLS = 1
    IP = 2
    ILA = 3
    IP6 = 4
    SEG6 = 5
    BPF = 6
    SEG6_LOCAL = 7
    RPL = 8
    IOAM6 = 9
    XFRM = 10


# LWTUNNEL_IP_* and LWTUNNEL_IP6_* share numbers: ID (be64), DST, SRC, TTL/HOPLIMIT (u8),
# TOS/TC (u8), FLAGS (be16).  MPLS_IPTUNNEL_DST is the label stack, MPLS_IPTUNNEL_TTL a u8.
_ID, _DST, _SRC, _TTL, _TOS, _FLAGS = range(1, 7)
_MPLS_DST, _MPLS_TTL = 1, 2
#: ``TUNNEL_*`` flags as ``ip`` names them (``csum``, ``key``, ``seq``).
TUNNEL_FLAGS = {"csum": 0x01, "key": 0x04, "seq": 0x08}


def _attribute(number: int, value: bytes) -> bytes:
    length = 4 + len(value)
    return struct.pack("=HH", length, number) + value + bytes(align(length) - length)


class Encap:
    """A route's encapsulation: ``type`` (:class:`ENCAP_TYPE` or any number) and
    ``data``, the payload of the RTA_ENCAP nest, sent exactly as given.

    Immutable, hashable, compared by value.
    """

    __slots__ = ("_data", "_type")

    def __init__(self, type: int, data: bytes) -> None:
        check_uint(type, "encap type", 0xFFFF)
        if not isinstance(data, bytes):
            raise TypeError(f"encap data must be bytes, got {data!r}")
        self._type = type
        self._data = data

    @property
    def type(self) -> int:
        """LWTUNNEL_ENCAP_* number."""
        return self._type

    @property
    def data(self) -> bytes:
        """The RTA_ENCAP nest's payload."""
        return self._data

    @property
    def type_name(self) -> str:
        """``ip``'s name of the type ("ip", "mpls", …), or the number as text."""
        try:
            return ENCAP_TYPE(self._type).name.lower()
        except ValueError:
            return str(self._type)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Encap):
            return NotImplemented
        return (self._type, self._data) == (other._type, other._data)

    def __hash__(self) -> int:
        return hash((self._type, self._data))

    def __repr__(self) -> str:
        return f"Encap(type={self._type!r}, data={self._data!r})"

    # ---------------------------------------------------------------- builders

    @classmethod
    def ip(
        cls,
        *,
        id: int = 0,
        dst: str | IPAddress | None = None,
        src: str | IPAddress | None = None,
        ttl: int = 0,
        tos: int = 0,
        flags: Iterable[str] = (),
    ) -> Encap:
        """``encap ip id ID dst DST src SRC ttl TTL tos TOS [key] [csum] [seq]``: IPv4
        tunnel metadata (LWTUNNEL_ENCAP_IP), the attributes in the kernel's order."""
        return cls._ip_tunnel(ENCAP_TYPE.IP, 4, id, dst, src, ttl, tos, flags)

    @classmethod
    def ip6(
        cls,
        *,
        id: int = 0,
        dst: str | IPAddress | None = None,
        src: str | IPAddress | None = None,
        hoplimit: int = 0,
        tc: int = 0,
        flags: Iterable[str] = (),
    ) -> Encap:
        """``encap ip6 id ID dst DST src SRC hoplimit H tc TC [key] [csum] [seq]``: IPv6
        tunnel metadata (LWTUNNEL_ENCAP_IP6)."""
        return cls._ip_tunnel(ENCAP_TYPE.IP6, 6, id, dst, src, hoplimit, tc, flags)

    @classmethod
    def _ip_tunnel(
        cls,
        kind: int,
        version: int,
        tunnel_id: int,
        dst: str | IPAddress | None,
        src: str | IPAddress | None,
        ttl: int,
        tos: int,
        flags: Iterable[str],
    ) -> Encap:
        check_uint(tunnel_id, "encap id", 2**64 - 1)
        check_uint(ttl, "encap ttl" if version == 4 else "encap hoplimit", 255)
        check_uint(tos, "encap tos" if version == 4 else "encap tc", 255)
        bits = 0
        for flag in flags:
            if flag not in TUNNEL_FLAGS:
                raise ValueError(f"encap flags: {flag!r} is not one of {', '.join(TUNNEL_FLAGS)}")
            bits |= TUNNEL_FLAGS[flag]
        data = [_attribute(_ID, struct.pack(">Q", tunnel_id))]  # iproute2 always sends it
        for number, value in ((_DST, dst), (_SRC, src)):
            if value is not None:
                address = parse_address(value, "encap " + ("dst" if number == _DST else "src"))
                if address.version != version:
                    raise ValueError(f"encap: {address} is not an IPv{version} address")
                data.append(_attribute(number, address.packed))
        data.append(_attribute(_TTL, bytes((ttl,))))
        data.append(_attribute(_TOS, bytes((tos,))))
        if bits:
            data.append(_attribute(_FLAGS, struct.pack(">H", bits)))
        return cls(kind, b"".join(data))

    @classmethod
    def mpls(cls, labels: Iterable[int], *, ttl: int | None = None) -> Encap:
        """``encap mpls L1/L2/… [ttl T]``: push this label stack (LWTUNNEL_ENCAP_MPLS)."""
        stack = [check_uint(label, "encap label", 0xFFFFF) for label in labels]
        if not stack:
            raise ValueError("encap labels: give at least one label")
        words = b"".join(
            struct.pack(">I", label << 12 | (0x100 if i == len(stack) - 1 else 0))
            for i, label in enumerate(stack)
        )
        data = _attribute(_MPLS_DST, words)
        if ttl is not None:
            data += _attribute(_MPLS_TTL, bytes((check_uint(ttl, "encap ttl", 255),)))
        return cls(ENCAP_TYPE.MPLS, data)

    # ---------------------------------------------------------------- reading

    def fields(self) -> dict[str, object] | None:
        """The metadata as ``ip`` names it, for the types :class:`Encap` builds: ``ip``
        and ``ip6`` (``id``, ``dst``, ``src``, ``ttl``/``hoplimit``, ``tos``/``tc``,
        ``flags``), ``mpls`` (``labels``, ``ttl``).  None for another type or for data
        holding anything else (such an encapsulation is still written back exactly)."""
        try:
            attributes = [
                (number & NLA_TYPE_MASK, bytes(value))
                for number, value in iter_attributes(memoryview(self._data))
            ]
        except ValueError:
            return None
        if self._type == ENCAP_TYPE.MPLS:
            return _mpls_fields(attributes)
        if self._type in (ENCAP_TYPE.IP, ENCAP_TYPE.IP6):
            return _ip_fields(attributes, self._type == ENCAP_TYPE.IP)
        return None


def _ip_fields(attributes: list[tuple[int, bytes]], v4: bool) -> dict[str, object] | None:
    fields: dict[str, object] = {}
    size = 4 if v4 else 16
    address = IPv4Address if v4 else IPv6Address
    for number, value in attributes:
        if number == _ID and len(value) == 8:
            fields["id"] = struct.unpack(">Q", value)[0]
        elif number in (_DST, _SRC) and len(value) == size:
            fields["dst" if number == _DST else "src"] = address(value)
        elif number in (_TTL, _TOS) and len(value) == 1:
            names = ("ttl", "tos") if v4 else ("hoplimit", "tc")
            fields[names[number - _TTL]] = value[0]
        elif number == _FLAGS and len(value) == 2:
            bits = struct.unpack(">H", value)[0]
            if bits & ~sum(TUNNEL_FLAGS.values()):
                return None
            fields["flags"] = [name for name, bit in TUNNEL_FLAGS.items() if bits & bit]
        elif number != 7:  # LWTUNNEL_IP_PAD: alignment only
            return None
    return fields


def _mpls_fields(attributes: list[tuple[int, bytes]]) -> dict[str, object] | None:
    fields: dict[str, object] = {}
    for number, value in attributes:
        if number == _MPLS_DST and value and len(value) % 4 == 0:
            fields["labels"] = [word >> 12 for (word,) in struct.iter_unpack(">I", value)]
        elif number == _MPLS_TTL and len(value) == 1:
            fields["ttl"] = value[0]
        else:
            return None
    return fields
