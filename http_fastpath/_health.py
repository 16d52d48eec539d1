"""Per-destination TCP Fast Open memory: stop sending SYN data where it gets lost.

Middleboxes that drop SYNs carrying data cost every TFO connection one SYN timeout (about
a second) before the kernel retransmits a plain SYN; the kernel's own blackhole detection
is off by default (``net.ipv4.tcp_fastopen_blackhole_timeout_sec=0``). When a connection
reports ``tcpi_fastopen_client_fail == TFO_SYN_RETRANSMITTED``, or a SYN with data is
answered with a reset, the destination address is paused for :data:`PAUSE_SECONDS`, so
only the first connection pays.

It also remembers which servers answered an MPTCP SYN in plain TCP: only to those does an
MPTCP socket carry data in its SYN (Linux 6.18 loses the reply to SYN data when both ends
speak MPTCP and the path has any delay).
"""

from __future__ import annotations

import threading
import time
from typing import Final

__all__ = ["PAUSE_SECONDS", "is_paused", "is_plain_tcp_peer", "note_peer", "pause", "reset"]

#: How long TFO stays off for a destination whose SYN data was lost.
PAUSE_SECONDS: Final = 600.0
_MAX_ENTRIES: Final = 4096

_paused: dict[str, float] = {}
_plain_tcp_peers: dict[str, None] = {}  # insertion-ordered set, oldest first
_lock = threading.Lock()


def pause(address: str, now: float | None = None) -> None:
    """Stop using TFO towards ``address`` for :data:`PAUSE_SECONDS`."""
    t = time.monotonic() if now is None else now
    with _lock:
        if len(_paused) >= _MAX_ENTRIES:
            for key in [k for k, until in _paused.items() if until <= t] or list(_paused)[:1]:
                del _paused[key]
        _paused[address] = t + PAUSE_SECONDS


def is_paused(address: str, now: float | None = None) -> bool:
    """True while TFO towards ``address`` is paused."""
    with _lock:
        until = _paused.get(address)
        if until is None:
            return False
        if (time.monotonic() if now is None else now) >= until:
            del _paused[address]
            return False
        return True


def note_peer(address: str, *, speaks_mptcp: bool) -> None:
    """Record whether the server at ``address`` answered an MPTCP SYN with MPTCP."""
    with _lock:
        if speaks_mptcp:
            _plain_tcp_peers.pop(address, None)
            return
        if address not in _plain_tcp_peers and len(_plain_tcp_peers) >= _MAX_ENTRIES:
            del _plain_tcp_peers[next(iter(_plain_tcp_peers))]
        _plain_tcp_peers[address] = None


def is_plain_tcp_peer(address: str) -> bool:
    """True when the server at ``address`` last answered an MPTCP SYN in plain TCP."""
    with _lock:
        return address in _plain_tcp_peers


def reset() -> None:
    """Forget every paused destination and every peer's MPTCP answer."""
    with _lock:
        _paused.clear()
        _plain_tcp_peers.clear()
