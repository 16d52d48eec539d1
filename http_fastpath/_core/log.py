"""Loggers (``http_fastpath.<area>``) and the once-per-reason fallback line."""

from __future__ import annotations

import logging
import threading

# A library's loggers print nothing until the application configures logging (otherwise
# Python's last-resort handler writes every WARNING to stderr).
logging.getLogger("http_fastpath").addHandler(logging.NullHandler())
dial_logger = logging.getLogger("http_fastpath.dial")
#: aioquic's per-connection messages for our client connections (its "quic" logger would
#: print a rejected certificate as "[cid] Error: 298, ..." on stderr by itself)
quic_logger = logging.getLogger("http_fastpath.quic")

_seen: set[str] = set()
_seen_lock = threading.Lock()


def log_fallback_once(kind: str, reason: object = None) -> None:
    """Log one INFO line the first time a fallback of ``kind`` happens in this process.

    ``kind`` is a reason's code (reasons naming destinations and times are many; the
    set stays small), ``reason`` what is printed.
    """
    with _seen_lock:
        if kind in _seen:
            return
        _seen.add(kind)
    dial_logger.info("fast path not used, falling back: %s", kind if reason is None else reason)


def reset_fallback_log() -> None:
    """Forget which reasons were logged (tests use it)."""
    with _seen_lock:
        _seen.clear()
