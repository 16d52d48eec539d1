"""Run the benchmark suite: ``python -m benchmarks`` (or ``scripts/bench``).

Writes ``docs/benchmarks/results.json``, the PNG plots next to it and
``docs/benchmarks.md`` (the report, with the plots embedded). Needs the network lab
(root, or an unprivileged user namespace) and the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from http_fastpath.netlab import _netns

from . import _report, _suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--out", default="docs", help="docs directory (default: docs)")
    parser.add_argument("--samples", type=int, default=20, help="cold TTFB samples per row (>= 20)")
    parser.add_argument(
        "--only",
        choices=[
            "calibration",
            "cold",
            "keepalive",
            "cpu",
            "memory",
            "tls",
            "mptcp",
            "eyeballs",
            "altsvc",
            "startup",
        ],  # fmt: skip
        action="append",
        help="run only these parts (default: all)",
    )
    parser.add_argument(
        "--startup-runs", type=int, default=60, help="interpreter start-up rounds (5 to 500)"
    )
    parser.add_argument(
        "--startup-ref", help="git revision whose wheel the start-up part also measures (before)"
    )
    parser.add_argument("--report-only", action="store_true", help="rebuild report from JSON")
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "benchmarks").mkdir(parents=True, exist_ok=True)
    results_file = out / "benchmarks" / "results.json"

    def log(line: str) -> None:
        print(line, flush=True)

    if not args.report_only:
        parts = args.only or [
            "calibration", "cold", "keepalive", "cpu", "memory", "tls", "mptcp", "eyeballs",
            "altsvc", "startup",
        ]  # fmt: skip
        # Interpreter start-up needs no network: it runs without the lab too.
        reason = _netns.enter() if set(parts) - {"startup"} else None
        if reason is not None:
            print(f"the benchmarks need the network lab: {reason}", file=sys.stderr)
            return 1
        results: dict[str, Any] = {}
        if results_file.exists() and args.only:
            results = json.loads(results_file.read_text())
        started = time.monotonic()
        for part in parts:
            log(f"== {part}")
            t0 = time.monotonic()
            if part == "calibration":
                results["calibration"] = _suite.calibration(log)
            elif part == "cold":
                results["cold"] = _suite.cold_ttfb(log, samples=args.samples)
            elif part == "keepalive":
                results["keepalive"] = _suite.keepalive(log)
            elif part == "startup":
                from .bench_startup import measure as measure_startup

                results["startup"] = measure_startup(args.startup_runs, args.startup_ref, log)
            elif part == "cpu":
                from .bench_fresh_cpu import measure

                results["cpu"] = {"rows": measure(log=log)}
            elif part == "memory":
                from .bench_fresh_cpu import measure_memory

                results["memory"] = {"rows": measure_memory(log=log)}
            elif part == "tls":
                from .bench_tls_context import measure as measure_tls

                results["tls"] = {"rows": measure_tls(log=log)}
            elif part == "eyeballs":
                from .bench_eyeballs import measure as measure_eyeballs

                results["eyeballs"] = measure_eyeballs(log)
            elif part == "altsvc":
                from .bench_altsvc import measure as measure_altsvc

                results["altsvc"] = measure_altsvc(log)
                results["altsvc"]["run"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            else:
                results["mptcp"] = _suite.mptcp(log)
            results.setdefault("durations_s", {})[part] = round(time.monotonic() - t0, 1)
        results["meta"] = {
            "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "cpus": _cpus(),
            "command": "scripts/bench  (python -m benchmarks)",
            "total_s": round(time.monotonic() - started, 1),
        }
        results_file.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        log(f"wrote {results_file}")
    results = json.loads(results_file.read_text())
    _report.write(results, out)
    log(f"wrote {out / 'benchmarks.md'} and the plots in {out / 'benchmarks'}")
    return 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
