"""How much the fuzz properties run: a hypothesis profile picked by ``ASYNCROUTE_FUZZ``.

* unset (``make test``): profile ``asyncroute-fuzz-quick``, each property runs
  1/:data:`QUICK_DIVISOR` of its budget (at least :data:`QUICK_MINIMUM` examples): seconds.
* ``ASYNCROUTE_FUZZ=full`` (``make fuzz``): profile ``asyncroute-fuzz``, each property
  runs its whole budget; the budgets add up to at least :data:`FULL_TOTAL` examples.

Each property is decorated with :func:`fuzz` (its full budget) and calls :func:`hit` once
per example; ``tests/fuzz/conftest.py`` prints the count per property and fails the run
if a property that passed ran fewer examples than its budget (hypothesis stops early
when it believes the input space is exhausted, which would make the total a lie).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, settings

__all__ = ["BUDGETS", "FULL", "FULL_TOTAL", "PROFILE", "counts", "examples", "fuzz", "hit", "start"]

F = TypeVar("F", bound=Callable[..., object])

ENV = "ASYNCROUTE_FUZZ"
FULL = os.environ.get(ENV, "").lower() == "full"
PROFILE = "asyncroute-fuzz" if FULL else "asyncroute-fuzz-quick"
#: Examples ``make fuzz`` must run over all fuzz properties together.
FULL_TOTAL = 100_000
QUICK_DIVISOR = 100
QUICK_MINIMUM = 50

# The strategies build large composite inputs on purpose; the transport property shares
# one connection (a function-scoped fixture) across its examples on purpose.
_SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,
]
for _name, _examples in (("asyncroute-fuzz-quick", QUICK_MINIMUM), ("asyncroute-fuzz", 1000)):
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        print_blob=True,
        suppress_health_check=_SUPPRESSED,
    )

#: Test function name → the examples it must run in this profile.
BUDGETS: dict[str, int] = {}
#: Examples run so far, by pytest node id.
counts: Counter[str] = Counter()
_current: list[str] = [""]


def examples(full: int) -> int:
    """The examples a property with a full budget of ``full`` runs in this profile."""
    return full if FULL else max(QUICK_MINIMUM, full // QUICK_DIVISOR)


def fuzz(full: int) -> Callable[[F], F]:
    """Decorator (above ``@given``): run ``full`` examples under ``make fuzz``."""

    def apply(test: F) -> F:
        name = test.__name__
        BUDGETS[name] = examples(full)
        result: F = settings(settings.get_profile(PROFILE), max_examples=BUDGETS[name])(test)
        return result

    return apply


def start(nodeid: str) -> None:
    """The test whose examples :func:`hit` counts from now on (set by the conftest)."""
    _current[0] = nodeid


def hit() -> None:
    """Count one example of the running property."""
    counts[_current[0]] += 1
