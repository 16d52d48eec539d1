"""Loggers (``http_fastpath.<area>``) and the once-per-reason fallback line."""

from __future__ import annotations

import logging
import threading

dial_logger = logging.getLogger("http_fastpath.dial")

_seen: set[str] = set()
_seen_lock = threading.Lock()


def log_fallback_once(reason: str) -> None:
    """Log one INFO line the first time a fallback ``reason`` happens in this process."""
    with _seen_lock:
        if reason in _seen:
            return
        _seen.add(reason)
    dial_logger.info("fast path not used, falling back: %s", reason)


def reset_fallback_log() -> None:
    """Forget which reasons were logged (tests use it)."""
    with _seen_lock:
        _seen.clear()
