"""httpcore's blocking network backend on the fastpath dialer (see :mod:`.sync`)."""

from __future__ import annotations

import httpcore

from .common import CoreErrors, CoreSocketOption
from .sync import SyncBackendImpl, SyncStreamImpl

__all__ = ["CoreSocketOption", "FastpathBackend", "FastpathStream"]

ERRORS = CoreErrors(httpcore)


class FastpathStream(SyncStreamImpl, httpcore.NetworkStream):
    """A blocking ``httpcore.NetworkStream`` over a fastpath socket (plain or TLS)."""

    _errors = ERRORS


class FastpathBackend(SyncBackendImpl, httpcore.NetworkBackend):
    """An ``httpcore.NetworkBackend`` whose TCP connections come from the fastpath dialer.

    Use it with ``httpcore.ConnectionPool(network_backend=FastpathBackend())``, or let
    :class:`http_fastpath.FastpathTransport` do that for httpx. ``retries`` should equal
    the pool's ``retries`` (a connect failure that only shows up on the first write of a
    TCP Fast Open connection is then retried the same way).
    """

    _stream_cls = FastpathStream
    _unix_backend = httpcore.SyncBackend
