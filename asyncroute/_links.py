"""Device lookups the route API needs: name → ifindex, ifindex → name, route → device MTU."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv6Address

from .connection import NetlinkConnection
from .constants import AF_INET, AF_INET6, RTM
from .errors import KernelError, NotFoundError
from .messages import LinkMessage, Message, RouteMessage

__all__ = ["DeviceIndexes", "device_index", "device_name", "mtu_towards"]


async def _get_link(conn: NetlinkConnection, body: LinkMessage, what: str) -> LinkMessage:
    try:
        # Concurrent upserts through one device share the lookup.
        reply = await conn.request_shared(Message(RTM.GETLINK, 0, body))
    except NotFoundError as exc:
        raise NotFoundError(
            exc.errno or errno.ENODEV,
            seq=exc.seq,
            msg_type=exc.msg_type,
            message=f"no such device: {what}",
        ) from None
    if reply is None or not isinstance(reply.body, LinkMessage):
        raise NotFoundError(errno.ENODEV, message=f"no such device: {what}")
    return reply.body


async def device_index(conn: NetlinkConnection, name: str) -> int:
    """The ifindex of the device called ``name`` (RTM_GETLINK by IFLA_IFNAME).

    Not cached: a device can be recreated with a new index at any time (cilium#42915).
    Raises NotFoundError naming the device.
    """
    return (await _get_link(conn, LinkMessage(name=name), repr(name))).index


class DeviceIndexes:
    """ifindex by device name, each looked up once for the life of this object (one
    bulk call, one ``apply``: as ``ip -batch`` caches them); a failed lookup is kept as
    its error, so that every item naming that device fails the same way."""

    __slots__ = ("_conn", "_found")

    def __init__(self, conn: NetlinkConnection) -> None:
        self._conn = conn
        self._found: dict[str, int | KernelError] = {}

    async def get(self, name: str) -> int | KernelError:
        """The ifindex of ``name``, or the KernelError its lookup raised."""
        found = self._found.get(name)
        if found is None:
            try:
                found = await device_index(self._conn, name)
            except KernelError as exc:
                found = exc
            self._found[name] = found
        return found


async def device_name(conn: NetlinkConnection, index: int) -> str:
    """The name of the device with ifindex ``index``."""
    link = await _get_link(conn, LinkMessage(index=index), f"ifindex {index}")
    return link.name or ""


async def mtu_towards(conn: NetlinkConnection, address: IPv4Address | IPv6Address) -> int | None:
    """MTU of the device the kernel routes ``address`` through; None if unroutable.

    One RTM_GETROUTE (a FIB lookup; nothing is sent on the wire) and one RTM_GETLINK.
    """
    family = AF_INET if address.version == 4 else AF_INET6
    query = RouteMessage(family=family, dst_len=address.max_prefixlen, dst=address)
    try:
        reply = await conn.request(Message(RTM.GETROUTE, 0, query))
    except KernelError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EINVAL, errno.ENOENT):
            return None
        raise
    if reply is None or not isinstance(reply.body, RouteMessage) or reply.body.oif is None:
        return None
    link = await _get_link(conn, LinkMessage(index=reply.body.oif), f"ifindex {reply.body.oif}")
    return link.mtu or 0
