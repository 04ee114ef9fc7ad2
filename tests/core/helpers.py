"""A small driver for the sans-I/O core: requests in, bytes out, bytes in, events out.

Nothing here talks to a socket.  A :class:`Driver` owns one :class:`NetlinkProtocol`; it
queues requests, pulls the datagrams the core wants to send with ``data_to_send()``,
decodes them with the real codec (so a test learns the seqs and the exact requests the
"kernel" saw), and feeds reply bytes back with ``receive_datagram()``.  Reply bytes are
built from :mod:`asyncroute.testing.fake_kernel`'s helpers and :func:`encode_message`.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address

from asyncroute._codec import decode_datagram, encode_message
from asyncroute._frame import HEADER
from asyncroute._protocol import Finished, NetlinkProtocol, Reply
from asyncroute.constants import AF_INET, NLM_F, NLMSG, RTM
from asyncroute.messages import Body, DoneMessage, ErrorMessage, LinkMessage, Message, RouteMessage
from asyncroute.testing.fake_kernel import ack, dump_replies, error_reply

__all__ = [
    "PORT_ID",
    "Driver",
    "Event",
    "ack_bytes",
    "done_frame",
    "dump_frames",
    "dump_request",
    "error_bytes",
    "frames",
    "get_request",
    "link_reply",
    "new_route",
    "uncapped_error_bytes",
]

#: The port id the core under test claims (non-zero, so the port check is on).
PORT_ID = 4242

Event = Reply | Finished

_MULTI = int(NLM_F.MULTI)

# --------------------------------------------------------------------------- requests


def new_route(i: int = 0, *, ack: bool = True) -> Message:
    """An RTM_NEWROUTE doit request for 198.18.x.y/32 (a distinct route per ``i``)."""
    flags = NLM_F.REQUEST | NLM_F.CREATE | NLM_F.EXCL | (NLM_F.ACK if ack else 0)
    body = RouteMessage(
        family=AF_INET,
        dst_len=32,
        table=254,
        dst=IPv4Address(f"198.18.{(i >> 8) & 0xFF}.{i & 0xFF}"),
        oif=2,
    )
    return Message(RTM.NEWROUTE, int(flags), body)


def get_request(index: int = 1, *, ack: bool = True) -> Message:
    """An RTM_GETLINK doit request (one reply frame, then an ack if ``ack``)."""
    flags = NLM_F.REQUEST | (NLM_F.ACK if ack else 0)
    return Message(RTM.GETLINK, int(flags), LinkMessage(index=index))


def dump_request() -> Message:
    """An RTM_GETLINK dump request."""
    return Message(RTM.GETLINK, int(NLM_F.REQUEST | NLM_F.DUMP), LinkMessage())


# --------------------------------------------------------------------------- replies


def frames(*messages: Message) -> bytes:
    """One datagram holding ``messages`` (each frame is already 4-byte aligned)."""
    return b"".join(encode_message(m) for m in messages)


def ack_bytes(request: Message) -> bytes:
    """The kernel's ack for ``request`` as one frame."""
    return encode_message(ack(request))


def error_bytes(
    request: Message, errno: int, message: str | None = None, offset: int | None = None
) -> bytes:
    """A capped error reply (extended-ACK TLVs when ``message``/``offset``) as one frame."""
    return encode_message(error_reply(request, errno, message, offset))


def uncapped_error_bytes(
    request: Message, request_bytes: bytes, errno: int, message: str, offset: int
) -> bytes:
    """An error reply that echoes the whole request (no NLM_F_CAPPED) followed by TLVs."""
    header = HEADER.unpack_from(request_bytes)
    body = ErrorMessage(
        -errno,
        header,
        request_payload=request_bytes[HEADER.size :],
        message=message,
        offset=offset,
    )
    reply = Message(NLMSG.ERROR, int(NLM_F.ACK_TLVS), body, request.seq, request.port_id)
    return encode_message(reply)


def link_reply(request: Message, index: int, *, multi: bool = False, flags: int = 0) -> Message:
    """An RTM_NEWLINK data frame answering ``request``."""
    all_flags = flags | (int(NLM_F.MULTI) if multi else 0)
    body = LinkMessage(index=index, name=f"if{request.seq}-{index}")
    return Message(RTM.NEWLINK, all_flags, body, request.seq, request.port_id)


def dump_frames(request: Message, count: int, *, interrupted: bool = False) -> list[Message]:
    """``count`` NLM_F_MULTI RTM_NEWLINK frames then NLMSG_DONE, answering ``request``."""
    bodies: list[Body] = [LinkMessage(index=i, name=f"if{request.seq}-{i}") for i in range(count)]
    return dump_replies(request, RTM.NEWLINK, bodies, interrupted=interrupted)


def done_frame(
    request: Message,
    error: int = 0,
    *,
    flags: int = _MULTI,
    message: str | None = None,
) -> Message:
    """An NLMSG_DONE frame for ``request`` (``error`` is 0 or -errno)."""
    if message is not None:
        flags |= int(NLM_F.ACK_TLVS)
    body = DoneMessage(error, message)
    return Message(NLMSG.DONE, flags, body, request.seq, request.port_id)


# --------------------------------------------------------------------------- driver


class Driver:
    """One core under test plus the bookkeeping a test needs to play the kernel.

    Attributes:
        core: the :class:`NetlinkProtocol`.
        sent: every request that came out of ``data_to_send()``, decoded, by seq (the
            latest one, should a seq be reused).
        sent_bytes: the exact frame bytes of each sent request, by seq (likewise).
        datagrams: every datagram ``data_to_send()`` returned, in order.
    """

    def __init__(
        self, *, max_in_flight: int = 64, max_datagram: int = 65536, port_id: int = PORT_ID
    ) -> None:
        self.core = NetlinkProtocol(
            max_in_flight=max_in_flight, max_datagram=max_datagram, port_id=port_id
        )
        self.sent: dict[int, Message] = {}
        self.sent_bytes: dict[int, bytes] = {}
        self.datagrams: list[bytes] = []

    def send(self, message: Message, *, dump: bool = False) -> int:
        """Queue ``message`` in the core and return its seq."""
        return self.core.send_request(message, dump=dump)

    def flush(self) -> list[list[Message]]:
        """``data_to_send()``, each datagram decoded into the requests it carries."""
        out: list[list[Message]] = []
        for datagram in self.core.data_to_send():
            assert isinstance(datagram, bytes)
            self.datagrams.append(datagram)
            decoded = decode_datagram(datagram)
            offset = 0
            for message in decoded:
                length = HEADER.unpack_from(datagram, offset)[0]
                self.sent[message.seq] = message
                self.sent_bytes[message.seq] = datagram[offset : offset + length]
                offset += (length + 3) & ~3
            assert offset == len(datagram)
            out.append(decoded)
        return out

    def flush_seqs(self) -> list[int]:
        """``data_to_send()`` flattened to the seqs of the requests sent, in order."""
        return [m.seq for datagram in self.flush() for m in datagram]

    def request(self, seq: int) -> Message:
        """The request with ``seq`` exactly as the kernel received it."""
        return self.sent[seq]

    def receive(
        self, data: bytes | Iterable[Message], *, sender_port_id: int = 0, sender_groups: int = 0
    ) -> list[Event]:
        """Feed one datagram (bytes, or messages to encode into one) to the core."""
        if not isinstance(data, bytes | bytearray | memoryview):
            data = frames(*data)
        return self.core.receive_datagram(
            data, sender_port_id=sender_port_id, sender_groups=sender_groups
        )

    def send_and_flush(self, message: Message, *, dump: bool = False) -> tuple[int, Message]:
        """Queue ``message``, flush, and return its seq and the request as sent."""
        seq = self.send(message, dump=dump)
        self.flush()
        return seq, self.request(seq)
