"""``http-fastpath demo`` end to end: the table, the server-observed SYN data, the fallback."""

from __future__ import annotations

import io
import re

import pytest

from http_fastpath.netlab import LabError, _demo, demo

pytestmark = pytest.mark.netns


def test_demo_prints_the_table_with_syn_data_for_fastpath_rows() -> None:
    out = io.StringIO()
    assert demo(out, samples=3) == 0
    text = out.getvalue()
    rows = [line for line in text.splitlines() if re.search(r" (http|https) +[\d.]+ ms ", line)]
    fast = [line for line in rows if "fastpath" in line.lower()]
    stock = [line for line in rows if "(stock)" in line]
    assert fast and len(fast) == len(stock), text
    for line in fast:  # "SYN data" column: n/3 with n > 0, and a ratio at the end
        syn = re.search(r" (\d+)/3 ", line)
        assert syn and int(syn.group(1)) > 0, line
        assert re.search(r"\d\.\d\d$", line), line
    for line in stock:
        assert " 0/3 " in line, line


def test_demo_falls_back_to_the_loopback_proof_without_a_lab(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_lab(*args: object, **kwargs: object) -> None:
        raise LabError("cannot open /dev/net/tun (Permission denied): the lab needs TUN")

    monkeypatch.setattr(_demo, "Lab", no_lab)
    out = io.StringIO()
    assert demo(out) == 0
    text = out.getvalue()
    assert "no network lab here: cannot open /dev/net/tun" in text
    assert "falling back to the loopback proof" in text
    assert re.search(r"fastpath connections whose SYN carried the request: [1-9]", text)
