"""EXPERIMENTAL: one request of the Alt-Svc upgrade over HTTP/3, up to its response headers.

The handshake with the alternative is bounded by
:func:`~http_fastpath._core.upgrade.handshake_timeout`. A failure raises :class:`H3Failed`,
which says whether TCP may carry the request
(:func:`~http_fastpath._core.upgrade.may_fall_back`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .._core.altsvc import Alternative, Origin
from .._core.upgrade import handshake_timeout, may_fall_back
from ._drivers import AsyncH3Connection, AsyncH3Pool, SyncH3Connection, SyncH3Pool, VerifyType
from ._h3._client import StreamState

__all__ = ["H3Failed", "aexchange", "exchange"]

#: (method, authority, path, headers, body)
Request = tuple[bytes, bytes, bytes, Sequence[tuple[bytes, bytes]], bytes]


class H3Failed(Exception):
    """The HTTP/3 attempt failed with ``cause``; ``fall_back``: TCP may carry the request."""

    def __init__(self, cause: Exception, fall_back: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.fall_back = fall_back


def _failed(
    conn: SyncH3Connection | AsyncH3Connection, request: Request, exc: Exception
) -> H3Failed:
    method, _, _, _, body = request
    allowed = may_fall_back(
        handshake_done=conn.client.handshake_done,
        method=method.decode("ascii"),
        has_body=bool(body),
    )
    return H3Failed(exc, fall_back=allowed)


def exchange(
    pool: SyncH3Pool,
    origin: Origin,
    alternative: Alternative,
    verify: VerifyType,
    request: Request,
    connect_timeout: float | None,
    read_timeout: float | None,
) -> tuple[SyncH3Connection, StreamState]:
    """One request over HTTP/3 to ``alternative``, up to the response headers; raises
    :class:`H3Failed`."""
    try:
        conn = pool.get(
            origin.host,
            origin.port,
            verify,
            handshake_timeout(connect_timeout),
            connect_to=alternative.destination(origin),
        )
    except Exception as exc:
        raise H3Failed(exc, fall_back=True) from exc
    try:
        state = conn.request(*request, read_timeout)
    except Exception as exc:
        raise _failed(conn, request, exc) from exc
    return conn, state


async def aexchange(
    pool: AsyncH3Pool,
    origin: Origin,
    alternative: Alternative,
    verify: VerifyType,
    request: Request,
    connect_timeout: float | None,
    read_timeout: float | None,
) -> tuple[AsyncH3Connection, StreamState]:
    """The async twin of :func:`exchange`."""
    try:
        conn = await pool.get(
            origin.host,
            origin.port,
            verify,
            handshake_timeout(connect_timeout),
            connect_to=alternative.destination(origin),
        )
    except Exception as exc:
        raise H3Failed(exc, fall_back=True) from exc
    try:
        state = await conn.request(*request, read_timeout)
    except Exception as exc:
        raise _failed(conn, request, exc) from exc
    return conn, state
