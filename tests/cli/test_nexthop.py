"""``asyncroute nexthop replace|delete|show|list`` against ``ip nexthop``: what the
command creates is what ``ip -json nexthop show`` reports, what ``ip`` creates the
command lists, in human and ``--json`` form; errors exit 1 (kernel) or 2 (usage)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asyncroute import NexthopGroup
from asyncroute.cli import main
from asyncroute.cli.nexthop import parse_group, parse_nexthop_words
from asyncroute.testing import Namespace
from tests.cli.conftest import run_cli, run_json

pytestmark = pytest.mark.kernel

#: Each nexthop as `asyncroute nexthop replace` takes it, as it prints it, and as
#: `ip nexthop add` takes it.
NEXTHOPS = [
    ("id 1 via 192.0.2.1 dev v0", "id 1 via 192.0.2.1 dev v0", "id 1 via 192.0.2.1 dev v0"),
    ("id 2 via 192.0.2.5 dev v0 onlink proto static",
     "id 2 via 192.0.2.5 dev v0 proto static onlink",
     "id 2 via 192.0.2.5 dev v0 onlink proto static"),
    ("id 3 blackhole", "id 3 blackhole", "id 3 blackhole"),
    ("id 4 dev v0", "id 4 dev v0", "id 4 dev v0"),
    ("-6 id 5 via 2001:db8::1 dev v0", "-6 id 5 via 2001:db8::1 dev v0",
     "id 5 via 2001:db8::1 dev v0"),
    ("id 6 via inet6 2001:db8::5 dev v0", "-6 id 6 via 2001:db8::5 dev v0",
     "id 6 via 2001:db8::5 dev v0"),
    ("id 10 group 1/2,3/5,200", "id 10 group 1/2,3/5,200", "id 10 group 1/2,3/5,200"),
]  # fmt: skip
#: The keys ip and asyncroute both print (ip adds "scope", asyncroute "family").
COMMON = ("id", "group", "gateway", "dev", "blackhole", "protocol", "flags", "fdb")


def _common(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: row[k] for k in COMMON if k in row} for row in rows]


def _ip_nexthops(ns: Namespace) -> list[dict[str, Any]]:
    return json.loads(ns.ip("-json", "nexthop", "show").stdout or "[]")


def test_replace_is_what_ip_shows_and_list_what_ip_made(
    netns: Namespace, netns2: Namespace
) -> None:
    for ours, printed, theirs in NEXTHOPS:
        proc = run_cli("nexthop", "replace", *ours.split(), "--netns", netns.name)
        assert proc.returncode == 0, (ours, proc.stderr)
        assert proc.stdout == f"replaced: {printed}\n"
        family = ["-6"] if "2001:db8" in theirs else []
        netns2.ip(*family, "nexthop", "add", *theirs.split())
    assert _common(_ip_nexthops(netns)) == _common(_ip_nexthops(netns2))
    # ip's nexthops, listed by asyncroute, are ip's own JSON (on the keys both print).
    listed = run_json("nexthop", "list", "--netns", netns2.name)
    assert _common(listed) == _common(_ip_nexthops(netns2))
    assert [row.get("family") for row in listed] == ["inet"] * 4 + ["inet6"] * 2 + [None]
    proc = run_cli("nexthop", "list", "--netns", netns2.name)
    assert proc.stdout.splitlines() == [printed for _, printed, _ in NEXTHOPS]
    # Replacing is idempotent, and changes an object in place.
    proc = run_cli("nexthop", "replace", "id", "1", "via", "192.0.2.7", "dev", "v0",
                   "--netns", netns.name)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _ip_nexthops(netns)[0]["gateway"] == "192.0.2.7"


def test_show_list_filters_and_delete(netns: Namespace) -> None:
    for _, _, theirs in NEXTHOPS:
        family = ["-6"] if "2001:db8" in theirs else []
        netns.ip(*family, "nexthop", "add", *theirs.split())
    name = ["--netns", netns.name]
    assert run_cli("nexthop", "show", "id", "10", *name).stdout == "id 10 group 1/2,3/5,200\n"
    assert run_json("nexthop", "show", "id", "10", *name) == {
        "id": 10,
        "group": [{"id": 1}, {"id": 2, "weight": 3}, {"id": 5, "weight": 200}],
        "flags": [],
    }
    assert run_json("nexthop", "show", "id", "3", *name) == {
        "id": 3, "family": "inet", "blackhole": None, "flags": []}  # fmt: skip
    ids = [row["id"] for row in run_json("nexthop", "list", "groups", *name)]
    assert ids == [10]
    ids = [row["id"] for row in run_json("nexthop", "list", "dev", "v0", *name)]
    assert ids == [1, 2, 4, 5, 6]
    ids = [row["id"] for row in run_json("nexthop", "list", "-6", *name)]
    assert ids == [5, 6]

    proc = run_cli("nexthop", "delete", "id", "10", *name)
    assert (proc.returncode, proc.stdout) == (0, "deleted: id 10\n")
    assert run_json("nexthop", "delete", "id", "1", *name) == {"deleted": {"id": 1}}
    assert [row["id"] for row in _ip_nexthops(netns)] == [2, 3, 4, 5, 6]


def test_errors(netns: Namespace) -> None:
    name = ["--netns", netns.name]
    proc = run_cli("nexthop", "show", "id", "99", *name)
    assert (proc.returncode, proc.stderr) == (
        1,
        "asyncroute nexthop show: No such file or directory\n",
    )
    proc = run_cli("nexthop", "delete", "id", "99", *name, "--json")
    assert proc.returncode == 1 and json.loads(proc.stderr)["errno"] == 2
    # The kernel's own words for a group of a missing nexthop.
    proc = run_cli("nexthop", "replace", "id", "11", "group", "1/99", *name)
    assert (proc.returncode, proc.stderr) == (
        1, "asyncroute nexthop replace: Invalid argument: Invalid nexthop id\n")  # fmt: skip
    proc = run_cli("nexthop", "replace", "id", "12", "via", "192.0.2.1", "dev", "nosuch", *name)
    assert proc.returncode == 1 and "nosuch" in proc.stderr
    assert _ip_nexthops(netns) == []


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    # Caught before anything is sent (in-process: the same code, without a start-up).
    words = ["nexthop", "replace", "-6", "id", "1", "via", "192.0.2.1", "dev", "v0"]
    assert main(words) == 2
    assert "IPv4 but family is IPv6" in capsys.readouterr().err
    assert main(["nexthop", "show", "10"]) == 2
    assert 'expected "id ID"' in capsys.readouterr().err
    assert main(["nexthop", "list", "dev"]) == 2
    assert '"dev" needs a value' in capsys.readouterr().err


@pytest.mark.parametrize(
    "words",
    [
        "id 0 blackhole",
        "via 192.0.2.1 dev v0",
        "id 1 via 192.0.2.1",
        "id 1 blackhole dev v0",
        "id 1 group 2/x",
        "id 1 group 2,0",
        "id 1 group 2/2",
        "id 1 group 2 dev v0",
        "id 1 type resilient dev v0",
        "id 1 frob",
        "id 1 via",
    ],
)
def test_bad_words_are_value_errors(words: str) -> None:
    # What `nexthop replace` reports as a usage error (exit 2) before anything is sent.
    with pytest.raises((ValueError, TypeError)):
        parse_nexthop_words(words.split())


def test_group_syntax() -> None:
    assert parse_group("1/2,3/0x10,65535") == [(1, 1), (2, 3), (16, 65535)]
    words = "id 10 group 1/2,3 type resilient proto static fdb"
    group = parse_nexthop_words(words.split())
    assert group == NexthopGroup(10, [1, (2, 3)], protocol=4, fdb=True, resilient=True)
