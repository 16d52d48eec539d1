"""EXPERIMENTAL HTTP/3: the blocking waits of :mod:`._sync_drivers` (threads and ``poll``).

:mod:`._io_async` has the same names for anyio. The drivers are written once
(:mod:`._async_drivers`) against ``io``, and scripts/unasync.py turns
``from . import _io_async as io`` into ``from . import _io_sync as io``. Only what truly
differs lives in these two modules: the lock, the cancellation shield, the wait on the
socket and the name resolution.
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Generator

from .._core.addresses import Address, resolve

__all__ = ["Chunks", "Lock", "resolve_first", "shield_cancellation", "wait_socket"]

#: What ``iter_body`` returns: the response body, chunk by chunk.
Chunks = Generator[bytes, None, None]


class Lock:
    """A ``threading.Lock`` with the names of :class:`._io_async.Lock`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def acquire_nowait(self) -> bool:
        """Take the lock if it is free; False if it is not."""
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()


def shield_cancellation() -> contextlib.nullcontext[None]:
    """Nothing cancels blocking code from outside: nothing to shield."""
    return contextlib.nullcontext()


def resolve_first(host: str, port: int) -> Address:
    """The first address of ``host`` (an IPv6 literal may be in brackets); raises
    ``socket.gaierror`` as the stdlib does."""
    return resolve(host, port)[0]


def wait_socket(fd: int, write: bool, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds until ``fd`` is readable (or writable, when
    ``write``); True if it became so."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | (select.POLLOUT if write else 0))
    return bool(poller.poll(timeout * 1000.0))
