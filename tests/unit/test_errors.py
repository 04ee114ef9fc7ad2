"""The exception hierarchy: kernel_error's choice of class, str(), pickling."""

from __future__ import annotations

import errno
import os
import pickle

import pytest

from asyncroute.constants import RTM
from asyncroute.errors import (
    AsyncrouteError,
    BusyError,
    DecodeError,
    ExistsError,
    KernelError,
    NotFoundError,
    PermissionDeniedError,
    kernel_error,
)

#: errno -> (asyncroute class, the builtin a caller may catch instead, or None).
EXPECTED: list[tuple[int, type[KernelError], type[BaseException] | None]] = [
    (errno.ENOENT, NotFoundError, LookupError),
    (errno.ESRCH, NotFoundError, LookupError),
    (errno.ENODEV, NotFoundError, LookupError),
    (errno.EEXIST, ExistsError, FileExistsError),
    (errno.EPERM, PermissionDeniedError, PermissionError),
    (errno.EACCES, PermissionDeniedError, PermissionError),
    (errno.EBUSY, BusyError, None),
]
PLAIN = [errno.EINVAL, errno.ENETUNREACH, errno.ERANGE, errno.EOPNOTSUPP, errno.ENOBUFS, 9999]


@pytest.mark.parametrize(
    ("code", "cls", "builtin"), EXPECTED, ids=[errno.errorcode[c] for c, _, _ in EXPECTED]
)
def test_kernel_error_picks_class(
    code: int, cls: type[KernelError], builtin: type[BaseException] | None
) -> None:
    error = kernel_error(code, seq=5, msg_type=RTM.NEWROUTE)
    assert type(error) is cls
    assert isinstance(error, KernelError)
    assert isinstance(error, OSError)
    assert isinstance(error, AsyncrouteError)
    if builtin is not None:
        assert isinstance(error, builtin)
    assert error.errno == code
    assert error.strerror == os.strerror(code)
    assert error.args == (code, os.strerror(code))


@pytest.mark.parametrize("code", PLAIN, ids=[errno.errorcode.get(c, str(c)) for c in PLAIN])
def test_kernel_error_plain(code: int) -> None:
    error = kernel_error(code)
    assert type(error) is KernelError
    assert error.errno == code
    assert not isinstance(error, (LookupError, FileExistsError, PermissionError))


def test_not_found_is_a_lookup_error_and_an_os_error() -> None:
    with pytest.raises(LookupError) as caught:
        raise kernel_error(errno.ENOENT)
    assert isinstance(caught.value, OSError)
    assert caught.value.errno == errno.ENOENT


def test_exists_is_caught_as_file_exists_error() -> None:
    with pytest.raises(FileExistsError):
        raise kernel_error(errno.EEXIST)


def test_permission_is_caught_as_permission_error() -> None:
    with pytest.raises(PermissionError):
        raise kernel_error(errno.EPERM)


def test_os_error_does_not_remap_the_class() -> None:
    """OSError.__new__ maps some errnos to builtin subclasses; ours must stay ours."""
    for code, cls, _ in EXPECTED:
        assert type(cls(code)) is cls
    assert type(KernelError(errno.ENOENT)) is KernelError


def test_fields_and_defaults() -> None:
    error = kernel_error(errno.EINVAL)
    # Raised by asyncroute itself (no request failed): no sequence number, no type.
    assert (error.seq, error.msg_type, error.message, error.offset) == (None, None, None, None)
    assert str(error) == "[Errno 22] Invalid argument"
    error = kernel_error(
        errno.EINVAL, seq=7, msg_type=RTM.NEWRULE, message="Invalid table", offset=44
    )
    assert (error.seq, error.msg_type, error.message, error.offset) == (
        7,
        RTM.NEWRULE,
        "Invalid table",
        44,
    )


def test_str_contains_message_offset_and_seq() -> None:
    error = kernel_error(
        errno.ENETUNREACH,
        seq=4242,
        msg_type=RTM.NEWROUTE,
        message="Nexthop has invalid gateway",
        offset=36,
    )
    text = str(error)
    assert "Nexthop has invalid gateway" in text
    assert "36" in text
    assert "4242" in text
    assert os.strerror(errno.ENETUNREACH) in text
    assert str(errno.ENETUNREACH) in text


def test_str_without_extended_ack() -> None:
    text = str(kernel_error(errno.EEXIST, seq=3))
    assert os.strerror(errno.EEXIST) in text
    assert "seq 3" in text
    assert "byte" not in text  # no offset given


def test_str_with_offset_zero() -> None:
    """Offset 0 is a valid offset (the header), not "absent"."""
    assert "at byte 0" in str(kernel_error(errno.EINVAL, offset=0))


CASES = [
    (errno.ENOENT, "", None),
    (errno.ESRCH, "No such process", 0),
    (errno.ENODEV, None, None),
    (errno.EEXIST, "File exists", 20),
    (errno.EPERM, None, 16),
    (errno.EACCES, "no", None),
    (errno.EBUSY, "busy", 4),
    (errno.EINVAL, "Invalid prefix for given prefix length", 28),
    (9999, None, None),
]


@pytest.mark.parametrize(("code", "message", "offset"), CASES)
def test_pickle_round_trip(code: int, message: str | None, offset: int | None) -> None:
    error = kernel_error(code, seq=2**32 - 1, msg_type=RTM.DELRULE, message=message, offset=offset)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(error, protocol=protocol))
        assert type(copy) is type(error)
        assert copy.errno == code
        assert copy.strerror == error.strerror
        assert copy.seq == 2**32 - 1
        assert copy.msg_type == RTM.DELRULE
        assert copy.message == message
        assert copy.offset == offset
        assert str(copy) == str(error)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)
    assert issubclass(DecodeError, AsyncrouteError)
