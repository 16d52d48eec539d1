"""EXPERIMENTAL: one request of the Alt-Svc upgrade over HTTP/3, up to its response headers.

The handshake with the alternative is bounded by
:func:`~http_fastpath._core.upgrade.handshake_timeout`. A failure raises :class:`H3Failed`,
which says whether TCP may carry the request
(:func:`~http_fastpath._core.upgrade.may_fall_back`). A ``421 Misdirected Request``
(RFC 9110 section 15.5.20) from the alternative is one too: the server did not process
the request, so it goes to the origin over TCP whatever its method, and the alternative
is removed from the origin's entries and kept out (RFC 7838 section 7; :mod:`._upgrade`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Generic, TypeVar

from .._core.altsvc import Alternative, Origin
from .._core.upgrade import handshake_timeout, is_misdirected, may_fall_back
from ._drivers import AsyncH3Connection, AsyncH3Pool, SyncH3Connection, SyncH3Pool, VerifyType
from ._h3._client import StreamState

__all__ = ["H3Call", "H3Failed", "MisdirectedRequest", "aexchange", "exchange"]

P = TypeVar("P", SyncH3Pool, AsyncH3Pool)

#: (method, authority, path, headers, body)
Request = tuple[bytes, bytes, bytes, Sequence[tuple[bytes, bytes]], bytes]


class H3Failed(Exception):
    """The HTTP/3 attempt failed with ``cause``; ``fall_back``: TCP may carry the request."""

    def __init__(self, cause: Exception, fall_back: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.fall_back = fall_back


class MisdirectedRequest(Exception):
    """The alternative answered 421: it cannot speak for the origin."""


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


def _misdirected(conn: SyncH3Connection | AsyncH3Connection, state: StreamState) -> H3Failed:
    conn.discard(state)
    cause = MisdirectedRequest("the alternative answered 421 Misdirected Request")
    return H3Failed(cause, fall_back=True)


@dataclasses.dataclass(frozen=True)
class H3Call(Generic[P]):
    """One request's HTTP/3 attempt: which pool, origin, alternative, trust and timeouts."""

    pool: P
    origin: Origin
    alternative: Alternative
    verify: VerifyType
    request: Request
    connect_timeout: float | None
    read_timeout: float | None

    def where(self) -> tuple[str, int, VerifyType, float]:
        """The pool's ``get`` arguments: the origin's identity, a bounded handshake."""
        origin = self.origin
        return origin.host, origin.port, self.verify, handshake_timeout(self.connect_timeout)

    def connect_to(self) -> tuple[str, int]:
        """The UDP destination: the alternative's."""
        return self.alternative.destination(self.origin)


def _answered(conn: SyncH3Connection | AsyncH3Connection, state: StreamState) -> StreamState:
    if is_misdirected(state.status):
        raise _misdirected(conn, state)
    return state


def exchange(call: H3Call[SyncH3Pool]) -> tuple[SyncH3Connection, StreamState]:
    """One request over HTTP/3 to the alternative, up to the response headers; raises
    :class:`H3Failed`."""
    try:
        conn = call.pool.get(*call.where(), connect_to=call.connect_to())
    except Exception as exc:
        raise H3Failed(exc, fall_back=True) from exc
    try:
        state = conn.request(*call.request, call.read_timeout)
    except Exception as exc:
        raise _failed(conn, call.request, exc) from exc
    return conn, _answered(conn, state)


async def aexchange(call: H3Call[AsyncH3Pool]) -> tuple[AsyncH3Connection, StreamState]:
    """The async twin of :func:`exchange`."""
    try:
        conn = await call.pool.get(*call.where(), connect_to=call.connect_to())
    except Exception as exc:
        raise H3Failed(exc, fall_back=True) from exc
    try:
        state = await conn.request(*call.request, call.read_timeout)
    except Exception as exc:
        raise _failed(conn, call.request, exc) from exc
    return conn, _answered(conn, state)
