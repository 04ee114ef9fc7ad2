"""The GIL switch interval is lowered only while bulk calls run, and put back."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from asyncroute._gil import lower_switch_interval, restore_switch_interval


@pytest.fixture
def interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield 0.005
    sys.setswitchinterval(before)


def test_nested_users_restore_once_the_last_ends(interval: float) -> None:
    lower_switch_interval(0.0002)
    assert sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6)
    lower_switch_interval(0.0001)  # a second user does not lower it further
    assert sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6)
    restore_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6)
    restore_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(interval, abs=2e-6)


def test_a_lower_interval_is_never_raised(interval: float) -> None:
    sys.setswitchinterval(0.0001)
    lower_switch_interval(0.0002)
    assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)
    restore_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)


def test_someone_elses_change_is_left_alone(interval: float) -> None:
    lower_switch_interval(0.0002)
    sys.setswitchinterval(0.003)  # the application changed it meanwhile
    restore_switch_interval()
    assert sys.getswitchinterval() == pytest.approx(0.003, abs=2e-6)
