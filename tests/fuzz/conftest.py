"""Fuzz run configuration: counts the examples of each property and reports them.

The profile (quick under ``make test``, ``ASYNCROUTE_FUZZ=full`` under ``make fuzz``) is
picked in :mod:`tests.fuzz.profile`.  At the end of a run this prints, per property,
the examples it ran against its budget, and the total.  The run fails if a property
passed with fewer examples than its budget, or if a full run of every property ran
fewer than ``FULL_TOTAL`` (100,000) examples in all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz import profile

_passed: dict[str, str] = {}  # node id → function name, for properties that passed
_ran: set[str] = set()  # function names of the properties that ran


def _function_name(item: pytest.Item) -> str:
    return getattr(item, "originalname", item.name)


@pytest.fixture(autouse=True)
def _count_examples(request: pytest.FixtureRequest) -> Iterator[None]:
    profile.start(request.node.nodeid)
    yield
    profile.start("")


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    name = _function_name(item)
    if call.when == "call" and name in profile.BUDGETS:
        _ran.add(name)
        if call.excinfo is None:
            _passed[item.nodeid] = name


def _short() -> list[str]:
    return [
        nodeid for nodeid, name in _passed.items() if profile.counts[nodeid] < profile.BUDGETS[name]
    ]


def _total_too_small() -> bool:
    """A full run of every property ran fewer than FULL_TOTAL examples."""
    complete = _ran == set(profile.BUDGETS)
    return profile.FULL and complete and sum(profile.counts.values()) < profile.FULL_TOTAL


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not any(profile.counts.values()):
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"fuzz examples (hypothesis profile {profile.PROFILE})")
    for nodeid, count in sorted(profile.counts.items()):
        if nodeid:
            budget = profile.BUDGETS.get(nodeid.split("::")[-1].split("[")[0], 0)
            write(f"{count:>9,}  (budget {budget:>7,})  {nodeid}")
    write(f"{sum(profile.counts.values()):>9,}  in total")
    for nodeid in _short():
        write(f"ran fewer examples than its budget: {nodeid}", red=True)
    if _total_too_small():
        write(f"fewer than {profile.FULL_TOTAL:,} examples in a full run", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.exitstatus == pytest.ExitCode.OK and (_short() or _total_too_small()):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
