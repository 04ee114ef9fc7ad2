"""One hop of an ECMP route: :class:`Nexthop`, and its RTA_MULTIPATH wire form.

A multipath route (``Route(prefix, nexthops=[Nexthop(...), ...])``) spreads its flows
over several gateways/devices by weight.  The kernel takes the hops as one
RTA_MULTIPATH attribute: a ``struct rtnexthop`` per hop (device, ``weight - 1``,
``RTNH_F_*`` flags) followed by the hop's RTA_GATEWAY.

IPv4 keeps a multipath route as one FIB entry.  IPv6 keeps one entry per hop
("siblings") but answers a dump with the siblings merged into one RTA_MULTIPATH, and
NLM_F_REPLACE replaces all siblings at once, so both families look alike through
asyncroute; a delete without hop details removes every sibling (``ip6_route_del``).
"""

from __future__ import annotations

import struct

from . import ip_route_words as ip_words
from ._codec import NLA_F_NESTED, RTA_ENCAP, RTA_ENCAP_TYPE, RTA_FLOW
from ._frame import NLA_TYPE_MASK
from ._values import IPAddress, check_attributes, check_device, check_uint, parse_address
from .constants import RTNH_F
from .encap import Encap
from .messages import MultipathHop, RawAttributes

__all__ = ["Nexthop"]

_ONLINK = int(RTNH_F.ONLINK)
_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")


class Nexthop:
    """One hop of a multipath route: gateway and/or device, weight, onlink.

    Args:
        gateway: the hop's gateway (string or ipaddress object); None for a device-only
            hop.
        device: the hop's output device name; "" lets the kernel pick it from the
            gateway (IPv4 only; IPv6 needs a device for each hop).
        weight: relative share of flows, 1..256 (``ip route … weight W``).
        onlink: RTNH_F_ONLINK — use the gateway even if no subnet on the device holds it.
        realms: the hop's realms (RTA_FLOW; keyword-only), as :attr:`Route.realms`.
        encap: the hop's encapsulation (keyword-only), an :class:`~asyncroute.Encap`.
        other_attributes: the hop's attributes the library does not model, sent as
            given (keyword-only; a listing keeps there what it could not decode).

    Immutable, hashable, compared by value.  Raises ValueError naming the bad field.

    Example::

        Route("203.0.113.0/24", nexthops=[
            Nexthop("192.0.2.1", "v0", weight=3),
            Nexthop("192.0.2.5", "v0"),
        ], table=100)
    """

    __slots__ = ("_device", "_encap", "_gateway", "_onlink", "_other", "_realms", "_weight")

    def __init__(
        self,
        gateway: str | IPAddress | None = None,
        device: str = "",
        weight: int = 1,
        onlink: bool = False,
        *,
        realms: int = 0,
        encap: Encap | None = None,
        other_attributes: RawAttributes = (),
    ) -> None:
        self._gateway = None if gateway is None else parse_address(gateway, "gateway")
        self._device = check_device(device)
        if type(weight) is not int or not 1 <= weight <= 256:
            # rtnh_hops is one byte holding weight - 1.
            raise ValueError(f"weight: {weight!r} is not an integer in 1..256")
        if type(onlink) is not bool:
            raise ValueError(f"onlink: {onlink!r} is not a bool")
        if self._gateway is None and not self._device:
            raise ValueError("gateway: a hop needs a gateway, a device, or both")
        self._weight = weight
        self._onlink = onlink
        self._realms = check_uint(realms, "realms", 0xFFFFFFFF)
        if encap is not None and not isinstance(encap, Encap):
            raise TypeError(f"encap must be an Encap, got {encap!r}")
        self._encap = encap
        self._other = check_attributes(other_attributes)

    @property
    def gateway(self) -> IPAddress | None:
        """The hop's gateway, or None."""
        return self._gateway

    @property
    def device(self) -> str:
        """The hop's device name ("" when unset)."""
        return self._device

    @property
    def weight(self) -> int:
        """Relative weight, 1..256."""
        return self._weight

    @property
    def onlink(self) -> bool:
        """True if the gateway is used even when no connected subnet holds it."""
        return self._onlink

    @property
    def realms(self) -> int:
        """The hop's realms (RTA_FLOW), 0 for none."""
        return self._realms

    @property
    def encap(self) -> Encap | None:
        """The hop's encapsulation, or None."""
        return self._encap

    @property
    def other_attributes(self) -> RawAttributes:
        """The hop's attributes the library does not model, sent as given."""
        return self._other

    def _key(self) -> tuple[object, ...]:
        return (
            self._gateway, self._device, self._weight, self._onlink, self._realms,
            self._encap, self._other,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Nexthop):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Nexthop(gateway={self._gateway!r}, device={self._device!r}, "
            f"weight={self._weight!r}, onlink={self._onlink!r}"
            + (f", realms={self._realms!r}" if self._realms else "")
            + (f", encap={self._encap!r}" if self._encap is not None else "")
            + (f", other_attributes={self._other!r}" if self._other else "")
            + ")"
        )

    def _wire(self, ifindex: int) -> MultipathHop:
        """The hop as RTA_MULTIPATH carries it, with its device's ifindex (0: none)."""
        return MultipathHop(
            ifindex,
            self._gateway,
            self._weight - 1,
            _ONLINK if self._onlink else 0,
            hop_attributes(self._realms, self._encap, self._other),
        )

    def _ip_tokens(self) -> list[str]:
        """``nexthop via GW dev D weight W onlink`` for ``ip route``; ValueError for
        attributes ``ip`` cannot write."""
        if self._other:
            numbers = ", ".join(str(number) for number, _ in self._other)
            raise ValueError(f"other_attributes: ip cannot write hop attribute(s) {numbers}")
        return self._words()

    def _words(self) -> list[str]:
        """``nexthop [encap …] via GW [realms R] dev D weight W [onlink]``, as ``ip
        route`` writes (and reads) one hop."""
        tokens = ["nexthop"]
        if self._encap is not None:
            tokens += ip_words.encap_words(self._encap)
        if self._gateway is not None:
            tokens += ["via", str(self._gateway)]
        if self._realms:
            tokens += ip_words.realms_text(self._realms)
        if self._device:
            tokens += ["dev", self._device]
        tokens += ["weight", str(self._weight)]
        if self._onlink:
            tokens.append("onlink")
        return tokens


def hop_attributes(realms: int, encap: Encap | None, other: RawAttributes = ()) -> RawAttributes:
    """The attributes of one RTA_MULTIPATH hop after its gateway: RTA_FLOW, the
    encapsulation (RTA_ENCAP, RTA_ENCAP_TYPE), then ``other`` as given."""
    attributes: list[tuple[int, bytes]] = []
    if realms:
        attributes.append((RTA_FLOW, _U32.pack(realms)))
    if encap is not None:
        attributes.append((RTA_ENCAP | NLA_F_NESTED, encap.data))
        attributes.append((RTA_ENCAP_TYPE, _U16.pack(encap.type)))
    return (*attributes, *other)


def nexthop_from_wire(hop: MultipathHop, device: str) -> Nexthop:
    """The :class:`Nexthop` of a decoded hop (``device`` is its ifindex's name)."""
    realms = 0
    encap_type: int | None = None
    encap_data: bytes | None = None
    other: list[tuple[int, bytes]] = []
    for kind, value in hop.other:
        number = kind & NLA_TYPE_MASK
        if number == RTA_FLOW and len(value) == 4:
            realms = _U32.unpack(value)[0]
        elif number == RTA_ENCAP_TYPE and len(value) >= 2:
            encap_type = _U16.unpack_from(value)[0]
        elif number == RTA_ENCAP:
            encap_data = value
        else:
            other.append((kind, value))
    encap = None
    if encap_type is not None or encap_data is not None:
        encap = Encap(encap_type or 0, encap_data or b"")
    return Nexthop(
        hop.gateway, device, hop.weight, bool(hop.flags & _ONLINK),
        realms=realms, encap=encap, other_attributes=tuple(other),
    )  # fmt: skip
