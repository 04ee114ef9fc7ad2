"""``asyncroute monitor``: the installed command, run in the background in a fresh
namespace, sees the changes ``ip`` makes (another process), one line or JSON object per
event, and exits as documented (``--count``, ``--timeout``, Ctrl-C).

The monitor is started with :class:`~tests.cli.conftest.Background`, which returns once
the command printed its "listening" line on stderr: it is subscribed, and every change
made after that line is reported.  ``-4`` keeps the IPv6 link-local routes that appear
while a new namespace's addresses finish DAD out of the way.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from asyncroute.cli import main
from asyncroute.testing import Namespace
from tests.cli.conftest import Background, run_cli

pytestmark = pytest.mark.kernel


def test_json_route_added_and_removed_by_ip(netns: Namespace) -> None:
    job = Background.start("monitor", "-4", "--count", "2", "--json", "--netns", netns.name)
    assert json.loads(job.ready) == {"listening": ["route", "rule", "nexthop"],
                                     "family": "inet", "netns": netns.name}  # fmt: skip
    route = ["198.51.100.0/24", "via", "192.0.2.1", "dev", "v0", "table", "100"]
    netns.ip("route", "add", *route, "mtu", "1400", "metric", "7")
    netns.ip("route", "del", *route)
    status, out, err = job.finish()
    assert (status, err) == (0, "")
    events = [json.loads(line) for line in out.splitlines()]
    shown = {
        "type": "unicast",
        "dst": "198.51.100.0/24",
        "gateway": "192.0.2.1",
        "dev": "v0",
        "table": "100",
        "protocol": "boot",
        "scope": "global",
        "metric": 7,
        "metrics": [{"mtu": 1400}],
    }
    assert events == [
        {"event": "RouteAdded", "replaced": False, "route": shown},
        {"event": "RouteRemoved", "route": shown, "implied_by": None},
    ]
    # The same shape as `route list --json`, so an added route can be applied back.
    netns.ip("route", "add", *route, "mtu", "1400", "metric", "7")
    listed = json.loads(run_cli("route", "list", "table", "100", "--json", "--netns",
                                netns.name).stdout)  # fmt: skip
    assert listed == [shown]


def test_lines_for_routes_rules_and_nexthops(netns: Namespace) -> None:
    job = Background.start("monitor", "-4", "--count", "13", "--netns", netns.name)
    listening = "listening for IPv4 route, rule, nexthop events"
    assert job.ready == f"asyncroute monitor: {listening} in {netns.name}\n"
    ip = netns.ip
    ip("route", "replace", "198.51.100.0/24", "dev", "v0", "table", "100")
    ip("route", "replace", "198.51.100.0/24", "dev", "v0", "table", "100", "mtu", "1300")
    ip("rule", "add", "priority", "1000", "fwmark", "0x10/0xff", "table", "100")
    ip("rule", "add", "priority", "1001", "blackhole")
    ip("rule", "del", "priority", "1001")
    ip("nexthop", "add", "id", "1", "via", "192.0.2.1", "dev", "v0")
    ip("nexthop", "add", "id", "2", "via", "192.0.2.5", "dev", "v0", "onlink", "proto", "static")
    ip("nexthop", "add", "id", "10", "group", "1/2,3")
    ip("route", "add", "203.0.113.0/24", "nhid", "1", "table", "100")
    ip("route", "add", "198.18.0.0/24", "table", "100", "nexthop", "via", "192.0.2.1", "dev",
       "v0", "weight", "2", "nexthop", "via", "192.0.2.5", "dev", "v0", "onlink")  # fmt: skip
    ip("nexthop", "del", "id", "1")  # the route via nhid 1 goes too, unannounced
    status, out, err = job.finish()
    assert (status, err) == (0, ""), out
    assert out.splitlines() == [
        "route added 198.51.100.0/24 dev v0 table 100 scope link",
        "route replaced 198.51.100.0/24 dev v0 table 100 scope link mtu 1300",
        "rule added 1000: from all fwmark 0x10/0xff lookup 100",
        "rule added 1001: from all blackhole",
        "rule removed 1001: from all blackhole",
        "nexthop added id 1 via 192.0.2.1 dev v0",
        "nexthop added id 2 via 192.0.2.5 dev v0 proto static onlink",
        "nexthop added id 10 group 1/2,3",
        "route added 203.0.113.0/24 nhid 1 table 100",
        "route added 198.18.0.0/24 table 100 nexthop via 192.0.2.1 dev v0 weight 2"
        " nexthop via 192.0.2.5 dev v0 weight 1 onlink",
        "nexthop removed id 1 via 192.0.2.1 dev v0",
        "route removed 203.0.113.0/24 nhid 1 table 100 (implied by nexthop 1 removed)",
        "nexthop added id 10 group 2,3",
    ]


def _links_settled(ns: Namespace) -> None:
    """Wait until the veths' carrier is reported (linkwatch announces it up to a second
    after the link came up): no link event is left to come unasked."""
    deadline = time.monotonic() + 10
    while True:
        links = json.loads(ns.ip("-json", "link", "show").stdout)
        if all(link["operstate"] == "UP" for link in links if link["ifname"] in ("v0", "v1")):
            return
        assert time.monotonic() < deadline, links
        time.sleep(0.05)


def test_json_nexthop_and_link_events(netns: Namespace) -> None:
    _links_settled(netns)
    job = Background.start("monitor", "nexthop", "link", "--json", "--count", "3",
                           "--netns", netns.name)  # fmt: skip
    netns.ip("-6", "nexthop", "add", "id", "7", "blackhole")
    netns.ip("link", "set", "v1", "mtu", "1400")
    netns.ip("nexthop", "del", "id", "7")
    status, out, _ = job.finish()
    assert status == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0] == {"event": "NexthopAdded", "id": 7, "nexthop": {
        "id": 7, "family": "inet6", "blackhole": None, "flags": []}}  # fmt: skip
    assert events[1]["event"] == "LinkChanged"
    assert events[1]["link"]["ifname"] == "v1" and events[1]["link"]["mtu"] == 1400
    assert "UP" in events[1]["link"]["flags"]
    assert events[2] == {**events[0], "event": "NexthopRemoved", "implied_by": None}


def test_timeout_count_and_usage_exit_statuses(netns: Namespace) -> None:
    proc = run_cli("monitor", "--timeout", "0.2", "--quiet", "--netns", netns.name)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    proc = run_cli("monitor", "--timeout", "0.2", "--count", "1", "--netns", netns.name)
    assert proc.returncode == 1 and proc.stdout == ""
    proc = run_cli("monitor", "--timeout", "1", "--netns", "asyncroute-no-such-namespace")
    assert proc.returncode == 1 and "asyncroute-no-such-namespace" in proc.stderr


def test_ctrl_c_exits_130_quietly(netns: Namespace) -> None:
    job = Background.start("monitor", "--netns", netns.name)
    job.proc.send_signal(signal.SIGINT)
    status, out, err = job.finish(timeout=10)
    assert (status, out, err) == (130, "", "asyncroute: interrupted\n")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    # Caught before subscribing (in-process: the same code, without a start-up).
    assert main(["monitor", "routez"]) == 2
    assert 'unknown object "routez"' in capsys.readouterr().err
    assert main(["monitor", "--count", "0"]) == 2
    assert main(["monitor", "--timeout=-1", "--json"]) == 2
    assert json.loads(capsys.readouterr().err.splitlines()[-1])["command"] == "monitor"
