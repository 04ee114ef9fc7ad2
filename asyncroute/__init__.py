"""asyncroute: program Linux routes and policy rules over rtnetlink, asynchronously."""

from .connection import Connection, connect
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
    DoneMessage,
    ErrorMessage,
    LinkMessage,
    Message,
    RouteMessage,
    RuleMessage,
)

__all__ = [
    "FR_ACT",
    "NLMSG",
    "NLM_F",
    "RTM",
    "RTM_F",
    "RTN",
    "RTPROT",
    "RT_SCOPE",
    "RT_TABLE",
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
    "NotFoundError",
    "OutcomeUnknown",
    "PermissionDeniedError",
    "ProtocolError",
    "RouteMessage",
    "RuleMessage",
    "connect",
]
