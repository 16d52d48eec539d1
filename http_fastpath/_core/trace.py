"""Timing milestones of one request: :func:`milestones` (``http-fastpath get -v``).

The dialer and the TLS layer call :func:`mark` at a few points (``dns_start``,
``dns_done``, ``connect_done``, ``tls_done``). Nothing is recorded unless a caller wraps
its request in :func:`milestones`; then the first time each milestone is reached (the
``time.perf_counter()`` value) lands in the dict it yields. The collector lives in a
``ContextVar``, so concurrent requests in other threads or tasks are not mixed in.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

__all__ = ["mark", "milestones"]

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
def milestones() -> Iterator[dict[str, float]]:
    """When the connections made inside the ``with`` block reached each milestone.

    ::

        with http_fastpath.milestones() as marks:
            response = session.get(url)
        connect_s = marks["connect_done"] - marks["dns_start"]

    The dict fills in as the block runs: ``dns_start``, ``dns_done`` (name resolution),
    ``connect_done`` (the TCP handshake; with TCP Fast Open, once the first flight went
    out with the SYN) and ``tls_done`` (a TLS handshake run by the package's blocking
    clients: requests, urllib3, sync httpx), each a ``time.perf_counter()`` value, the
    first time it is reached. A milestone that did not happen (a reused connection, no
    TLS) is absent. Recording is off outside the block and costs nothing then; it follows
    the current thread or asyncio/trio task only.
    """
    marks: dict[str, float] = {}
    token = _collector.set(marks)
    try:
        yield marks
    finally:
        _collector.reset(token)
