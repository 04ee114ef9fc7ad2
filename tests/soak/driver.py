"""The soak driver: seeded random route and rule operations against a :class:`Model`.

:class:`Soak` runs ``workers`` tasks on one connection.  Each worker owns a disjoint
share of the route keys and rule slots and runs one operation at a time on them, so
that the model can say exactly what each completed operation leaves behind; the workers
run concurrently, so the connection always has many requests, dumps and batches in
flight at once.  Operations, by weight: upsert, delete, lookup, replace_rule,
delete_rule (IPv4 and IPv6 variants), upsert_many, delete_many, replace_rules,
delete_rules.  A bulk call counts one operation per item.

About one operation in seven runs under a short timeout (``anyio.move_on_after``, 0 to
5 ms) or is cancelled by a sibling task after a random number of event-loop turns.  Such
an operation may or may not have reached the kernel — a bulk call partly — so the cells
it touches become unknown (see :mod:`tests.soak.model`).  Outcomes the library itself
reports as unknown (OutcomeUnknown, its own TimeoutError, a DumpInterrupted after its
retries) are treated the same way and
counted.  Every definite answer is checked against the model as it arrives: a delete
that succeeds must find a route the model allows, NotFoundError must agree with the
model, a lookup must find exactly the route the model holds (or one of its candidates).

Every ``round_operations`` operations the workers stop and the driver checkpoints: it
waits until the connection has no pending seq and no waiter, resolves every unknown cell
(``conn.lookup`` per candidate gateway for routes, one rule listing per family for
rules), then compares the model with the kernel as ``ip -json`` shows it
(:mod:`tests.oracle`), table by table and rule by rule, and records the RSS.

Addresses: prefixes in 198.18.0.0/15 and 2001:db8:100::/48, 2001:db8:200::/48; gateways
192.0.2.1, .10, .11 and 2001:db8::1, ::10, ::11 (on-link on ``v0``); tables 100, 101 and
300 (above 255: RTA_TABLE); rule priorities 1000-1015 (IPv4) and 2000-2007 (IPv6).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from asyncroute import Connection, DumpInterrupted, NotFoundError, OutcomeUnknown, Route, Rule
from asyncroute.constants import AF_INET, AF_INET6, RTM
from asyncroute.messages import Message, RuleMessage
from tests import oracle
from tests.soak.model import ABSENT, NEXTHOP, Cell, Mismatch, Model, RouteKey, RuleKey, Via

__all__ = ["Report", "Soak", "rss_kib"]

T = TypeVar("T")

DEVICE = "v0"
TABLES = (100, 101, 300)
GATEWAYS = {
    4: ("192.0.2.1", "192.0.2.10", "192.0.2.11"),
    6: ("2001:db8::1", "2001:db8::10", "2001:db8::11"),
}
MTUS = (0, 1400)
#: (4 or 6, destination), normalised as ipaddress prints it.
DESTINATIONS: list[tuple[int, str]] = [
    *((4, f"198.18.0.{i}/32") for i in range(256)),
    *((4, f"198.19.{i}.0/24") for i in range(128)),
    *((4, f"198.18.200.{16 * i}/28") for i in range(16)),
    *((6, str(ip_network(f"2001:db8:100:{i:x}::/64"))) for i in range(128)),
    *((6, str(ip_network(f"2001:db8:200::{i + 1:x}/128"))) for i in range(128)),
]
#: Rule slots: (priority, family, src).  Within a slot the rules differ in mark, mask
#: and table, all non-zero, so the kernel's delete matches exactly one of them.
SLOTS: list[tuple[int, int, str | None]] = [
    *((1000 + i, 4, None if i % 2 == 0 else f"198.18.{100 + i}.0/24") for i in range(16)),
    *((2000 + i, 6, f"2001:db8:{0x500 + i:x}::/48") for i in range(8)),
]
MARKS, MASKS = (1, 2, 3), (0xFF, 0xFFFF)

#: Operation → weight (per call).
WEIGHTS = {
    "upsert": 30,
    "delete": 15,
    "lookup": 6,
    "replace_rule": 8,
    "delete_rule": 6,
    "upsert_many": 14,
    "delete_many": 9,
    "replace_rules": 6,
    "delete_rules": 6,
}
#: Chance that an operation runs under a short timeout, and that it is cancelled.
P_TIMEOUT, P_CANCEL = 0.07, 0.07
TIMEOUTS = (0.0, 0.00005, 0.0002, 0.001, 0.005)
#: Most items in one bulk route call (sizes are log-uniform from 1) and rule call.
MAX_BULK, MAX_RULES = 256, 6


def rss_kib() -> int:
    """This process's resident set size (VmRSS), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def nexthop_key(family: int, gateway: str, table: int) -> RouteKey:
    return (family, f"{gateway}/{32 if family == 4 else 128}", table)


@dataclass
class Report:
    """What a soak run did, for the terminal summary."""

    seed: int
    operations: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    #: operations not completed: "timeout" (our move_on_after), "cancelled" (our cancel
    #: scope), or the library's OutcomeUnknown, TimeoutError, DumpInterrupted
    unknown: Counter[str] = field(default_factory=Counter)
    resolved_routes: int = 0
    resolved_rules: int = 0
    resolve_lookups: int = 0
    checkpoints: int = 0
    routes_checked: int = 0
    rules_checked: int = 0
    rss: list[tuple[int, int]] = field(default_factory=list)  # (operations, KiB)
    seconds: float = 0.0
    stats: str = ""

    def lines(self) -> list[str]:
        rate = self.operations / self.seconds if self.seconds else 0.0
        rss = ", ".join(f"{ops:,}: {kib / 1024:.1f}" for ops, kib in self.rss)
        return [
            f"seed {self.seed}: {self.operations:,} operations in {self.seconds:.1f} s "
            f"({rate:,.0f}/s), {self.checkpoints} checkpoints",
            "calls: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.calls.items())),
            "items: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.items.items())),
            "not completed: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.unknown.items())),
            f"resolved at checkpoints: {self.resolved_routes:,} routes "
            f"({self.resolve_lookups:,} lookups), {self.resolved_rules:,} rules; compared "
            f"{self.routes_checked:,} routes and {self.rules_checked:,} rules with ip -json",
            f"RSS MiB by operations: {rss}",
            f"connection stats: {self.stats}",
        ]


class Outcome:
    """How a guarded call ended: ``value``, ``error`` (an Exception), or neither
    (``unknown``: cancelled, timed out, or reported unknown by the library)."""

    __slots__ = ("error", "unknown", "value")

    def __init__(self, value: Any = None, error: Exception | None = None, unknown: bool = False):
        self.value = value
        self.error = error
        self.unknown = unknown


class Soak:
    """A seeded random driver of one connection in one namespace; see the module doc."""

    def __init__(
        self,
        conn: Connection,
        ns_name: str,
        *,
        operations: int,
        seed: int,
        workers: int = 8,
        round_operations: int = 100_000,
    ) -> None:
        self.conn = conn
        self.ns_name = ns_name
        self.target = operations
        self.seed = seed
        self.workers = workers
        self.round_operations = round_operations
        self.model = Model()
        self.report = Report(seed)
        master = random.Random(seed)
        self.rngs = [random.Random(master.getrandbits(64)) for _ in range(workers)]
        keys = [(family, dst, table) for family, dst in DESTINATIONS for table in TABLES]
        random.Random(seed).shuffle(keys)
        self.keys = [keys[w::workers] for w in range(workers)]
        rules = [
            (priority, src, mark, mask, table)
            for priority, _, src in SLOTS
            for mark in MARKS
            for mask in MASKS
            for table in TABLES
        ]
        self.rules = [
            [rule for rule in rules if SLOTS_BY_PRIORITY[rule[0]] % workers == w]
            for w in range(workers)
        ]
        self.done = 0  # operations finished

    # ------------------------------------------------------------------ the run

    async def run(self) -> Report:
        start = time.monotonic()
        self.report.rss.append((0, rss_kib()))
        while self.done < self.target:
            stop_at = min(self.target, self.done + self.round_operations)
            try:
                async with anyio.create_task_group() as group:
                    for worker in range(self.workers):
                        group.start_soon(self.worker, worker, stop_at)
            except ExceptionGroup as failures:
                # The first worker's failure, unwrapped, so that pytest shows it plainly.
                raise failures.exceptions[0] from failures
            await self.checkpoint()
            self.report.rss.append((self.done, rss_kib()))
        self.report.operations = self.done
        self.report.seconds = time.monotonic() - start
        self.report.stats = str(self.conn.stats)
        return self.report

    async def worker(self, index: int, stop_at: int) -> None:
        rng = self.rngs[index]
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        while self.done < stop_at:
            kind = rng.choices(kinds, weights)[0]
            self.report.calls[kind] += 1
            count = await getattr(self, kind)(rng, index)
            self.report.items[kind] += count
            self.done += count

    async def guarded(self, rng: random.Random, call: Callable[[], Awaitable[T]]) -> Outcome:
        """Run ``call()`` as it is, under a short timeout, or cancelled at a random moment."""
        draw = rng.random()
        outcome: Outcome | None = None
        try:
            if draw < P_TIMEOUT:
                with anyio.move_on_after(rng.choice(TIMEOUTS)):
                    outcome = Outcome(await call())
                if outcome is None:
                    self.report.unknown["timeout"] += 1
                    outcome = Outcome(unknown=True)
            elif draw < P_TIMEOUT + P_CANCEL:
                turns = rng.randrange(64)
                scope = anyio.CancelScope()

                async def cancel_later() -> None:
                    for _ in range(turns):
                        await anyio.lowlevel.checkpoint()
                    scope.cancel()

                async with anyio.create_task_group() as group:
                    group.start_soon(cancel_later)
                    with scope:
                        outcome = await self._capture(call)
                    group.cancel_scope.cancel()
                if outcome is None:
                    self.report.unknown["cancelled"] += 1
                    outcome = Outcome(unknown=True)
            else:
                outcome = Outcome(await call())
        except (OutcomeUnknown, TimeoutError, DumpInterrupted) as exc:
            self.report.unknown[type(exc).__name__] += 1
            outcome = Outcome(unknown=True)
        except Exception as exc:
            outcome = Outcome(error=exc)
        return outcome

    async def _capture(self, call: Callable[[], Awaitable[T]]) -> Outcome | None:
        # Inside a task group an exception would come out wrapped: keep it as a value.
        try:
            return Outcome(await call())
        except (OutcomeUnknown, TimeoutError, DumpInterrupted) as exc:
            self.report.unknown[type(exc).__name__] += 1
            return Outcome(unknown=True)
        except Exception as exc:
            return Outcome(error=exc)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def route_of(key: RouteKey, via: Via | None = None) -> Route:
        _, dst, table = key
        if via is None:
            return Route(dst, device=DEVICE, table=table)
        return Route(dst, nexthop=via.gateway, device=DEVICE, table=table, mtu=via.mtu)

    @staticmethod
    def rule_of(key: RuleKey) -> Rule:
        priority, src, mark, mask, table = key
        return Rule(priority=priority, src=src, mark=mark, mask=mask, table=table)

    @staticmethod
    def via(rng: random.Random, family: int) -> Via:
        return Via(rng.choice(GATEWAYS[family]), rng.choice(MTUS))

    @staticmethod
    def bulk_size(rng: random.Random, limit: int) -> int:
        return min(limit, int(2 ** rng.uniform(0, math.log2(MAX_BULK + 1))))

    def rule_sample(self, rng: random.Random, worker: int) -> list[RuleKey]:
        own = self.rules[worker]
        return rng.sample(own, rng.randint(1, min(MAX_RULES, len(own))))

    def unexpected(self, what: str, outcome: Outcome) -> Mismatch:
        return Mismatch(f"seed {self.seed}: {what}: unexpected {outcome.error!r}")

    def upserted(self, key: RouteKey, via: Via, definite: bool) -> None:
        route = self.model.route(key)
        nexthop = self.model.route(nexthop_key(key[0], via.gateway, key[2]))
        if definite:
            route.settle(via)
            nexthop.settle(NEXTHOP)
        else:
            route.maybe(via)
            nexthop.maybe(NEXTHOP)

    # ------------------------------------------------------------------ operations
    # Each returns the number of operations it counts for.

    async def upsert(self, rng: random.Random, worker: int) -> int:
        key = rng.choice(self.keys[worker])
        via = self.via(rng, key[0])
        outcome = await self.guarded(rng, lambda: self.conn.upsert(self.route_of(key, via)))
        if outcome.error is not None:
            raise self.unexpected(f"upsert {key} {via}", outcome)
        if not outcome.unknown:
            assert outcome.value is True
        self.upserted(key, via, not outcome.unknown)
        return 1

    async def delete(self, rng: random.Random, worker: int) -> int:
        key = rng.choice(self.keys[worker])
        outcome = await self.guarded(rng, lambda: self.conn.delete(self.route_of(key)))
        what = f"seed {self.seed}: delete {key}"
        if outcome.unknown:
            self.model.route(key).maybe(ABSENT)
        elif outcome.error is None:
            self.model.deleted(key, True, what)
        elif isinstance(outcome.error, NotFoundError):
            self.model.deleted(key, False, what)
        else:
            raise self.unexpected(what, outcome)
        return 1

    async def lookup(self, rng: random.Random, worker: int) -> int:
        key = rng.choice(self.keys[worker])
        gateway = rng.choice(GATEWAYS[key[0]])
        query = Route(key[1], nexthop=gateway, device=DEVICE, table=key[2])
        outcome = await self.guarded(rng, lambda: self.conn.lookup(query))
        if not outcome.unknown:
            self.check_lookup(key, gateway, outcome)
        return 1

    def check_lookup(self, key: RouteKey, gateway: str, outcome: Outcome) -> None:
        what = f"seed {self.seed}: lookup {key} via {gateway}"
        if isinstance(outcome.error, NotFoundError):
            self.model.looked_up(key, gateway, None, what)
            return
        if outcome.error is not None:
            raise self.unexpected(what, outcome)
        found: Route = outcome.value
        assert str(found.prefix) == key[1] and found.table == key[2], (what, found)
        assert found.device == DEVICE and str(found.nexthop) == gateway, (what, found)
        self.model.looked_up(key, gateway, Via(gateway, found.mtu), what)

    async def replace_rule(self, rng: random.Random, worker: int) -> int:
        key = rng.choice(self.rules[worker])
        rule = self.rule_of(key)
        ipv6 = SLOT_FAMILY[key[0]] == 6
        call = self.conn.replace_rule_ipv6 if ipv6 else self.conn.replace_rule
        outcome = await self.guarded(rng, lambda: call(rule))
        if outcome.error is not None:
            raise self.unexpected(f"replace_rule {key}", outcome)
        if outcome.unknown:
            self.model.rule(key).maybe(True)
        else:
            self.model.rule(key).settle(True)
        return 1

    async def delete_rule(self, rng: random.Random, worker: int) -> int:
        key = rng.choice(self.rules[worker])
        rule = self.rule_of(key)
        ipv6 = SLOT_FAMILY[key[0]] == 6
        call = self.conn.delete_rule_ipv6 if ipv6 else self.conn.delete_rule
        outcome = await self.guarded(rng, lambda: call(rule))
        self.rule_deleted(key, outcome, f"seed {self.seed}: delete_rule {key}")
        return 1

    def rule_deleted(self, key: RuleKey, outcome: Outcome, what: str) -> None:
        if outcome.unknown:
            self.model.rule(key).maybe(False)
        elif outcome.error is None:
            self.model.rule_deleted(key, True, what)
        elif isinstance(outcome.error, NotFoundError):
            self.model.rule_deleted(key, False, what)
        else:
            raise self.unexpected(what, outcome)

    async def upsert_many(self, rng: random.Random, worker: int) -> int:
        keys = rng.sample(self.keys[worker], self.bulk_size(rng, len(self.keys[worker])))
        vias = [self.via(rng, key[0]) for key in keys]
        routes = [self.route_of(key, via) for key, via in zip(keys, vias, strict=True)]
        outcome = await self.guarded(rng, lambda: self.conn.upsert_many(routes))
        if outcome.error is not None:
            raise self.unexpected(f"upsert_many of {len(keys)}", outcome)
        results = outcome.value if not outcome.unknown else [None] * len(keys)
        for key, via, result in zip(keys, vias, results, strict=True):
            if result is True:
                self.upserted(key, via, True)
            elif result is None or isinstance(result, OutcomeUnknown):
                if result is not None:
                    self.report.unknown["OutcomeUnknown"] += 1
                self.upserted(key, via, False)
            else:
                raise Mismatch(f"seed {self.seed}: upsert_many {key} {via}: {result!r}")
        return len(keys)

    async def delete_many(self, rng: random.Random, worker: int) -> int:
        keys = rng.sample(self.keys[worker], self.bulk_size(rng, len(self.keys[worker])))
        routes = [self.route_of(key) for key in keys]
        outcome = await self.guarded(rng, lambda: self.conn.delete_many(routes))
        if outcome.error is not None:
            raise self.unexpected(f"delete_many of {len(keys)}", outcome)
        results = outcome.value if not outcome.unknown else [None] * len(keys)
        for key, result in zip(keys, results, strict=True):
            what = f"seed {self.seed}: delete_many {key}"
            if result is True:
                self.model.deleted(key, True, what)
            elif isinstance(result, NotFoundError):
                self.model.deleted(key, False, what)
            elif result is None or isinstance(result, OutcomeUnknown):
                if result is not None:
                    self.report.unknown["OutcomeUnknown"] += 1
                self.model.route(key).maybe(ABSENT)
            else:
                raise Mismatch(f"{what}: {result!r}")
        return len(keys)

    async def replace_rules(self, rng: random.Random, worker: int) -> int:
        keys = self.rule_sample(rng, worker)
        rules = [self.rule_of(key) for key in keys]
        outcome = await self.guarded(rng, lambda: self.conn.replace_rules(rules))
        if outcome.error is not None:
            raise self.unexpected(f"replace_rules of {len(keys)}", outcome)
        results = outcome.value if not outcome.unknown else [None] * len(keys)
        for key, result in zip(keys, results, strict=True):
            if result is True:
                self.model.rule(key).settle(True)
            elif result is None or isinstance(result, OutcomeUnknown):
                self.model.rule(key).maybe(True)
            else:
                raise Mismatch(f"seed {self.seed}: replace_rules {key}: {result!r}")
        return len(keys)

    async def delete_rules(self, rng: random.Random, worker: int) -> int:
        keys = self.rule_sample(rng, worker)
        rules = [self.rule_of(key) for key in keys]
        outcome = await self.guarded(rng, lambda: self.conn.delete_rules(rules))
        if outcome.error is not None:
            raise self.unexpected(f"delete_rules of {len(keys)}", outcome)
        results = outcome.value if not outcome.unknown else [None] * len(keys)
        for key, result in zip(keys, results, strict=True):
            if result is True:
                each = Outcome(True)
            elif result is None or isinstance(result, OutcomeUnknown):
                each = Outcome(unknown=True)
            else:
                each = Outcome(error=result)
            self.rule_deleted(key, each, f"seed {self.seed}: delete_rules {key}")
        return len(keys)

    # ------------------------------------------------------------------ checkpoints

    async def drained(self) -> None:
        """No seq pending, no waiter: every abandoned request has had its answer."""
        conn = self.conn
        with anyio.fail_after(30):
            while conn._core.pending or conn._waiters:
                await anyio.sleep(0.001)

    async def checkpoint(self) -> None:
        await self.drained()
        await self.resolve()
        self.compare()
        await self.drained()
        self.report.checkpoints += 1

    async def resolve(self) -> None:
        """Look up every unknown cell until the model knows it."""
        for key, cell in list(self.model.unknown_routes()):
            await self.resolve_route(key, cell)
            self.report.resolved_routes += 1
        unknown_rules = list(self.model.unknown_rules())
        if unknown_rules:
            present = await self.list_rules()
            for rule, known in unknown_rules:
                known.narrow({rule in present}, f"seed {self.seed}: rule {rule} after listing")
                self.report.resolved_rules += 1

    async def resolve_route(self, key: RouteKey, cell: Cell[Any]) -> None:
        _, dst, table = key
        what = f"seed {self.seed}: resolving {key}"
        if NEXTHOP in cell.candidates:
            # What upsert installs for a gateway: GW/32 dev v0 scope link (IPv6: /128).
            gateway = dst.split("/")[0]
            query = Route(dst, nexthop=gateway, device=DEVICE, table=table).nexthop_route()
            self.report.resolve_lookups += 1
            try:
                found = await self.conn.lookup(query)
            except NotFoundError:
                cell.narrow({ABSENT}, what)
            else:
                assert found.nexthop is None, (what, found)
                cell.narrow({NEXTHOP}, what)
            return
        for gateway in sorted({c.gateway for c in cell.candidates if isinstance(c, Via)}):
            self.report.resolve_lookups += 1
            query = Route(dst, nexthop=gateway, device=DEVICE, table=table)
            try:
                outcome = Outcome(await self.conn.lookup(query))
            except NotFoundError as exc:
                outcome = Outcome(error=exc)
            self.check_lookup(key, gateway, outcome)
            if cell.known:
                return
        cell.narrow({ABSENT}, what)  # no candidate gateway found: it must be absent

    async def list_rules(self) -> set[RuleKey]:
        """Our rules as the kernel lists them to this connection (RTM_GETRULE dumps)."""
        present: set[RuleKey] = set()
        for family in (AF_INET, AF_INET6):
            query = Message(RTM.GETRULE, 0, RuleMessage(family=family))
            async for reply in self.conn.dump(query, retry_interrupted=3):
                body = reply.body
                if not isinstance(body, RuleMessage) or body.priority not in SLOT_FAMILY:
                    continue
                src = None if body.src is None else str(ip_network(f"{body.src}/{body.src_len}"))
                mark, mask = body.fwmark or 0, body.fwmask or 0
                present.add((body.priority, src, mark, mask, body.table_number))
        return present

    def compare(self) -> None:
        """The model (all known by now) against ``ip -json``, table by table."""
        for family in (4, 6):
            for table in TABLES:
                actual: dict[str, Any] = {}
                for entry in oracle.routes(self.ns_name, table=table, family=family):
                    dst = str(ip_network(entry["dst"]))
                    assert dst not in actual, f"{dst} twice in table {table}: {entry}"
                    assert entry["dev"] == DEVICE, entry
                    if "gateway" in entry:
                        metrics = {k: v for m in entry.get("metrics", []) for k, v in m.items()}
                        actual[dst] = Via(entry["gateway"], metrics.get("mtu", 0))
                    else:
                        actual[dst] = NEXTHOP
                expected = self.model.expected_routes(family, table)
                if actual != expected:
                    diff = sorted(
                        f"{dst}: kernel {actual.get(dst)!r}, model {expected.get(dst)!r}"
                        for dst in actual.keys() | expected.keys()
                        if actual.get(dst) != expected.get(dst)
                    )
                    raise Mismatch(
                        f"seed {self.seed}: IPv{family} table {table} after {self.done:,} "
                        f"operations, {len(diff)} differences: " + "; ".join(diff[:20])
                    )
                self.report.routes_checked += len(actual)
        rules: set[RuleKey] = set()
        for family in (4, 6):
            for entry in oracle.rules(self.ns_name, family):
                if entry["priority"] not in SLOT_FAMILY:
                    continue
                src = None
                if entry["src"] != "all":
                    src = str(ip_network(f"{entry['src']}/{entry['srclen']}"))
                mark, mask = int(entry["fwmark"], 16), int(entry["fwmask"], 16)
                key = (entry["priority"], src, mark, mask, int(entry["table"]))
                assert key not in rules, f"rule twice: {entry}"
                rules.add(key)
        expected_rules = self.model.expected_rules()
        if rules != expected_rules:
            raise Mismatch(
                f"seed {self.seed}: rules after {self.done:,} operations: only in the kernel "
                f"{sorted(rules - expected_rules, key=str)[:20]}, only in the model "
                f"{sorted(expected_rules - rules, key=str)[:20]}"
            )
        self.report.rules_checked += len(rules)


SLOTS_BY_PRIORITY = {priority: index for index, (priority, _, _) in enumerate(SLOTS)}
SLOT_FAMILY = {priority: family for priority, family, _ in SLOTS}
