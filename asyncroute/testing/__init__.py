"""Test helpers: a fresh network namespace per test, and a fake kernel.

This module is shipped with asyncroute so that users can test their own route-programming
code against a real kernel the same way asyncroute's own suite does.  The namespace part
deliberately uses nothing from asyncroute (the harness must not share bugs with the code
under test): only the standard library, pytest, root privileges and iproute2's ``ip``.
:class:`FakeKernel` (from ``asyncroute.testing.fake_kernel``) runs a real connection over a
socketpair without privileges.

Enable the ``netns`` fixture in a test suite by naming this module as a pytest plugin in
the top-level ``conftest.py``::

    pytest_plugins = ["asyncroute.testing"]

and then request it::

    def test_route(netns: Namespace) -> None:
        netns.ip("route", "add", "198.18.0.0/24", "via", "192.0.2.1", "dev", "v0")
        assert netns.ip_json("route", "show", "198.18.0.0/24")

Every namespace has the same layout, described in :mod:`asyncroute.netns`: veth
``v0``/``v1`` up, ``192.0.2.2/24`` and ``2001:db8::2/64`` on ``v0`` only, so that
``192.0.2.1`` and ``2001:db8::1`` are on-link gateways no interface holds.

When namespaces cannot be made (not root, no ``ip``, ``ip netns add`` refused) the
fixture skips the test, except under CI (environment variable ``CI=true``), where kernel
tests must run and the fixture fails the test instead.

Public names: :class:`NetnsUnavailable`, :class:`Namespace`, :func:`create_namespace`,
:func:`delete_namespace`, :func:`namespace` and the pytest fixture :func:`netns`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ..netns import Namespace, NetnsUnavailable, create_namespace, delete_namespace, namespace
from .fake_kernel import FakeKernel, ack, dump_replies, error_reply

__all__ = [
    "FakeKernel",
    "Namespace",
    "NetnsUnavailable",
    "ack",
    "create_namespace",
    "delete_namespace",
    "dump_replies",
    "error_reply",
    "namespace",
    "netns",
]


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def netns() -> Iterator[Namespace]:
    """Pytest fixture: a fresh :class:`Namespace` for one test, deleted afterwards.

    If namespaces are unavailable the test is skipped, or failed when ``CI=true``
    (under CI, kernel tests must run).
    """
    try:
        ns = create_namespace()
    except NetnsUnavailable as exc:
        reason = f"network namespace unavailable: {exc}"
    else:
        reason = ""
    if reason:
        # Outside the except block, so the report is one line, not a chained traceback.
        if _under_ci():
            pytest.fail(f"CI=true, kernel tests must run: {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield ns
    finally:
        delete_namespace(ns)
