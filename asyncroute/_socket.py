"""Opening and configuring the rtnetlink socket, optionally inside a network namespace.

Invariants:
- The socket is ``AF_NETLINK``/``SOCK_DGRAM``/``NETLINK_ROUTE`` (netlink(7) treats RAW and
  DGRAM alike; Python 3.11 refuses SOCK_RAW in datagram endpoints), non-blocking, bound
  to a kernel-assigned port id.
- ``setns`` happens only on a dedicated, short-lived thread that exits afterwards, so
  neither the event loop's thread nor a pooled worker can be left in another namespace.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from .constants import SOL_NETLINK, NetlinkOption

__all__ = ["SocketInfo", "open_netlink_socket", "resolve_netns"]

NETLINK_ROUTE = 0
_CLONE_NEWNET = 0x40000000
# socket(7): the *FORCE variants bypass net.core.{r,w}mem_max with CAP_NET_ADMIN.
_SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True)
class SocketInfo:
    """What the kernel granted: port id and the buffer sizes read back."""

    port_id: int
    rcvbuf: int
    sndbuf: int
    strict_check: bool


def resolve_netns(netns: str | os.PathLike[str]) -> Path:
    """Map a namespace name (``/run/netns/NAME``) or a path to a path that exists.

    Raises FileNotFoundError naming the namespace before any syscall on the socket.
    """
    text = os.fspath(netns)
    if not text:
        raise ValueError("netns must be a namespace name or a path, got ''")
    path = Path(text) if "/" in text else _NETNS_DIR / text
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"network namespace {text!r} not found", str(path))
    return path


def _set_buffer(sock: socket.socket, force: int, plain: int, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, plain, size)  # capped at net.core.*mem_max


def _configure(sock: socket.socket, rcvbuf: int, sndbuf: int) -> SocketInfo:
    # CAP_ACK: error replies echo only the request header, keeping them small and the
    # ext-ack TLVs at a fixed place.  EXT_ACK: the kernel's text for an error.
    sock.setsockopt(SOL_NETLINK, NetlinkOption.CAP_ACK, 1)
    sock.setsockopt(SOL_NETLINK, NetlinkOption.EXT_ACK, 1)
    strict = True
    try:
        # Kernel ≥ 4.20: dump requests are validated and their filters applied in-kernel.
        sock.setsockopt(SOL_NETLINK, NetlinkOption.GET_STRICT_CHK, 1)
    except OSError as exc:
        if exc.errno != errno.ENOPROTOOPT:
            raise
        strict = False
    _set_buffer(sock, _SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf)
    _set_buffer(sock, _SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf)
    sock.bind((0, 0))
    sock.setblocking(False)
    return SocketInfo(
        port_id=sock.getsockname()[0],
        # The kernel doubles the requested size and compares skb truesize against it.
        rcvbuf=sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        sndbuf=sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
        strict_check=strict,
    )


def _open_here(rcvbuf: int, sndbuf: int) -> tuple[socket.socket, SocketInfo]:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
    try:
        return sock, _configure(sock, rcvbuf, sndbuf)
    except BaseException:
        sock.close()
        raise


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def _open_in(path: Path, rcvbuf: int, sndbuf: int) -> tuple[socket.socket, SocketInfo]:
    result: list[tuple[socket.socket, SocketInfo]] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _setns(target)
                finally:
                    os.close(target)
                try:
                    result.append(_open_here(rcvbuf, sndbuf))
                finally:
                    # The thread ends right after, so even a failure here strands nothing.
                    _setns(own)
            finally:
                os.close(own)
        except BaseException as exc:
            for sock, _ in result:
                sock.close()
            result.clear()
            failure.append(exc)

    thread = threading.Thread(target=work, name="asyncroute-netns")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def open_netlink_socket(
    netns: str | os.PathLike[str] | None, *, rcvbuf: int, sndbuf: int
) -> tuple[socket.socket, SocketInfo]:
    """Create and configure the socket (blocking; call it from a worker thread).

    Netlink sockets belong to the namespace they were created in, whatever thread uses
    them later (``netlink_create`` takes ``current->nsproxy->net_ns``).
    """
    if netns is None:
        return _open_here(rcvbuf, sndbuf)
    return _open_in(resolve_netns(netns), rcvbuf, sndbuf)
