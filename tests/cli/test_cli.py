"""The installed ``asyncroute`` command, run as a subprocess with ``--netns`` in a fresh
namespace: every route/rule/apply subcommand in human and ``--json`` form, ``--help``
of every command, and kernel errors (exit 1, the kernel's own message).

The kernel's state is read back with ``ip`` (:mod:`tests.oracle`), never through
asyncroute.
"""

from __future__ import annotations

import json

import pytest

from asyncroute.testing import Namespace
from tests import oracle
from tests.cli.conftest import run_cli, run_json

pytestmark = pytest.mark.kernel


# ------------------------------------------------------------------ --help


HELP_COMMANDS = [
    [],
    ["route"],
    ["route", "upsert"],
    ["route", "delete"],
    ["route", "lookup"],
    ["route", "list"],
    ["rule"],
    ["rule", "replace"],
    ["rule", "delete"],
    ["rule", "list"],
    ["apply"],
    ["nexthop"],
    ["nexthop", "replace"],
    ["nexthop", "delete"],
    ["nexthop", "show"],
    ["nexthop", "list"],
    ["monitor"],
    ["bench"],
]


@pytest.mark.parametrize("words", HELP_COMMANDS, ids=lambda w: " ".join(w) or "asyncroute")
def test_help_shows_an_example(words: list[str]) -> None:
    proc = run_cli(*words, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "examples:" in proc.stdout
    examples = proc.stdout.split("examples:", 1)[1]
    assert f"asyncroute {' '.join(words)}".strip() in examples
    single = words[0] in ("apply", "monitor") if words else False
    if (
        words
        and words[0] in ("route", "rule", "apply", "nexthop", "monitor")
        and (len(words) + single > 1)
    ):
        assert "--netns NAME" in proc.stdout and "--json" in proc.stdout


def test_top_level_help_lists_every_subcommand() -> None:
    proc = run_cli("--help")
    for name in ("route", "rule", "apply", "nexthop", "monitor", "bench"):
        assert f"    {name} " in proc.stdout


# ------------------------------------------------------------------ route


def _table(ns: Namespace, table: int = 100, family: int = 4) -> list[dict[str, object]]:
    return oracle.routes(ns.name, table=table, family=family)


def test_route_upsert_lookup_list_delete(netns: Namespace) -> None:
    spec = ["198.51.100.0/24", "via", "192.0.2.1", "dev", "v0", "table", "100", "mtu", "1400"]
    proc = run_cli("route", "upsert", *spec, "--netns", netns.name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "upserted: 198.51.100.0/24 via 192.0.2.1 dev v0 table 100 mtu 1400\n"
    routes = {r["dst"]: r for r in _table(netns)}
    assert routes["198.51.100.0/24"]["gateway"] == "192.0.2.1"
    assert routes["198.51.100.0/24"]["metrics"] == [{"mtu": 1400}]
    assert routes["192.0.2.1"]["scope"] == "link"  # Cilium's nexthop route

    # --json, IPv6 default route (-6 settles "default"), options before the route
    out = run_json("route", "upsert", "--netns", netns.name, "-6", "default", "via",
                   "2001:db8::1", "dev", "v0", "table", "100")  # fmt: skip
    assert out == {
        "upserted": {
            "type": "unicast",
            "dst": "default",
            "gateway": "2001:db8::1",
            "dev": "v0",
            "table": "100",
            "protocol": "boot",
            "scope": "global",
        }
    }
    assert any(r["dst"] == "default" for r in _table(netns, family=6))

    lookup = ["198.51.100.0/24", "via", "192.0.2.1", "dev", "v0", "table", "100"]
    proc = run_cli("route", "lookup", *lookup, "--netns", netns.name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "198.51.100.0/24 via 192.0.2.1 dev v0 table 100 mtu 1400\n"
    found = run_json("route", "lookup", *lookup, "--netns", netns.name)
    assert found["dst"] == "198.51.100.0/24" and found["metrics"] == [{"mtu": 1400}]

    proc = run_cli("route", "list", "table", "100", "--netns", netns.name)
    assert proc.returncode == 0, proc.stderr
    assert "198.51.100.0/24 via 192.0.2.1 dev v0 table 100 mtu 1400" in proc.stdout.splitlines()
    assert "default via 2001:db8::1 dev v0 table 100 metric 1024" in proc.stdout.splitlines()
    listed = run_json("route", "list", "-4", "table", "100", "--netns", netns.name)
    assert {r["dst"] for r in listed} == {r["dst"] for r in _table(netns)}

    proc = run_cli("route", "delete", "198.51.100.0/24", "dev", "v0", "table", "100",
                   "--netns", netns.name)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("deleted: 198.51.100.0/24")
    assert "198.51.100.0/24" not in {r["dst"] for r in _table(netns)}
    out = run_json("route", "delete", "-6", "default", "dev", "v0", "table", "100",
                   "--netns", netns.name)  # fmt: skip
    assert out["deleted"]["dst"] == "default"
    assert not any(r["dst"] == "default" for r in _table(netns, family=6))


def test_route_list_filters(netns: Namespace) -> None:
    netns.ip("route", "add", "198.51.100.0/24", "dev", "v0", "table", "100", "proto", "static")
    netns.ip("route", "add", "203.0.113.0/24", "dev", "v0", "table", "100")
    rows = run_json("route", "list", "table", "100", "proto", "static", "--netns", netns.name)
    assert [r["dst"] for r in rows] == ["198.51.100.0/24"]
    assert rows[0]["protocol"] == "static" and rows[0]["scope"] == "link"
    main = run_json("route", "list", "-4", "--netns", netns.name)  # table main by default
    assert [r["dst"] for r in main] == ["192.0.2.0/24"]


def test_kernel_error_exits_1_with_the_kernel_message(netns: Namespace) -> None:
    spec = ["198.51.100.0/24", "via", "192.0.2.1", "dev", "v0", "table", "100", "scope", "host"]
    proc = run_cli("route", "upsert", *spec, "--netns", netns.name)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        "asyncroute route upsert: Invalid argument: Route with host scope can not have a gateway\n"
    )
    proc = run_cli("route", "upsert", *spec, "--netns", netns.name, "--json")
    assert proc.returncode == 1
    error = json.loads(proc.stderr)
    assert error["errno"] == 22
    assert error["kernel_message"] == "Route with host scope can not have a gateway"


def test_not_found_and_bad_input(netns: Namespace) -> None:
    proc = run_cli("route", "delete", "198.51.100.0/24", "dev", "v0", "--netns", netns.name)
    assert (proc.returncode, proc.stderr) == (1, "asyncroute route delete: No such process\n")
    proc = run_cli("route", "lookup", "198.51.100.0/24", "dev", "v0", "--netns", netns.name)
    assert proc.returncode == 1 and "no route 198.51.100.0/24" in proc.stderr
    proc = run_cli("route", "upsert", "198.51.100.0/24", "dev", "nosuch", "--netns", netns.name)
    assert (proc.returncode, proc.stderr) == (
        1,
        "asyncroute route upsert: no such device: 'nosuch'\n",
    )
    proc = run_cli("route", "upsert", "198.51.100.1/24", "dev", "v0", "--netns", netns.name)
    assert proc.returncode == 2 and "host bits set" in proc.stderr
    proc = run_cli("route", "upsert", "198.51.100.0/24", "dev", "v0", "frobnicate", "1",
                   "--netns", netns.name)  # fmt: skip
    assert proc.returncode == 2 and 'unexpected "frobnicate"' in proc.stderr
    assert [r["dst"] for r in oracle.routes(netns.name)] == ["192.0.2.0/24"]  # untouched


def test_missing_namespace_is_an_error() -> None:
    proc = run_cli("route", "list", "--netns", "asyncroute-no-such-namespace")
    assert proc.returncode == 1
    assert "asyncroute-no-such-namespace" in proc.stderr


# ------------------------------------------------------------------ rule


def test_rule_replace_list_delete(netns: Namespace) -> None:
    spec = ["priority", "100", "fwmark", "0xf00/0xf00", "table", "100"]
    for done in ("added", "exists"):  # replace is idempotent: add unless present
        proc = run_cli("rule", "replace", *spec, "--netns", netns.name)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"{done}: 100: from all fwmark 0xf00/0xf00 lookup 100\n"
    rules = [r for r in oracle.rules(netns.name, family=4) if r["priority"] == 100]
    assert len(rules) == 1 and rules[0]["fwmark"] == "0xf00" and rules[0]["table"] == "100"

    out = run_json("rule", "replace", "-6", "priority", "100", "to", "2001:db8:1::/48",
                   "table", "100", "--netns", netns.name)  # fmt: skip
    assert out["added"]["family"] == "inet6" and out["added"]["dstlen"] == 48
    assert any(r.get("dst") == "2001:db8:1::" for r in oracle.rules(netns.name, family=6))

    proc = run_cli("rule", "list", "--netns", netns.name)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "100: from all fwmark 0xf00/0xf00 lookup 100" in lines
    assert "-6 100: from all to 2001:db8:1::/48 lookup 100" in lines
    listed = run_json("rule", "list", "-4", "table", "100", "--netns", netns.name)
    assert listed == [
        {
            "priority": 100,
            "family": "inet",
            "src": "all",
            "fwmark": "0xf00",
            "fwmask": "0xf00",
            "table": "100",
            "protocol": "unspec",
        }
    ]

    proc = run_cli("rule", "delete", *spec, "--netns", netns.name)
    assert proc.returncode == 0, proc.stderr
    assert not [r for r in oracle.rules(netns.name, family=4) if r["priority"] == 100]
    proc = run_cli("rule", "delete", *spec, "--netns", netns.name, "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stderr)["errno"] == 2


# ------------------------------------------------------------------ apply


BATCH = """\
# two routes, a blackhole and a rule
route add 198.51.100.0/24 via 192.0.2.1 dev v0 table 100
route replace 203.0.113.0/24 via 192.0.2.1 dev v0 table 100 metric 7 mtu 1400
route add blackhole 198.51.101.0/24 table 100
-6 route add 2001:db8:100::/48 via 2001:db8::1 dev v0 table 100
rule add from 198.51.100.0/24 lookup 100 priority 1000
"""


def test_apply_human_and_json(netns: Namespace, tmp_path: object) -> None:
    proc = run_cli("apply", "-", "--netns", netns.name, input=BATCH)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("applied 5 of 5 commands in ")
    dsts = {r["dst"] for r in _table(netns)}
    assert dsts == {"198.51.100.0/24", "203.0.113.0/24", "198.51.101.0/24"}
    assert [r["dst"] for r in _table(netns, family=6)] == ["2001:db8:100::/48"]
    assert any(r["priority"] == 1000 for r in oracle.rules(netns.name, family=4))

    # Again: every `add` exists now.  --force tries them all; --json reports each.
    proc = run_cli("apply", "-", "--force", "--json", "--netns", netns.name, input=BATCH)
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert summary["applied"] == 1  # the replace
    assert [(f["line"], f["strerror"]) for f in summary["failures"]] == [
        (2, "File exists"),
        (4, "File exists"),
        (5, "File exists"),
        (6, "File exists"),
    ]
    assert summary["stopped_at_line"] is None


def test_apply_dry_run_prints_ip_commands() -> None:
    proc = run_cli("apply", "--dry-run", "--netns", "blue", "-", input=BATCH)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "ip -n blue route add 198.51.100.0/24 via 192.0.2.1 dev v0 table 100",
        "ip -n blue route replace 203.0.113.0/24 via 192.0.2.1 dev v0 table 100 metric 7 mtu 1400",
        "ip -n blue route add blackhole 198.51.101.0/24 table 100",
        "ip -n blue -6 route add 2001:db8:100::/48 via 2001:db8::1 dev v0 table 100",
        "ip -n blue rule add from 198.51.100.0/24 priority 1000 table 100",
    ]
    out = run_json("apply", "--dry-run", "-", input="route del 198.51.100.0/24 table 100\n")
    assert out == [{"line": 1, "item": None, "argv": ["ip", "route", "del", "198.51.100.0/24",
                                                      "table", "100"]}]  # fmt: skip
