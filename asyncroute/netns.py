"""Deprecated module path: the namespace helpers are :mod:`asyncroute.testing.netns`.

They moved with the other test helpers (``asyncroute.testing``); this module re-exports
them so that code written against the old path keeps working, with a DeprecationWarning.
"""

from __future__ import annotations

import warnings

from .testing.netns import (
    Namespace,
    NetnsUnavailable,
    create_namespace,
    delete_namespace,
    namespace,
)

__all__ = ["Namespace", "NetnsUnavailable", "create_namespace", "delete_namespace", "namespace"]

warnings.warn(
    "asyncroute.netns is now asyncroute.testing.netns (or import from asyncroute.testing)",
    DeprecationWarning,
    stacklevel=2,
)
