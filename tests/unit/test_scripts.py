"""``scripts/_venv``: what the set-up commands install, run by bash with a stand-in pip."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup(tmp_path: Path) -> Path:
    """A copy of the scripts with a ``.venv`` whose python only logs its arguments."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "_venv", tmp_path / "scripts" / "_venv")
    shutil.copy(ROOT / "scripts" / "demo", tmp_path / "scripts" / "demo")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n')
    python.chmod(0o755)
    return tmp_path


def _demo(root: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "FASTPATH_EXTRAS"}
    subprocess.run(["bash", str(root / "scripts" / "demo")], check=True, env=env, cwd=root)
    calls = root / "calls"
    lines = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return [line for line in lines if "pip install" in line]


def test_demo_installs_only_what_the_demo_needs(tmp_path: Path) -> None:
    root = _setup(tmp_path)
    assert _demo(root) == [
        "-m pip install --quiet --upgrade pip",
        "-m pip install --quiet -e .[demo]",
    ]
    assert _demo(root) == []  # installed once


def test_demo_reuses_a_full_install(tmp_path: Path) -> None:
    root = _setup(tmp_path)
    digest = subprocess.run(
        ["sha256sum", "pyproject.toml"], cwd=root, capture_output=True, text=True, check=True
    ).stdout[:16]
    (root / ".venv" / f".installed-{digest}-dev_requests_httpx_demo").touch()
    assert _demo(root) == []
    (root / ".venv" / f".installed-{digest}-dev_requests_httpx_demo").unlink()
    (root / ".venv" / ".installed-0000000000000000-demo").touch()  # another pyproject
    assert _demo(root) == [
        "-m pip install --quiet --upgrade pip",
        "-m pip install --quiet -e .[demo]",
    ]


def test_every_test_file_the_scripts_name_exists() -> None:
    """scripts/test and scripts/test-matrix name test files; a moved or merged file must
    fail here, in the first minute, not at the end of CI."""
    import re

    named = set()
    for script in ("test", "test-matrix"):
        named |= set(re.findall(r"tests/[\w/*]+\.py", (ROOT / "scripts" / script).read_text()))
    assert named, "no test file named: the pattern no longer matches the scripts"
    missing = sorted(p for p in named if not list(ROOT.glob(p)))
    assert not missing, f"named in scripts/ but not in tests/: {missing}"
