"""Hypothesis strategies for hostile netlink input: valid datagrams, then broken ones.

Valid datagrams are packed here by hand (a small TLV builder), not by asyncroute's
encoder, so that a bug in the encoder cannot make the fuzz input agree with the
decoder.  Each one comes with its :class:`Layout`: where every frame header, every
attribute header (nested ones too) and every extended-ACK TLV area starts, so that the
mutations can aim at the fields the decoder must check:

* ``truncate``: the datagram cut inside a frame header or an attribute header;
* ``nlmsg_short`` / ``nlmsg_past`` / ``nlmsg_unaligned``: a frame length below 16, past
  the datagram, or off by 1-3 bytes (the next frame starts misaligned);
* ``misalign``: 1-3 bytes inserted at a frame or attribute boundary;
* ``nla_lie``: an attribute length below 4, off by a few bytes, past its frame or 65535;
* ``nest_overrun``: an attribute inside a nest (RTA_METRICS, a nested unknown
  attribute) whose length runs past its parent but stays inside the frame;
* ``tlv_garbage``: the extended-ACK area of an NLMSG_ERROR/NLMSG_DONE replaced by random
  bytes or by TLVs with lying lengths; ``error_flags``: NLM_F_CAPPED/NLM_F_ACK_TLVS
  flipped (the echoed request is then measured differently); ``echo_lie``: the echoed
  request header's length changed;
* ``retype``: a frame's type changed (a route payload read as a rule, a link, an error);
* ``flip``: random bytes overwritten; ``splice``: garbage appended, or a frame repeated.

Frames carry seqs and port ids drawn from the strategies passed in, so that the core
and transport properties can address them to requests that are really pending.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

# Numbers are written out (linux/netlink.h, rtnetlink.h, fib_rules.h, if_link.h,
# if_addr.h), not imported from asyncroute: the fuzz input must not share its mistakes.
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_MULTI, NLM_F_DUMP_INTR = 0x2, 0x10
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLA_F_NESTED = 0x8000
AF_INET, AF_INET6 = 2, 10
ROUTE_TYPES = (24, 25, 26)
RULE_TYPES = (32, 33, 34)
LINK_TYPES = (16, 17, 18)
ADDRESS_TYPES = (20, 21, 22)
NEXTHOP_TYPES = (104, 105, 106)  # RTM_NEWNEXTHOP, RTM_DELNEXTHOP, RTM_GETNEXTHOP
KNOWN_TYPES = (
    NLMSG_NOOP,
    NLMSG_ERROR,
    NLMSG_DONE,
    NLMSG_OVERRUN,
    *LINK_TYPES,
    *ADDRESS_TYPES,
    *ROUTE_TYPES,
    *RULE_TYPES,
    *NEXTHOP_TYPES,
)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
#: Error codes: acks, real errnos, and the edges of the i32 (INT32_MIN has no positive).
error_codes = st.one_of(
    st.just(0),
    st.integers(-133, -1),
    st.sampled_from([INT32_MIN, INT32_MIN + 1, INT32_MAX, 1, -4095]),
    st.integers(INT32_MIN, INT32_MAX),
)

#: An attribute: ``(nla_type, value)``; a list value is a nest of attributes.
Attr = tuple[int, "bytes | list[Attr]"]


@dataclass(frozen=True)
class Layout:
    """A datagram and where its fields are (byte offsets into ``data``)."""

    data: bytes
    #: the nlmsghdr of each frame
    frames: tuple[int, ...]
    #: each top-level attribute header, with the end of its frame
    attrs: tuple[tuple[int, int], ...]
    #: each attribute header inside a nest, with the end of the nest
    nested: tuple[tuple[int, int], ...]
    #: the extended-ACK TLV area of each NLMSG_ERROR/NLMSG_DONE frame: (start, end)
    tlv_areas: tuple[tuple[int, int], ...]
    #: the echoed nlmsghdr of each NLMSG_ERROR frame
    echoes: tuple[int, ...]


def _pad(data: bytes | bytearray) -> bytes:
    return b"\0" * (-len(data) % 4)


class _Builder:
    """Packs frames and attributes, recording where each field went."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.frames: list[int] = []
        self.attrs: list[tuple[int, int]] = []
        self.nested: list[tuple[int, int]] = []
        self.tlv_areas: list[tuple[int, int]] = []
        self.echoes: list[int] = []

    def _attributes(self, attrs: list[Attr], top: list[int], inner: list[tuple[int, int]]) -> None:
        buf = self.buf
        for nla_type, value in attrs:
            start = len(buf)
            top.append(start)
            if isinstance(value, list):
                buf += b"\0\0\0\0"
                children: list[int] = []
                self._attributes(value, children, inner)
                struct.pack_into("=HH", buf, start, len(buf) - start, nla_type | NLA_F_NESTED)
                inner.extend((child, len(buf)) for child in children)
            else:
                buf += struct.pack("=HH", 4 + len(value), nla_type) + value + _pad(value)

    def frame(
        self,
        msg_type: int,
        flags: int,
        seq: int,
        port: int,
        fixed: bytes,
        attrs: list[Attr] = (),  # type: ignore[assignment]
        *,
        tlvs: bool = False,
    ) -> None:
        buf = self.buf
        start = len(buf)
        self.frames.append(start)
        buf += bytes(16) + fixed + _pad(fixed)
        area = len(buf)
        top: list[int] = []
        self._attributes(list(attrs), top, self.nested)
        struct.pack_into("=IHHII", buf, start, len(buf) - start, msg_type, flags, seq, port)
        self.attrs.extend((offset, len(buf)) for offset in top)
        if tlvs:
            self.tlv_areas.append((area, len(buf)))

    def layout(self) -> Layout:
        return Layout(
            bytes(self.buf),
            tuple(self.frames),
            tuple(self.attrs),
            tuple(self.nested),
            tuple(self.tlv_areas),
            tuple(self.echoes),
        )


# --------------------------------------------------------------------------- attributes
#
# Every strategy is built once, at import: hypothesis validates a strategy on its first
# draw, so building them inside the composites would cost that on every example.

_address = {
    AF_INET: st.binary(min_size=4, max_size=4),
    AF_INET6: st.binary(min_size=16, max_size=16),
}
_u32_bytes = u32.map(lambda v: struct.pack("=I", v))
_u8_bytes = u8.map(lambda v: bytes([v]))
_asciiz = st.binary(max_size=16).map(lambda b: b.replace(b"\0", b"\xff") + b"\0")
_raw = st.binary(max_size=24)
_leaf_types = st.integers(0, 40)


#: An attribute no decoder models: raw bytes, or a nest of raw children.
_unknown: st.SearchStrategy[Attr] = st.one_of(
    st.tuples(st.integers(20, 60), _raw),
    st.tuples(st.integers(20, 60), st.lists(st.tuples(_leaf_types, _raw), max_size=3)),
)
#: RTA_METRICS (8): u32 RTAX_* values, sometimes RTAX_CC_ALGO (a string) or junk.
_metrics: st.SearchStrategy[Attr] = st.tuples(
    st.just(8),
    st.lists(
        st.one_of(
            st.tuples(st.integers(1, 15), _u32_bytes),
            st.tuples(st.just(16), _asciiz),
            st.tuples(_leaf_types, _raw),
        ),
        max_size=4,
    ),
)


def _attribute_set(*known: st.SearchStrategy[Attr]) -> st.SearchStrategy[list[Attr]]:
    return st.lists(st.one_of(*known, _unknown), max_size=7)


_ROUTE_ATTRS = {
    family: _attribute_set(
        st.tuples(st.sampled_from([1, 2, 5, 7]), _address[family]),  # DST SRC GATEWAY PREFSRC
        st.tuples(st.sampled_from([3, 4, 6, 15]), _u32_bytes),  # IIF OIF PRIORITY TABLE
        _metrics,
    )
    for family in (AF_INET, AF_INET6)
}
_RULE_ATTRS = {
    family: _attribute_set(
        st.tuples(st.sampled_from([1, 2]), _address[family]),  # FRA_DST FRA_SRC
        st.tuples(st.sampled_from([6, 10, 15, 16]), _u32_bytes),  # PRIORITY FWMARK TABLE FWMASK
        st.tuples(st.just(21), _u8_bytes),  # FRA_PROTOCOL
    )
    for family in (AF_INET, AF_INET6)
}
_LINK_ATTRS = _attribute_set(
    st.tuples(st.just(3), _asciiz),  # IFLA_IFNAME
    st.tuples(st.just(4), _u32_bytes),  # IFLA_MTU
    st.tuples(st.just(16), _u8_bytes),  # IFLA_OPERSTATE
)
_ADDRESS_ATTRS = {
    family: _attribute_set(
        st.tuples(st.sampled_from([1, 2, 4, 5, 7]), _address[family]),  # ADDRESS LOCAL ...
        st.tuples(st.just(3), _asciiz),  # IFA_LABEL
        st.tuples(st.just(6), st.binary(min_size=16, max_size=16)),  # IFA_CACHEINFO
        st.tuples(st.sampled_from([8, 9]), _u32_bytes),  # IFA_FLAGS IFA_RT_PRIORITY
        st.tuples(st.just(11), _u8_bytes),  # IFA_PROTO
    )
    for family in (AF_INET, AF_INET6)
}
_EXT_ACK_ATTRS = _attribute_set(
    st.tuples(st.just(1), _asciiz),  # NLMSGERR_ATTR_MSG
    st.tuples(st.just(2), _u32_bytes),  # NLMSGERR_ATTR_OFFS
)


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class _Spec:
    """A frame without its seq and port id."""

    msg_type: int
    flags: int
    fixed: bytes
    attrs: list[Attr]
    tlvs: bool = False
    #: NLMSG_ERROR: the echoed request's payload (its header is packed with the seq)
    echo: tuple[int, int, bytes] | None = None


_frame_flags = st.sampled_from([0, NLM_F_MULTI, NLM_F_MULTI | NLM_F_DUMP_INTR]) | u16
#: rtmsg and fib_rule_hdr share a layout: eight bytes, then u32 flags (family patched in).
_rt_header = st.binary(min_size=12, max_size=12)
_family = st.sampled_from([AF_INET, AF_INET6])
_route_type = st.sampled_from(ROUTE_TYPES)
_rule_type = st.sampled_from(RULE_TYPES)
_address_type = st.sampled_from(ADDRESS_TYPES)
_ifaddr_rest = st.binary(min_size=7, max_size=7)
_flag = st.booleans()
_echo_payload = st.binary(max_size=40)
_done_intr = st.sampled_from([0, NLM_F_DUMP_INTR])


@st.composite
def _route_or_rule(draw: st.DrawFn) -> _Spec:
    family = draw(_family)
    fixed = bytes([family]) + draw(_rt_header)[1:]
    if draw(_flag):
        msg_type, attrs = draw(_route_type), draw(_ROUTE_ATTRS[family])
    else:
        msg_type, attrs = draw(_rule_type), draw(_RULE_ATTRS[family])
    return _Spec(msg_type, draw(_frame_flags), fixed, attrs)


_link = st.builds(
    _Spec,
    st.sampled_from(LINK_TYPES),
    _frame_flags,
    st.tuples(u8, u16, st.integers(0, 2**31 - 1)).map(lambda v: struct.pack("=BxHiII", *v, 0, 0)),
    _LINK_ATTRS,
)


@st.composite
def _address_frame(draw: st.DrawFn) -> _Spec:
    family = draw(_family)
    fixed = bytes([family]) + draw(_ifaddr_rest)
    attrs = draw(_ADDRESS_ATTRS[family])
    return _Spec(draw(_address_type), draw(_frame_flags), fixed, attrs)


_echoed_types = st.sampled_from([*ROUTE_TYPES, *RULE_TYPES, *LINK_TYPES, NLMSG_NOOP]) | u16


@st.composite
def _error(draw: st.DrawFn) -> _Spec:
    """An NLMSG_ERROR as ``netlink_ack()`` lays it out: code, the echoed request (only its
    header when capped), then, with NLM_F_ACK_TLVS, the TLVs after the aligned echo."""
    code = draw(error_codes)
    capped, tlvs = draw(_flag), draw(_flag)
    echoed_payload = b"" if capped else draw(_echo_payload)
    flags = (NLM_F_CAPPED if capped else 0) | (NLM_F_ACK_TLVS if tlvs else 0)
    attrs = draw(_EXT_ACK_ATTRS) if tlvs else []
    echo = (draw(_echoed_types), draw(u16), echoed_payload)
    return _Spec(NLMSG_ERROR, flags, struct.pack("=i", code), attrs, tlvs, echo)


@st.composite
def _done(draw: st.DrawFn) -> _Spec:
    code = draw(error_codes)
    tlvs = draw(_flag)
    flags = NLM_F_MULTI | (NLM_F_ACK_TLVS if tlvs else 0) | draw(_done_intr)
    attrs = draw(_EXT_ACK_ATTRS) if tlvs else []
    return _Spec(NLMSG_DONE, flags, struct.pack("=i", code), attrs, tlvs)


_other = st.builds(
    _Spec,
    # types no body decoder claims (control messages, numbers past RTM_GETRULE) and,
    # among the numbers above 35, the nexthop types, which must decode or be rejected
    st.sampled_from([NLMSG_NOOP, NLMSG_OVERRUN, 0, 5, 15, 19, 99]) | st.integers(35, 0xFFFF),
    _frame_flags,
    st.binary(max_size=48),
    st.just([]),
)
_specs = st.one_of(_route_or_rule(), _link, _address_frame(), _error(), _done(), _other)


def _add(builder: _Builder, spec: _Spec, seq: int, port: int) -> None:
    fixed = spec.fixed
    if spec.echo is not None:
        echoed_type, echoed_flags, payload = spec.echo
        builder.echoes.append(len(builder.buf) + 20)
        header = struct.pack("=IHHII", 16 + len(payload), echoed_type, echoed_flags, seq, port)
        fixed += header + payload
    builder.frame(spec.msg_type, spec.flags, seq, port, fixed, spec.attrs, tlvs=spec.tlvs)


def layouts(
    seqs: st.SearchStrategy[int] = u32,
    ports: st.SearchStrategy[int] = u32,
    max_frames: int = 4,
) -> st.SearchStrategy[Layout]:
    """Well-formed datagrams of 1 to ``max_frames`` frames, with their layouts."""
    frames = st.lists(st.tuples(_specs, seqs, ports), min_size=1, max_size=max_frames)

    @st.composite
    def build(draw: st.DrawFn) -> Layout:
        builder = _Builder()
        for spec, seq, port in draw(frames):
            _add(builder, spec, seq, port)
        return builder.layout()

    return build()


# --------------------------------------------------------------------------- mutations

MUTATIONS = (
    "truncate",
    "nlmsg_short",
    "nlmsg_past",
    "nlmsg_unaligned",
    "misalign",
    "nla_lie",
    "nest_overrun",
    "tlv_garbage",
    "error_flags",
    "echo_lie",
    "retype",
    "flip",
    "splice",
)
_pick = st.integers(0, 2**16)  # an index, taken modulo the number of candidates
_mutation = st.sampled_from(MUTATIONS)
_mutation_count = st.integers(1, 3)
_short_length = st.integers(0, 15)
_overshoot = st.integers(1, 64)
_huge = st.sampled_from([0xFFFF_FFFF, 0x8000_0000]) | u32
_delta = st.sampled_from([-3, -2, -1, 1, 2, 3])
_wedge = st.binary(min_size=1, max_size=3)
_coin = st.booleans()
_garbage = st.binary(max_size=40)
_tail = st.binary(min_size=1, max_size=64)
_ack_bits = st.sampled_from([NLM_F_CAPPED, NLM_F_ACK_TLVS, NLM_F_CAPPED | NLM_F_ACK_TLVS])
_echo_length = st.integers(0, 64) | u32
_any_type = st.sampled_from(KNOWN_TYPES) | u16
_flip_count = st.integers(1, 8)
_tlv_count = st.integers(1, 4)
_tlv_value = st.binary(max_size=20)
_tlv_type = st.sampled_from([1, 2, 3, 4, 5]) | u16


def _random_tlvs(draw: st.DrawFn) -> bytes:
    """TLVs whose lengths may lie, for an extended-ACK area."""
    out = bytearray()
    for _ in range(draw(_tlv_count)):
        value = draw(_tlv_value)
        lengths = (4 + len(value), 0, 3, 5 + len(value), 0xFFFF, draw(u16))
        length = lengths[draw(_pick) % len(lengths)]
        out += struct.pack("=HH", length, draw(_tlv_type)) + value
    return bytes(out)


def mutate(draw: st.DrawFn, layout: Layout, mutation: str) -> bytes:
    """``layout.data`` with one ``mutation`` (see :data:`MUTATIONS`) applied."""
    data = bytearray(layout.data)
    layout = _still_inside(layout)

    def choose(candidates: Sequence[Any]) -> Any:
        return candidates[draw(_pick) % len(candidates)]

    frames = layout.frames
    if not frames:  # an earlier mutation cut every header short
        mutation = "flip" if data else "splice"
    if mutation == "truncate":
        points = [f + k for f in frames for k in range(1, 16)]
        points += [a + k for a, _ in layout.attrs + layout.nested for k in range(1, 4)]
        del data[choose(points) :]
    elif mutation == "nlmsg_short":
        struct.pack_into("=I", data, choose(frames), draw(_short_length))
    elif mutation == "nlmsg_past":
        frame = choose(frames)
        past = len(data) - frame + draw(_overshoot)
        struct.pack_into("=I", data, frame, past if draw(_coin) else draw(_huge))
    elif mutation == "nlmsg_unaligned":
        frame = choose(frames)
        length = struct.unpack_from("=I", data, frame)[0]
        struct.pack_into("=I", data, frame, min(0xFFFF_FFFF, max(0, length + draw(_delta))))
    elif mutation == "misalign":
        at = choose([*frames, *(a for a, _ in layout.attrs), len(data)])
        data[at:at] = draw(_wedge)
    elif mutation in ("nla_lie", "nest_overrun"):
        pool = layout.attrs if mutation == "nla_lie" else layout.nested
        if not pool:  # nothing of that kind here: lie about a frame instead
            struct.pack_into("=I", data, choose(frames), draw(u32))
            return bytes(data)
        offset, end = choose(pool)
        length = struct.unpack_from("=H", data, offset)[0]
        span = end - offset
        if mutation == "nla_lie":
            choices = [0, 1, 2, 3, length - 1, length + 1, length + 4, span + 4, 0xFFFF]
        else:  # past the nest, inside the frame (or the datagram)
            choices = [span + 4, span + 1, min(len(data) - offset, 0xFFFF), span + 64]
        choices = [c for c in choices if 0 <= c <= 0xFFFF]
        struct.pack_into("=H", data, offset, choose(choices) if draw(_coin) else draw(u16))
    elif mutation == "tlv_garbage":
        if layout.tlv_areas:
            start, end = choose(layout.tlv_areas)
            garbage = draw(_garbage) if draw(_coin) else _random_tlvs(draw)
            data[start:end] = garbage
            # The frame keeps its length unless asked to follow the new area.
            if draw(_coin):
                frame = max(f for f in frames if f < start)
                old = struct.unpack_from("=I", data, frame)[0]
                new = min(0xFFFF_FFFF, max(0, old + len(garbage) - (end - start)))
                struct.pack_into("=I", data, frame, new)
        else:
            data += draw(_garbage)
    elif mutation == "error_flags":
        frame = choose(frames)
        flags = struct.unpack_from("=H", data, frame + 6)[0]
        struct.pack_into("=H", data, frame + 6, flags ^ draw(_ack_bits))
    elif mutation == "echo_lie":
        if layout.echoes:
            struct.pack_into("=I", data, choose(layout.echoes), draw(_echo_length))
        else:
            struct.pack_into("=H", data, choose(frames) + 4, NLMSG_ERROR)
    elif mutation == "retype":
        struct.pack_into("=H", data, choose(frames) + 4, draw(_any_type))
    elif mutation == "flip":
        for _ in range(draw(_flip_count)):
            data[draw(_pick) % len(data)] = draw(u8)
    else:  # splice
        if not frames or draw(_coin):
            data += draw(_tail)
        else:
            frame = choose(frames)
            length = struct.unpack_from("=I", data, frame)[0]
            data += data[frame : frame + ((length + 3) & ~3)]
    return bytes(data)


def mutated(
    seqs: st.SearchStrategy[int] = u32,
    ports: st.SearchStrategy[int] = u32,
    max_frames: int = 3,
) -> st.SearchStrategy[bytes]:
    """A valid datagram with one to three mutations applied in turn (each aimed at the
    original layout; later ones may land on already-broken bytes)."""

    valid = layouts(seqs, ports, max_frames)

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        layout = draw(valid)
        for _ in range(draw(_mutation_count)):
            data = mutate(draw, layout, draw(_mutation))
            if len(data) < 16:
                return data
            layout = Layout(data, *_fields(layout))
        return layout.data

    return build()


def _still_inside(layout: Layout) -> Layout:
    """``layout`` without the landmarks an earlier mutation moved past the end."""
    size = len(layout.data)
    return Layout(
        layout.data,
        tuple(f for f in layout.frames if f + 16 <= size),
        tuple((a, e) for a, e in layout.attrs if a + 4 <= size),
        tuple((a, e) for a, e in layout.nested if a + 4 <= size),
        tuple((s, e) for s, e in layout.tlv_areas if e <= size),
        tuple(e for e in layout.echoes if e + 4 <= size),
    )


def _fields(layout: Layout) -> tuple[Any, ...]:
    return (layout.frames, layout.attrs, layout.nested, layout.tlv_areas, layout.echoes)


_known_type = st.sampled_from(KNOWN_TYPES)
_garbage_flags = st.sampled_from([0, NLM_F_CAPPED, NLM_F_ACK_TLVS, 0x300]) | u16
_payload = st.binary(max_size=160)
_error_flags = st.sampled_from([NLM_F_ACK_TLVS, NLM_F_CAPPED | NLM_F_ACK_TLVS, 0, NLM_F_CAPPED])
_echoed_length = st.sampled_from([16, 0, 15, 17, 20, 0xFFFF_FFFF]) | st.integers(0, 80)
_echoed_payload = st.binary(max_size=48)
_lie = st.integers(0, 3)


def framed_garbage(
    seqs: st.SearchStrategy[int] = u32, ports: st.SearchStrategy[int] = u32
) -> st.SearchStrategy[bytes]:
    """Frames with a correct, aligned nlmsg_len and a known type around random payloads:
    plain random bytes rarely get past the header check; these reach the body decoders."""

    frames = st.lists(
        st.tuples(_known_type, _garbage_flags, _payload, seqs, ports), min_size=1, max_size=3
    )

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        out = bytearray()
        for msg_type, flags, payload, seq, port in draw(frames):
            out += struct.pack("=IHHII", 16 + len(payload), msg_type, flags, seq, port)
            out += payload + _pad(payload)
        return bytes(out)

    return build()


def garbage_errors(
    seqs: st.SearchStrategy[int] = u32, ports: st.SearchStrategy[int] = u32
) -> st.SearchStrategy[bytes]:
    """NLMSG_ERROR and NLMSG_DONE frames with garbage after a plausible start: any code,
    capped or not, an echoed length that may lie, and random or lying TLVs."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        done = draw(_coin)
        flags = draw(_error_flags)
        body = struct.pack("=i", draw(error_codes))
        if not done:
            echoed = (draw(_echoed_length), draw(u16), draw(u16), draw(u32), draw(u32))
            body += struct.pack("=IHHII", *echoed)
            if not flags & NLM_F_CAPPED:
                body += draw(_echoed_payload)
            body += _pad(body)
        body += _random_tlvs(draw) if draw(_coin) else draw(_echoed_payload)
        msg_type = NLMSG_DONE if done else NLMSG_ERROR
        flags |= NLM_F_MULTI if done else 0
        length = 16 + len(body)
        if draw(_lie) == 0:  # sometimes the frame length lies as well
            length = min(draw(_pick), length + 8)
        header = struct.pack("=IHHII", length, msg_type, flags, draw(seqs), draw(ports))
        return header + body

    return build()


def hostile(
    seqs: st.SearchStrategy[int] = u32, ports: st.SearchStrategy[int] = u32
) -> st.SearchStrategy[bytes]:
    """Any of the above, or plain random bytes."""
    return st.one_of(
        mutated(seqs, ports),
        framed_garbage(seqs, ports),
        garbage_errors(seqs, ports),
        st.binary(max_size=256),
    )
