"""http_fastpath for httpx2 and httpcore2 (the maintained continuation of httpx).

The same transports, backends and client helpers as ``http_fastpath``'s httpx ones, with
httpx2's base classes and exceptions::

    import httpx2
    from http_fastpath.httpx2 import FastpathTransport, fastpath_client

    client = httpx2.Client(transport=FastpathTransport())
    client = fastpath_client()  # keeps HTTP_PROXY / HTTPS_PROXY / NO_PROXY like httpx2

``http_fastpath.connection_info(response)`` reads the proof of an httpx2 response too.
Importing this module does no work; each name loads on first use (the backends need only
httpcore2, the HTTP/3 transports the ``http3`` extra).
"""

from __future__ import annotations

import typing

from ._core import lazy as _lazy

if typing.TYPE_CHECKING:  # what type checkers see; at run time the names load on first use
    from ._backends.httpcore2_anyio import AsyncFastpathBackend
    from ._backends.httpcore2_sync import FastpathBackend
    from ._integrations.httpx2 import (
        AsyncFastpathTransport,
        FastpathTransport,
        async_fastpath_client,
        fastpath_client,
    )
    from .http3._httpx2 import AsyncHTTP3Transport, HTTP3Transport

__all__ = [
    "FastpathTransport",
    "AsyncFastpathTransport",
    "FastpathBackend",
    "AsyncFastpathBackend",
    "fastpath_client",
    "async_fastpath_client",
    # EXPERIMENTAL HTTP/3 (extra "http3")
    "HTTP3Transport",
    "AsyncHTTP3Transport",
]

_LAZY = {
    "FastpathTransport": "_integrations.httpx2",
    "AsyncFastpathTransport": "_integrations.httpx2",
    "fastpath_client": "_integrations.httpx2",
    "async_fastpath_client": "_integrations.httpx2",
    "FastpathBackend": "_backends.httpcore2_sync",
    "AsyncFastpathBackend": "_backends.httpcore2_anyio",
    "HTTP3Transport": "http3._httpx2",
    "AsyncHTTP3Transport": "http3._httpx2",
}


__getattr__, __dir__ = _lazy.exports(__name__, _LAZY, globals())
