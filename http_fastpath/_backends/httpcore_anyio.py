"""httpcore's async network backend on the fastpath dialer (see :mod:`.anyio`)."""

from __future__ import annotations

import httpcore

from .anyio import AsyncBackendImpl, AsyncCoreErrors, AsyncStreamImpl

__all__ = ["AsyncFastpathBackend", "AsyncFastpathStream"]

ERRORS = AsyncCoreErrors(httpcore)


class AsyncFastpathStream(AsyncStreamImpl, httpcore.AsyncNetworkStream):
    """An ``httpcore.AsyncNetworkStream`` over a fastpath socket (asyncio or trio)."""

    _errors = ERRORS


class AsyncFastpathBackend(AsyncBackendImpl, httpcore.AsyncNetworkBackend):
    """An ``httpcore.AsyncNetworkBackend`` on the fastpath dialer (asyncio or trio, via anyio).

    Use it with ``httpcore.AsyncConnectionPool(network_backend=AsyncFastpathBackend())``,
    or let :class:`http_fastpath.AsyncFastpathTransport` do that for httpx.
    """

    _stream_cls = AsyncFastpathStream
    _unix_backend = httpcore.AnyIOBackend
