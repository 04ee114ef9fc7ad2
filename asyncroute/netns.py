"""Throwaway network namespaces made and inspected with iproute2's ``ip``.

Used by the test fixture (:mod:`asyncroute.testing`) and by ``asyncroute bench``; it
needs only the standard library, root privileges and ``ip``, and deliberately nothing
else from asyncroute, so that a test harness built on it cannot share the library's bugs.

Every namespace looks the same (see :func:`create_namespace`): ``lo`` up and a veth pair
``v0``/``v1``, both ends inside the namespace and up.  Only ``v0`` has addresses:
``192.0.2.2/24`` and ``2001:db8::2/64`` (``nodad``).  ``192.0.2.1`` and ``2001:db8::1``
are therefore on-link gateways that no interface holds.  They must not be local:
IPv6 rejects a local gateway (``ip6_validate_gw()``: "Gateway can not be a local
address"), so giving ``v1`` those addresses would make IPv6 routes via them fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Namespace",
    "NetnsUnavailable",
    "create_namespace",
    "delete_namespace",
    "namespace",
]

# Where `ip netns add` bind-mounts a named namespace (ip-netns(8)).
_NETNS_RUN_DIR = "/run/netns"


class NetnsUnavailable(RuntimeError):
    """A network namespace could not be made here.

    Raised by :func:`create_namespace` when the process is not root, ``ip`` is not on
    ``PATH``, or one of the ``ip`` commands that build the namespace fails; the message
    carries the failing command and its stderr.
    """


def _run(argv: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
    """Run *argv* with text output captured; on failure (if *check*) attach stderr.

    :class:`subprocess.CalledProcessError` does not show stderr in its message, and
    stderr is the only place ``ip`` explains itself, so it goes into an exception note.
    """
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        err = subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
        err.add_note(f"stderr: {proc.stderr.strip()}")
        raise err
    return proc


@dataclass
class Namespace:
    """A named network namespace, as made by :func:`create_namespace`.

    Only the name is stored; all state is read back from the kernel through ``ip``.
    """

    name: str

    @property
    def path(self) -> str:
        """The namespace's bind mount, ``/run/netns/<name>`` (usable with ``setns(2)``)."""
        return f"{_NETNS_RUN_DIR}/{self.name}"

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``ip -n <name> <args>`` and return the finished process (text output).

        With *check* (the default) a non-zero exit raises
        :class:`subprocess.CalledProcessError`, with ``ip``'s stderr added as a note.
        """
        return _run(["ip", "-n", self.name, *args], check=check)

    def ip_json(self, *args: str) -> Any:
        """Run ``ip -n <name> -json <args>`` and return the parsed JSON.

        Empty output (some ``ip`` subcommands print nothing when there is nothing to
        show) becomes ``[]``.  A non-zero exit raises
        :class:`subprocess.CalledProcessError`.
        """
        out = _run(["ip", "-n", self.name, "-json", *args], check=True).stdout
        if not out.strip():
            return []
        return json.loads(out)


# The commands that turn an empty namespace into the standard test layout; each is run
# as `ip -n <name> <command>`.
_SETUP: tuple[tuple[str, ...], ...] = (
    ("link", "set", "lo", "up"),
    ("link", "add", "v0", "type", "veth", "peer", "name", "v1"),
    ("link", "set", "v0", "up"),
    ("link", "set", "v1", "up"),
    ("address", "add", "192.0.2.2/24", "dev", "v0"),
    # nodad: the addresses are usable at once instead of "tentative" for about a second.
    ("address", "add", "2001:db8::2/64", "dev", "v0", "nodad"),
)


def create_namespace(prefix: str = "asyncroute-test") -> Namespace:
    """Create and set up a fresh namespace named ``<prefix>-<pid>-<6 hex digits>``.

    Inside it, ``lo`` is up and a veth pair ``v0``/``v1`` is up with the addresses
    listed in this module's docstring.  The caller owns the namespace and must pass it
    to :func:`delete_namespace` (or use :func:`namespace`).

    Raises :class:`NetnsUnavailable` if not root, if ``ip`` is missing, or if any step
    fails; a partly built namespace is deleted before raising.
    """
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root (euid is not 0)")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("the iproute2 'ip' command is not on PATH")

    ns = Namespace(f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}")
    add = _run(["ip", "netns", "add", ns.name], check=False)
    if add.returncode != 0:
        # `ip netns add` may leave an empty mount point behind when it fails halfway.
        with contextlib.suppress(RuntimeError):
            delete_namespace(ns)
        raise NetnsUnavailable(f"ip netns add {ns.name} failed: {add.stderr.strip()}")
    try:
        for command in _SETUP:
            proc = ns.ip(*command, check=False)
            if proc.returncode != 0:
                raise NetnsUnavailable(
                    f"ip -n {ns.name} {' '.join(command)} failed: {proc.stderr.strip()}"
                )
    except BaseException:
        delete_namespace(ns)
        raise
    return ns


def delete_namespace(ns: Namespace) -> None:
    """Delete *ns* with ``ip netns del``; deleting an already deleted one does nothing.

    Raises :class:`RuntimeError` only if the namespace is still there after ``ip``
    failed to delete it.
    """
    if not os.path.lexists(ns.path):
        return
    proc = _run(["ip", "netns", "del", ns.name], check=False)
    # ip prints 'Cannot remove namespace file "...": No such file or directory' when
    # another deleter won the race; only a namespace that is still there is an error.
    if proc.returncode != 0 and os.path.lexists(ns.path):
        raise RuntimeError(f"ip netns del {ns.name} failed: {proc.stderr.strip()}")


@contextlib.contextmanager
def namespace(prefix: str = "asyncroute-test") -> Iterator[Namespace]:
    """Context manager: a fresh namespace from :func:`create_namespace`, always deleted.

    The namespace is deleted when the block exits, also when it raises.
    """
    ns = create_namespace(prefix)
    try:
        yield ns
    finally:
        delete_namespace(ns)
