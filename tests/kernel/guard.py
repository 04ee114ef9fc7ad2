"""Connections that are proven to live in the test's namespace before first use.

Every kernel test writes routes; a connection opened in the wrong namespace must never
get to change the host's.  The proof does not trust asyncroute: the kernel's own list of
netlink sockets per namespace (``/proc/net/netlink``, read-only) must hold the
connection's socket inode in the test namespace and not in the test process's own.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import asyncroute
from asyncroute import Connection
from asyncroute.testing import Namespace


def netlink_inodes(ns_name: str | None) -> set[int]:
    """Inodes of the netlink sockets in a namespace; ``None`` for our own."""
    argv = ["cat", "/proc/net/netlink"]
    if ns_name is not None:
        argv = ["ip", "netns", "exec", ns_name, *argv]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return {int(line.split()[-1]) for line in out.splitlines()[1:] if line.strip()}


def assert_in_namespace(conn: Connection, ns: Namespace) -> None:
    """The kernel lists ``conn``'s socket in ``ns`` and not in our own namespace.

    Reads the private ``conn._sock``: the socket's inode is the only handle the kernel's
    listing shares with it.
    """
    inode = os.fstat(conn._sock.fileno()).st_ino
    assert inode in netlink_inodes(ns.name), f"socket {inode} is not in namespace {ns.name}"
    assert inode not in netlink_inodes(None), f"socket {inode} is in our own namespace"


@contextlib.asynccontextmanager
async def connect_in(ns: Namespace, **options: Any) -> AsyncIterator[Connection]:
    """``asyncroute.connect(ns.name, **options)``, proven to be inside ``ns`` first."""
    async with asyncroute.connect(ns.name, **options) as conn:
        assert_in_namespace(conn, ns)
        yield conn
