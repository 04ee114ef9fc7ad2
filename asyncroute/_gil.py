"""A shorter GIL switch interval while bulk calls feed the sender thread.

The sender thread runs the kernel's work (``send``) with the GIL released, but it must
take the GIL back after every send.  While the event loop's thread is busy encoding
routes, CPython hands the GIL over only when that thread blocks or after
``sys.getswitchinterval()`` (5 ms by default): measured on 2 vCPUs, the sender then
waits ~3.5 ms after each ~1 ms send, and the kernel, not Python, limits a bulk load
(~185k routes/s; with 0.2 ms: ~260k/s, docs/performance.md).

The interval is process-wide, so it is lowered only while at least one bulk call runs
on a connection with a sender thread, and put back when the last one ends, unless
someone else changed it meanwhile.
"""

from __future__ import annotations

import sys

__all__ = ["BULK_SWITCH_INTERVAL", "lower_switch_interval", "restore_switch_interval"]

#: The switch interval (seconds) while a bulk call runs; see the module docstring.
BULK_SWITCH_INTERVAL = 0.0002

_users = 0
_saved = 0.0
_ours = 0.0


def lower_switch_interval(interval: float) -> None:
    """One more bulk call wants the switch interval at most ``interval``."""
    global _users, _saved, _ours
    if _users == 0:
        _saved = sys.getswitchinterval()
        sys.setswitchinterval(min(_saved, interval))
        _ours = sys.getswitchinterval()  # as stored: CPython keeps whole microseconds
    _users += 1


def restore_switch_interval() -> None:
    """One bulk call ended; the last one puts the interval back (if still ours)."""
    global _users
    _users -= 1
    if _users == 0 and sys.getswitchinterval() == _ours:
        sys.setswitchinterval(_saved)
