"""A route's attributes beyond Cilium's fields: :class:`RouteAttributes`, validated by
:func:`route_attributes`, and the metric names (:data:`METRICS`).

A :class:`~asyncroute.Route` holds them as one value, or None when it has none (most
routes), which keeps the body of a Cilium-shaped route on the packed fast path.  The
command line's words for them are in :mod:`asyncroute.ip_route_words`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any, TypedDict

from ._codec import RTAX_MTU
from ._values import U32_MAX, IPAddress, IPNetwork, check_attributes, check_uint
from .constants import AF_INET, AF_INET6, RTAX, RTNH_F
from .encap import Encap
from .messages import RawAttributes

__all__ = [
    "METRICS",
    "METRIC_NAMES",
    "NO_ATTRIBUTES",
    "RouteAttributeArgs",
    "RouteAttributes",
    "route_attributes",
]


class RouteAttributeArgs(TypedDict, total=False):
    """The keyword-only arguments of :class:`~asyncroute.Route` beyond Cilium's fields
    (documented there)."""

    tos: int
    source: str | IPNetwork | None
    metrics: Mapping[str, int | str] | None
    locked: Iterable[str]
    onlink: bool
    pref: int
    expires: int
    realms: int
    encap: Encap | None
    other_attributes: RawAttributes


#: The metrics a Route takes by name (``ip route``'s words), RTAX_MTU aside: it is
#: Cilium's ``mtu`` field.  Values are the kernel's, in its units (``rtt`` in 1/8 ms,
#: ``rttvar`` in 1/4 ms, ``rto_min`` in ms, as RTA_METRICS carries them); ``congctl``
#: is a string.
METRICS: dict[str, int] = {
    kind.name.lower(): int(kind) for kind in RTAX if kind not in (RTAX.LOCK, RTAX.MTU)
}
METRICS["congctl"] = METRICS.pop("cc_algo")
_METRIC_NAMES = {number: name for name, number in METRICS.items()} | {int(RTAX.MTU): "mtu"}
#: RTAX number → name, "mtu" included.
METRIC_NAMES = {number: name for name, number in METRICS.items()} | {int(RTAX.MTU): "mtu"}
_ONLINK = int(RTNH_F.ONLINK)


@dataclass(frozen=True, slots=True)
class RouteAttributes:
    """A route's attributes beyond Cilium's fields (see :class:`Route`), as they go on
    the wire.  Few routes have any: a Route without them holds None instead, which keeps
    its body on the packed fast path."""

    tos: int = 0
    source: IPv4Network | IPv6Network | None = None
    metrics: tuple[tuple[int, int], ...] = ()  # (RTAX_*, value), sorted, no MTU/LOCK
    congctl: str | None = None
    lock: int = 0  # RTAX_LOCK bitmask
    onlink: bool = False
    pref: int = 0
    expires: int = 0
    realms: int = 0
    via: bool = False  # the gateway is of the other family: sent as RTA_VIA
    encap: Encap | None = None
    other: RawAttributes = ()

    def message_fields(self, gateway: IPAddress | None, mtu: int) -> dict[str, Any]:
        """The :class:`RouteMessage` fields of these attributes, with the route's
        ``gateway`` (RTA_GATEWAY, or RTA_VIA when it is of the other family) and ``mtu``
        (RTAX_MTU when non-zero)."""
        metrics = ((RTAX_MTU, mtu),) if mtu else ()
        if self.lock:
            metrics = ((int(RTAX.LOCK), self.lock), *metrics)
        source = self.source
        encap = self.encap
        return {
            "src_len": source.prefixlen if source is not None else 0,
            "tos": self.tos,
            "flags": _ONLINK if self.onlink else 0,
            "src": source.network_address if source is not None else None,
            "gateway": None if self.via else gateway,
            "via": (AF_INET6, gateway) if self.via and gateway is not None else None,
            "metrics": metrics + self.metrics,
            "congctl": self.congctl,
            "flow": self.realms or None,
            "pref": self.pref or None,
            "encap_type": encap.type if encap is not None else None,
            "encap": encap.data if encap is not None else None,
            "expires": self.expires or None,
            "other": self.other,
        }


def route_attributes(
    family: int,
    *,
    tos: int = 0,
    source: str | IPNetwork | None = None,
    metrics: Mapping[str, int | str] | None = None,
    locked: Iterable[str] = (),
    onlink: bool = False,
    pref: int = 0,
    expires: int = 0,
    realms: int = 0,
    encap: Encap | None = None,
    other_attributes: RawAttributes = (),
    via: bool = False,
) -> RouteAttributes:
    """The attributes of a route of ``family`` beyond Cilium's fields, validated as
    :class:`Route` documents them (a ValueError or TypeError naming the field).  ``via``:
    the route's gateway is of the other family (sent as RTA_VIA)."""
    check_uint(tos, "tos", 255)
    check_uint(pref, "pref", 255)
    check_uint(expires, "expires", U32_MAX)
    check_uint(realms, "realms", U32_MAX)
    if type(onlink) is not bool:
        raise TypeError(f"onlink must be a bool, got {onlink!r}")
    if encap is not None and not isinstance(encap, Encap):
        raise TypeError(f"encap must be an Encap, got {encap!r}")
    network = None
    if source is not None:
        try:
            network = ip_network(source)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"source: {source!r} is not a network prefix ({exc})") from None
        if (network.version == 4) != (family == AF_INET):
            version = 4 if family == AF_INET else 6
            raise ValueError(f"source: {network} is not an IPv{version} prefix")
    numbers: list[tuple[int, int]] = []
    congctl = None
    for name, value in (metrics or {}).items():
        number = METRICS.get(name)
        if number is None:
            hint = " (use mtu=)" if name == "mtu" else ""
            raise ValueError(f"metrics: unknown metric {name!r}{hint}")
        if number == RTAX.CC_ALGO:
            if not isinstance(value, str) or not value or "\0" in value:
                raise ValueError(f"metrics: congctl {value!r} is not an algorithm name")
            congctl = value
        else:
            numbers.append((number, check_uint(value, f"metrics[{name!r}]", U32_MAX)))
    lock = 0
    for name in [locked] if isinstance(locked, str) else locked:
        number = int(RTAX.MTU) if name == "mtu" else METRICS.get(name)
        if number is None:
            raise ValueError(f"locked: unknown metric {name!r}")
        lock |= 1 << number
    return RouteAttributes(
        tos, network, tuple(sorted(numbers)), congctl, lock, onlink, pref, expires,
        realms, via, encap, check_attributes(other_attributes),
    )  # fmt: skip


#: The attributes of a route that has none beyond Cilium's fields.
NO_ATTRIBUTES = RouteAttributes()
