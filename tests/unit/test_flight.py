"""SingleFlight: overlapping calls share one execution; failures and cancellation."""

from __future__ import annotations

import anyio
import pytest

from asyncroute._flight import SingleFlight
from asyncroute.errors import KernelError, NotFoundError, kernel_error

pytestmark = pytest.mark.anyio


async def test_overlapping_calls_share_one_run() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0
    release = anyio.Event()
    results: list[tuple[int, bool]] = []

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    async def call() -> None:
        results.append(await flights.run("k", work))

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(call)
        await anyio.sleep(0.01)
        release.set()
    assert runs == 1
    assert sorted(results) == [(42, False)] * 9 + [(42, True)]
    # Once finished, the next call runs again.
    assert await flights.run("k", work) == (42, True)
    assert runs == 2


async def test_failure_reaches_every_caller_as_its_own_copy() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = anyio.Event()
    errors: list[BaseException] = []

    async def work() -> int:
        await release.wait()
        raise kernel_error(2, seq=7, message="gone")

    async def call() -> None:
        try:
            await flights.run("k", work)
        except KernelError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(call)
        await anyio.sleep(0.01)
        release.set()
    assert len(errors) == 3
    assert all(isinstance(e, NotFoundError) and e.seq == 7 for e in errors)
    assert len({id(e) for e in errors}) == 3


async def test_cancelled_leader_hands_over() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    started = anyio.Event()
    runs = 0

    async def slow() -> int:
        nonlocal runs
        runs += 1
        started.set()
        await anyio.sleep(10)
        return 1

    async def quick() -> int:
        nonlocal runs
        runs += 1
        return 2

    result: list[tuple[int, bool]] = []
    leader_scope = anyio.CancelScope()

    async def lead() -> None:
        with leader_scope:
            await flights.run("k", slow)

    async def follow() -> None:
        result.append(await flights.run("k", quick))

    async with anyio.create_task_group() as group:
        group.start_soon(lead)
        await started.wait()
        group.start_soon(follow)
        await anyio.sleep(0.01)
        leader_scope.cancel()
    assert result == [(2, True)]
    assert runs == 2
