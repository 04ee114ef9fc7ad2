"""asyncroute: program Linux routes and policy rules over rtnetlink, asynchronously.

Cilium's route package (``Route``, ``Rule``, ``upsert``/``delete``/``lookup``,
``replace_rule``/``delete_rule``, ``mtu.Configuration``) on an engine that keeps
thousands of requests in flight on one socket, under asyncio or trio.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import mtu
from ._retry import ROUTE_REPLACE_MAX_TRIES, ROUTE_REPLACE_RETRY_INTERVAL, RetryPolicy
from .client import (
    Connection,
    connect,
    default_connection,
    delete,
    delete_rule,
    delete_rule_ipv6,
    lookup,
    replace_rule,
    replace_rule_ipv6,
    upsert,
)
from .connection import NetlinkConnection, RequestBatch
from .constants import (
    AF_INET,
    AF_INET6,
    FR_ACT,
    NLM_F,
    NLMSG,
    RT_SCOPE,
    RT_TABLE,
    RTM,
    RTM_F,
    RTN,
    RTPROT,
)
from .encap import ENCAP_TYPE, Encap
from .errors import (
    AsyncrouteError,
    BusyError,
    ConnectionClosed,
    DecodeError,
    DumpInterrupted,
    ExistsError,
    KernelError,
    NotFoundError,
    OutcomeUnknown,
    PermissionDeniedError,
    ProtocolError,
)
from .events import (
    Event,
    EventStream,
    LinkAdded,
    LinkChanged,
    LinkRemoved,
    NexthopAdded,
    NexthopRemoved,
    Resync,
    RouteAdded,
    RouteRemoved,
    RuleAdded,
    RuleRemoved,
    subscribe,
)
from .messages import (
    AddressMessage,
    DoneMessage,
    ErrorMessage,
    LinkMessage,
    Message,
    MultipathHop,
    NexthopMessage,
    RouteMessage,
    RuleMessage,
)
from .multipath import Nexthop
from .nexthop import MAX_GROUP_WEIGHT, NexthopGroup, NexthopObject
from .route import (
    ENCRYPT_ROUTE_PROTOCOL,
    IP6_DEFAULT_METRIC,
    MAIN_TABLE,
    METRICS,
    RTN_LOCAL,
    Route,
    by_mask,
)
from .rule import Rule

__all__ = [
    "AF_INET",
    "AF_INET6",
    "ENCAP_TYPE",
    "ENCRYPT_ROUTE_PROTOCOL",
    "FR_ACT",
    "IP6_DEFAULT_METRIC",
    "MAIN_TABLE",
    "MAX_GROUP_WEIGHT",
    "METRICS",
    "NLMSG",
    "NLM_F",
    "ROUTE_REPLACE_MAX_TRIES",
    "ROUTE_REPLACE_RETRY_INTERVAL",
    "RTM",
    "RTM_F",
    "RTN",
    "RTN_LOCAL",
    "RTPROT",
    "RT_SCOPE",
    "RT_TABLE",
    "AddressMessage",
    "AsyncrouteError",
    "BusyError",
    "Connection",
    "ConnectionClosed",
    "DecodeError",
    "DoneMessage",
    "DumpInterrupted",
    "Encap",
    "ErrorMessage",
    "Event",
    "EventStream",
    "ExistsError",
    "KernelError",
    "LinkAdded",
    "LinkChanged",
    "LinkMessage",
    "LinkRemoved",
    "Message",
    "MultipathHop",
    "NetlinkConnection",
    "Nexthop",
    "NexthopAdded",
    "NexthopGroup",
    "NexthopMessage",
    "NexthopObject",
    "NexthopRemoved",
    "NotFoundError",
    "OutcomeUnknown",
    "PermissionDeniedError",
    "ProtocolError",
    "RequestBatch",
    "Resync",
    "RetryPolicy",
    "Route",
    "RouteAdded",
    "RouteMessage",
    "RouteRemoved",
    "Rule",
    "RuleAdded",
    "RuleMessage",
    "RuleRemoved",
    "by_mask",
    "connect",
    "default_connection",
    "delete",
    "delete_rule",
    "delete_rule_ipv6",
    "lookup",
    "mtu",
    "replace_rule",
    "replace_rule_ipv6",
    "subscribe",
    "upsert",
]

try:
    #: The installed distribution's version (PEP 440), e.g. "0.1.0".
    __version__ = _version("asyncroute")
except _PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
    __version__ = "0+unknown"
