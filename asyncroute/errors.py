"""The public exception hierarchy.

Every exception asyncroute raises on purpose derives from :class:`AsyncrouteError`.
Error replies from the kernel become :class:`KernelError` (an :class:`OSError`), picked
by errno from :data:`ERRNO_CLASSES` so that callers can catch the builtin they already
know (``except FileExistsError``) or the asyncroute name (``except ExistsError``).
Bad input is a plain :class:`ValueError`, raised before anything reaches a socket.
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ERRNO_CLASSES",
    "AsyncrouteError",
    "BusyError",
    "ConnectionClosed",
    "DecodeError",
    "DumpInterrupted",
    "ExistsError",
    "KernelError",
    "NotFoundError",
    "OutcomeUnknown",
    "PermissionDeniedError",
    "ProtocolError",
    "kernel_error",
]


class AsyncrouteError(Exception):
    """Base class of every exception asyncroute defines."""


def _strerror(code: int) -> str:
    # A forged or corrupt reply may carry any 32-bit code; os.strerror() raises
    # OverflowError past a C int (fuzzing found -INT32_MIN).
    try:
        return os.strerror(code)
    except (OverflowError, ValueError):
        return f"Unknown error {code}"


class KernelError(AsyncrouteError, OSError):
    """The kernel answered a request with an error reply (``NLMSG_ERROR``, errno ≠ 0).

    Attributes:
        errno: the positive errno value.
        strerror: ``os.strerror(errno)``.
        seq: sequence number of the failed request; None when no request failed (a
            lookup that found nothing raises NotFoundError without a kernel error).
        msg_type: message type of the failed request (e.g. ``RTM.NEWROUTE``), or None.
        message: the kernel's extended-ACK text (``NLMSGERR_ATTR_MSG``), or ``None``.
        offset: byte offset of the offending attribute in the request
            (``NLMSGERR_ATTR_OFFS``), or ``None``.
    """

    def __init__(
        self,
        errno: int,
        *,
        seq: int | None = None,
        msg_type: int | None = None,
        message: str | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(errno, _strerror(errno))
        self.seq = seq
        self.msg_type = msg_type
        self.message = message
        self.offset = offset

    def __str__(self) -> str:
        text = f"[Errno {self.errno}] {self.strerror}"
        if self.message:
            text += f": {self.message}"
        if self.offset is not None:
            text += f" (at byte {self.offset})"
        if self.seq is None:
            return text
        return f"{text} (seq {self.seq}, message type {self.msg_type})"

    def __reduce__(self) -> tuple[Any, ...]:
        # OSError's default pickling would pass (errno, strerror) positionally.
        return (
            _rebuild_kernel_error,
            (type(self), self.errno, self.seq, self.msg_type, self.message, self.offset),
        )


def _rebuild_kernel_error(
    cls: type[KernelError],
    errno: int,
    seq: int | None,
    msg_type: int | None,
    message: str | None,
    offset: int | None,
) -> KernelError:
    return cls(errno, seq=seq, msg_type=msg_type, message=message, offset=offset)


class NotFoundError(KernelError, LookupError):
    """The object does not exist (ENOENT, ESRCH, ENODEV)."""


class ExistsError(KernelError, FileExistsError):
    """The object already exists (EEXIST)."""


class PermissionDeniedError(KernelError, PermissionError):
    """The caller lacks the capability (EPERM, EACCES), usually CAP_NET_ADMIN."""


class BusyError(KernelError):
    """The kernel is busy (EBUSY), e.g. a second dump on one socket."""


#: errno → the :class:`KernelError` subclass raised for it.
ERRNO_CLASSES: dict[int, type[KernelError]] = {
    _errno.ENOENT: NotFoundError,
    _errno.ESRCH: NotFoundError,
    _errno.ENODEV: NotFoundError,
    _errno.EEXIST: ExistsError,
    _errno.EPERM: PermissionDeniedError,
    _errno.EACCES: PermissionDeniedError,
    _errno.EBUSY: BusyError,
}


def kernel_error(
    errno: int,
    *,
    seq: int | None = None,
    msg_type: int | None = None,
    message: str | None = None,
    offset: int | None = None,
) -> KernelError:
    """Build the :class:`KernelError` subclass that matches ``errno`` (positive)."""
    cls = ERRNO_CLASSES.get(errno, KernelError)
    return cls(errno, seq=seq, msg_type=msg_type, message=message, offset=offset)


class DumpInterrupted(AsyncrouteError):
    """A dump reply carried ``NLM_F_DUMP_INTR``: the kernel's tables changed during the dump.

    The data may be inconsistent; ``messages`` holds everything that was received, so a
    caller may use it or dump again.
    """

    def __init__(self, messages: Sequence[Any] = ()) -> None:
        super().__init__(f"dump interrupted by a concurrent change ({len(messages)} messages)")
        self.messages: list[Any] = list(messages)


class OutcomeUnknown(AsyncrouteError):
    """The receive buffer overflowed (ENOBUFS) while this request waited.

    The kernel may or may not have applied the request; its reply was lost.  Look the
    object up to find out.
    """


class DecodeError(AsyncrouteError, ValueError):
    """Bytes that are not a well-formed netlink message."""


class ProtocolError(AsyncrouteError):
    """A well-formed reply that makes no sense for the request it answers."""


class ConnectionClosed(AsyncrouteError):
    """The connection was closed while the request waited, or before it was made."""
