"""Interpreter start-up cost of having http_fastpath installed, HTTP_FASTPATH unset and set.

Builds the wheel of this tree (and, with ``--ref``, of a git revision: before/after in
the same run), makes one fresh venv per wheel plus two *without* the package, and times
``python -c pass`` and ``python -c 'import requests'`` (each with and without
``HTTP_FASTPATH=tfo``) in all of them, interleaved round by round in a shuffled order so
that load on the machine hits every column alike. Each cell is the median of the
per-round differences from the first no-package venv, with a 95 % confidence interval
(an interval holding 0: no difference this run can see); the second no-package venv
shows how far two identical venvs differ (the floor of "within noise"). Also lists what
each venv imports at start-up beyond the no-package one (``sys.modules``). Not a test:
timings are printed, never asserted.

    python benchmarks/bench_startup.py [--runs 60] [--ref HEAD~3] [--json out.json]

The venvs have no pip (nothing but the wheel); the HTTP clients come from this
interpreter's site-packages through a path entry appended to ``sys.path``, so the
wheel's own modules come first. Targets (issue #18 item 3): unset within noise of no
package; ``HTTP_FASTPATH=tfo`` at most 3 ms for ``python -c pass``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "no package"
#: a second venv without the package: its difference from the first is this run's floor
#: (two identical venvs do not start in exactly the same time: paths, directory layout)
CONTROL = "no package, 2nd venv"

#: (label, extra environment, code)
CASES: list[tuple[str, dict[str, str], str]] = [
    ("python -c pass", {}, "pass"),
    ("python -c pass, HTTP_FASTPATH=tfo", {"HTTP_FASTPATH": "tfo"}, "pass"),
    ("python -c pass, HTTP_FASTPATH_LOG=info", {"HTTP_FASTPATH_LOG": "info"}, "pass"),
    ("import requests", {}, "import requests"),
    ("import requests, HTTP_FASTPATH=tfo", {"HTTP_FASTPATH": "tfo"}, "import requests"),
]

_MODULES = "import sys; print(' '.join(sorted(sys.modules)))"


def _wheel(source: Path, dist: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
            str(source),
        ],
        check=True,
    )
    (wheel,) = dist.glob("http_fastpath-*.whl")
    return wheel


def _ref_source(ref: str, where: Path) -> Path:
    """The tree of git revision ``ref`` of this checkout, exported to ``where``."""
    where.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def _venv(where: Path, wheel: Path | None) -> Path:
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if wheel is not None:  # pip of this interpreter (same Python), compiling as pip does
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--target",
                site,
                str(wheel),
            ],
            check=True,
        )
    deps = sysconfig.get_paths()["purelib"]
    Path(site, "zz_bench_dependencies.pth").write_text(deps + "\n")
    return python


def _time(python: Path, env: dict[str, str], code: str) -> float:
    start = time.perf_counter()
    subprocess.run([str(python), "-c", code], check=True, env=env, cwd="/")
    return (time.perf_counter() - start) * 1000.0


def _median_ci(values: list[float]) -> tuple[float, float, float]:
    """Median and its ~95 % confidence interval (order statistics, no distribution assumed)."""
    ordered = sorted(values)
    n = len(ordered)
    k = max(0, math.floor((n - 1.96 * math.sqrt(n)) / 2))
    return statistics.median(ordered), ordered[k], ordered[n - 1 - k]


def measure(
    runs: int = 60, ref: str | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Time the cases in every venv; returns a JSON-able dict (see :func:`report`)."""
    runs = max(5, min(runs, 500))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("HTTP_FASTPATH")}
    base_env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(prefix="bench_startup.") as tmp_name:
        tmp = Path(tmp_name)
        log("building the wheel(s) and the venvs")
        columns: dict[str, Path] = {
            BASELINE: _venv(tmp / "none", None),
            CONTROL: _venv(tmp / "none2", None),
        }
        if ref is not None:
            source = _ref_source(ref, tmp / "ref-src")
            columns[f"{ref} (before)"] = _venv(tmp / "ref", _wheel(source, tmp / "ref-dist"))
        columns["this tree"] = _venv(tmp / "this", _wheel(ROOT, tmp / "dist"))
        samples: dict[str, dict[str, list[float]]] = {
            label: {col: [] for col in columns} for label, _, _ in CASES
        }
        cells = [(label, extra, code, col) for label, extra, code in CASES for col in columns]
        log(f"{runs} rounds of {len(cells)} interpreter starts")
        order = random.Random(18)  # a new order each round, the same from run to run
        for _ in range(runs):
            # Shuffled: no cell always follows the same one (a start right after a heavy
            # one, e.g. 'import requests', is slower).
            order.shuffle(cells)
            for label, extra, code, col in cells:
                samples[label][col].append(_time(columns[col], {**base_env, **extra}, code))
        modules: dict[str, dict[str, list[str]]] = {}
        for label, extra, _code in CASES[:3]:
            seen = {
                col: set(
                    subprocess.run(
                        [str(python), "-c", _MODULES],
                        check=True,
                        capture_output=True,
                        text=True,
                        env={**base_env, **extra},
                        cwd="/",
                    ).stdout.split()
                )
                for col, python in columns.items()
            }
            modules[label] = {
                col: sorted(seen[col] - seen[BASELINE])
                for col in columns
                if col not in (BASELINE, CONTROL)
            }
    rows = []
    for label, _, _ in CASES:
        base = samples[label][BASELINE]
        row: dict[str, Any] = {"case": label, "baseline_ms": statistics.median(base)}
        for col in columns:
            if col == BASELINE:
                continue
            diffs = [a - b for a, b in zip(samples[label][col], base, strict=True)]
            median, low, high = _median_ci(diffs)
            row[col] = {
                "median_ms": statistics.median(samples[label][col]),
                "added_ms": median,
                "ci_ms": [low, high],
                "ratio": statistics.median(samples[label][col]) / statistics.median(base),
            }
        rows.append(row)
    return {
        "runs": runs,
        "python": sys.version.split()[0],
        "columns": [c for c in columns if c != BASELINE],
        "rows": rows,
        "start_up_modules": modules,
    }


def report(result: dict[str, Any]) -> list[str]:
    """Markdown lines: the cases side by side with the no-package baseline."""
    cols = result["columns"]
    lines = [
        f"Python {result['python']}, {result['runs']} rounds; each cell: the median added",
        "time against the venv without the package, measured in the same round, with its 95 %",
        "confidence interval, and the ratio of the medians.",
        "",
        "| case | no package | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for row in result["rows"]:
        cells = [f"{row['baseline_ms']:.2f} ms"]
        for col in cols:
            c = row[col]
            low, high = c["ci_ms"]
            cells.append(f"{c['added_ms']:+.2f} ms [{low:+.2f}, {high:+.2f}] (× {c['ratio']:.3f})")
        lines.append(f"| {row['case']} | " + " | ".join(cells) + " |")
    lines += ["", "Modules imported at start-up beyond the no-package venv (`python -c pass`):", ""]
    for label, by_col in result["start_up_modules"].items():
        for col in by_col:
            added = by_col[col]
            shown = ", ".join(added) if len(added) <= 6 else f"{len(added)} modules"
            lines.append(f"- {label}, {col}: {shown or 'none'}")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="rounds (5 to 500, default 60)")
    parser.add_argument("--ref", help="also measure the wheel of this git revision (before)")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args()
    result = measure(args.runs, args.ref)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(report(result)))


if __name__ == "__main__":
    main()
