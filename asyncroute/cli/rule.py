"""``asyncroute rule``: replace, delete and list policy-routing rules (Cilium's ``Rule``).

The rule is written the way ``ip rule`` takes it::

    asyncroute rule replace priority 100 fwmark 0xf00/0xf00 table 123

``replace`` is Cilium's ``ReplaceRule``: it adds the rule unless one with the same
priority, selectors, mark, mask and table exists (:meth:`asyncroute.Connection.replace_rule`)
and never replaces or removes a rule; it prints ``added:`` or ``exists:``.  ``delete``
removes the first match and prints the rule the kernel removed.  The family is that of
``from``/``to``, else IPv4 (``-6`` for IPv6).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from socket import AF_INET, AF_INET6
from typing import Any

from .common import (
    EXIT_OK,
    add_word_commands,
    print_json,
    report_error,
    rule_json,
    rule_message_json,
    rule_message_text,
    rule_text,
    run_async,
)

__all__ = ["RULE_SYNTAX", "add_arguments", "parse_rule_words", "run"]

RULE_SYNTAX = """\
RULE := [priority N] [from PREFIX] [to PREFIX] [fwmark MARK[/MASK]] [table TABLE]
        (also: pref/preference N, mark M, mask M, lookup TABLE)
"""

_COMMANDS: dict[str, tuple[str, str, str]] = {
    "replace": (
        "add a rule unless one matches (Cilium's ReplaceRule)",
        "Add the rule (NLM_F_CREATE|NLM_F_EXCL) unless a rule with the same priority,\n"
        "selectors, mark, mask and table exists already.  Despite the name (Cilium's),\n"
        'no rule is ever replaced or removed: prints "added:" or "exists:".',
        "  asyncroute rule replace priority 100 fwmark 0xf00/0xf00 table 123\n"
        "  asyncroute rule replace priority 110 from 198.51.100.0/24 table 100 --json\n"
        "  asyncroute rule replace -6 priority 100 to 2001:db8:1::/48 table 100",
    ),
    "delete": (
        "delete a rule (Cilium's DeleteRule)",
        "Delete the first rule matching priority, selectors, mark, mask and table,\n"
        "and print the rule the kernel removed.  Exits 1 with the kernel's message if\n"
        "none matches.",
        "  asyncroute rule delete priority 100 fwmark 0xf00/0xf00 table 123",
    ),
    "list": (
        "list rules (both families unless -4/-6)",
        "List the rules, optionally only those matching the given fields (each field\n"
        "given must be equal; Cilium's ListRules).  --json prints ip -json's shape,\n"
        "which `asyncroute apply` reads back.",
        "  asyncroute rule list\n  asyncroute rule list -4 table 123 --json",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``rule`` subcommands and their options."""
    commands = {
        name: (*texts, "FILTER" if name == "list" else "RULE") for name, texts in _COMMANDS.items()
    }
    add_word_commands(parser, "rule_command", commands, lambda name: RULE_SYNTAX, "rule")


def parse_rule_words(words: Sequence[str]) -> dict[str, Any]:
    """Keyword arguments for :class:`~asyncroute.Rule` from ``ip rule``-style words.

    Raises ValueError for a bad word.
    """
    from .batchfile import ParseError, strtoul, table_number

    keys = {
        "priority": "priority",
        "pref": "priority",
        "preference": "priority",
        "order": "priority",
        "from": "src",
        "to": "dst",
        "mark": "mark",
        "mask": "mask",
        "table": "table",
        "lookup": "table",
    }
    fields: dict[str, Any] = {}
    index = 0
    try:
        while index < len(words):
            word = words[index]
            if index + 1 >= len(words):
                raise ValueError(f'"{word}" needs a value')
            value = words[index + 1]
            if word == "fwmark":
                mark, slash, mask = value.partition("/")
                fields["mark"] = strtoul(mark, "fwmark")
                if slash:
                    fields["mask"] = strtoul(mask, "fwmask")
            elif word not in keys:
                raise ValueError(
                    f'unknown word "{word}" (priority, from, to, fwmark, mark, mask, table)'
                )
            elif keys[word] == "table":
                fields["table"] = table_number(value)
            elif keys[word] in ("src", "dst"):
                fields[keys[word]] = None if value in ("all", "default", "any") else value
            else:
                fields[keys[word]] = strtoul(value, word)
            index += 2
    except ParseError as exc:
        raise ValueError(str(exc)) from None
    return fields


def _family(rule: Any, family: int | None) -> int:
    for net in (rule.src, rule.dst):
        if net is not None:
            return AF_INET6 if net.version == 6 else AF_INET
    return AF_INET6 if family == 6 else AF_INET


def run(args: argparse.Namespace) -> int:
    """Run ``asyncroute rule COMMAND``; the exit status."""
    command = args.rule_command
    what = f"rule {command}"
    try:
        from ..rule import Rule

        fields = parse_rule_words(args.spec)
        rule = Rule(**fields)
    except ValueError as exc:
        return report_error(args, what, exc)

    async def main() -> int:
        import asyncroute

        try:
            async with asyncroute.connect(args.netns) as conn:
                if command == "list":
                    return await _list(conn, args, rule if fields else None)
                six = _family(rule, args.family) == AF_INET6
                if command == "replace":
                    added = await (conn.replace_rule_ipv6 if six else conn.replace_rule)(rule)
                    done, shown = ("added" if added else "exists"), rule
                else:
                    shown = await (conn.delete_rule_ipv6 if six else conn.delete_rule)(rule)
                    done = "deleted"
                family = AF_INET6 if six else AF_INET
                if args.json:
                    print_json({done: rule_json(shown, family)})
                else:
                    print(f"{done}: {'-6 ' if six else ''}{rule_text(shown)}")
        except BrokenPipeError:
            raise  # the reader went away: cli.main() handles it
        except (OSError, asyncroute.AsyncrouteError, ValueError) as exc:
            return report_error(args, what, exc)
        return EXIT_OK

    return run_async(main)


async def _list(conn: Any, args: argparse.Namespace, rule: Any) -> int:
    # Printed from the kernel's messages, every attribute in ip's words (not through
    # Rule, which holds Cilium's fields only): `apply` reads the JSON back as the same
    # rules.
    from ..listing import _rule_matches
    from ..rule import _listing

    families = {4: (AF_INET,), 6: (AF_INET6,)}.get(args.family, (AF_INET, AF_INET6))
    found = [
        (family, m)
        for family in families
        for m in await _listing(conn, family)
        if m.family == family and (rule is None or _rule_matches(rule, m))
    ]
    if args.json:
        print_json([rule_message_json(m, family=True, details=True) for _, m in found])
    else:
        for family, m in found:
            print(
                ("-6 " if family == AF_INET6 and len(families) > 1 else "") + rule_message_text(m)
            )
    return EXIT_OK
