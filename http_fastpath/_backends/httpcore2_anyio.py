"""httpcore2's async network backend on the fastpath dialer (see :mod:`.anyio`)."""

from __future__ import annotations

import httpcore2

from .anyio import AsyncBackendImpl, AsyncCoreErrors, AsyncStreamImpl

__all__ = ["AsyncFastpathBackend", "AsyncFastpathStream"]

ERRORS = AsyncCoreErrors(httpcore2)


class AsyncFastpathStream(AsyncStreamImpl, httpcore2.AsyncNetworkStream):
    """An ``httpcore2.AsyncNetworkStream`` over a fastpath socket (asyncio or trio)."""

    _errors = ERRORS


class AsyncFastpathBackend(AsyncBackendImpl, httpcore2.AsyncNetworkBackend):
    """An ``httpcore2.AsyncNetworkBackend`` on the fastpath dialer (asyncio or trio, via anyio).

    Use it with ``httpcore2.AsyncConnectionPool(network_backend=AsyncFastpathBackend())``,
    or let :class:`http_fastpath.httpx2.AsyncFastpathTransport` do that for httpx2.
    """

    _stream_cls = AsyncFastpathStream
    _unix_backend = httpcore2.AnyIOBackend
