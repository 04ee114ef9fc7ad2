"""``ip route``'s words for a route's attributes beyond Cilium's fields.

One place that knows how iproute2 writes and reads them, for the command line's three
forms of a route: the tokens of ``ip route add`` (:func:`parse_attribute`), the text of
``ip route show`` (:func:`head_words`, :func:`tail_words`) and the objects of ``ip -json
route show`` (:func:`head_json`, :func:`tail_json`, :func:`attributes_from_json`).
The values are :class:`~asyncroute.route.RouteAttributes`' (the kernel's units); only
the text and JSON convert ``rtt`` (1/8 ms) and ``rttvar`` (1/4 ms) to milliseconds, as
``ip`` does.

Where ``ip -json`` cannot be read back, the JSON differs from it, and says so: an
encapsulation is one nested object (``ip`` flattens it into the route's object, whose
``dst`` and ``tos`` then appear twice), lock bits are a ``"locked"`` list (``ip -json``
leaves them out), a round-trip-exact ``rtt`` that is not a whole number of milliseconds
is a fraction, and attributes the library does not model are ``"other_attributes"``
(hex).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import iproute2
from .constants import RTAX
from .encap import ENCAP_TYPE, TUNNEL_FLAGS, Encap
from .route_attributes import METRIC_NAMES, METRICS, RouteAttributes, route_attributes

__all__ = [
    "PREF_NAMES",
    "AttributeParser",
    "attributes_from_json",
    "encap_from_json",
    "encap_json",
    "encap_words",
    "head_json",
    "head_words",
    "realms_json",
    "realms_text",
    "tail_json",
    "tail_words",
]

#: RTA_PREF values as ``ip`` names them (``ICMPV6_ROUTER_PREF_*``).
PREF_NAMES = {0: "medium", 1: "high", 3: "low"}
_PREF_NUMBERS = {name: number for number, name in PREF_NAMES.items()}
#: Metrics ``ip`` shows in milliseconds, with the kernel's unit per millisecond.
_TIME_METRICS = {"rtt": 8, "rttvar": 4, "rto_min": 1}
_FEATURE_ECN = 0x1
#: The JSON key ``ip`` gives each metric (``congctl`` is "congestion").
_JSON_NAMES = {name: name for name in METRICS} | {"congctl": "congestion", "mtu": "mtu"}
_METRIC_ORDER = sorted([*METRICS.items(), ("mtu", int(RTAX.MTU))], key=lambda item: item[1])


ParseError = iproute2.ParseError


# --------------------------------------------------------------------------- reading


@dataclass
class AttributeParser:
    """Collects the attribute words of one ``ip route`` command: feed each word to
    :meth:`parse`, then :meth:`attributes` builds the validated value."""

    family: int
    tos: int = 0
    source: str | None = None
    metrics: dict[str, int | str] = field(default_factory=dict)
    locked: set[str] = field(default_factory=set)
    pref: int = 0
    expires: int = 0
    realms: int = 0
    encap: Encap | None = None
    mtu: int = 0

    def parse(self, args: Sequence[str], index: int) -> int | None:
        """Consume the attribute at ``args[index]`` and return the index of its last
        word, or None when the word is not one of these attributes."""
        word = args[index]
        if word in ("tos", "dsfield"):
            index += 1
            self.tos = _dsfield(_value(args, index, word))
        elif word == "from":
            index += 1
            self.source = _value(args, index, word)
        elif word in METRICS or word == "mtu":
            return self._metric(args, index, word)
        elif word in ("realm", "realms"):
            index += 1
            self.realms = parse_realms(_value(args, index, word))
        elif word == "pref":
            index += 1
            text = _value(args, index, word)
            if text not in _PREF_NUMBERS:
                raise ParseError(f'"pref": "{text}" is not medium, high or low')
            self.pref = _PREF_NUMBERS[text]
        elif word == "expires":
            index += 1  # "expires 300" (ip route add), or "300sec" as ip route show prints it
            self.expires = _number(_value(args, index, word).removesuffix("sec"), word)
        elif word == "encap":
            self.encap, index = parse_encap(args, index + 1)
            return index
        else:
            return None
        return index

    def _metric(self, args: Sequence[str], index: int, word: str) -> int:
        index += 1
        text = _value(args, index, word)
        if text == "lock":
            self.locked.add(word)
            index += 1
            text = _value(args, index, word)
        if word == "rto_min":
            self.locked.add(word)  # ip always locks rto_min (iproute_modify)
        value: int | str
        if word == "congctl":
            value = text
        elif word == "features":
            if text != "ecn":
                raise ParseError(f'"features": "{text}" is not a feature (ecn)')
            value = _FEATURE_ECN
        elif word in _TIME_METRICS:
            value = _time(text, word, _TIME_METRICS[word])
        else:
            value = _number(text, word)
        if word == "mtu":
            assert isinstance(value, int)
            self.mtu = value
        else:
            self.metrics[word] = value
        return index

    def attributes(self, via: bool = False, onlink: bool = False) -> RouteAttributes | None:
        """The attributes collected (None for none), validated like a Route's."""
        if not (
            self.tos or self.source or self.metrics or self.locked or self.pref
            or self.expires or self.realms or self.encap or via or onlink
        ):  # fmt: skip
            return None
        try:
            return route_attributes(
                self.family, tos=self.tos, source=self.source, metrics=self.metrics,
                locked=self.locked, onlink=onlink, pref=self.pref, expires=self.expires,
                realms=self.realms, encap=self.encap, via=via,
            )  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ParseError(str(exc)) from None


def _value(args: Sequence[str], index: int, word: str) -> str:
    if index >= len(args):
        raise ParseError(f'"{word}" needs an argument')
    return args[index]


def _number(text: str, what: str, maximum: int = 0xFFFFFFFF) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ParseError(f'"{what}": "{text}" is not a number') from None
    if not 0 <= value <= maximum:
        raise ParseError(f'"{what}": {value} is not in 0..{maximum}')
    return value


def _dsfield(text: str) -> int:
    # rtnl_dsfield_a2n: a name from rt_dsfield, else hexadecimal with or without 0x.
    try:
        value = int(text, 16)
    except ValueError:
        raise ParseError(f'"tos": "{text}" is not a hexadecimal byte') from None
    if not 0 <= value <= 255:
        raise ParseError(f'"tos": "{text}" is not a byte')
    return value


def _time(text: str, what: str, per_ms: int) -> int:
    """get_time_rtt: a bare number is the kernel's raw value; with a unit (s, ms, us)
    it is converted to milliseconds and then to the kernel's unit."""
    units = {"s": 1000.0, "sec": 1000.0, "secs": 1000.0, "ms": 1.0, "msec": 1.0,
             "msecs": 1.0, "us": 0.001, "usec": 0.001, "usecs": 0.001}  # fmt: skip
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :]
    try:
        value = float(number)
    except ValueError:
        raise ParseError(f'"{what}": "{text}" is not a time') from None
    if not unit:
        return _number(number, what)
    if unit not in units:
        raise ParseError(f'"{what}": unknown time unit "{unit}"')
    return int(value * units[unit]) * per_ms


def parse_realms(text: str) -> int:
    """``realms [FROM/]TO``: TO in the low 16 bits, FROM in the high 16 bits."""
    source, slash, destination = text.rpartition("/")
    value = _number(destination, "realms", 0xFFFF)
    if slash:
        value |= _number(source, "realms", 0xFFFF) << 16
    return value


def parse_encap(args: Sequence[str], index: int) -> tuple[Encap, int]:
    """``encap ip|ip6 [id N] [dst A] [src A] [ttl|hoplimit N] [tos|tc N] [key] [csum]
    [seq]`` or ``encap mpls L[/L…] [ttl N]`` from ``args[index]`` (the type word);
    returns the Encap and the index of its last word.  Like ``ip``, the encapsulation
    ends at the first word it does not know."""
    kind = _value(args, index, "encap")
    if kind in ("ip", "ip6"):
        v4 = kind == "ip"
        names = {"id": "id", "dst": "dst", "src": "src",
                 "ttl" if v4 else "hoplimit": "ttl", "tos" if v4 else "tc": "tos"}  # fmt: skip
        fields: dict[str, str] = {}
        flags: list[str] = []
        while index + 1 < len(args):
            word = args[index + 1]
            if word in TUNNEL_FLAGS:
                flags.append(word)
                index += 1
            elif word in names:
                fields[names[word]] = _value(args, index + 2, word)
                index += 2
            else:
                break
        return _ip_encap(v4, fields, flags), index
    if kind == "mpls":
        index += 1
        stack = _value(args, index, "mpls").split("/")
        labels = [_number(label, "encap mpls", 0xFFFFF) for label in stack]
        ttl = None
        if index + 1 < len(args) and args[index + 1] == "ttl":
            ttl = _number(_value(args, index + 2, "ttl"), "encap ttl", 255)
            index += 2
        return Encap.mpls(labels, ttl=ttl), index
    raise ParseError(f'"encap {kind}": asyncroute writes ip, ip6 and mpls encapsulations')


def _ip_encap(v4: bool, fields: Mapping[str, Any], flags: Sequence[str]) -> Encap:
    try:
        tunnel_id = _number(str(fields.get("id", 0)), "encap id", 2**64 - 1)
        ttl = _number(str(fields.get("ttl", 0)), "encap ttl", 255)
        tos = _number(str(fields.get("tos", 0)), "encap tos", 255)
        if str(fields.get("src")) in ("0.0.0.0", "::"):
            fields = {k: v for k, v in fields.items() if k != "src"}  # ip prints unset as 0
        dst = fields.get("dst")
        src = fields.get("src")
        if v4:
            return Encap.ip(id=tunnel_id, dst=dst, src=src, ttl=ttl, tos=tos, flags=flags)
        return Encap.ip6(id=tunnel_id, dst=dst, src=src, hoplimit=ttl, tc=tos, flags=flags)
    except (TypeError, ValueError) as exc:
        raise ParseError(str(exc)) from None


# --------------------------------------------------------------------------- writing


def _metric_items(attrs: RouteAttributes | None, mtu: int) -> list[tuple[str, int | str]]:
    """(name, value) of every metric set, in the kernel's (RTAX) order, as ``ip`` lists
    them; MTU included."""
    values: dict[str, int | str] = {"mtu": mtu} if mtu else {}
    if attrs is not None:
        values.update((METRIC_NAMES[number], value) for number, value in attrs.metrics)
        if attrs.congctl is not None:
            values["congctl"] = attrs.congctl
    return [(name, values[name]) for name, _ in _METRIC_ORDER if name in values]


def _locked(attrs: RouteAttributes | None, name: str) -> bool:
    number = int(RTAX.MTU) if name == "mtu" else METRICS[name]
    return attrs is not None and bool(attrs.lock >> number & 1)


def _ms(value: int, per_ms: int) -> int | float:
    """Milliseconds, exact: a fraction when the kernel's value is not whole ms."""
    return value // per_ms if value % per_ms == 0 else value / per_ms


def realms_text(realms: int) -> list[str]:
    """``realm TO`` or ``realms FROM/TO``, as ``ip route show`` prints RTA_FLOW."""
    source, destination = realms >> 16, realms & 0xFFFF
    return ["realms", f"{source}/{destination}"] if source else ["realm", str(destination)]


def realms_json(realms: int) -> dict[str, str]:
    """``{"from": …, "to": …}``, as ``ip -json`` prints RTA_FLOW ("from" only when set)."""
    source = realms >> 16
    return ({"from": str(source)} if source else {}) | {"to": str(realms & 0xFFFF)}


def encap_words(encap: Encap) -> list[str]:
    """``encap TYPE …`` as ``ip route show`` prints it (and ``ip route add`` reads it)."""
    fields = encap.fields()
    if fields is None:
        return ["encap", encap.type_name, "data", encap.data.hex()]
    if encap.type == ENCAP_TYPE.MPLS:
        labels = fields["labels"]
        assert isinstance(labels, list)
        words = ["encap", "mpls", "/".join(str(label) for label in labels)]
        return words + (["ttl", str(fields["ttl"])] if "ttl" in fields else [])
    words = ["encap", encap.type_name]
    for key in ("id", "src", "dst", "ttl", "tos", "hoplimit", "tc"):
        if key in fields:
            words += [key, str(fields[key])]
    flags = fields.get("flags", [])
    assert isinstance(flags, list)
    return words + [str(flag) for flag in flags]


def encap_json(encap: Encap) -> dict[str, Any]:
    """The encapsulation as one object: ``{"type": "ip", "id": 5, "dst": …}``, or
    ``{"type": N, "data": HEX}`` when its attributes are not ones ``ip`` names."""
    fields = encap.fields()
    if fields is None:
        return {"type": encap.type_name, "data": encap.data.hex()}
    return {"type": encap.type_name} | {
        key: str(value) if key in ("src", "dst") else value for key, value in fields.items()
    }


def head_words(attrs: RouteAttributes | None) -> list[str]:
    """The words ``ip route show`` prints right after the prefix: ``from``, ``tos``,
    ``encap``."""
    if attrs is None:
        return []
    words = []
    if attrs.source is not None:
        words += ["from", str(attrs.source)]
    if attrs.tos:
        words += ["tos", f"0x{attrs.tos:02x}"]
    if attrs.encap is not None:
        words += encap_words(attrs.encap)
    return words


def tail_words(attrs: RouteAttributes | None, mtu: int, *, for_add: bool = False) -> list[str]:
    """The words ``ip route show`` prints after the metric: flags, realms, expires, the
    metrics (``mtu lock 1400``, ``rtt 100ms``, ``features ecn``, ``congctl cubic``),
    the router preference.

    ``for_add``: the words ``ip route add`` reads instead (``expires 300``; ``rto_min``
    without ``lock``, which ``ip`` always sets); ValueError for what ``ip route add``
    cannot write: an unlocked ``rto_min``, features other than ecn, attributes the
    library does not model."""
    words: list[str] = []
    if attrs is not None:
        if attrs.onlink:
            words.append("onlink")
        if attrs.realms:
            words += realms_text(attrs.realms)
        if attrs.expires:
            words += ["expires", str(attrs.expires) if for_add else f"{attrs.expires}sec"]
        if for_add and attrs.other:
            numbers = ", ".join(str(number) for number, _ in attrs.other)
            raise ValueError(f"other_attributes: ip cannot write attribute(s) {numbers}")
    for name, value in _metric_items(attrs, mtu):
        words.append(name)
        locked = _locked(attrs, name)
        if for_add and name == "rto_min" and not locked:
            raise ValueError("metrics: ip route add always locks rto_min; this one is not locked")
        if locked and not (for_add and name == "rto_min"):
            words.append("lock")
        if name in _TIME_METRICS:
            assert isinstance(value, int)
            ms = _ms(value, _TIME_METRICS[name])
            words.append(f"{ms}ms" if isinstance(ms, int) else str(value))
        elif name == "features":
            assert isinstance(value, int)
            if for_add and value != _FEATURE_ECN:
                raise ValueError(f"metrics: ip route add writes only features ecn, not {value:#x}")
            words.append("ecn" if value == _FEATURE_ECN else hex(value))
        else:
            words.append(str(value))
    if attrs is not None and attrs.pref:
        words += ["pref", PREF_NAMES.get(attrs.pref, str(attrs.pref))]
    return words


def head_json(attrs: RouteAttributes | None) -> dict[str, Any]:
    """``"from"``, ``"tos"`` and ``"encap"`` (one object), in ``ip -json``'s place."""
    if attrs is None:
        return {}
    data: dict[str, Any] = {}
    if attrs.source is not None:
        data["from"] = str(attrs.source)
    if attrs.tos:
        data["tos"] = f"0x{attrs.tos:02x}"
    if attrs.encap is not None:
        data["encap"] = encap_json(attrs.encap)
    return data


def tail_json(attrs: RouteAttributes | None, mtu: int) -> dict[str, Any]:
    """``"flags"``, ``"metrics"`` (``ip``'s one-object list), ``"locked"``, ``"flow"``,
    ``"expires"``, ``"pref"`` and ``"other_attributes"``."""
    data: dict[str, Any] = {}
    if attrs is not None and attrs.onlink:
        data["flags"] = ["onlink"]
    metrics: dict[str, Any] = {}
    for name, value in _metric_items(attrs, mtu):
        if name == "features" and value == _FEATURE_ECN:
            metrics["ecn"] = None
        elif name == "features":
            metrics["features"] = hex(int(value))
        elif name in _TIME_METRICS:
            metrics[name] = _ms(int(value), _TIME_METRICS[name])
        else:
            metrics[_JSON_NAMES[name]] = value
    if metrics:
        data["metrics"] = [metrics]
    if attrs is None:
        return data
    locked = [name for name, _ in _METRIC_ORDER if _locked(attrs, name)]
    if locked:
        data["locked"] = locked
    if attrs.realms:
        data["flow"] = realms_json(attrs.realms)
    if attrs.expires:
        data["expires"] = attrs.expires
    if attrs.pref:
        data["pref"] = PREF_NAMES.get(attrs.pref, attrs.pref)
    if attrs.other:
        data["other_attributes"] = [[number, value.hex()] for number, value in attrs.other]
    return data


# --------------------------------------------------------------------------- JSON in

#: The keys :func:`attributes_from_json` reads from a route object.
JSON_KEYS = frozenset(
    ("from", "tos", "encap", "metrics", "locked", "flow", "expires", "pref", "other_attributes")
)


def _json_int(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ParseError(f'"{key}": expected a number, got {value!r}')
    return value if isinstance(value, int) else _number(value, key)


def realms_from_json(value: object, key: str = "flow") -> int:
    """RTA_FLOW from ``{"from": …, "to": …}``."""
    if not isinstance(value, dict) or value.keys() - {"from", "to"}:
        raise ParseError(f'"{key}": expected {{"from": …, "to": …}}, got {value!r}')
    realms = _json_int(value.get("to", 0), f"{key} to")
    source = _json_int(value.get("from", 0), f"{key} from")
    if realms > 0xFFFF or source > 0xFFFF:
        raise ParseError(f'"{key}": realms are 0..65535, got {value!r}')
    return source << 16 | realms


def encap_from_json(value: object) -> Encap:
    """An :class:`Encap` from :func:`encap_json`'s object."""
    if isinstance(value, str):
        raise ParseError(
            '"encap": ip -json writes an encapsulation into the route\'s own object, where its '
            '"dst" and "tos" repeat the route\'s keys; use asyncroute route list --json, '
            "which writes it as one object"
        )
    if not isinstance(value, dict) or "type" not in value:
        raise ParseError(f'"encap": expected an object with a "type", got {value!r}')
    kind = value["type"]
    if "data" in value:
        number = (
            ENCAP_TYPE[kind.upper()]
            if isinstance(kind, str) and kind.upper() in ENCAP_TYPE.__members__
            else kind
        )
        try:
            return Encap(_json_int(number, "encap type"), bytes.fromhex(str(value["data"])))
        except ValueError as exc:
            raise ParseError(f'"encap": {exc}') from None
    if kind in ("ip", "ip6"):
        v4 = kind == "ip"
        known = {
            "type",
            "id",
            "dst",
            "src",
            "flags",
            "ttl" if v4 else "hoplimit",
            "tos" if v4 else "tc",
        }
        if value.keys() - known:
            raise ParseError(f'"encap": unknown field(s) {sorted(value.keys() - known)}')
        fields = {"id": value.get("id", 0), "dst": value.get("dst"), "src": value.get("src"),
                  "ttl": value.get("ttl" if v4 else "hoplimit", 0),
                  "tos": value.get("tos" if v4 else "tc", 0)}  # fmt: skip
        flags = value.get("flags", [])
        if not isinstance(flags, list):
            raise ParseError(f'"encap": "flags": expected a list, got {flags!r}')
        return _ip_encap(v4, {k: v for k, v in fields.items() if v is not None}, flags)
    if kind == "mpls":
        labels = value.get("labels")
        if not isinstance(labels, list):
            raise ParseError(f'"encap": "labels": expected a list, got {labels!r}')
        try:
            return Encap.mpls(labels, ttl=value.get("ttl"))
        except (TypeError, ValueError) as exc:
            raise ParseError(f'"encap": {exc}') from None
    raise ParseError(f'"encap": type {kind!r} needs its "data"')


def attributes_from_json(
    obj: Mapping[str, Any], family: int, *, via: bool = False, onlink: bool = False
) -> tuple[RouteAttributes | None, int]:
    """The attributes of one route object (:data:`JSON_KEYS`), and its MTU."""
    parser = AttributeParser(family)
    if "from" in obj:
        parser.source = str(obj["from"])
    if "tos" in obj:
        parser.tos = (
            _dsfield(str(obj["tos"]))
            if isinstance(obj["tos"], str)
            else _json_int(obj["tos"], "tos")
        )
    if "encap" in obj:
        parser.encap = encap_from_json(obj["encap"])
    metrics = obj.get("metrics", [])
    if isinstance(metrics, dict):
        metrics = [metrics]
    if not isinstance(metrics, list):
        raise ParseError(f'"metrics": expected a list, got {metrics!r}')
    names = {json_name: name for name, json_name in _JSON_NAMES.items()}
    for item in metrics:
        if not isinstance(item, dict):
            raise ParseError(f'"metrics": expected an object, got {item!r}')
        for key, value in item.items():
            if key == "ecn":
                parser.metrics["features"] = int(parser.metrics.get("features", 0)) | _FEATURE_ECN
            elif key == "features":
                parser.metrics["features"] = int(parser.metrics.get("features", 0)) | _number(
                    str(value), key
                )
            elif key not in names:
                raise ParseError(f'"metrics": unknown metric "{key}"')
            elif names[key] == "congctl":
                if not isinstance(value, str):
                    raise ParseError(f'"metrics": "congestion": expected a name, got {value!r}')
                parser.metrics["congctl"] = value
            elif names[key] in _TIME_METRICS:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ParseError(f'"metrics": "{key}": expected milliseconds, got {value!r}')
                parser.metrics[names[key]] = round(value * _TIME_METRICS[names[key]])
            elif names[key] == "mtu":
                parser.mtu = _json_int(value, "mtu")
            else:
                parser.metrics[names[key]] = _json_int(value, key)
    locked = obj.get("locked", [])
    if not isinstance(locked, list):
        raise ParseError(f'"locked": expected a list of metric names, got {locked!r}')
    parser.locked = {str(name) for name in locked}
    if "flow" in obj:
        parser.realms = realms_from_json(obj["flow"])
    if "expires" in obj:
        parser.expires = _json_int(obj["expires"], "expires")
    if "pref" in obj:
        if obj["pref"] not in _PREF_NUMBERS:
            raise ParseError(f'"pref": {obj["pref"]!r} is not medium, high or low')
        parser.pref = _PREF_NUMBERS[obj["pref"]]
    attrs = parser.attributes(via=via, onlink=onlink)
    other = obj.get("other_attributes")
    if other is not None:
        try:
            pairs = tuple((int(number), bytes.fromhex(data)) for number, data in other)
            attrs = route_attributes(
                family, tos=parser.tos, source=parser.source, metrics=parser.metrics,
                locked=parser.locked, onlink=onlink, pref=parser.pref, expires=parser.expires,
                realms=parser.realms, encap=parser.encap, via=via, other_attributes=pairs,
            )  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ParseError(f'"other_attributes": {exc}') from None
    return attrs, parser.mtu
