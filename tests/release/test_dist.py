"""Release artefacts: what ``make dist`` builds, installed into a fresh virtual environment.

The module builds the sdist and the wheel once (``python -m build``, which builds the
wheel from the sdist, so the sdist is proved buildable too), checks what each contains
and the wheel's metadata, then installs the wheel with pip into a new venv that sees
nothing of this checkout (no ``--system-site-packages``, run from a temporary
directory, no ``PYTHONPATH``) and programs a route with it in a network namespace.

``build`` comes from the ``docs`` extra; build isolation and the wheel's dependencies
(pyroute2, anyio) come from the package index.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest

from asyncroute.testing import Namespace

pytestmark = pytest.mark.kernel

pytest.importorskip("build", reason="python -m build is needed (pip install -e '.[docs]')")

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NAME: str = PROJECT["name"]
VERSION: str = PROJECT["version"]

# Minutes, not hours: a build or an install that stalls on the index fails the test.
BUILD_TIMEOUT = 300


def _env() -> dict[str, str]:
    """This process's environment minus anything that would let the checkout leak in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSAFEPATH"}
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}",
            pytrace=False,
        )
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the sdist and the wheel, built as ``make dist`` builds them."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", out, ROOT], cwd=out)
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    path = dist / f"{NAME}-{VERSION}-py3-none-any.whl"
    assert path.is_file(), sorted(p.name for p in dist.iterdir())
    return path


@pytest.fixture(scope="module")
def sdist(dist: Path) -> Path:
    path = dist / f"{NAME}-{VERSION}.tar.gz"
    assert path.is_file(), sorted(p.name for p in dist.iterdir())
    return path


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh venv with the wheel (and its dependencies from the index) installed."""
    home = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", home], cwd=home)
    _run([home / "bin" / "python", "-m", "pip", "install", "-q", wheel], cwd=home)
    return home


def _metadata(text: str) -> Message:
    return HeaderParser().parsestr(text)


def test_make_dist_builds_one_sdist_and_one_wheel(dist: Path, wheel: Path, sdist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == sorted([sdist.name, wheel.name])


def test_wheel_holds_the_package_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = _metadata(zf.read(f"{NAME}-{VERSION}.dist-info/METADATA").decode())
        entry_points = zf.read(f"{NAME}-{VERSION}.dist-info/entry_points.txt").decode()
        license_text = zf.read(f"{NAME}-{VERSION}.dist-info/licenses/LICENSE").decode()

    assert "asyncroute/__init__.py" in names
    assert "asyncroute/py.typed" in names
    # shipped on purpose: users' netns fixture and the fake kernel; the command line
    assert "asyncroute/testing/__init__.py" in names
    assert "asyncroute/testing/fake_kernel.py" in names
    assert "asyncroute/cli/__init__.py" in names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"asyncroute", f"{NAME}-{VERSION}.dist-info"}, tops
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert not [n for n in names if re.search(r"(^|/)(tests?|conftest\.py)(/|$)", n)]

    assert metadata["Name"] == NAME
    assert metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier") or []
    assert "Development Status :: 3 - Alpha" in classifiers
    assert "Typing :: Typed" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639
    # Run-time dependencies (those without an `extra == ...` marker), by name.
    requires = [r for r in metadata.get_all("Requires-Dist") or [] if ";" not in r]
    assert sorted(re.split(r"[<>=!~ \[]", r)[0] for r in requires) == ["anyio", "pyroute2"]
    assert "asyncroute = asyncroute.cli:main" in entry_points
    assert license_text == (ROOT / "LICENSE").read_text()


def test_sdist_holds_the_source_and_no_local_state(sdist: Path) -> None:
    prefix = f"{NAME}-{VERSION}/"
    with tarfile.open(sdist) as tf:
        names = [m.name for m in tf.getmembers() if m.isfile()]
        pkg_info = tf.extractfile(prefix + "PKG-INFO")
        assert pkg_info is not None
        metadata = _metadata(pkg_info.read().decode())
        license_text = tf.extractfile(prefix + "LICENSE")
        assert license_text is not None
        assert license_text.read().decode() == (ROOT / "LICENSE").read_text()

    assert all(n.startswith(prefix) for n in names)
    rel = {n.removeprefix(prefix) for n in names}
    for required in (
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "pyproject.toml",
        "Makefile",
        "asyncroute/__init__.py",
        "asyncroute/py.typed",
        "tests/conftest.py",
        "docs/api.md",
    ):
        assert required in rel, required
    tops = {n.split("/")[0] for n in rel}
    assert not tops & {".venv", "dist", "build", "site", ".git", ".ci", ".hypothesis"}, tops
    assert not [n for n in rel if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "Apache-2.0"


def test_changelog_has_a_dated_entry_for_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(
        rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.MULTILINE
    ), f"CHANGELOG.md has no '## [{VERSION}] - YYYY-MM-DD' heading"


# Run by the venv's interpreter: everything it imports must come from the venv.
_SMOKE = """
import json, sys
from importlib.metadata import version

import anyio
import asyncroute
from asyncroute import NotFoundError, Route


async def main(netns: str) -> None:
    route = Route("198.51.100.0/24", nexthop="192.0.2.1", device="v0", table=100)
    async with asyncroute.connect(netns) as conn:
        await conn.upsert(route)
        found = await conn.lookup(route)
        await conn.delete(route)
        try:
            await conn.lookup(route)
        except NotFoundError:
            pass
        else:
            raise SystemExit("the route is still there after delete")
    print(json.dumps({
        "file": asyncroute.__file__,
        "version": version("asyncroute"),
        "prefix": str(found.prefix),
        "nexthop": str(found.nexthop),
        "device": found.device,
        "table": found.table,
    }))
    print("OK")


anyio.run(main, sys.argv[1])
"""


def test_installed_wheel_programs_a_route(venv: Path, netns: Namespace, tmp_path: Path) -> None:
    script = tmp_path / "smoke.py"
    script.write_text(_SMOKE)
    proc = _run([venv / "bin" / "python", script, netns.name], cwd=tmp_path)
    *report, ok = proc.stdout.splitlines()
    assert ok == "OK", proc.stdout
    result: dict[str, Any] = json.loads(report[-1])

    assert Path(result["file"]).is_relative_to(venv), result["file"]
    assert result["version"] == VERSION
    found = (result["prefix"], result["nexthop"], result["device"], result["table"])
    assert found == ("198.51.100.0/24", "192.0.2.1", "v0", 100)
    # The kernel agrees, read by iproute2: the route is gone.
    assert netns.ip_json("route", "show", "table", "100", "198.51.100.0/24") == []


def test_installed_console_script(venv: Path, tmp_path: Path) -> None:
    proc = _run([venv / "bin" / "asyncroute", "--help"], cwd=tmp_path)
    assert proc.stdout.startswith("usage: asyncroute"), proc.stdout
    for command in ("route", "rule", "nexthop", "apply", "monitor", "bench"):
        assert command in proc.stdout, command
