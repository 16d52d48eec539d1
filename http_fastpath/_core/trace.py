"""Timing milestones of one request, for ``http-fastpath get -v`` (off unless collected).

The dialer and the TLS layer call :func:`mark` at a few points (``dns_start``,
``dns_done``, ``connect_done``, ``tls_done``). Nothing is recorded unless a caller wraps
its request in :func:`collect`; then the first time each milestone is reached (the
``time.perf_counter()`` value) lands in the dict it yields. The collector lives in a
``ContextVar``, so concurrent requests in other threads or tasks are not mixed in.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

__all__ = ["collect", "mark"]

_collector: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "http_fastpath_trace", default=None
)


#: The active collector or None (a C call: hot paths test it before calling :func:`mark`).
collecting = _collector.get


def mark(name: str) -> None:
    """Record milestone ``name`` (first occurrence wins) if a collector is active."""
    marks = _collector.get()
    if marks is not None and name not in marks:
        marks[name] = time.perf_counter()


@contextlib.contextmanager
def collect() -> Iterator[dict[str, float]]:
    """Collect the milestones reached inside the ``with`` block."""
    marks: dict[str, float] = {}
    token = _collector.set(marks)
    try:
        yield marks
    finally:
        _collector.reset(token)
