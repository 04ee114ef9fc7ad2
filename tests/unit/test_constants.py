"""Every number in asyncroute.constants agrees with pyroute2's definition of it.

asyncroute writes its UAPI numbers out by hand (constants.py has no dependencies); this
module is what keeps them honest.  A member pyroute2 does not define is listed in
``NOT_IN_PYROUTE2`` with the kernel header it comes from, and
``test_every_member_is_checked`` makes sure nothing else escapes the comparison.
"""

from __future__ import annotations

import enum
import socket
from typing import Any

import pyroute2.netlink as nl
import pyroute2.netlink.rtnl as rtnl
import pytest
from pyroute2.netlink.rtnl import fibmsg, rtmsg

from asyncroute import constants
from asyncroute.constants import (
    FR_ACT,
    NLM_F,
    NLMSG,
    RT_SCOPE,
    RT_TABLE,
    RTAX,
    RTM,
    RTM_F,
    RTN,
    RTNH_F,
    RTNLGRP,
    RTPROT,
    NetlinkOption,
)

#: Members pyroute2 0.9.7 has no name for; skipped here (not with pytest.skip: there is
#: nothing to run).  Values are from the kernel UAPI headers named.
NOT_IN_PYROUTE2: dict[tuple[str, str], str] = {
    # linux/netlink.h: pyroute2 stops at NETLINK_LISTEN_ALL_NSID, then EXT_ACK,
    # GET_STRICT_CHK; it has no NETLINK_LIST_MEMBERSHIPS (9) or NETLINK_CAP_ACK (10).
    ("NetlinkOption", "LIST_MEMBERSHIPS"): "linux/netlink.h NETLINK_LIST_MEMBERSHIPS",
    ("NetlinkOption", "CAP_ACK"): "linux/netlink.h NETLINK_CAP_ACK",
    # linux/rtnetlink.h: pyroute2 defines no RTM_F_* flags at all.
    **{("RTM_F", name): f"linux/rtnetlink.h RTM_F_{name}" for name in RTM_F.__members__},
    # linux/rtnetlink.h enum rt_class_t: pyroute2 defines no RT_TABLE_* names.
    **{("RT_TABLE", name): f"linux/rtnetlink.h RT_TABLE_{name}" for name in RT_TABLE.__members__},
    # Nexthop objects (Linux 5.3): pyroute2 0.9.7 has only RTM_NEWNEXTHOPBUCKET.
    **{
        ("RTM", name): f"linux/rtnetlink.h RTM_{name}"
        for name in RTM.__members__
        if "NEXTHOP" in name
    },
    ("RTNLGRP", "NEXTHOP"): "linux/rtnetlink.h RTNLGRP_NEXTHOP",
    ("RTNH_F", "UNRESOLVED"): "linux/rtnetlink.h RTNH_F_UNRESOLVED",
    ("RTNH_F", "TRAP"): "linux/rtnetlink.h RTNH_F_TRAP",
    ("RTAX", "FASTOPEN_NO_COOKIE"): "linux/rtnetlink.h RTAX_FASTOPEN_NO_COOKIE (Linux 4.15)",
}


def _members(cls: type[enum.Enum]) -> list[tuple[str, int]]:
    """Every name, aliases included (IntFlag iteration skips aliases and multi-bit values)."""
    return [(name, int(member.value)) for name, member in cls.__members__.items()]


def _module_value(module: Any, name: str) -> int | None:
    value = getattr(module, name, None)
    return value if isinstance(value, int) else None


def _cases() -> list[Any]:
    """(enum, member name, asyncroute value, pyroute2 value) for every checkable member."""
    cases: list[Any] = []

    def add(cls: type[enum.Enum], lookup: Any) -> None:
        for name, value in _members(cls):
            if (cls.__name__, name) in NOT_IN_PYROUTE2:
                continue
            cases.append(pytest.param(cls, name, value, lookup(name), id=f"{cls.__name__}.{name}"))

    add(NLM_F, lambda name: _module_value(nl, f"NLM_F_{name}"))
    add(NLMSG, lambda name: _module_value(nl, f"NLMSG_{name}"))
    add(NetlinkOption, lambda name: _module_value(nl, f"NETLINK_{name}"))
    add(RTM, lambda name: _module_value(rtnl, f"RTM_{name}"))
    # rt_proto / rt_scope / rt_type map lower-case short names to numbers (and back).
    add(RTPROT, lambda name: rtnl.rt_proto.get(name.lower()))
    add(RT_SCOPE, lambda name: rtnl.rt_scope.get(name.lower()))
    add(RTN, lambda name: rtnl.rt_type.get(name.lower()))
    add(FR_ACT, lambda name: _module_value(fibmsg, f"FR_ACT_{name}"))
    add(RTNLGRP, lambda name: _module_value(rtnl, f"RTNLGRP_{name}"))
    add(RTNH_F, lambda name: _module_value(rtmsg, f"RTNH_F_{name}"))
    rtax = {name: number for number, (name, _) in enumerate(rtmsg.rtmsg.metrics.nla_map)}
    add(RTAX, lambda name: rtax.get(f"RTAX_{name}"))
    return cases


CHECKED_ENUMS = (
    NLM_F,
    NLMSG,
    NetlinkOption,
    RTM,
    RTPROT,
    RT_SCOPE,
    RTN,
    FR_ACT,
    RTM_F,
    RT_TABLE,
    RTNLGRP,
    RTNH_F,
    RTAX,
)


@pytest.mark.parametrize(("cls", "name", "ours", "theirs"), _cases())
def test_member_agrees_with_pyroute2(
    cls: type[enum.Enum], name: str, ours: int, theirs: int | None
) -> None:
    assert theirs is not None, f"pyroute2 has no {cls.__name__}.{name}: list it in NOT_IN_PYROUTE2"
    assert ours == theirs


@pytest.mark.parametrize(
    ("mapping", "cls"),
    [(rtnl.rt_proto, RTPROT), (rtnl.rt_scope, RT_SCOPE), (rtnl.rt_type, RTN)],
    ids=["rt_proto", "rt_scope", "rt_type"],
)
def test_reverse_names_agree_with_pyroute2(mapping: dict[Any, Any], cls: type[enum.Enum]) -> None:
    """pyroute2's dicts also map number -> name; that direction must agree too."""
    for name, value in _members(cls):
        assert mapping[value] == name.lower()


def test_every_member_is_checked() -> None:
    """No enum in constants.py, and no member, escapes the comparison."""
    enums = {
        obj
        for obj in vars(constants).values()
        if isinstance(obj, type)
        and issubclass(obj, enum.Enum)
        and obj.__module__ == constants.__name__
    }
    assert enums == set(CHECKED_ENUMS)
    checked = {(p.values[0].__name__, p.values[1]) for p in _cases()}
    for cls in CHECKED_ENUMS:
        for name, _ in _members(cls):
            key = (cls.__name__, name)
            assert key in checked or key in NOT_IN_PYROUTE2, key


@pytest.mark.parametrize(
    ("cls_name", "name"), [pytest.param(*key, id=".".join(key)) for key in sorted(NOT_IN_PYROUTE2)]
)
def test_skipped_members_are_really_missing_from_pyroute2(cls_name: str, name: str) -> None:
    """If a pyroute2 release adds one of these names, move it into the comparison."""
    prefixes = {
        "NetlinkOption": "NETLINK_",
        "RTM_F": "RTM_F_",
        "RT_TABLE": "RT_TABLE_",
        "RTM": "RTM_",
        "RTNLGRP": "RTNLGRP_",
        "RTNH_F": "RTNH_F_",
        "RTAX": "RTAX_",
    }
    full = prefixes[cls_name] + name
    for module in (nl, rtnl, fibmsg, rtmsg):
        assert not hasattr(module, full), f"pyroute2 now defines {full}: compare it"


def test_non_enum_constants() -> None:
    assert constants.SOL_NETLINK == nl.SOL_NETLINK == 270
    assert constants.AF_UNSPEC == socket.AF_UNSPEC == 0
    assert constants.AF_INET == socket.AF_INET == 2
    assert constants.AF_INET6 == socket.AF_INET6 == 10


def test_known_kernel_values() -> None:
    """A few values by hand, straight from the UAPI headers, independent of pyroute2."""
    assert NLM_F.DUMP == NLM_F.ROOT | NLM_F.MATCH == 0x300
    assert (NLM_F.CAPPED, NLM_F.ACK_TLVS) == (0x100, 0x200)
    assert (NetlinkOption.CAP_ACK, NetlinkOption.EXT_ACK) == (10, 11)
    assert NetlinkOption.GET_STRICT_CHK == 12
    assert (RT_TABLE.MAIN, RT_TABLE.LOCAL) == (254, 255)
    assert RTM_F.FIB_MATCH == 0x2000
