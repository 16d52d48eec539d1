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


def test_plain_tcp_peers_are_remembered_and_bounded() -> None:
    _health.reset()
    assert not _health.is_plain_tcp_peer("192.0.2.1")
    _health.note_peer("192.0.2.1", speaks_mptcp=False)
    assert _health.is_plain_tcp_peer("192.0.2.1")
    _health.note_peer("192.0.2.1", speaks_mptcp=True)  # it learned MPTCP since
    assert not _health.is_plain_tcp_peer("192.0.2.1")
    for i in range(5000):
        _health.note_peer(f"10.1.{i // 256}.{i % 256}", speaks_mptcp=False)
    assert len(_health._plain_tcp_peers) <= 4096
    _health.reset()
    assert not _health.is_plain_tcp_peer("10.1.19.135")
