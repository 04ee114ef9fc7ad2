"""Soak run configuration: prints each run's report at the end of the session.

``ASYNCROUTE_SOAK_OPS`` (default 20,000: ``make test``; ``make soak`` sets 1,000,000)
and ``ASYNCROUTE_SOAK_SEED`` are read by :mod:`tests.soak.test_soak`.
"""

from __future__ import annotations

import pytest

from tests.soak.test_soak import REPORTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("soak")
    for name, lines in REPORTS:
        terminalreporter.write_line(name)
        for line in lines:
            terminalreporter.write_line(f"    {line}")
