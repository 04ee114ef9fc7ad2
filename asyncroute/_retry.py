"""Retrying a kernel request that can fail transiently.

Cilium retries the prefix route of an upsert 10 times, 100 ms apart, because the kernel
can answer EINVAL right after the nexthop route was installed.  It retries *every*
error; asyncroute retries only errors a retry can cure, so that a permanent error
(EPERM, ENODEV, EEXIST, …) fails at once instead of after a second.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from .errors import KernelError

__all__ = [
    "ROUTE_REPLACE_MAX_TRIES",
    "ROUTE_REPLACE_RETRY_INTERVAL",
    "TRANSIENT_ERRNOS",
    "RetryPolicy",
    "is_transient",
]

T = TypeVar("T")

#: Attempts of the prefix-route replace in :meth:`Connection.upsert` (Cilium's
#: ``RouteReplaceMaxTries``).
ROUTE_REPLACE_MAX_TRIES = 10
#: Seconds between attempts (Cilium's ``RouteReplaceRetryInterval``).
ROUTE_REPLACE_RETRY_INTERVAL = 0.1

#: Errors the nexthop race and other transient kernel conditions produce.  IPv4 says
#: EINVAL ("Nexthop has invalid gateway") or ENETUNREACH for a gateway it cannot reach
#: yet; IPv6 says EHOSTUNREACH for the same situation.
TRANSIENT_ERRNOS = frozenset(
    {errno.EINVAL, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EAGAIN, errno.EBUSY, errno.EINTR}
)


def is_transient(error: BaseException) -> bool:
    """The default retry predicate: a kernel error with an errno in TRANSIENT_ERRNOS."""
    return isinstance(error, KernelError) and error.errno in TRANSIENT_ERRNOS


@dataclass(frozen=True)
class RetryPolicy:
    """How :meth:`Connection.upsert` retries the prefix route.

    ``retryable`` decides per error; ``sleep`` is awaited between attempts (inject a
    zero-length or recording sleep in tests).  Attempts stop at the first success, at a
    non-retryable error, or after ``max_tries``; the last error is raised unchanged.
    Unlike Cilium, there is no sleep after the final attempt.
    """

    max_tries: int = ROUTE_REPLACE_MAX_TRIES
    interval: float = ROUTE_REPLACE_RETRY_INTERVAL
    retryable: Callable[[BaseException], bool] = is_transient
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be ≥ 1, got {self.max_tries}")
        if self.interval < 0:
            raise ValueError(f"interval must be ≥ 0, got {self.interval}")

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Await ``attempt()`` until it succeeds or the policy gives up."""
        tries = 1
        while True:
            try:
                return await attempt()
            except Exception as error:
                if tries >= self.max_tries or not self.retryable(error):
                    raise
            tries += 1
            await self.sleep(self.interval)
