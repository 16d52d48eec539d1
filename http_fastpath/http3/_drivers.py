"""EXPERIMENTAL HTTP/3: the sync and async drivers, the shells' one import point.

The httpx transports (:mod:`._transports`) and the requests adapter (:mod:`._requests`)
are thin shells over :class:`SyncH3Connection` / :class:`AsyncH3Connection` and their pools.
Where the code lives:

* :mod:`._config`: backend selection, the QUIC/TLS settings, the trust key, the errors;
* :mod:`._base`: what the connections and pools share without waiting;
* :mod:`._async_drivers`: the connection and pool, written once (async);
  :mod:`._sync_drivers` is generated from it (``scripts/unasync.py``);
* :mod:`._io_async` / :mod:`._io_sync`: the few waits that truly differ.

Resumption and 0-RTT (userspace backend): each pool keeps a
:class:`~._h3._resumption.TicketStore`; a new connection takes a ticket for its key and
hands the server's new tickets back. When the ticket allows early data, ``connect``
returns before the handshake completes and requests that
:func:`~._h3._resumption.may_send_early` allows ride in 0-RTT; every other request waits
for the handshake. A ``425 Too Early`` answer to a request sent early is sent again once,
at 1-RTT (RFC 8470 section 5.2). A ``ticket_file`` shares the process's store for that file
(:func:`tickets_for`, :mod:`._persist`); :func:`flush_all` writes what changed.
"""

from __future__ import annotations

from ._async_drivers import AsyncH3Connection, AsyncH3Pool
from ._config import (
    BackendName,
    PoolKey,
    Resumption,
    VerifyType,
    open_backend,
    quic_configuration,
    select_backend,
    trust_key,
)
from ._persist import flush_all, tickets_for
from ._sync_drivers import SyncH3Connection, SyncH3Pool

__all__ = [
    "AsyncH3Connection",
    "AsyncH3Pool",
    "BackendName",
    "PoolKey",
    "Resumption",
    "SyncH3Connection",
    "SyncH3Pool",
    "VerifyType",
    "flush_all",
    "open_backend",
    "quic_configuration",
    "select_backend",
    "tickets_for",
    "trust_key",
]
