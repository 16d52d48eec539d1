"""Before/after in one run: the client-CPU benchmarks for an earlier tree and this one.

Both sides run *this* tree's benchmark code; only the ``http_fastpath`` package differs
(``PYTHONPATH``): ``--before`` names a checkout of the earlier version (e.g. a
``git worktree add /tmp/before main``). The sides alternate in subprocesses, ``--repeats``
times each; every subprocess interleaves stock and fastpath itself. Printed: the medians of
the per-subprocess stock/fastpath ratios, CPU and wall, per row.

    sudo python -m benchmarks.compare --before /tmp/before [--part cpu --part tls]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_CODE = r"""
import json, sys
from http_fastpath.netlab import enter_private_netns
reason = enter_private_netns()
assert reason is None, reason
what = sys.argv[1]
quiet = lambda line: None
if what == "cpu":
    from benchmarks import bench_fresh_cpu as b
    out = b.measure(log=quiet, clients=("requests", "httpx", "httpx async"), bulk_rounds=6)
elif what == "memory":
    from benchmarks import bench_fresh_cpu as b
    out = b.measure_memory(log=quiet)
else:
    from benchmarks import bench_tls_context as t
    out = t.measure(4, log=quiet)
print("JSON" + json.dumps(out))
"""


def _run(pythonpath: str, part: str) -> list[dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=pythonpath)
    proc = subprocess.run(
        [sys.executable, "-c", _CODE, part],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=tempfile.gettempdir(),
    )
    for line in proc.stdout.splitlines():
        if line.startswith("JSON"):
            rows: list[dict[str, Any]] = json.loads(line[4:])
            return rows
    raise RuntimeError(f"{part} failed:\n{proc.stderr[-4000:]}")


def _key(part: str, row: dict[str, Any]) -> tuple[str, ...]:
    if part == "cpu":
        return (row["mode"], row["scheme"], row["client"])
    return (row["client"], str(row.get("verify", row.get("variant"))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="a checkout of the earlier version")
    parser.add_argument("--part", choices=["cpu", "memory", "tls"], action="append")
    parser.add_argument("--repeats", type=int, default=2, help="subprocesses per side")
    parser.add_argument("--json", help="also write the raw rows here")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="fastpath-compare-") as tmp:
        shutil.copytree(here / "benchmarks", Path(tmp) / "benchmarks")
        sides = {"before": f"{tmp}:{args.before}", "after": f"{tmp}:{here}"}
        raw: dict[str, dict[str, list[list[dict[str, Any]]]]] = {}
        for part in args.part or ["cpu", "tls"]:
            raw[part] = {"before": [], "after": []}
            for i in range(args.repeats):
                for side in ("before", "after") if i % 2 == 0 else ("after", "before"):
                    raw[part][side].append(_run(sides[side], part))
                    print(f"{part}: {side} {i + 1}/{args.repeats}", file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))
    for part, by_side in raw.items():
        print(f"\n{part}: the row's ratio, before -> after (medians of {args.repeats} runs)")
        rows: dict[tuple[str, ...], dict[str, list[dict[str, Any]]]] = {}
        for side, runs in by_side.items():
            for one in runs:
                for r in one:
                    rows.setdefault(_key(part, r), {"before": [], "after": []})[side].append(r)
        for key, got in rows.items():
            cells = []
            for side in ("before", "after"):
                cpu = statistics.median(r["ratio"] for r in got[side])
                cell = f"CPU {cpu:.3f}"
                if "wall_ratio" in got[side][0]:
                    cell += f" wall {statistics.median(r['wall_ratio'] for r in got[side]):.3f}"
                cells.append(cell)
            print(f"  {' '.join(key):<40} {cells[0]:<24} -> {cells[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
