"""The soak test's model of what the kernel should hold: routes and rules, some unknown.

Plain Python, no asyncroute: the model must not share the library's mistakes.  Each
route key (family, destination, table) and each rule (priority, src, mark, mask, table)
is a :class:`Cell`: *known* (one value) or *unknown* (a set of candidate values).

An operation that completes makes its cells known.  One that was cancelled or timed out
may or may not have reached the kernel — worse, part of a bulk call may have — so each
of its cells becomes unknown, its candidates being what it held before and what the
operation would have made of it.  A later operation that completes on the cell makes it
known again; a lookup narrows the candidates; :meth:`Model.unknown_routes` and
:meth:`Model.unknown_rules` list what is left to look up before the model is compared
with the kernel.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["ABSENT", "NEXTHOP", "Cell", "Mismatch", "Model", "RouteKey", "RuleKey", "Via"]

V = TypeVar("V", bound=Hashable)


class Mismatch(AssertionError):
    """The kernel's answer contradicts the model."""


@dataclass(frozen=True)
class Via:
    """A prefix route's content as upsert installs it."""

    gateway: str
    mtu: int


#: The content of a nexthop route (``GW/32 dev v0 scope link`` in the route's table).
NEXTHOP = "nexthop"
#: No route / no rule.
ABSENT = None

#: (4 or 6, "address/prefixlen", table)
RouteKey = tuple[int, str, int]
RouteValue = Via | str | None
#: (priority, src prefix or None, mark, mask, table)
RuleKey = tuple[int, str | None, int, int, int]


@dataclass
class Cell(Generic[V]):
    """One key's state: ``candidates`` has one value when known, more when not."""

    candidates: set[V] = field(default_factory=set)

    @property
    def known(self) -> bool:
        return len(self.candidates) == 1

    @property
    def value(self) -> V:
        assert self.known, self.candidates
        return next(iter(self.candidates))

    def settle(self, value: V) -> None:
        self.candidates = {value}

    def maybe(self, value: V) -> None:
        self.candidates.add(value)

    def narrow(self, keep: set[V], what: str) -> None:
        """Keep only ``keep``; an empty result is a contradiction."""
        left = self.candidates & keep
        if not left:
            raise Mismatch(
                f"{what}: the kernel says {sorted(map(repr, keep))}, "
                f"the model allows only {sorted(map(repr, self.candidates))}"
            )
        self.candidates = left


class Model:
    """Expected routes and rules.  Every cell starts known and absent."""

    def __init__(self) -> None:
        self.routes: dict[RouteKey, Cell[RouteValue]] = {}
        self.rules: dict[RuleKey, Cell[bool]] = {}

    def route(self, key: RouteKey) -> Cell[RouteValue]:
        cell = self.routes.get(key)
        if cell is None:
            cell = self.routes[key] = Cell({ABSENT})
        return cell

    def rule(self, key: RuleKey) -> Cell[bool]:
        cell = self.rules.get(key)
        if cell is None:
            cell = self.rules[key] = Cell({False})
        return cell

    # ------------------------------------------------------------------ definite results

    def deleted(self, key: RouteKey, existed: bool | None, what: str) -> None:
        """A delete completed: ``existed`` is True (it succeeded), False (NotFoundError)
        or None (not reported).  Afterwards the route is absent."""
        cell = self.route(key)
        if existed is True:
            cell.narrow({c for c in cell.candidates if c is not ABSENT}, what)
        elif existed is False:
            cell.narrow({ABSENT}, what)
        cell.settle(ABSENT)

    def rule_deleted(self, key: RuleKey, existed: bool, what: str) -> None:
        cell = self.rule(key)
        cell.narrow({existed}, what)
        cell.settle(False)

    def looked_up(self, key: RouteKey, gateway: str, found: Via | None, what: str) -> None:
        """A lookup for ``key`` via ``gateway`` found ``found`` (None: NotFoundError)."""
        cell = self.route(key)
        if found is not None:
            cell.narrow({found}, what)
        else:
            via_gateway = {
                c for c in cell.candidates if isinstance(c, Via) and c.gateway == gateway
            }
            cell.narrow(cell.candidates - via_gateway, what)

    # ------------------------------------------------------------------ what is left

    def unknown_routes(self) -> Iterator[tuple[RouteKey, Cell[RouteValue]]]:
        return ((key, cell) for key, cell in self.routes.items() if not cell.known)

    def unknown_rules(self) -> Iterator[tuple[RuleKey, Cell[bool]]]:
        return ((key, cell) for key, cell in self.rules.items() if not cell.known)

    def expected_routes(self, family: int, table: int) -> dict[str, RouteValue]:
        """Destination → content for every route the model holds in one table."""
        return {
            key[1]: cell.value
            for key, cell in self.routes.items()
            if key[0] == family and key[2] == table and cell.value is not ABSENT
        }

    def expected_rules(self) -> set[RuleKey]:
        return {key for key, cell in self.rules.items() if cell.value}
