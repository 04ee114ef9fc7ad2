"""replace_rules / delete_rules against the kernel, checked with ``ip -json rule``."""

from __future__ import annotations

import pytest

import asyncroute
from asyncroute import NotFoundError, Rule
from asyncroute.testing import Namespace
from tests import oracle

pytestmark = pytest.mark.anyio


def _ours(ns: Namespace, family: int) -> list[dict[str, object]]:
    return [r for r in oracle.rules(ns.name, family=family) if r.get("table") in ("100", "101")]


async def test_replace_rules_and_delete_rules(netns: Namespace) -> None:
    v4 = [Rule(priority=1000 + i, mark=i + 1, mask=0xFFFF, table=100) for i in range(300)]
    v6 = [Rule(priority=2000 + i, src=f"2001:db8:{i + 1:x}::/48", table=101) for i in range(50)]
    async with asyncroute.connect(netns.name) as conn:
        assert await conn.replace_rules(v4 + v6) == [True] * 350
        assert len(_ours(netns, 4)) == 300
        assert len(_ours(netns, 6)) == 50
        # Again, plus a duplicate inside the input: nothing new, every entry True.
        assert await conn.replace_rules([*v4, v4[0]]) == [True] * 301
        assert len(_ours(netns, 4)) == 300
        assert await conn.delete_rules(v4 + v6) == [True] * 350
        assert _ours(netns, 4) == [] and _ours(netns, 6) == []
        results = await conn.delete_rules(v4[:2])
        assert all(isinstance(r, NotFoundError) for r in results)


async def test_replace_rules_family_mismatch_is_a_value_error(netns: Namespace) -> None:
    async with asyncroute.connect(netns.name) as conn:
        with pytest.raises(ValueError, match="src"):
            await conn.replace_rules([Rule(src="2001:db8::/48", table=100)], family=2)
        assert _ours(netns, 4) == [] and _ours(netns, 6) == []
