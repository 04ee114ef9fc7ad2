"""asyncroute: program Linux routes and policy rules over rtnetlink, asynchronously.

Cilium's route package (``Route``, ``Rule``, ``upsert``/``delete``/``lookup``,
``replace_rule``/``delete_rule``, ``mtu.Configuration``) on an engine that keeps
thousands of requests in flight on one socket, under asyncio or trio.
"""

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
from .constants import FR_ACT, NLM_F, NLMSG, RT_SCOPE, RT_TABLE, RTM, RTM_F, RTN, RTPROT
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
from .route import MAIN_TABLE, RTN_LOCAL, Route
from .rule import Rule

__all__ = [
    "FR_ACT",
    "MAIN_TABLE",
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
    "ErrorMessage",
    "ExistsError",
    "KernelError",
    "LinkMessage",
    "Message",
    "MultipathHop",
    "NetlinkConnection",
    "Nexthop",
    "NexthopMessage",
    "NotFoundError",
    "OutcomeUnknown",
    "PermissionDeniedError",
    "ProtocolError",
    "RequestBatch",
    "RetryPolicy",
    "Route",
    "RouteMessage",
    "Rule",
    "RuleMessage",
    "connect",
    "default_connection",
    "delete",
    "delete_rule",
    "delete_rule_ipv6",
    "lookup",
    "mtu",
    "replace_rule",
    "replace_rule_ipv6",
    "upsert",
]
