"""Kernel tests of the test harness itself: the ``netns`` fixture and the oracle.

If these fail, every other kernel test's verdict is suspect.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from asyncroute.testing import (
    Namespace,
    create_namespace,
    delete_namespace,
    namespace,
)
from tests import oracle

pytestmark = pytest.mark.kernel


def _netns_names() -> set[str]:
    # `ip netns list` prints "name" or "name (id: N)" once a peer id has been assigned.
    out = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _addresses(ns: Namespace, dev: str) -> set[str]:
    (link,) = ns.ip_json("address", "show", "dev", dev)
    return {f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["scope"] == "global"}


def _link(ns_name: str, name: str) -> dict[str, Any]:
    (link,) = [link for link in oracle.links(ns_name) if link["ifname"] == name]
    return link


class _Boom(Exception):
    pass


def test_fixture_namespace_exists(netns: Namespace) -> None:
    assert netns.name.startswith("asyncroute-test-")
    assert netns.name in _netns_names()
    assert netns.path == f"/run/netns/{netns.name}"


def test_fixture_layout(netns: Namespace) -> None:
    assert {link["ifname"] for link in oracle.links(netns.name)} == {"lo", "v0", "v1"}
    assert "UP" in _link(netns.name, "lo")["flags"]
    for dev in ("v0", "v1"):
        link = _link(netns.name, dev)
        assert "UP" in link["flags"]
        assert link["operstate"] == "UP"
    assert _addresses(netns, "v0") == {"192.0.2.2/24", "2001:db8::2/64"}
    assert _addresses(netns, "v1") == set()


def test_fixture_marks_kernel(request: pytest.FixtureRequest, netns: Namespace) -> None:
    assert request.node.get_closest_marker("kernel") is not None


def test_oracle_connected_routes(netns: Namespace) -> None:
    assert oracle.route_dsts(netns.name) == {"192.0.2.0/24"}
    assert {r["dev"] for r in oracle.routes(netns.name)} == {"v0"}  # v1 has no addresses
    assert "2001:db8::/64" in oracle.route_dsts(netns.name, family=6)


def test_oracle_missing_table_is_empty(netns: Namespace) -> None:
    # IPv4 reports a never-used table as an error; the oracle reports it empty.
    assert oracle.routes(netns.name, table=100) == []
    assert oracle.route_dsts(netns.name, table=100) == set()
    assert oracle.route_dsts(netns.name, table=100, family=6) == set()


def test_oracle_ipv4_host_route(netns: Namespace) -> None:
    netns.ip("route", "add", "198.18.0.1/32", "via", "192.0.2.1", "dev", "v0", "table", "100")
    assert oracle.route_dsts(netns.name, table=100) == {"198.18.0.1/32"}
    (route,) = oracle.routes(netns.name, table=100)
    assert route["gateway"] == "192.0.2.1"
    assert route["dev"] == "v0"
    # Family and table are kept apart.
    assert oracle.route_dsts(netns.name, table=100, family=6) == set()
    assert "198.18.0.1/32" not in oracle.route_dsts(netns.name)


def test_oracle_ipv6_routes(netns: Namespace) -> None:
    # 2001:db8::1 is local (on v1, same namespace), and IPv6 refuses a local gateway
    # ("Gateway can not be a local address", ip6_validate_gw); use an unheld on-link one.
    netns.ip("route", "add", "2001:db8:1::/64", "via", "2001:db8::1", "dev", "v0", "table", "100")
    netns.ip("route", "add", "2001:db8:2::5/128", "via", "2001:db8::1", "dev", "v0", "table", "100")
    assert oracle.route_dsts(netns.name, table=100, family=6) == {
        "2001:db8:1::/64",
        "2001:db8:2::5/128",
    }
    assert {r["gateway"] for r in oracle.routes(netns.name, table=100, family=6)} == {"2001:db8::1"}
    assert oracle.route_dsts(netns.name, table=100, family=4) == set()


def test_oracle_default_and_typed_routes(netns: Namespace) -> None:
    netns.ip("route", "add", "default", "via", "192.0.2.1", "dev", "v0", "table", "100")
    netns.ip("route", "add", "unreachable", "198.18.1.0/24", "table", "100")
    assert oracle.route_dsts(netns.name, table=100) == {"default", "198.18.1.0/24"}


def test_oracle_rules(netns: Namespace) -> None:
    assert {r["priority"] for r in oracle.rules(netns.name)} == {0, 32766, 32767}
    netns.ip("rule", "add", "from", "198.51.100.0/24", "table", "100", "priority", "1000")
    (rule,) = [r for r in oracle.rules(netns.name) if r["priority"] == 1000]
    assert rule["src"] == "198.51.100.0"
    assert rule["srclen"] == 24
    assert rule["table"] == "100"
    assert 1000 not in {r["priority"] for r in oracle.rules(netns.name, family=6)}


def test_oracle_large_table(netns: Namespace) -> None:
    count = 20_000
    batch = "".join(
        f"route add 198.18.{i // 256}.{i % 256}/32 via 192.0.2.1 dev v0 table 200\n"
        for i in range(count)
    )
    subprocess.run(["ip", "-n", netns.name, "-batch", "-"], input=batch, check=True, text=True)
    start = time.monotonic()
    dsts = oracle.route_dsts(netns.name, table=200)
    elapsed = time.monotonic() - start
    assert len(dsts) == count
    assert "198.18.78.31/32" in dsts  # i = 19_999
    # One `ip` dump and one JSON parse take ~0.2 s here; the bound only catches a
    # per-route subprocess creeping in.
    assert elapsed < 10


def test_oracle_rejects_bad_family(netns: Namespace) -> None:
    with pytest.raises(ValueError, match="family"):
        oracle.routes(netns.name, family=5)


def test_namespace_context_manager_deletes(netns: Namespace) -> None:
    # Requesting `netns` gives this test the fixture's skip/fail policy; the namespace
    # under test is a second one.
    with namespace() as ns:
        name = ns.name
        assert name in _netns_names()
        assert {link["ifname"] for link in oracle.links(name)} == {"lo", "v0", "v1"}
    assert name not in _netns_names()


def test_namespace_context_manager_deletes_on_exception(netns: Namespace) -> None:
    names: list[str] = []
    with pytest.raises(_Boom), namespace() as ns:
        names.append(ns.name)
        assert ns.name in _netns_names()
        raise _Boom
    assert names
    assert names[0] not in _netns_names()


def test_delete_namespace_twice(netns: Namespace) -> None:
    ns = create_namespace(prefix="asyncroute-test-twice")
    delete_namespace(ns)
    assert ns.name not in _netns_names()
    delete_namespace(ns)  # already gone: no error
    delete_namespace(Namespace("asyncroute-test-never-existed"))


def test_failed_command_reports_stderr(netns: Namespace) -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        netns.ip("link", "set", "no-such-link", "up")
    assert any("no-such-link" in note for note in getattr(info.value, "__notes__", []))
    proc = netns.ip("link", "set", "no-such-link", "up", check=False)
    assert proc.returncode != 0
