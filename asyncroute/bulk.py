"""Bulk route operations: many routes streamed through one connection's window.

:func:`upsert_many` and :func:`delete_many` keep Cilium's per-route semantics (see
:mod:`asyncroute.route`) but look each device up once per call, install each nexthop
route once per call, and feed the requests through a
:class:`~asyncroute.connection.RequestBatch`: no task, future or timer per route.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from ._links import device_index
from ._retry import RetryPolicy
from ._values import IPAddress
from .connection import NetlinkConnection, RequestBatch
from .constants import RTM
from .errors import AsyncrouteError, KernelError
from .messages import Message
from .route import (
    _DEFAULT_RETRY,
    _REPLACE,
    MAIN_TABLE,
    Route,
    _install_nexthop,
    _remove_nexthop,
    _route_mtu,
)

if TYPE_CHECKING:
    from .mtu import Configuration

__all__ = ["Outcome", "delete_many", "upsert_many"]

Outcome = bool | BaseException
NexthopKey = tuple[IPAddress, int, int]  # (nexthop, oif, table)


def _outcomes(errors: list[AsyncrouteError | None], return_exceptions: bool) -> list[Outcome]:
    if not return_exceptions:
        for error in errors:
            if error is not None:
                raise error
    return [True if error is None else error for error in errors]


class _BulkContext:
    """What a bulk call looks up once and reuses: devices and nexthop routes.

    :meth:`message` is synchronous for every route whose device and nexthop are known
    already (all but the first few); :meth:`resolve` does the lookups it is missing.
    """

    __slots__ = ("conn", "devices", "keys", "last_key", "mtu_config", "nexthops", "owners")

    def __init__(self, conn: NetlinkConnection, mtu_config: Configuration | None) -> None:
        self.conn = conn
        self.mtu_config = mtu_config
        self.devices: dict[str, int | KernelError] = {}
        # nexthop route → True if this call created it, False if it existed, or the error
        self.nexthops: dict[NexthopKey, bool | KernelError] = {}
        self.owners: dict[NexthopKey, Route] = {}
        #: per route, the nexthop route it uses (to know which ones rollback may remove)
        self.keys: list[NexthopKey | None] = []
        #: the key of the previous route via a nexthop in a numbered table
        self.last_key: NexthopKey | None = None

    def message(self, route: Route) -> Message | KernelError | None:
        """The route's RTM_NEWROUTE, the error that stops it, or None: resolve first."""
        if not isinstance(route, Route):
            raise TypeError(f"upsert_many takes Route objects, got {route!r}")
        oif = self.devices.get(route.device)
        if oif is None:
            return None
        if isinstance(oif, KernelError):
            self.keys.append(None)
            return oif
        key = None
        nexthop = route.nexthop
        if nexthop is not None:
            key = self.last_key
            # Routes in a row usually share one nexthop object (parse_address caches
            # it), so compare identities before hashing a new key.
            if key is None or key[0] is not nexthop or key[1] != oif or key[2] != route.table:
                key = (nexthop, oif, route.table or MAIN_TABLE)
                state = self.nexthops.get(key)
                if state is None:
                    return None
                if isinstance(state, KernelError):
                    self.keys.append(None)
                    return state
                self.last_key = key if route.table else None
        self.keys.append(key)
        config = self.mtu_config
        mtu = route.mtu if config is None else _route_mtu(route, config)
        return Message(RTM.NEWROUTE, _REPLACE, route._body(oif, mtu))

    def delete_message(self, route: Route) -> Message | KernelError | None:
        """The route's RTM_DELROUTE, the error that stops it, or None: resolve first."""
        if not isinstance(route, Route):
            raise TypeError(f"delete_many takes Route objects, got {route!r}")
        oif = self.devices.get(route.device)
        if oif is None:
            return None
        if isinstance(oif, KernelError):
            return oif
        return Message(RTM.DELROUTE, 0, route._delete_body(oif))

    async def resolve(self, route: Route, *, nexthop: bool) -> None:
        """Look up the route's device and (if ``nexthop``) install its nexthop route."""
        name = route._require_device()
        oif = self.devices.get(name)
        if oif is None:
            try:
                oif = await device_index(self.conn, name)
            except KernelError as exc:
                oif = exc
            self.devices[name] = oif
        if not nexthop or route.nexthop is None or isinstance(oif, KernelError):
            return
        key = (route.nexthop, oif, route.table or MAIN_TABLE)
        if key not in self.nexthops:
            try:
                self.nexthops[key] = await _install_nexthop(self.conn, route, oif)
            except KernelError as exc:
                self.nexthops[key] = exc
            self.owners[key] = route


async def _stream(
    batch: RequestBatch,
    routes: Iterable[Route] | AsyncIterable[Route],
    prepare: Callable[[Route], Message | KernelError | None],
    resolve: Callable[[Route], Awaitable[None]],
) -> list[AsyncrouteError | None]:
    """Feed ``routes`` through ``batch``; the loop stays synchronous per route unless a
    lookup is missing or the window is full."""

    async def one(route: Route) -> None:
        item = prepare(route)
        if item is None:
            await resolve(route)
            item = prepare(route)
            assert item is not None
        if batch.full:
            await batch.pause()
        batch.add(item)

    try:
        if isinstance(routes, AsyncIterable):
            async for route in routes:
                await one(route)
        else:
            for route in routes:
                item = prepare(route)
                if item is None or batch.full:
                    if item is None:
                        await resolve(route)
                        item = prepare(route)
                        assert item is not None
                    if batch.full:
                        await batch.pause()
                batch.add(item)
        return await batch.finish()
    finally:
        batch.abandon()


async def upsert_many(
    conn: NetlinkConnection,
    routes: Iterable[Route] | AsyncIterable[Route],
    mtu_config: Configuration | None = None,
    *,
    retry: RetryPolicy = _DEFAULT_RETRY,
    return_exceptions: bool = True,
    progress: Callable[[int], object] | None = None,
) -> list[Outcome]:
    """Upsert many routes; see :meth:`asyncroute.Connection.upsert_many`."""
    context = _BulkContext(conn, mtu_config)
    batch = conn.batch(progress=progress, retain=retry.retryable)

    async def resolve(route: Route) -> None:
        await context.resolve(route, nexthop=True)

    errors = await _stream(batch, routes, context.message, resolve)
    retained = batch.retained
    # Transient failures (the nexthop race) are tried again as a group, up to the
    # policy's attempts, with its sleep in between.
    for _ in range(retry.max_tries - 1):
        if not retained:
            break
        await retry.sleep(retry.interval)
        positions = sorted(retained)
        again = conn.batch(retain=retry.retryable)
        try:
            for position in positions:
                if again.full:
                    await again.pause()
                again.add(retained[position])
            second = await again.finish()
        finally:
            again.abandon()
        for position, error in zip(positions, second, strict=True):
            errors[position] = error
        retained = {positions[i]: message for i, message in again.retained.items()}
    # Roll back the nexthop routes this call created and no successful route uses.
    used = {key for key, error in zip(context.keys, errors, strict=True) if key and not error}
    for key, state in context.nexthops.items():
        if state is True and key not in used:
            await _remove_nexthop(conn, context.owners[key], key[1])
    return _outcomes(errors, return_exceptions)


async def delete_many(
    conn: NetlinkConnection,
    routes: Iterable[Route] | AsyncIterable[Route],
    *,
    return_exceptions: bool = True,
    progress: Callable[[int], object] | None = None,
) -> list[Outcome]:
    """Delete many routes; see :meth:`asyncroute.Connection.delete_many`."""
    context = _BulkContext(conn, None)

    async def resolve(route: Route) -> None:
        await context.resolve(route, nexthop=False)

    errors = await _stream(conn.batch(progress=progress), routes, context.delete_message, resolve)
    return _outcomes(errors, return_exceptions)
