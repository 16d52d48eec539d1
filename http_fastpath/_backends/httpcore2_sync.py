"""httpcore2's blocking network backend on the fastpath dialer (see :mod:`.sync`)."""

from __future__ import annotations

import httpcore2

from .common import CoreErrors, CoreSocketOption
from .sync import SyncBackendImpl, SyncStreamImpl

__all__ = ["CoreSocketOption", "FastpathBackend", "FastpathStream"]

ERRORS = CoreErrors(httpcore2)


class FastpathStream(SyncStreamImpl, httpcore2.NetworkStream):
    """A blocking ``httpcore2.NetworkStream`` over a fastpath socket (plain or TLS)."""

    _errors = ERRORS


class FastpathBackend(SyncBackendImpl, httpcore2.NetworkBackend):
    """An ``httpcore2.NetworkBackend`` whose TCP connections come from the fastpath dialer.

    Use it with ``httpcore2.ConnectionPool(network_backend=FastpathBackend())``, or let
    :class:`http_fastpath.httpx2.FastpathTransport` do that for httpx2. ``retries`` should equal
    the pool's ``retries`` (a connect failure that only shows up on the first write of a
    TCP Fast Open connection is then retried the same way).
    """

    _stream_cls = FastpathStream
    _unix_backend = httpcore2.SyncBackend
