"""The httpx examples run and show data in the SYN."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["httpx_sync.py", "httpx_async.py"])
def test_example_runs(name: str) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "tfo=cookie_requested" in out.stdout
    assert "tfo=syn_data_acked" in out.stdout
    assert "https://" in out.stdout
