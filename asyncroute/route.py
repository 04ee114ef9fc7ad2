"""Cilium's ``Route``: validated, mapped to RTM_NEWROUTE/RTM_DELROUTE, and its operations.

The operations (:func:`upsert`, :func:`delete`, :func:`lookup`) take any
:class:`~asyncroute.connection.NetlinkConnection`; :class:`asyncroute.Connection` exposes
them as methods.  Wire mapping (cilium-route-spec §3): table 0 → main, ≥ 256 → RTA_TABLE
with header table 0; proto 0 → boot; type 0 → unicast; scope 0 → universe, or host for
a local route; ``local`` → RTA_PREFSRC; MTU → RTA_METRICS{RTAX_MTU} only when non-zero;
RTA_OIF always.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Unpack

from . import ip_route_words as ip_words
from . import iproute2
from ._codec import RTA_CACHEINFO, RTAX_MTU, encode_body, pack_route_body
from ._flight import SingleFlight
from ._frame import NLA_TYPE_MASK
from ._links import device_index, device_name
from ._retry import RetryPolicy
from ._values import (
    U32_MAX,
    IPAddress,
    IPNetwork,
    check_device,
    check_uint,
    network_from_packed,
    parse_packed_address,
    parse_prefix,
)
from .connection import DUMP_RETRIES, NetlinkConnection
from .constants import (
    AF_INET,
    NLM_F,
    RT_SCOPE,
    RT_TABLE,
    RTAX,
    RTM,
    RTM_F,
    RTN,
    RTNH_F,
    RTPROT,
)
from .encap import Encap
from .errors import ExistsError, KernelError, NotFoundError, kernel_error
from .messages import Message, RawAttributes, RouteMessage
from .multipath import Nexthop, nexthop_from_wire
from .route_attributes import (
    METRIC_NAMES,
    METRICS,
    NO_ATTRIBUTES,
    RouteAttributeArgs,
    RouteAttributes,
    route_attributes,
)

if TYPE_CHECKING:
    from .mtu import Configuration

__all__ = [
    "ENCRYPT_ROUTE_PROTOCOL",
    "IP6_DEFAULT_METRIC",
    "MAIN_TABLE",
    "METRICS",
    "RTN_LOCAL",
    "Route",
    "by_mask",
    "delete",
    "lookup",
    "upsert",
]

#: Route type "local" (Cilium's ``RTN_LOCAL``).
RTN_LOCAL = int(RTN.LOCAL)
#: The main routing table (Cilium's ``MainTable``).
MAIN_TABLE = int(RT_TABLE.MAIN)
#: rtm_protocol of the routes Cilium installs for IPsec (Cilium's
#: ``EncryptRouteProtocol``; numerically ``RTPROT_EIGRP``, which ``ip`` prints "eigrp").
ENCRYPT_ROUTE_PROTOCOL = 192
#: The metric the kernel gives an IPv6 route added without one (``IP6_RT_PRIO_USER``).
IP6_DEFAULT_METRIC = 1024

_typeof = builtins.type  # `type` is a field, and so a parameter, of Route
_ZERO = 0
_DEVICELESS_TYPES = frozenset((RTN.BLACKHOLE, RTN.UNREACHABLE, RTN.PROHIBIT, RTN.THROW))


_ONLINK = int(RTNH_F.ONLINK)
_EXTRA_FIELDS = RouteAttributeArgs.__optional_keys__
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # USER_HZ: the unit of rta_cacheinfo.rta_expires


#: Attributes the kernel reports that describe its state rather than the route: a
#: listing drops them, and they are never sent (RTA_UID, RTA_TTL_PROPAGATE of MPLS
#: answers to RTM_GETROUTE aside, the kernel adds none but these to a route dump).
_KERNEL_ONLY = frozenset((RTA_CACHEINFO, 25))  # RTA_CACHEINFO, RTA_UID


class Route:
    """A route as Cilium describes it: immutable, hashable, compared by value.

    Args:
        prefix: destination network (``"198.51.100.0/24"``); host bits must be clear.
        nexthop: gateway; None for a direct route (``prefix dev X``).
        local: preferred source address (RTA_PREFSRC).
        device: output device name.
        mtu: route MTU (0: none).  0..65535.
        proto: rtm_protocol (0: boot).  0..255.
        scope: rtm_scope (0: universe, host for local routes).  0..255.
        type: rtm_type (0: unicast).  0..255.
        table: routing table (0: main).  0..2**32-1.
        priority: metric.  0..2**32-1.
        nexthops: ECMP hops (:class:`~asyncroute.Nexthop`), sent as RTA_MULTIPATH; then
            ``nexthop`` and ``device`` stay unset (each hop has its own).
        nexthop_id: use the kernel nexthop object (or group) with this id (RTA_NH_ID,
            Linux 5.3+; see :mod:`asyncroute.nexthop`); then ``nexthop``, ``device`` and
            ``nexthops`` stay unset.

    Keyword-only, for everything else the kernel keeps with a route (all default to
    "not set", and a route that sets none of them is sent exactly as Cilium sends it):

    Keyword Args:
        tos (int): the TOS/DSCP byte the route matches (IPv4; part of the kernel's
            key).
        source (str | IPNetwork | None): source prefix the route matches (IPv6
            ``from``; part of the key).
        metrics (Mapping[str, int | str] | None): RTA_METRICS by name (see
            :data:`METRICS`): ``{"advmss": 1300, "hoplimit": 5, "congctl": "reno"}``;
            values in the kernel's units.
        locked (Iterable[str]): names of metrics whose value is locked (``mtu lock``;
            "mtu" included).
        onlink (bool): RTNH_F_ONLINK: use the gateway even if no subnet on the device
            holds it.
        pref (int): IPv6 router preference (RTA_PREF): 0 medium, 1 high, 3 low.
        expires (int): IPv6 lifetime in seconds (RTA_EXPIRES); a listed route reports
            what remains of it.
        realms (int): the route's realms (RTA_FLOW): ``to`` in the low 16 bits,
            ``from`` in the high 16 bits (IPv4).
        encap (Encap | None): a lightweight tunnel encapsulation
            (:class:`~asyncroute.Encap`).
        other_attributes (RawAttributes): ``(RTA_* number, bytes)`` pairs the library
            does not model, sent exactly as given (a listing keeps what it could not
            decode here).

    ``nexthop`` may be an IPv6 gateway for an IPv4 prefix (``via inet6 …``; RTA_VIA).

    Addresses and prefixes may be strings or ipaddress objects; the attributes are
    ipaddress objects.  Mixed address families are a ValueError.  Use :meth:`replace`
    for a copy with some fields changed.

    Construction is on the hot path of bulk upserts (a route per ~2 µs): the prefix is
    checked and kept packed, and its ``ipaddress`` object is built only when
    :attr:`prefix` is first read.
    """

    __slots__ = (
        "_device",
        "_dst",
        "_family",
        "_gateway",
        "_gw",
        "_hops",
        "_local",
        "_mtu",
        "_network",
        "_nh_id",
        "_plen",
        "_priority",
        "_proto",
        "_scope",
        "_src",
        "_table",
        "_type",
        "_x",
    )

    def __init__(
        self,
        prefix: str | IPNetwork,
        nexthop: str | IPAddress | None = None,
        local: str | IPAddress | None = None,
        device: str = "",
        mtu: int = 0,
        proto: int = 0,
        scope: int = 0,
        table: int = 0,
        type: int = 0,
        priority: int = 0,
        nexthops: Iterable[Nexthop] | None = None,
        nexthop_id: int = 0,
        **attributes: Unpack[RouteAttributeArgs],
    ) -> None:
        self._family, self._dst, self._plen, self._network = parse_prefix(prefix, "prefix")
        via = False
        if nexthop is None:
            self._gateway = self._gw = None
        else:
            self._gateway, self._gw = parse_packed_address(nexthop, "nexthop")
            if len(self._gw) != len(self._dst):
                if self._family != AF_INET:
                    self._mixed("nexthop", self._gateway)
                via = True  # an IPv4 route via an IPv6 gateway (Linux 5.2+)
        if local is None:
            self._local = self._src = None
        else:
            self._local, self._src = parse_packed_address(local, "local")
            if len(self._src) != len(self._dst):
                self._mixed("local", self._local)
        # The common cases are checked inline: every number but the table left at 0 (the
        # int 0 itself: False and 0.0 are other objects), or plain ints in range.
        if not (
            mtu is proto is scope is type is priority is _ZERO
            and _typeof(table) is int
            and 0 <= table <= U32_MAX
        ) and not (
            _typeof(mtu) is _typeof(proto) is _typeof(scope) is _typeof(table) is int
            and _typeof(type) is _typeof(priority) is int
            and 0 <= mtu <= 65535
            and 0 <= proto <= 255
            and 0 <= scope <= 255
            and 0 <= table <= U32_MAX
            and 0 <= type <= 255
            and 0 <= priority <= U32_MAX
        ):
            check_uint(mtu, "mtu", 65535)
            check_uint(proto, "proto", 255)
            check_uint(scope, "scope", 255)
            check_uint(table, "table", U32_MAX)
            check_uint(type, "type", 255)
            check_uint(priority, "priority", U32_MAX)
        self._device = check_device(device)
        self._mtu = mtu
        self._proto = proto
        self._scope = scope
        self._table = table
        self._type = type
        self._priority = priority
        self._hops: tuple[Nexthop, ...] = ()
        self._nh_id = 0
        if nexthops is not None or nexthop_id:
            self._check_nexthops(nexthops, nexthop_id)
        # Keyword-only attributes go in one slot, left None when none is given: one
        # test on the hot path of bulk construction.
        self._x: RouteAttributes | None = None
        if attributes or via:
            found = route_attributes(self._family, via=via, **attributes)
            if found != NO_ATTRIBUTES:
                self._x = found

    def _check_nexthops(self, nexthops: Iterable[Nexthop] | None, nexthop_id: int) -> None:
        # The kernel refuses a route that names its nexthop two ways ("Nexthop
        # specification and nexthop id are mutually exclusive"; RTA_OIF must match the
        # first hop of RTA_MULTIPATH): one way only, checked here.
        check_uint(nexthop_id, "nexthop_id", U32_MAX)
        hops = () if nexthops is None else tuple(nexthops)
        for hop in hops:
            if not isinstance(hop, Nexthop):
                raise ValueError(f"nexthops: {hop!r} is not a Nexthop")
            if hop.gateway is not None and hop.gateway.version != self.prefix.version:
                self._mixed("nexthops", hop.gateway)
        if nexthops is not None and not hops:
            raise ValueError("nexthops: give at least one Nexthop, or None")
        if hops and nexthop_id:
            raise ValueError("nexthop_id: a route uses either nexthops or a nexthop_id")
        for field, value in (("nexthop", self._gateway), ("device", self._device)):
            if value:
                via = "nexthops" if hops else "nexthop_id"
                raise ValueError(f"{field}: a route with {via} has no {field} of its own")
        self._hops = hops
        self._nh_id = nexthop_id

    def _mixed(self, field: str, address: IPAddress) -> None:
        version = 4 if self._family == AF_INET else 6
        raise ValueError(
            f"{field}: {address} is IPv{address.version} but prefix {self.prefix} is IPv{version}"
        )

    # ------------------------------------------------------------------ fields

    @property
    def prefix(self) -> IPNetwork:
        """Destination network."""
        network = self._network
        if network is None:
            network = self._network = network_from_packed(self._dst, self._plen)
        return network

    @property
    def nexthop(self) -> IPAddress | None:
        """Gateway, or None for a direct route."""
        return self._gateway

    @property
    def local(self) -> IPAddress | None:
        """Preferred source address (RTA_PREFSRC), or None."""
        return self._local

    @property
    def device(self) -> str:
        """Output device name ("" when unset)."""
        return self._device

    @property
    def mtu(self) -> int:
        """Route MTU (0: none)."""
        return self._mtu

    @property
    def proto(self) -> int:
        """rtm_protocol (0: boot)."""
        return self._proto

    @property
    def scope(self) -> int:
        """rtm_scope as given (0: see :attr:`effective_scope`)."""
        return self._scope

    @property
    def table(self) -> int:
        """Routing table as given (0: main; see :attr:`table_id`)."""
        return self._table

    @property
    def type(self) -> int:
        """rtm_type (0: unicast)."""
        return self._type

    @property
    def priority(self) -> int:
        """Metric (0: none)."""
        return self._priority

    @property
    def nexthops(self) -> tuple[Nexthop, ...]:
        """ECMP hops (RTA_MULTIPATH); empty for a single-path route."""
        return self._hops

    @property
    def nexthop_id(self) -> int:
        """The kernel nexthop object this route uses (RTA_NH_ID); 0 for none."""
        return self._nh_id

    @property
    def tos(self) -> int:
        """The TOS/DSCP byte the route matches (0: any)."""
        return self._x.tos if self._x else 0

    @property
    def source(self) -> IPNetwork | None:
        """The source prefix the route matches (IPv6 ``from``), or None."""
        return self._x.source if self._x else None

    @property
    def metrics(self) -> dict[str, int | str]:
        """RTA_METRICS by name, MTU aside (a new dict; empty when none is set)."""
        if not self._x:
            return {}
        found: dict[str, int | str] = {METRIC_NAMES[k]: v for k, v in self._x.metrics}
        if self._x.congctl is not None:
            found["congctl"] = self._x.congctl
        return found

    @property
    def locked(self) -> frozenset[str]:
        """Names of the metrics whose value is locked ("mtu" included)."""
        lock = self._x.lock if self._x else 0
        return frozenset(name for number, name in METRIC_NAMES.items() if lock >> number & 1)

    @property
    def onlink(self) -> bool:
        """RTNH_F_ONLINK: the gateway is used even if no subnet on the device holds it."""
        return self._x.onlink if self._x else False

    @property
    def pref(self) -> int:
        """IPv6 router preference (RTA_PREF): 0 medium, 1 high, 3 low."""
        return self._x.pref if self._x else 0

    @property
    def expires(self) -> int:
        """IPv6 lifetime in seconds (0: none)."""
        return self._x.expires if self._x else 0

    @property
    def realms(self) -> int:
        """RTA_FLOW: ``to`` realm in the low 16 bits, ``from`` in the high 16 bits."""
        return self._x.realms if self._x else 0

    @property
    def encap(self) -> Encap | None:
        """The lightweight tunnel encapsulation, or None."""
        return self._x.encap if self._x else None

    @property
    def other_attributes(self) -> RawAttributes:
        """Attributes the library does not model, kept and sent exactly as given."""
        return self._x.other if self._x else ()

    def _key(self) -> tuple[object, ...]:
        return (
            self._x,
            self._family,
            self._dst,
            self._plen,
            self._gw,
            self._src,
            self._device,
            self._mtu,
            self._proto,
            self._scope,
            self._table,
            self._type,
            self._priority,
            self._hops,
            self._nh_id,
        )

    def __eq__(self, other: object) -> bool:
        if _typeof(other) is not Route:
            return NotImplemented
        assert isinstance(other, Route)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Route(prefix={self.prefix!r}, nexthop={self._gateway!r}, local={self._local!r}, "
            f"device={self._device!r}, mtu={self._mtu!r}, proto={self._proto!r}, "
            f"scope={self._scope!r}, table={self._table!r}, type={self._type!r}, "
            f"priority={self._priority!r}"
            + (f", nexthops={list(self._hops)!r}" if self._hops else "")
            + (f", nexthop_id={self._nh_id!r}" if self._nh_id else "")
            + "".join(f", {name}={value!r}" for name, value in self._extra_fields().items())
            + ")"
        )

    def _extra_fields(self) -> dict[str, Any]:
        """The keyword-only fields that differ from their defaults."""
        if not self._x:
            return {}
        fields: dict[str, Any] = {
            "tos": self.tos,
            "source": self.source,
            "metrics": self.metrics,
            "locked": self.locked,
            "onlink": self.onlink,
            "pref": self.pref,
            "expires": self.expires,
            "realms": self.realms,
            "encap": self.encap,
            "other_attributes": self.other_attributes,
        }
        return {name: value for name, value in fields.items() if value}

    def replace(self, **changes: Any) -> Route:
        """A copy with the given fields changed (validated like the constructor)."""
        fields: dict[str, Any] = {
            "prefix": self.prefix,
            "nexthop": self._gateway,
            "local": self._local,
            "device": self._device,
            "mtu": self._mtu,
            "proto": self._proto,
            "scope": self._scope,
            "table": self._table,
            "type": self._type,
            "priority": self._priority,
            "nexthops": self._hops or None,
            "nexthop_id": self._nh_id,
            **self._extra_fields(),
        }
        unknown = changes.keys() - fields.keys() - _EXTRA_FIELDS
        if unknown:
            raise TypeError(f"Route has no field(s) {', '.join(sorted(unknown))}")
        fields.update(changes)
        return Route(**fields)

    # ------------------------------------------------------------------ derived values

    @property
    def family(self) -> int:
        """AF_INET or AF_INET6."""
        return self._family

    @property
    def table_id(self) -> int:
        """The table upsert writes to: ``table``, or main for 0."""
        return self.table or MAIN_TABLE

    @property
    def effective_scope(self) -> int:
        """``scope``, else host for a local route, else universe (Cilium's rule)."""
        if self.scope:
            return self.scope
        return RT_SCOPE.HOST if self.type == RTN_LOCAL else RT_SCOPE.UNIVERSE

    def nexthop_route(self) -> Route:
        """The ``NH/32 dev X scope link`` route upsert installs before a route via NH.

        Same device and table; scope link for IPv4 only (IPv6 reports scope 0 in dumps,
        so setting it would break lookups, as Cilium notes).
        """
        if self.nexthop is None:
            raise ValueError(f"route {self.prefix} has no nexthop")
        return Route(
            prefix=f"{self.nexthop}/{self.nexthop.max_prefixlen}",
            device=self.device,
            table=self.table,
            scope=RT_SCOPE.LINK if self.nexthop.version == 4 else 0,
        )

    # ------------------------------------------------------------------ ip commands

    def to_ip_command(self, dev: str | None = None) -> list[str]:
        """argv for ``ip`` that adds this route (Cilium's ``ToIPCommand``, completed).

        Cilium's tokens in Cilium's order — ``ip [-6] route add PREFIX [metric N]
        [via NH] [mtu M] dev DEV`` — plus what upsert also sets, so that the command
        recreates the same route: the type before the prefix (``local``), then
        ``table T`` (when not main, or ``table main`` for the types ``ip`` would put in
        table local), ``src LOCAL``, ``scope S`` (when it differs from what
        ``ip`` would choose) and ``proto P``.  ``dev`` defaults to :attr:`device`.
        """
        return self._ip_argv(dev, "add")

    def _ip_argv(self, dev: str | None, verb: str) -> list[str]:
        device = self.device if dev is None else check_device(dev, "dev")
        if not device and not self._hops and not self._nh_id and self._needs_device():
            raise ValueError(f"dev: route {self.prefix} has no device; pass dev")
        argv = ["ip"]
        if self.prefix.version == 6:
            argv.append("-6")
        argv += ["route", verb]
        if self.type not in (0, RTN.UNICAST):
            argv.append(iproute2.type_name(self.type))
        argv.append(str(self.prefix))
        argv += ip_words.head_words(self._x)
        if self.priority:
            argv += ["metric", str(self.priority)]
        if self.nexthop is not None:
            argv += ["via", *(["inet6"] if self._x and self._x.via else []), str(self.nexthop)]
        if self.mtu and self._x is None:  # Cilium's place for it; else with the metrics
            argv += ["mtu", str(self.mtu)]
        if self._nh_id:
            argv += ["nhid", str(self._nh_id)]
        elif not self._hops and device:
            argv += ["dev", device]
        if self.table_id != iproute2.default_table(self.type or RTN.UNICAST):
            argv += ["table", "main" if self.table_id == MAIN_TABLE else str(self.table_id)]
        if self.local is not None:
            argv += ["src", str(self.local)]
        nexthop = self.nexthop is not None or bool(self._hops) or bool(self._nh_id)
        default = iproute2.default_scope(RTM.NEWROUTE, self._family, self.type, nexthop)
        if self.prefix.version == 4 and self.effective_scope != default:
            argv += ["scope", iproute2.scope_name(self.effective_scope)]
        if self.proto:
            argv += ["proto", str(self.proto)]
        if self._x is not None:
            argv += ip_words.tail_words(self._x, self.mtu, for_add=True)
        for hop in self._hops:  # iproute2 reads nexthop specs up to the end of the line
            argv += hop._ip_tokens()
        return argv

    def to_ip_commands(self, dev: str | None = None) -> list[list[str]]:
        """argv lists that do what upsert does: the nexthop route first, then the route,
        each with ``ip route replace`` as upsert replaces them, so that the commands
        succeed from any starting state (a nexthop route shared with another route, the
        route itself already there) and can be run again."""
        commands = []
        if self.nexthop is not None:
            commands.append(self.nexthop_route()._ip_argv(dev, "replace"))
        commands.append(self._ip_argv(dev, "replace"))
        return commands

    # ------------------------------------------------------------------ wire form

    def _body(self, oif: int, mtu: int) -> bytes:
        """The RTM_NEWROUTE body upsert sends (netlink ``routeHandle`` semantics) for a
        single-path route; packed in one call when it has only Cilium's fields."""
        if self._x is not None:
            return encode_body(self._message(oif, (), mtu))
        table = self._table or MAIN_TABLE
        scope = self._scope
        if not scope and self._type == RTN_LOCAL:
            scope = RT_SCOPE.HOST
        return pack_route_body(
            self._family,
            self._plen,
            table if table < 256 else RT_TABLE.UNSPEC,
            self._proto or RTPROT.BOOT,
            scope,
            self._type or RTN.UNICAST,
            self._dst,
            oif,
            self._gw,
            self._priority or None,
            self._src,
            mtu,
            table if table >= 256 else None,
        )

    def _message(self, oif: int, hop_oifs: Iterable[int], mtu: int) -> RouteMessage:
        """The RTM_NEWROUTE body of any route as a message: a multipath route
        (``hop_oifs``: each hop's ifindex, 0 for none), a route via a nexthop object, or
        one with attributes beyond Cilium's (``oif``: its ifindex, 0 for none)."""
        table = self._table or MAIN_TABLE
        scope = self._scope
        if not scope and self._type == RTN_LOCAL:
            scope = RT_SCOPE.HOST
        hops = tuple(hop._wire(oif) for hop, oif in zip(self._hops, hop_oifs, strict=True))
        single = not hops and not self._nh_id
        x = self._x or NO_ATTRIBUTES
        return RouteMessage(
            family=self._family,
            dst_len=self._plen,
            table=table if table < 256 else RT_TABLE.UNSPEC,
            protocol=self._proto or RTPROT.BOOT,
            scope=scope,
            type=self._type or RTN.UNICAST,
            dst=self.prefix.network_address,
            oif=oif if single else None,
            priority=self._priority or None,
            prefsrc=self._local,
            multipath=hops or None,
            table_id=table if table >= 256 else None,
            nexthop_id=self._nh_id or None,
            **x.message_fields(self._gateway, mtu),
        )

    def _delete_body(self, oif: int) -> bytes:
        """RTM_DELROUTE body: only the identifying fields (cilium#41811: IPv4 delete
        compares whatever metrics are sent).  IPv4 needs the exact scope
        (``fib_table_delete``), so a local route's implied host scope is sent too.

        A multipath route or a route via a nexthop object is identified without its
        hops (``oif`` 0: absent): IPv4's ``fib_nh_match`` then matches any nexthops,
        and IPv6's ``ip6_route_del`` removes every sibling.
        """
        table = self._table or MAIN_TABLE
        if self.tos or self.source is not None:  # the rest of the kernel's key
            return encode_body(
                RouteMessage(
                    family=self._family,
                    dst_len=self._plen,
                    src_len=self.source.prefixlen if self.source is not None else 0,
                    tos=self.tos,
                    table=table if table < 256 else RT_TABLE.UNSPEC,
                    scope=self.effective_scope if self._family == AF_INET else 0,
                    dst=self.prefix.network_address,
                    src=self.source.network_address if self.source is not None else None,
                    oif=oif,
                    priority=self._key_metric(),
                    table_id=table if table >= 256 else None,
                )
            )
        return pack_route_body(
            self._family,
            self._plen,
            table if table < 256 else RT_TABLE.UNSPEC,
            0,
            self.effective_scope if self._family == AF_INET else 0,
            0,
            self._dst,
            oif,
            priority=self._key_metric(),
            table_id=table if table >= 256 else None,
        )

    def _key_metric(self) -> int | None:
        """The metric that identifies the route to the kernel, as delete sends it.

        IPv6 (``ip6_route_del``): 0 would match any metric, so 0 is sent as the
        kernel's default, 1024 (``IP6_RT_PRIO_USER``), the metric upsert gave it.
        IPv4 (``fib_table_delete``): the kernel takes the first route whose metric is
        at least the one sent, so metric 0 cannot be named apart: nothing is sent, and
        the lowest metric of the prefix that matches the rest goes (the metric-0 route
        when there is one).
        """
        if self._family == AF_INET:
            return self._priority or None
        return self._priority or IP6_DEFAULT_METRIC

    def _matches(self, found: RouteMessage, oif: int, hop_oifs: Iterable[int] = ()) -> bool:
        """Lookup's match: prefix, table, scope for IPv4, and the nexthop: device and
        gateway, the set of hops (ifindex, gateway, weight), or the nexthop object id."""
        if found.flags & RTM_F.CLONED or found.family != self.family:
            return False
        if found.dst_len != self._plen:
            return False
        dst = found.dst if found.dst is not None else self.prefix.network_address
        if dst != self.prefix.network_address or found.table_number != self.table_id:
            return False
        if self._family == AF_INET and found.scope != self.effective_scope:
            return False
        if (found.priority or 0) != (self._key_metric() or 0) or found.tos != self.tos:
            return False
        source = self.source
        if found.src_len != (0 if source is None else source.prefixlen) or (
            source is not None and found.src != source.network_address
        ):
            return False
        if self._nh_id:
            return found.nexthop_id == self._nh_id
        if found.nexthop_id is not None:
            return False
        if self._hops:
            ours = {(o, h.gateway, h.weight) for h, o in zip(self._hops, hop_oifs, strict=True)}
            theirs = {(h.ifindex, h.gateway, h.weight) for h in found.multipath or ()}
            return ours == theirs
        return found.multipath is None and found.oif == oif and found.gateway == self._gateway

    def _require_device(self) -> str:
        if not self._device and not self._hops and not self._nh_id and self._needs_device():
            raise ValueError(f"device: route {self.prefix} needs a device")
        return self._device

    def _needs_device(self) -> bool:
        # Routes that drop or divert packets have no nexthop at all (fib_check_nh is not
        # reached for them; IPv6 puts them on the loopback device).
        return self._type not in _DEVICELESS_TYPES

    async def _resolve(self, conn: NetlinkConnection) -> tuple[int, tuple[int, ...]]:
        """The route's ifindex (0 for none) and its hops' ifindexes; NotFoundError
        names a missing device."""
        device = self._require_device()
        oif = await device_index(conn, device) if device else 0
        hop_oifs = [await device_index(conn, h.device) if h.device else 0 for h in self._hops]
        return oif, tuple(hop_oifs)

    def _request_body(self, oif: int, hop_oifs: tuple[int, ...], mtu: int) -> bytes:
        """The RTM_NEWROUTE body upsert sends, for any kind of nexthop."""
        if self._hops or self._nh_id or self._x:
            return encode_body(self._message(oif, hop_oifs, mtu))
        return self._body(oif, mtu)


def by_mask(routes: Iterable[Route]) -> list[Route]:
    """The routes narrowest prefix first (Cilium's ``ByMask`` sort), e.g. to install
    specific routes before the broader ones that would otherwise carry their traffic.

    Unlike Go's ``sort.Sort``, the sort is stable: routes with equal prefix lengths keep
    their order.
    """
    return sorted(routes, key=lambda route: -route._plen)


def _from_message(
    found: RouteMessage, device: str, hop_devices: Mapping[int, str] | None = None
) -> Route:
    """The Route a kernel route message describes.  ``device`` is the name of its
    RTA_OIF; ``hop_devices`` maps the ifindexes of its RTA_MULTIPATH hops to names.

    A route via a nexthop object keeps only the id: with ``nexthop_compat_mode`` on
    (the default) the kernel also reports the object's device and gateways, which are
    the object's, not the route's.
    """
    dst = found.dst
    prefix = f"{dst}/{found.dst_len}" if dst is not None else (
        f"0.0.0.0/{found.dst_len}" if found.family == AF_INET else f"::/{found.dst_len}"
    )  # fmt: skip
    nexthop_id = found.nexthop_id or 0
    hops = None
    if found.multipath and not nexthop_id:
        names = hop_devices or {}
        hops = [nexthop_from_wire(h, names.get(h.ifindex, "")) for h in found.multipath]
    single = not nexthop_id and hops is None
    gateway = found.gateway
    if found.via is not None and gateway is None:
        gateway = found.via[1]
    lock = 0
    metrics: dict[str, int | str] = {}
    for kind, value in found.metrics:
        if kind == RTAX.LOCK:
            lock = value
        elif kind != RTAX_MTU:
            metrics[METRIC_NAMES[kind]] = value
    if found.congctl is not None:
        metrics["congctl"] = found.congctl
    expires = found.expires or 0  # as sent (the kernel reports the cacheinfo instead)
    if found.cacheinfo is not None and found.cacheinfo[2] > 0:
        # ``ip`` prints rta_expires / USER_HZ, rounded down; so does this.
        expires = found.cacheinfo[2] // _CLOCK_TICKS
    source = None
    if found.src_len:
        zero = "0.0.0.0" if found.family == AF_INET else "::"
        source = f"{found.src or zero}/{found.src_len}"
    encap = None
    if found.encap_type is not None or found.encap is not None:
        encap = Encap(found.encap_type or 0, found.encap or b"")
    attributes: dict[str, Any] = {
        "tos": found.tos,
        "source": source,
        "metrics": metrics,
        "locked": [name for number, name in METRIC_NAMES.items() if lock >> number & 1],
        "onlink": bool(found.flags & _ONLINK) and single,
        "pref": found.pref or 0,
        "expires": expires,
        "realms": found.flow or 0,
        "encap": encap,
        "other_attributes": tuple(
            (kind, value) for kind, value in found.other if kind & NLA_TYPE_MASK not in _KERNEL_ONLY
        ),
    }
    return Route(
        prefix=prefix,
        nexthop=gateway if single else None,
        local=found.prefsrc,
        device=device if single else "",
        mtu=found.mtu or 0,
        proto=found.protocol,
        scope=found.scope,
        table=found.table_number,
        type=found.type,
        priority=found.priority or 0,
        nexthops=hops,
        nexthop_id=nexthop_id,
        **{name: value for name, value in attributes.items() if value},
    )


def _route_mtu(route: Route, mtu_config: Configuration | None) -> int:
    if mtu_config is None:
        return route.mtu
    # Cilium: routes to local endpoints (the prefix holds our own address) get the
    # device MTU; routes leaving the node the route MTU (tunnel/IPsec overhead off).
    if route.local is not None and route.local in route.prefix:
        mtu = mtu_config.get_device_mtu()
    else:
        mtu = mtu_config.get_route_mtu()
    # Cilium sets RTAX_MTU only when the MTU is positive; a configuration whose
    # overhead exceeds a tiny device MTU gives a route without one, not an error.
    return max(mtu, 0)


_REPLACE = int(NLM_F.CREATE | NLM_F.REPLACE)
_CREATE_EXCL = int(NLM_F.CREATE | NLM_F.EXCL)
_ECHO = int(NLM_F.ECHO)
_DEFAULT_RETRY = RetryPolicy()


async def upsert(
    conn: NetlinkConnection,
    route: Route,
    mtu_config: Configuration | None = None,
    *,
    retry: RetryPolicy = _DEFAULT_RETRY,
) -> bool:
    """Install or replace ``route``; see :meth:`asyncroute.Connection.upsert`."""
    oif, hop_oifs = await route._resolve(conn)
    # Built before anything is installed: bad input fails with nothing to undo.
    request = Message(
        RTM.NEWROUTE, _REPLACE, route._request_body(oif, hop_oifs, _route_mtu(route, mtu_config))
    )
    if route.nexthop is None:
        await retry.run(lambda: conn.request(request))
        return True
    nexthops = _NexthopRoutes.of(conn)
    nexthop = nexthops.body(route, oif)
    nexthops.acquire(nexthop)
    try:
        created = await nexthops.install(route, oif, nexthop)
        try:
            await retry.run(lambda: conn.request(request))
        except Exception:
            # Not on cancellation: a cancelled request may still have been applied.
            if created:
                await nexthops.remove_unused(route, oif, nexthop)
            raise
    finally:
        nexthops.release(nexthop)
    return True


class _NexthopRoutes:
    """One connection's nexthop routes in use: installs shared by concurrent calls,
    and how many calls (upserts, bulk calls) are relying on each right now.

    Rollback removes a nexthop route only if this call created it, no other call of
    this process is using it, and the kernel holds no other route through its gateway
    in its table (another program's upsert may have succeeded through it meanwhile).
    Another program adding a route through it between that check and the delete is not
    seen: nothing over netlink can make the check and the delete one step.
    """

    __slots__ = ("conn", "flights", "users")

    def __init__(self, conn: NetlinkConnection) -> None:
        # A proxy: the registry is the value of a WeakKeyDictionary keyed by the
        # connection, and a strong reference back would keep the connection alive.
        self.conn = weakref.proxy(conn)
        self.flights: SingleFlight[bytes, bool] = SingleFlight()
        self.users: dict[bytes, int] = {}

    @classmethod
    def of(cls, conn: NetlinkConnection) -> _NexthopRoutes:
        """The connection's registry."""
        registry = _registries.get(conn)
        if registry is None:
            registry = _registries[conn] = cls(conn)
        return registry

    @staticmethod
    def body(route: Route, oif: int) -> bytes:
        """The RTM_NEWROUTE body of ``route``'s nexthop route."""
        key = (route._gw, route._device, oif, route._table)
        body = _nexthop_bodies.get(key)
        if body is None:
            if len(_nexthop_bodies) >= 1024:
                _nexthop_bodies.clear()
            body = _nexthop_bodies[key] = route.nexthop_route()._body(oif, 0)
        return body

    def acquire(self, nexthop: bytes) -> None:
        """Count the caller as a user of the nexthop route (until :meth:`release`)."""
        self.users[nexthop] = self.users.get(nexthop, 0) + 1

    def release(self, nexthop: bytes) -> None:
        """The caller no longer relies on the nexthop route."""
        left = self.users[nexthop] - 1
        if left:
            self.users[nexthop] = left
        else:
            del self.users[nexthop]

    async def install(self, route: Route, oif: int, nexthop: bytes) -> bool:
        """Replace ``route``'s nexthop route; True if this call created it.

        Concurrent calls for the same nexthop route share one installation (the kernel
        ends in the same state as if each had replaced it); only the one that ran it can
        have created it.  A kernel error is raised naming the nexthop route, as Cilium's
        "unable to add nexthop route" does.
        """
        try:
            created, led = await self.flights.run(nexthop, lambda: self._add(nexthop))
        except KernelError as exc:
            what = f"unable to add nexthop route {route.nexthop_route().prefix} dev {route.device}"
            raise kernel_error(
                exc.errno or errno.EINVAL,  # a KernelError always carries one
                seq=exc.seq,
                msg_type=exc.msg_type,
                message=f"{what}: {exc.message}" if exc.message else what,
                offset=exc.offset,
            ) from exc
        return created and led

    async def _add(self, nexthop: bytes) -> bool:
        try:
            await self.conn.request(Message(RTM.NEWROUTE, _CREATE_EXCL, nexthop))
            return True
        except ExistsError:
            # Shared with other routes (or left from before): make it ours as Cilium
            # does, but remember we did not create it, so that rollback leaves it alone.
            await self.conn.request(Message(RTM.NEWROUTE, _REPLACE, nexthop))
            return False

    async def remove_unused(self, route: Route, oif: int, nexthop: bytes) -> None:
        """Delete ``route``'s nexthop route unless something else uses it; the caller
        has acquired it once."""
        if self.users.get(nexthop, 0) > 1 or await self._in_use(route, oif):
            return
        with contextlib.suppress(KernelError):
            message = route.nexthop_route()._delete_body(oif)
            await self.conn.request(Message(RTM.DELROUTE, 0, message))

    async def _in_use(self, route: Route, oif: int) -> bool:
        """A route in the nexthop route's table goes through its gateway (a dump the
        kernel filters by table and device)."""
        table = route.table_id
        query = RouteMessage(
            family=route.family,
            table=table if table < 256 else RT_TABLE.UNSPEC,
            oif=oif,
            table_id=table if table >= 256 else None,
        )
        gateway = route.nexthop
        dump = self.conn.dump(Message(RTM.GETROUTE, 0, query), retry_interrupted=DUMP_RETRIES)
        async with contextlib.aclosing(dump) as replies:
            async for reply in replies:
                body = reply.body
                if isinstance(body, RouteMessage) and (
                    body.gateway == gateway
                    or any(hop.gateway == gateway for hop in body.multipath or ())
                ):
                    return True  # the rest is drained
        return False


_registries: weakref.WeakKeyDictionary[NetlinkConnection, _NexthopRoutes] = (
    weakref.WeakKeyDictionary()
)
# The nexthop route's body by (gateway, device, ifindex, table): concurrent upserts
# through one gateway would otherwise each build it (~4 µs).
_nexthop_bodies: dict[tuple[bytes | None, str, int, int], bytes] = {}


async def delete(conn: NetlinkConnection, route: Route) -> Route:
    """Delete ``route``; see :meth:`asyncroute.Connection.delete`."""
    oif, hop_oifs = await route._resolve(conn)
    # NLM_F_ECHO: the kernel answers with the route it removed.
    reply = await conn.request(Message(RTM.DELROUTE, _ECHO, route._delete_body(oif)))
    if reply is None or not isinstance(reply.body, RouteMessage):
        return route
    removed = reply.body
    names = {
        oif: route.device,
        **dict(zip(hop_oifs, (h.device for h in route.nexthops), strict=True)),
    }
    for index in (removed.oif, *(h.ifindex for h in removed.multipath or ())):
        if index and index not in names:
            with contextlib.suppress(NotFoundError):
                names[index] = await device_name(conn, index)
    device = names.get(removed.oif or 0, "")
    return _from_message(removed, device, names)


async def lookup(conn: NetlinkConnection, route: Route) -> Route:
    """Find ``route`` in the kernel; see :meth:`asyncroute.Connection.lookup`."""
    device = route._require_device()
    oif, hop_oifs = await route._resolve(conn)
    hop_devices = {o: h.device for h, o in zip(route.nexthops, hop_oifs, strict=True)}
    if route.table_id == MAIN_TABLE:
        # One round trip: the FIB entry the kernel's own lookup reaches for the prefix's
        # address (RTM_F_FIB_MATCH).  It is ours only if it is exactly this prefix in
        # main; otherwise (a more specific route, a policy rule) fall back to a dump.
        probe = RouteMessage(
            family=route.family,
            dst_len=route.prefix.max_prefixlen,
            flags=RTM_F.FIB_MATCH,
            dst=route.prefix.network_address,
        )
        try:
            reply = await conn.request(Message(RTM.GETROUTE, 0, probe))
        except KernelError:
            reply = None
        if (
            reply is not None
            and isinstance(reply.body, RouteMessage)
            and route._matches(reply.body, oif, hop_oifs)
        ):
            return _from_message(reply.body, device, hop_devices)
    # A dump the kernel filters by table and device (NETLINK_GET_STRICT_CHK); the
    # prefix is matched here.
    table = route.table_id
    query = RouteMessage(
        family=route.family,
        table=table if table < 256 else RT_TABLE.UNSPEC,
        oif=oif or None,  # the kernel's dump filter does not look into RTA_MULTIPATH
        table_id=table if table >= 256 else None,
    )
    dump = conn.dump(Message(RTM.GETROUTE, 0, query), retry_interrupted=DUMP_RETRIES)
    async with contextlib.aclosing(dump) as replies:
        async for reply in replies:
            body = reply.body
            if isinstance(body, RouteMessage) and route._matches(body, oif, hop_oifs):
                return _from_message(body, device, hop_devices)  # the rest is drained
    via = (
        f"dev {device}"
        if device
        else f"nhid {route.nexthop_id}"
        if route.nexthop_id
        else "multipath"
    )
    # ESRCH, as the kernel answers a delete of a route it does not hold; no request
    # failed, so the error carries no sequence number or message type.
    raise NotFoundError(
        errno.ESRCH,
        message=f"no route {route.prefix} {via} metric {route._key_metric() or 0} "
        f"in table {route.table_id}",
    )
