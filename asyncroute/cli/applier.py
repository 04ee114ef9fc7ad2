"""Apply a batch of route and rule changes: what ``ip -batch`` does, pipelined.

:func:`apply_text` reads an iproute2 batch file (``route add|replace|del …``,
``rule add|del …``) or ``ip -json`` output and streams one request per command, in
input order, through one :class:`~asyncroute.connection.RequestBatch`: no task and no
ack per request, thousands in flight.  Each request is the one ``ip`` would send for
the same command (see :mod:`asyncroute.batchfile`), so the kernel ends in the state
``ip -batch`` leaves — requests on one socket are processed in the order sent.

Stopping.  Like ``ip -batch``, apply stops at the first failing command unless
``force`` is set (``ip -batch -force``).  A command that does not parse stops it
before anything after it is sent, exactly like ``ip``.  A request the *kernel* refuses
is only known once its answer arrives, and by then the requests sent after it (up to
the window, a few thousand) have been applied: :class:`ApplyResult` counts them
(``sent_after_stop``).  Use ``force`` for a state identical to ``ip -batch -force``
whatever fails, or ``sequential`` (one request at a time, no pipelining) for a run
that stops exactly where ``ip -batch`` stops.

The hot path: commands that differ from an earlier one only in the prefix (``route
add 198.18.0.7/32 via 192.0.2.1 dev v0 table 100``) reuse that command's packed
request, with the prefix swapped in, instead of being parsed again.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .._links import DeviceIndexes
from ..connection import NetlinkConnection, RequestBatch
from ..constants import RTM, RTPROT
from ..errors import ExistsError, KernelError
from ..listing import list_routes
from ..messages import Body
from .batchfile import (
    Change,
    ParseError,
    RouteChange,
    RuleChange,
    change_from_json,
    iter_batch_lines,
    iter_json,
    join_line,
    looks_like_json,
    parse_command,
    split_args,
)

__all__ = ["ApplyResult", "Failure", "apply_text", "iter_changes"]


@dataclass(frozen=True, slots=True)
class Failure:
    """A command that failed: where it was, what it said, and why.

    ``line`` is the 1-based line (for a continued command, its last line, as ``ip``
    counts); ``item`` the 1-based object number in JSON input, else None.  ``error``
    is a :class:`~asyncroute.KernelError` (its ``message`` is the kernel's extended-ACK
    text), a :class:`~asyncroute.NotFoundError` for an unknown device, or a
    :class:`~asyncroute.batchfile.ParseError`.
    """

    line: int
    item: int | None
    command: str
    error: BaseException


@dataclass(slots=True)
class ApplyResult:
    """What :func:`apply_text` did.

    Attributes:
        commands: commands read (blank lines and comments are not commands).
        applied: requests the kernel carried out.
        unchanged: JSON rules that existed already, and listed routes the kernel made
            itself that it holds already (nothing to do).
        routes: route requests among ``applied``.
        failures: every failed command, by line.
        stopped_at: the line apply stopped at (no ``force``), or None if every command
            was tried.
        sent_after_stop: requests sent after that line before its failure was known;
            ``applied_after_stop`` of them were carried out (``ip -batch`` would not
            have run them).
        seconds: wall time from the first request to the last answer.
    """

    commands: int = 0
    applied: int = 0
    unchanged: int = 0
    routes: int = 0
    failures: list[Failure] = field(default_factory=list)
    stopped_at: int | None = None
    sent_after_stop: int = 0
    applied_after_stop: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures


class _Template:
    """A packed route request whose prefix can be swapped (``head + dst + tail``).

    ``heads`` maps the prefix token's ``/LENGTH`` suffix (``""`` for none) to the
    first 16 bytes of the request: only suffixes seen valid once are there, so the hot
    path checks a length with one dictionary lookup.
    """

    __slots__ = ("family", "flags", "heads", "max_plen", "msg_type", "rest", "tail")

    def __init__(self, change: RouteChange, body: bytes) -> None:
        size = len(change.dst)
        # pack_route_body: rtmsg (12 bytes), then RTA_DST (4-byte header, the address).
        self.rest = body[2:16]
        self.tail = body[16 + size :]
        self.family = change.family
        self.max_plen = size * 8
        self.msg_type = change.msg_type
        self.flags = change.flags
        self.heads: dict[str, bytes] = {}

    def head(self, suffix: str) -> bytes | None:
        """The first 16 bytes for a prefix written with ``suffix`` (``""`` or ``/N``),
        or None if ``N`` needs the full parser (``/024`` is octal to ``ip``, ``/0x18``
        hex, ``/255.255.0.0`` a netmask) or is too long."""
        head = self.heads.get(suffix)
        if head is not None:
            return head
        if suffix:
            length = suffix[1:]
            if not (length.isascii() and length.isdigit()) or length[:1] == "0" != length:
                return None
            plen = int(length)
            if plen > self.max_plen:
                return None
        else:
            plen = self.max_plen
        head = self.heads[suffix] = bytes((self.family, plen)) + self.rest
        return head

    def body(self, token: str) -> bytes | None:
        """The request for prefix ``token``, or None if the token needs the full parser
        (another family, ``default``, a netmask, a base-0 number …)."""
        address, slash, length = token.partition("/")
        head = self.head(slash + length)
        if head is None:
            return None
        try:
            return head + socket.inet_pton(self.family, address) + self.tail
        except OSError:
            return None


class _Applier:
    """The state of one apply: the batch, which line each request came from, device
    indexes, templates, failures."""

    def __init__(
        self,
        conn: NetlinkConnection,
        *,
        force: bool,
        sequential: bool,
        progress: Callable[[int], object] | None,
    ) -> None:
        self.conn = conn
        self.force = force
        self.sequential = sequential
        self.batch: RequestBatch = conn.batch(progress=progress)
        if sequential:
            self.batch.low_water = 0  # wake up only when everything is answered
        #: per request (batch position): its line; its item (JSON) and text, where the
        #: text is not simply that line of the input
        self.lines: list[int] = []
        self.items: dict[int, int] = {}
        self.texts: dict[int, str] = {}
        self.source: list[str] = []
        self.rules: set[int] = set()
        self.exists_ok: set[int] = set()
        self.devices = DeviceIndexes(conn)
        self.templates: dict[tuple[str, str, str], _Template] = {}
        self.failures: list[Failure] = []
        self.commands = 0
        self.stopped = False
        self.checked = 0
        #: per family, the routes the kernel made itself, as changes (see kernel_route)
        self.kernel_routes: dict[int, set[RouteChange]] = {}
        self.unchanged = 0

    # -------------------------------------------------------------- bookkeeping

    def fail(self, line: int, item: int | None, text: str, error: BaseException) -> None:
        """Record a command that failed before a request was sent."""
        self.failures.append(Failure(line, item, text.strip(), error))
        if not self.force:
            self.stopped = True

    async def settle(self) -> None:
        """Wait until every request sent is answered (``sequential``)."""
        batch = self.batch
        batch.seal()
        while batch.outstanding:
            await batch.wait_for_room()
        if not self.force:
            self.check()

    async def room(self) -> None:
        """Let the batch send and drain; without ``force``, notice kernel failures."""
        await self.batch.pause()
        if not self.force:
            self.check()

    def check(self) -> None:
        """Stop if an answered request failed (results fill in order of sending)."""
        results = self.batch.results
        done = len(results) - self.batch.outstanding
        for position in range(self.checked, done):
            error = results[position]
            if error is not None and not (
                position in self.exists_ok and isinstance(error, ExistsError)
            ):
                self.stopped = True
                break
        self.checked = done

    # -------------------------------------------------------------- sending

    async def submit(
        self, line: int, item: int | None, text: str, change: Change
    ) -> tuple[int, bytes] | None:
        """Queue the request for ``change``; return ``(oif, body)`` of a route."""
        if isinstance(change, RouteChange):
            oif = 0
            if change.device is not None:
                found = await self.devices.get(change.device)
                if isinstance(found, KernelError):
                    self.fail(line, item, text, found)
                    return None
                oif = found
            hop_oifs: list[int] = []
            for hop in change.hops:
                if hop.device is not None:
                    found = await self.devices.get(hop.device)
                    if isinstance(found, KernelError):
                        self.fail(line, item, text, found)
                        return None
                    hop_oifs.append(found)
            try:
                body: Body = change.body(oif, hop_oifs)
            except ValueError as exc:
                self.fail(line, item, text, ParseError(str(exc)))
                return None
        else:
            oif, body = 0, change.message
        batch = self.batch
        if batch.full:
            await self.room()
            if self.stopped:
                return None
        position = len(self.lines)
        batch.add_request(change.msg_type, change.flags, body)
        self.lines.append(line)
        self.texts[position] = text
        if item is not None:
            self.items[position] = item
        if isinstance(change, RuleChange):
            self.rules.add(position)
            if change.exists_ok:
                self.exists_ok.add(position)
        if self.sequential:
            await self.settle()
        if isinstance(body, bytes):
            return oif, body
        return None

    async def kernel_route(
        self, line: int, item: int | None, text: str, change: RouteChange
    ) -> None:
        """A listed route the kernel made itself (protocol kernel: the connected, local
        and broadcast routes of an address, ``fe80::/64``, ``ff00::/8``) is not written:
        the kernel makes it from the address, and writing it cannot reproduce it (an
        IPv6 replace matches prefix and metric only, so ``fe80::/64 dev v1`` would
        replace ``fe80::/64 dev v0``; an IPv6 route written with metric 0 gets 1024).
        One the kernel holds already counts as unchanged; any other is a failure."""
        held = self.kernel_routes.get(change.family)
        if held is None:
            from .common import route_json  # the listing's own shape, read back

            held = self.kernel_routes[change.family] = set()
            async for route in list_routes(self.conn, change.family, protocol=RTPROT.KERNEL):
                found = change_from_json(route_json(route))
                if isinstance(found, RouteChange):
                    held.add(found)
        if change in held:
            self.unchanged += 1
            return
        self.fail(line, item, text, ParseError(
            "a route the kernel makes itself (protocol kernel) is not written, and this "
            "one is not there: add the address it comes from instead"
        ))  # fmt: skip

    async def command(self, line: int, text: str) -> None:
        """Parse and queue one batch-file command (the full parser)."""
        try:
            words = split_args(text)
        except ParseError as exc:
            self.commands += 1
            self.fail(line, None, text, exc)
            return
        if not words:
            return
        self.commands += 1
        try:
            change, at = parse_command(words)
        except ParseError as exc:
            self.fail(line, None, text, exc)
            return
        sent = await self.submit(line, None, text, change)
        if sent is None or at != 2 or self.sequential or not isinstance(change, RouteChange):
            return
        # Later commands that differ only in the prefix reuse this request.
        parts = text.split(None, 3)
        if len(parts) == 4 and parts[2] == words[2] and split_args(parts[3]) == words[3:]:
            self.templates[(parts[0], parts[1], parts[3])] = _Template(change, sent[1])

    async def finish(self, started: float) -> ApplyResult:
        """Wait for every answer and sum up."""
        errors = await self.batch.finish()
        seconds = time.perf_counter() - started
        result = ApplyResult(commands=self.commands, seconds=seconds, unchanged=self.unchanged)
        failures = self.failures
        for position, error in enumerate(errors):
            if error is None:
                result.applied += 1
                if position not in self.rules:
                    result.routes += 1
            elif position in self.exists_ok and isinstance(error, ExistsError):
                result.unchanged += 1
            else:
                line = self.lines[position]
                text = self.texts.get(position)
                if text is None:
                    text = self.source[line - 1]
                failures.append(Failure(line, self.items.get(position), text.strip(), error))
        failures.sort(key=lambda f: (f.line, f.item or 0))
        result.failures = failures
        if failures and not self.force:
            first = failures[0]
            result.stopped_at = first.line
            for position, error in enumerate(errors):
                if (self.lines[position], self.items.get(position, 0)) > (
                    first.line,
                    first.item or 0,
                ):
                    result.sent_after_stop += 1
                    result.applied_after_stop += error is None
        return result


async def _apply_lines(applier: _Applier, text: str) -> None:
    """The batch-file loop: the template fast path inline, the full parser otherwise.

    A line goes the fast way when its words but the third equal those of a line that
    made a template (``route add PREFIX …rest``).  No comment, quote or continuation
    check is needed first: templates are made from clean commands, so a line with any
    of those in its rest misses, and one in the prefix fails ``inet_pton``.
    """
    lines = applier.source = text.splitlines()
    count = len(lines)
    templates = applier.templates
    batch = applier.batch
    add = batch.add_request
    record = applier.lines.append
    inet_pton = socket.inet_pton
    fast = 0  # commands sent through a template
    index = 0
    try:
        while index < count:
            line = lines[index]
            parts = line.split(None, 3)
            if len(parts) == 4:
                template = templates.get((parts[0], parts[1], parts[3]))
                if template is not None:
                    address, slash, length = parts[2].partition("/")
                    head = template.heads.get(slash + length) or template.head(slash + length)
                    if head is not None:
                        try:
                            packed = inet_pton(template.family, address)
                        except OSError:
                            pass
                        else:
                            index += 1
                            if batch.full:
                                await applier.room()
                                if applier.stopped:
                                    return
                            add(template.msg_type, template.flags, head + packed + template.tail)
                            record(index)
                            fast += 1
                            continue
            elif not parts:
                index += 1
                continue
            command, index = join_line(lines, index)
            await applier.command(index, command)
            if applier.stopped:
                return
    finally:
        applier.commands += fast


async def _apply_json(applier: _Applier, text: str) -> None:
    try:
        for line, item, obj in iter_json(text):
            applier.commands += 1
            source = _json_source(obj)
            try:
                change = change_from_json(obj)
            except ParseError as exc:
                applier.fail(line, item, source, exc)
            else:
                if (
                    isinstance(change, RouteChange)
                    and change.protocol == RTPROT.KERNEL
                    and change.msg_type == RTM.NEWROUTE
                ):
                    await applier.kernel_route(line, item, source, change)
                else:
                    await applier.submit(line, item, source, change)
            if applier.stopped:
                return
    except ParseError as exc:  # the text stopped being JSON: nothing after it can be read
        applier.failures.append(Failure(_error_line(exc), None, "", exc))


def _json_source(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _error_line(exc: ParseError) -> int:
    text = str(exc)
    if text.startswith("line "):
        number = text[5:].split(":", 1)[0]
        if number.isdigit():
            return int(number)
    return 0


async def apply_text(
    conn: NetlinkConnection,
    text: str,
    *,
    force: bool = False,
    sequential: bool = False,
    progress: Callable[[int], object] | None = None,
) -> ApplyResult:
    """Apply every command in ``text`` through ``conn``, in order.

    ``text`` is an iproute2 batch file or ``ip -json`` output (an array, an object, or
    JSON lines), told apart by its first character.  JSON routes are applied as
    ``route replace`` and JSON rules as ``rule add`` where an identical rule counts as
    ``unchanged``.  Without ``force`` the first failure stops it (see the module
    docstring for what that means with requests in flight); with ``force`` every
    command is tried.  ``sequential`` sends one request at a time and waits for its
    answer, so that apply stops exactly where ``ip -batch`` stops (far slower).
    ``progress`` is called with the number of requests answered.

    Failures are returned, not raised; a lost connection raises.

    Example::

        async with asyncroute.connect("blue") as conn:
            result = await apply_text(conn, "route add 198.51.100.0/24 dev v0\\n")
    """
    applier = _Applier(conn, force=force, sequential=sequential, progress=progress)
    started = time.perf_counter()
    try:
        if looks_like_json(text):
            await _apply_json(applier, text)
        else:
            await _apply_lines(applier, text)
        return await applier.finish(started)
    finally:
        applier.batch.abandon()


def iter_changes(text: str) -> Iterator[tuple[int, int | None, str, Change | ParseError]]:
    """``(line, item, source, change or ParseError)`` for every command in ``text``,
    without sending anything (``apply --dry-run``)."""
    if looks_like_json(text):
        try:
            for line, item, obj in iter_json(text):
                source = _json_source(obj)
                try:
                    yield line, item, source, change_from_json(obj)
                except ParseError as exc:
                    yield line, item, source, exc
        except ParseError as exc:
            yield _error_line(exc), None, "", exc
        return
    for line, command in iter_batch_lines(text):
        try:
            words = split_args(command)
            if not words:
                continue
            yield line, None, command.strip(), parse_command(words)[0]
        except ParseError as exc:
            yield line, None, command.strip(), exc
