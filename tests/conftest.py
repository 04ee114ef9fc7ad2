"""Suite-wide pytest configuration.

* Loads the ``netns`` fixture from :mod:`asyncroute.testing`.
* Marks every test that uses ``netns`` (directly or through another fixture) with
  ``kernel``, so ``pytest -m "not kernel"`` runs everything that needs no root.
* Under CI (``CI=true``) a skipped test fails the run: kernel tests must run there.
* ``netns2``: a second fresh namespace, for tests that compare two.
* ``anyio_backend`` runs every ``@pytest.mark.anyio`` test on asyncio and on trio.  A
  module or test that only needs asyncio overrides it with its own ``anyio_backend``
  fixture.  The anyio pytest plugin is registered by the anyio package itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from asyncroute.netns import Namespace, NetnsUnavailable, create_namespace, delete_namespace

pytest_plugins = ["asyncroute.testing"]


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "netns" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kernel)


# Skips seen in this session: tests skipped at setup or call, and modules skipped at
# collection.  An xfail is reported as "skipped" with `wasxfail` and is not a skip.
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _under_ci() and _skipped and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _under_ci() and _skipped:
        terminalreporter.write_line(
            f"CI=true: {len(_skipped)} tests were skipped; kernel tests must run under CI",
            red=True,
            bold=True,
        )


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The anyio backend for ``@pytest.mark.anyio`` tests: each test runs on both."""
    backend: str = request.param
    return backend


@pytest.fixture
def netns2(netns: Namespace) -> Iterator[Namespace]:
    """A second fresh namespace of the same layout (for ``ip``'s side of a comparison);
    deleted afterwards, also when the test fails."""
    try:
        ns = create_namespace()
    except NetnsUnavailable as exc:  # pragma: no cover - the first one worked
        pytest.fail(f"second namespace: {exc}")
    try:
        yield ns
    finally:
        delete_namespace(ns)
