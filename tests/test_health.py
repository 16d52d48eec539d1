"""Decision logic of the per-destination TFO pause (the lab test drives it end to end)."""

from __future__ import annotations

from http_fastpath import _health


def test_pause_expires() -> None:
    _health.reset()
    assert not _health.is_paused("192.0.2.1", now=0.0)
    _health.pause("192.0.2.1", now=10.0)
    assert _health.is_paused("192.0.2.1", now=11.0)
    assert not _health.is_paused("192.0.2.2", now=11.0)
    assert not _health.is_paused("192.0.2.1", now=10.0 + _health.PAUSE_SECONDS)
    assert not _health.is_paused("192.0.2.1", now=11.0)  # forgotten once expired


def test_bounded_memory() -> None:
    _health.reset()
    for i in range(5000):
        _health.pause(f"10.0.{i // 256}.{i % 256}", now=float(i))
    assert len(_health._paused) <= 4096
    _health.reset()
