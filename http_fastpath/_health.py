"""Per-destination TCP Fast Open memory: stop sending SYN data where it gets lost.

Middleboxes that drop SYNs carrying data cost every TFO connection one SYN timeout (about
a second) before the kernel retransmits a plain SYN; the kernel's own blackhole detection
is off by default (``net.ipv4.tcp_fastopen_blackhole_timeout_sec=0``). When a connection
reports ``tcpi_fastopen_client_fail == TFO_SYN_RETRANSMITTED``, the destination address is
paused for :data:`PAUSE_SECONDS`, so only the first connection pays.
"""

from __future__ import annotations

import threading
import time
from typing import Final

__all__ = ["PAUSE_SECONDS", "is_paused", "pause", "reset"]

#: How long TFO stays off for a destination whose SYN data was lost.
PAUSE_SECONDS: Final = 600.0
_MAX_ENTRIES: Final = 4096

_paused: dict[str, float] = {}
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


def reset() -> None:
    """Forget every paused destination."""
    with _lock:
        _paused.clear()
