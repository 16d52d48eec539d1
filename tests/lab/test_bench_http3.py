"""The HTTP/3 benchmark part (``scripts/bench --only http3``) runs and returns well-formed
rows: one sample per variant at one RTT. No timing is asserted (the numbers are for
docs/benchmarks.md); the server's record that the resumed GET rode in 0-RTT is."""

from __future__ import annotations

import math

import pytest

from benchmarks import bench_http3
from benchmarks._report import _targets

pytestmark = pytest.mark.netns


def test_the_http3_part_runs_and_its_rows_are_well_formed() -> None:
    lines: list[str] = []
    variants = ("stock", "h3_cold", "h3_0rtt")
    results = bench_http3.measure(lines.append, samples=1, rtts=(50,), variants=variants)
    rows = results["rows"]
    assert [r["variant"] for r in rows] == list(variants)
    assert len(lines) == len(variants)
    for row in rows:
        assert row["rtt_ms"] == 50 and row["errors"] == []
        assert row["ttfb"]["n"] == 1 and math.isfinite(row["ttfb"]["median"])
        assert row["ratio"] == pytest.approx(
            row["ttfb"]["median"] / rows[0]["ttfb"]["median"], 1e-3
        )
    by = {r["variant"]: r["evidence"] for r in rows}
    assert by["h3_cold"]["resumed=False"] == 1 and by["h3_cold"]["server_1rtt"] == 1
    assert by["h3_0rtt"]["early_data=accepted"] == 1 and by["h3_0rtt"]["server_0rtt"] == 1
    table = bench_http3.report(results)
    assert len(table) == 2 + len(rows) + 1
    targets = _targets({"http3": results})
    assert sum("HTTP/3 TTFB at 50 ms RTT" in line for line in targets) == 2
