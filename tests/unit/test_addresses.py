"""Addresses: an IP literal seen before is answered from the cache, with the same milestones."""

from __future__ import annotations

import socket

from http_fastpath import milestones
from http_fastpath._core import addresses


def test_a_literal_is_resolved_once_and_answers_the_same() -> None:
    addresses._NUMERIC.clear()
    first = addresses.resolve("192.0.2.7", 80)
    assert first == [(socket.AF_INET, ("192.0.2.7", 80))]
    assert addresses.resolve("192.0.2.7", 80) is first  # (the cached list)
    assert addresses.resolve("192.0.2.7", 81) == [(socket.AF_INET, ("192.0.2.7", 81))]
    six = addresses.resolve("[2001:db8::7]", 443)
    assert six[0][0] == socket.AF_INET6 and six[0][1][:2] == ("2001:db8::7", 443)
    assert addresses.resolve("[2001:db8::7]", 443) == six
    assert addresses.resolve("2001:db8::7", 443) is six


def test_a_cached_literal_still_marks_the_lookup_when_traced() -> None:
    addresses.resolve("192.0.2.8", 80)  # cached
    with milestones() as marks:
        found = addresses.resolve("192.0.2.8", 80)
    assert found == [(socket.AF_INET, ("192.0.2.8", 80))]
    assert list(marks) == ["dns_start", "dns_done"]
