"""Every program in ``examples/`` runs, in a fresh namespace, and prints what it should.

Each example is a complete program taking a namespace name as its first argument (the
layout of the ``netns`` fixture: veth ``v0`` up with 192.0.2.2/24 and 2001:db8::2/64).
The examples are found by glob, so a new one is run as soon as it exists; its expected
output must then be added to ``EXPECTED`` (a test fails until it is).  The docs include
these files, so the rules every example keeps are checked here too: under 80 lines, a
docstring that says how to run it, documentation prefixes only.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
from pathlib import Path

import pytest

from asyncroute.testing import Namespace

pytestmark = pytest.mark.kernel

EXAMPLES_DIR = Path(__file__).parents[2] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))
MAX_LINES = 80
# RFC 5737, RFC 2544 (benchmarking) and RFC 3849 blocks; default routes are fine too.
DOC_PREFIXES = [
    ipaddress.ip_network(p)
    for p in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15",
              "2001:db8::/32")
]  # fmt: skip
# A quoted IPv4 or IPv6 address or prefix in an example's source.
ADDRESS = re.compile(r'"(\d+\.\d+\.\d+\.\d+(?:/\d+)?|[0-9a-f:]*::[0-9a-f:]*(?:/\d+)?)"')


def documentation_only(literal: str) -> bool:
    network = ipaddress.ip_network(literal, strict=False)
    return network.prefixlen == 0 or any(
        network.subnet_of(p) for p in DOC_PREFIXES if p.version == network.version
    )


def rate(text: str) -> re.Pattern[str]:
    """A line with a measured rate in it: ``{RATE}`` stands for the number."""
    return re.compile(re.escape(text).replace(re.escape("{RATE}"), r"[\d,]+"))


# The whole stdout of each example, line by line: a string is the exact line, a pattern
# must match the whole line.
EXPECTED: dict[str, list[str | re.Pattern[str]]] = {
    "quickstart": [
        "installed 198.51.100.0/24 via 192.0.2.1 dev v0 table 254 proto 3",
        "deleted 198.51.100.0/24",
    ],
    "quickstart_trio": [
        "installed 198.51.100.0/26 via 192.0.2.1 dev v0",
        "installed 198.51.100.64/26 via 192.0.2.1 dev v0",
        "installed 198.51.100.128/26 via 192.0.2.1 dev v0",
        "deleted 3 routes",
    ],
    "bulk_load": [
        rate("upserted 100,000 routes, {RATE} routes/s, 0 failed"),
        "table 100 holds 100,000 routes",
        rate("deleted 100,000 routes, {RATE} routes/s, 0 failed"),
        "table 100 holds 0 routes",
    ],
    "reconcile_agent": [
        "installed 4 routes in table 100",
        "ip route del 203.0.113.32/28 table 100",
        "1 routes left table 100; put back 1",
        "ip route flush table 100",
        "5 routes left table 100; put back 4",
        "table 100: 4 of 4 routes present",
    ],
    "policy_routing": [
        "IPv4 rule 100: from all to all lookup 100 mark 0x100 mask 0xff00",
        "IPv6 rule 100: from all to all lookup 100 mark 0x100 mask 0xff00",
        "203.0.113.7 marked 0x1ff: via 192.0.2.1 dev v0 table 100",
        "203.0.113.7 unmarked: unreachable",
        "2001:db8:ff::7 marked 0x1ff: via 2001:db8::1 dev v0 table 100",
        "2001:db8:ff::7 unmarked: unreachable",
        "rules left for table 100: 0",
    ],
    "multipath_nexthops": [
        "ECMP 203.0.113.0/24 table 100: 192.0.2.1 weight 3, 192.0.2.5 weight 1",
        "group 10: nexthop 1 weight 3, nexthop 2 weight 1; used by 4 routes",
        "each via 192.0.2.1 or 192.0.2.5: True",
        "after one replace_nexthop, all 4 via 192.0.2.6",
        "left in table 100: [], nexthop objects left: []",
    ],
}

# What an example must print on stderr besides (bulk_load's progress line, redrawn).
EXPECTED_STDERR = {"bulk_load": ["upserted: 100,000/100,000 (100%)"]}


def run(example: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(example), *args], capture_output=True, text=True, timeout=60
    )


def test_examples_are_found() -> None:
    """Guards against the glob silently finding nothing."""
    assert {path.stem for path in EXAMPLES} >= set(EXPECTED)


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_follows_the_rules(example: Path) -> None:
    source = example.read_text()
    assert len(source.splitlines()) < MAX_LINES, f"{example.name} has 80 lines or more"
    assert source.startswith('"""'), f"{example.name} needs a module docstring"
    docstring = source.split('"""', 2)[1]
    assert f"python examples/{example.name} NETNS" in docstring, "say how to run it"
    assert example.stem in EXPECTED, f"add the expected output of {example.name} to EXPECTED"
    strays = [a for a in ADDRESS.findall(source) if not documentation_only(a)]
    assert not strays, f"{example.name}: not documentation prefixes: {strays}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(example: Path, netns: Namespace) -> None:
    proc = run(example, netns.name)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    expected = EXPECTED.get(example.stem)
    assert expected is not None, f"add the expected output of {example.name} to EXPECTED"
    assert len(lines) == len(expected), proc.stdout
    for line, want in zip(lines, expected, strict=True):
        if isinstance(want, re.Pattern):
            assert want.fullmatch(line), (line, want.pattern)
        else:
            assert line == want
    for want in EXPECTED_STDERR.get(example.stem, []):
        assert want in proc.stderr


def test_without_an_argument_an_example_makes_its_own_namespace() -> None:
    """The quickstart creates a throwaway namespace (and deletes it) when given none."""
    before = set(Path("/run/netns").glob("asyncroute-example-*"))
    proc = run(EXAMPLES_DIR / "quickstart.py")
    if proc.returncode != 0 and "NetnsUnavailable" in proc.stderr:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == EXPECTED["quickstart"]
    assert set(Path("/run/netns").glob("asyncroute-example-*")) == before
