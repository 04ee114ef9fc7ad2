"""Checking and converting user input, before anything reaches a socket.

Every function raises ValueError (TypeError for a wrong type) naming the field.
"""

from __future__ import annotations

from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

__all__ = [
    "U32_MAX",
    "IPAddress",
    "IPNetwork",
    "check_device",
    "check_uint",
    "parse_address",
    "parse_network",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
U32_MAX = 2**32 - 1
# IFNAMSIZ is 16 including the NUL: a name has at most 15 bytes (dev_valid_name()).
_IFNAMSIZ = 16


def parse_network(value: object, field: str) -> IPNetwork:
    """A prefix from a string or ipaddress object; host bits set is an error."""
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    if isinstance(value, str | IPv4Address | IPv6Address):
        try:
            return ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{field}: {value!r} is not a network prefix ({exc})") from None
    raise TypeError(f"{field} must be a prefix string or ipaddress network, got {value!r}")


def parse_address(value: object, field: str) -> IPAddress:
    """An address from a string or ipaddress object."""
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    if isinstance(value, str):
        try:
            return ip_address(value)
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not an IP address") from None
    raise TypeError(f"{field} must be an address string or ipaddress address, got {value!r}")


def check_uint(value: object, field: str, maximum: int) -> int:
    """An int in 0..maximum (bool is refused: it is always a mistake here)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{field} must be an int, got {value!r}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{field} must be in 0..{maximum}, got {value}")
    return value


def check_device(value: object, field: str = "device") -> str:
    """A device name the kernel could accept (``dev_valid_name``); "" means unset."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, got {value!r}")
    if value == "":
        return value
    if len(value.encode()) >= _IFNAMSIZ:
        raise ValueError(f"{field}: {value!r} is longer than {_IFNAMSIZ - 1} bytes")
    if value in (".", "..") or any(c in "/:\0" or c.isspace() for c in value):
        raise ValueError(f"{field}: {value!r} is not a valid device name")
    return value
