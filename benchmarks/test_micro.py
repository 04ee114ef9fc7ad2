"""Micro-benchmarks: encoding and decoding per message kind, asyncroute vs pyroute2.

Run with ``make bench-micro`` (pytest-benchmark); not part of ``make test``.  The
asserted bounds are the throughput issue's: RTM_NEWROUTE encodes in ≤ 3 µs and at least 25x
faster than pyroute2's ``encode()``.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

import pytest
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from asyncroute import Route
from asyncroute._codec import RTAX_MTU, decode_datagram, encode_message, pack_route_body
from asyncroute.messages import Message, RouteMessage, RuleMessage

FLAGS = 0x1 | 0x4 | 0x400 | 0x100
ROUTE = RouteMessage(
    family=2, dst_len=32, table=100, protocol=3, type=1,
    dst=ip_address("198.18.1.2"), gateway=ip_address("192.0.2.1"), oif=3,
    metrics=((RTAX_MTU, 1400),),
)  # fmt: skip
RULE = RuleMessage(
    family=2, table=123, action=1, priority=1, fwmark=0xF00, fwmask=0xF00
)  # fmt: skip


def pyroute2_route() -> Any:
    msg = rtmsg()
    msg["header"] = {"type": 24, "flags": FLAGS, "sequence_number": 7, "pid": 0}
    msg.update(family=2, dst_len=32, src_len=0, tos=0, table=100, proto=3, scope=0, type=1)
    msg["flags"] = 0
    msg["attrs"] = [
        ("RTA_DST", "198.18.1.2"),
        ("RTA_OIF", 3),
        ("RTA_GATEWAY", "192.0.2.1"),
        ("RTA_METRICS", {"attrs": [("RTAX_MTU", 1400)]}),
    ]
    return msg


def encode_with_pyroute2() -> bytes:
    msg = pyroute2_route()
    msg.encode()
    return bytes(msg.data)


def test_bytes_agree() -> None:
    assert encode_message(Message(24, FLAGS, ROUTE), 7, 0) == encode_with_pyroute2()


@pytest.mark.benchmark(group="encode RTM_NEWROUTE")
def test_encode_route_asyncroute(benchmark: Any) -> None:
    benchmark(encode_message, Message(24, FLAGS, ROUTE), 7, 0)
    assert benchmark.stats.stats.median <= 3e-6


@pytest.mark.benchmark(group="encode RTM_NEWROUTE")
def test_encode_route_packed_body(benchmark: Any) -> None:
    dst, gateway = bytes([198, 18, 1, 2]), bytes([192, 0, 2, 1])
    benchmark(pack_route_body, 2, 32, 100, 3, 0, 1, dst, 3, gateway, None, None, 1400)
    assert benchmark.stats.stats.median <= 3e-6


@pytest.mark.benchmark(group="encode RTM_NEWROUTE")
def test_encode_route_pyroute2(benchmark: Any) -> None:
    benchmark(encode_with_pyroute2)


@pytest.mark.benchmark(group="build Route")
def test_route_from_strings(benchmark: Any) -> None:
    benchmark(Route, "198.18.1.2/32", nexthop="192.0.2.1", device="v0", table=100)


@pytest.mark.benchmark(group="encode RTM_NEWRULE")
def test_encode_rule_asyncroute(benchmark: Any) -> None:
    benchmark(encode_message, Message(32, FLAGS, RULE), 7, 0)


@pytest.mark.benchmark(group="encode RTM_NEWRULE")
def test_encode_rule_pyroute2(benchmark: Any) -> None:
    def run() -> bytes:
        msg = fibmsg()
        msg["header"] = {"type": 32, "flags": FLAGS, "sequence_number": 7, "pid": 0}
        msg.update(family=2, dst_len=0, src_len=0, tos=0, table=123, res1=0, res2=0,
                   action=1, flags=0)  # fmt: skip
        msg["attrs"] = [("FRA_PRIORITY", 1), ("FRA_FWMARK", 0xF00), ("FRA_FWMASK", 0xF00)]
        msg.encode()
        return bytes(msg.data)

    benchmark(run)


@pytest.mark.benchmark(group="decode RTM_NEWROUTE")
def test_decode_route_asyncroute(benchmark: Any) -> None:
    data = encode_message(Message(24, FLAGS, ROUTE), 7, 0)
    benchmark(decode_datagram, data)


@pytest.mark.benchmark(group="decode RTM_NEWROUTE")
def test_decode_route_pyroute2(benchmark: Any) -> None:
    data = encode_with_pyroute2()

    def run() -> Any:
        msg = rtmsg(data)
        msg.decode()
        return msg

    benchmark(run)


def test_encode_is_25x_faster_than_pyroute2() -> None:
    import timeit

    message = Message(24, FLAGS, ROUTE)
    ours = min(timeit.repeat(lambda: encode_message(message, 7, 0), number=2000, repeat=5))
    theirs = min(timeit.repeat(encode_with_pyroute2, number=200, repeat=5)) * 10
    print(f"\nencode RTM_NEWROUTE: asyncroute {ours / 2000 * 1e6:.2f} µs, "
          f"pyroute2 {theirs / 2000 * 1e6:.1f} µs, ratio {theirs / ours:.0f}x")  # fmt: skip
    assert theirs / ours >= 25
