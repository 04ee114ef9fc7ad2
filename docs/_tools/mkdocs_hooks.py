"""MkDocs hooks for the asyncroute site (named in mkdocs.yml under ``hooks:``).

The benchmark chart lives in ``benchmarks/results/`` (``make bench`` writes it there),
outside ``docs/``.  Rather than a copy that goes stale, or a symlink, the chart files are
added to the site as they are at build time, under ``assets/benchmarks/``, and the pages
keep linking them by their repository path (``../benchmarks/results/latest.png``), which
also works when the Markdown is read on a forge.  The link is rewritten to the site path
before MkDocs validates it, so strict mode still checks that the file exists.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SITE_DIR = "assets/benchmarks"
IMAGE_SUFFIXES = {".png", ".svg"}

# ](../benchmarks/results/latest.png) with any number of ../ (pages in subdirectories).
_RESULTS_LINK = re.compile(r"\]\(((?:\.\./)+)benchmarks/results/([^)\s]+)\)")

# Outside docs/ but shown on the site: rebuild when they change under `make docs-serve`.
WATCHED = ("examples", "CHANGELOG.md", "benchmarks/results")


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Add the benchmark charts in benchmarks/results/ to the site."""
    if RESULTS.is_dir():
        for path in sorted(RESULTS.iterdir()):
            if path.suffix in IMAGE_SUFFIXES:
                files.append(
                    File.generated(config, f"{SITE_DIR}/{path.name}", abs_src_path=str(path))
                )
    return files


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Point links into benchmarks/results/ at the files :func:`on_files` added."""
    page_dir = posixpath.dirname(page.file.src_uri)

    def site_link(match: re.Match[str]) -> str:
        target = f"{SITE_DIR}/{match.group(2)}"
        return f"]({posixpath.relpath(target, page_dir or '.')})"

    return _RESULTS_LINK.sub(site_link, markdown)


def on_serve(server: Any, *, config: MkDocsConfig, builder: Any) -> Any:
    """Watch the files outside docs/ that pages include (examples, the changelog)."""
    for name in WATCHED:
        path = ROOT / name
        if path.exists():
            server.watch(str(path))
    return server
