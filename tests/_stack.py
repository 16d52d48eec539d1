"""The client stack the httpx tests drive: httpx + httpcore, or httpx2 + httpcore2.

``HTTP_FASTPATH_TEST_STACK=httpx2`` runs the same tests against httpx2/httpcore2 and
``http_fastpath.httpx2`` (scripts/test runs the httpx tests both ways). Tests import the
client as ``from ._stack import httpx`` and our classes from here, never directly.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

NAME = os.environ.get("HTTP_FASTPATH_TEST_STACK", "httpx")
if NAME not in ("httpx", "httpx2"):
    raise RuntimeError(f"HTTP_FASTPATH_TEST_STACK={NAME!r}: expected 'httpx' or 'httpx2'")

if TYPE_CHECKING:
    from http_fastpath import AsyncHTTP3Transport, HTTP3Transport

if TYPE_CHECKING or NAME == "httpx":
    # mypy checks the tests against httpx + httpcore; httpx2 has the same API.
    import httpcore
    import httpx

    from http_fastpath import (
        AsyncFastpathBackend,
        AsyncFastpathTransport,
        FastpathBackend,
        FastpathTransport,
        async_fastpath_client,
        fastpath_client,
    )
    from http_fastpath._backends.httpcore_anyio import AsyncFastpathStream
    from http_fastpath._backends.httpcore_sync import FastpathStream
else:
    import httpcore2 as httpcore
    import httpx2 as httpx

    from http_fastpath._backends.httpcore2_anyio import AsyncFastpathStream
    from http_fastpath._backends.httpcore2_sync import FastpathStream
    from http_fastpath.httpx2 import (
        AsyncFastpathBackend,
        AsyncFastpathTransport,
        FastpathBackend,
        FastpathTransport,
        async_fastpath_client,
        fastpath_client,
    )


def http3_transports() -> tuple[type[HTTP3Transport], type[AsyncHTTP3Transport]]:
    """The stack's (HTTP3Transport, AsyncHTTP3Transport); needs aioquic (Python >= 3.11)."""
    if NAME == "httpx2":
        from http_fastpath import httpx2

        return httpx2.HTTP3Transport, httpx2.AsyncHTTP3Transport  # type: ignore[return-value]
    import http_fastpath

    return http_fastpath.HTTP3Transport, http_fastpath.AsyncHTTP3Transport


__all__ = [
    "NAME",
    "http3_transports",
    "AsyncFastpathBackend",
    "AsyncFastpathStream",
    "AsyncFastpathTransport",
    "FastpathBackend",
    "FastpathStream",
    "FastpathTransport",
    "async_fastpath_client",
    "fastpath_client",
    "httpcore",
    "httpx",
]
