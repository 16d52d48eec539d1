"""Build the project's wheel and install it into a fresh venv, offline.

The test run lives in a private network namespace with no route to a package index, so
the wheel is built without build isolation (hatchling comes from the dev extra) and
installed with ``--no-index --no-deps``; the dependencies (requests, httpx, ...) are made
visible through a path entry to the test environment's site-packages, whose ``.pth``
files (our editable install among them) are *not* processed. What runs is the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("http_fastpath-*.whl")
    return wheel


def fresh_venv(where: Path, wheel: Path) -> Path:
    """A new venv with ``wheel`` installed; returns its python."""
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    Path(site, "zz_test_dependencies.pth").write_text(deps + "\n")
    if os.environ.get("COVERAGE_PROCESS_CONFIG"):
        # Under pytest --cov (pyproject: patch = ["subprocess"]), measure the wheel's code
        # too: the test environment's coverage .pth is not processed here, so start coverage
        # the same way, after the line above made it importable ([tool.coverage.paths] maps
        # the wheel's files back to the source tree).
        Path(site, "zzz_coverage.pth").write_text(
            'import os; os.environ.get("COVERAGE_PROCESS_CONFIG") and '
            '__import__("coverage").process_startup()\n'
        )
    return python
