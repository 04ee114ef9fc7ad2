"""MTU configuration, as in Cilium's ``pkg/mtu`` (v1.6): device MTU and route MTU.

``upsert(route, mtu_config)`` consults a :class:`Configuration`: routes to local
endpoints (the prefix contains the route's ``local`` address) get the device MTU, routes
that leave the node get the route MTU, which leaves room for tunnel (VXLAN) and IPsec
headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING

from ._links import mtu_towards

if TYPE_CHECKING:
    from .client import Connection

__all__ = [
    "ENCRYPTION_DEFAULT_AUTH_KEY_LENGTH",
    "ENCRYPTION_IPSEC_OVERHEAD",
    "ETHERNET_MTU",
    "MAX_MTU",
    "TUNNEL_OVERHEAD",
    "Configuration",
]

#: The kernel clamps an IPv4 route MTU above this (``ip_metrics_convert``).
MAX_MTU = 65520
#: The MTU assumed when none is configured or detected.
ETHERNET_MTU = 1500
#: IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
TUNNEL_OVERHEAD = 50
#: ESP overhead with the default 16-byte authentication key.
ENCRYPTION_IPSEC_OVERHEAD = 77
#: The key length ENCRYPTION_IPSEC_OVERHEAD assumes.
ENCRYPTION_DEFAULT_AUTH_KEY_LENGTH = 16

# Addresses whose route tells which device carries traffic off the node.  Only a route
# lookup (RTM_GETROUTE) is made; nothing is sent to them.
_PROBE_ADDRESSES = ("1.1.1.1", "2606:4700:4700::1111")


@dataclass(frozen=True)
class Configuration:
    """The MTUs for routes, from the device MTU and the encapsulation in use.

    Build it with :meth:`create` (which can detect the MTU) or directly with an explicit
    ``mtu``.  Vectors from Cilium's ``mtu_test.go`` (mtu 1400): plain → device 1400,
    route 1400; encap → route 1350; encrypt with a 16-byte key → 1323; encap + encrypt →
    1273.
    """

    #: the device MTU (0 = unknown: 1500 is used)
    standard_mtu: int = 0
    #: the route MTU with tunnel (and encryption) overhead taken off
    tunnel_mtu: int = 0
    #: the route MTU with encryption overhead taken off
    encrypt_mtu: int = 0
    encap_enabled: bool = False
    encrypt_enabled: bool = False

    @classmethod
    def new(
        cls,
        auth_key_size: int = ENCRYPTION_DEFAULT_AUTH_KEY_LENGTH,
        encrypt: bool = False,
        encap: bool = False,
        mtu: int = 0,
    ) -> Configuration:
        """Compute the configuration for a known ``mtu`` (Cilium's ``NewConfiguration``
        without detection).

        ``auth_key_size`` is the IPsec authentication key length in bytes; Cilium's
        callers always pass it, and its default here is the length Cilium's overhead
        assumes (16 bytes: 77 bytes of IPsec overhead).
        """
        if not 0 <= mtu <= MAX_MTU:
            raise ValueError(f"mtu must be in 0..{MAX_MTU}, got {mtu}")
        if auth_key_size < 0:
            raise ValueError(f"auth_key_size must be ≥ 0, got {auth_key_size}")
        overhead = 0
        if encrypt:
            overhead = ENCRYPTION_IPSEC_OVERHEAD + (
                auth_key_size - ENCRYPTION_DEFAULT_AUTH_KEY_LENGTH
            )
        return cls(
            standard_mtu=mtu,
            tunnel_mtu=max(0, mtu - (TUNNEL_OVERHEAD + overhead)),
            # Cilium computes this after detecting the MTU, so it is never built from 0;
            # keep 0 ("unknown") so that get_route_mtu falls back to 1500 - overhead.
            encrypt_mtu=mtu - overhead if mtu else 0,
            encap_enabled=encap,
            encrypt_enabled=encrypt,
        )

    @classmethod
    async def create(
        cls,
        auth_key_size: int = ENCRYPTION_DEFAULT_AUTH_KEY_LENGTH,
        encrypt: bool = False,
        encap: bool = False,
        mtu: int = 0,
        conn: Connection | None = None,
    ) -> Configuration:
        """Like :meth:`new`; with ``mtu=0`` the MTU is detected first.

        Detection: the MTU of the device the kernel would route 1.1.1.1 through (else
        2606:4700:4700::1111), asked with one RTM_GETROUTE each on ``conn`` (default: the
        shared connection of the current namespace).  No route, or a device MTU of 0,
        gives 1500, as in Cilium.
        """
        if mtu == 0:
            mtu = await detect_mtu(conn)
        return cls.new(auth_key_size, encrypt, encap, mtu)

    def get_device_mtu(self) -> int:
        """The MTU of devices and of routes to local endpoints."""
        return self.standard_mtu or ETHERNET_MTU

    def get_route_mtu(self) -> int:
        """The MTU of routes that leave the node, with tunnel/IPsec overhead removed."""
        if not self.encap_enabled and not self.encrypt_enabled:
            return self.get_device_mtu()
        if self.encrypt_enabled and not self.encap_enabled:
            return self.encrypt_mtu or ETHERNET_MTU - ENCRYPTION_IPSEC_OVERHEAD
        if self.tunnel_mtu:
            return self.tunnel_mtu
        if self.encrypt_enabled:
            return ETHERNET_MTU - TUNNEL_OVERHEAD - ENCRYPTION_IPSEC_OVERHEAD
        return ETHERNET_MTU - TUNNEL_OVERHEAD


async def detect_mtu(conn: Connection | None = None) -> int:
    """The MTU of the device that carries traffic off the node; 1500 if unknown."""
    from . import client

    if conn is None:
        conn = await client.default_connection()
    for text in _PROBE_ADDRESSES:
        mtu = await mtu_towards(conn, ip_address(text))
        if mtu is not None:
            return mtu or ETHERNET_MTU
    return ETHERNET_MTU
