"""Interpreter start-up cost of having http_fastpath installed (HTTP_FASTPATH unset and set).

Builds the wheel, makes two fresh venvs (one with the wheel, one without) and times
``python -c pass`` alternately in both. Prints medians and the difference; target: within
1 ms when the variable is unset. Not a test: timings are printed, never asserted.

    python benchmarks/bench_startup.py [--runs 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make_venvs(where: Path) -> tuple[Path, Path]:
    dist = where / "dist"
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
            str(ROOT),
        ],
        check=True,
    )
    wheel = next(dist.glob("http_fastpath-*.whl"))
    pythons = []
    for name, install in (("with", True), ("without", False)):
        venv.EnvBuilder(with_pip=True).create(where / name)  # same site-packages otherwise
        python = where / name / "bin" / "python"
        if install:
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)],
                check=True,
            )
        pythons.append(python)
    return pythons[0], pythons[1]


def _time(python: Path, env: dict[str, str], code: str = "pass") -> float:
    start = time.perf_counter()
    subprocess.run([str(python), "-c", code], check=True, env=env)
    return (time.perf_counter() - start) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("HTTP_FASTPATH")}
    with tempfile.TemporaryDirectory() as tmp:
        with_wheel, without = _make_venvs(Path(tmp))
        samples: dict[str, list[float]] = {"without": [], "with, unset": [], "with, tfo": []}
        for _ in range(max(5, min(args.runs, 500))):
            samples["without"].append(_time(without, base_env))
            samples["with, unset"].append(_time(with_wheel, base_env))
            samples["with, tfo"].append(_time(with_wheel, {**base_env, "HTTP_FASTPATH": "tfo"}))
        # What a real program pays when the variable is set: it imports an HTTP client
        # (and with it most of the stdlib modules the hook needs) anyway.
        deps = os.path.dirname(os.path.dirname(__import__("requests").__file__))
        env = {**base_env, "PYTHONPATH": deps}
        real: dict[str, list[float]] = {"import requests": [], "... HTTP_FASTPATH=tfo": []}
        for _ in range(max(5, min(args.runs, 500))):
            real["import requests"].append(_time(with_wheel, env, "import requests"))
            tfo_env = {**env, "HTTP_FASTPATH": "tfo"}
            real["... HTTP_FASTPATH=tfo"].append(_time(with_wheel, tfo_env, "import requests"))
    _report("python -c pass", samples)
    _report("python -c 'import requests'", real)


def _report(title: str, samples: dict[str, list[float]]) -> None:
    base = statistics.median(next(iter(samples.values())))
    print(f"{title}, {len(next(iter(samples.values())))} runs each, medians:")
    for name, values in samples.items():
        med = statistics.median(values)
        print(f"  {name:<24} {med:7.2f} ms   delta: {med - base:+6.2f} ms")


if __name__ == "__main__":
    main()
