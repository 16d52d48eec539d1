"""EXPERIMENTAL HTTP/3 transports for httpx and httpx2: one implementation for both.

Thin shells: configuration in, :mod:`._drivers` underneath, the client's exceptions out.
:mod:`._httpx` and :mod:`._httpx2` give it each client's base classes.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Generator, Iterator
from types import ModuleType
from typing import Any, ClassVar, Generic, TypeVar

from .._core.exceptions import DialError, DialTimeout, OptionError
from .._core.proof import INFO_EXTENSION
from .._core.upgrade import check_ticket_file
from .._integrations.transports import derive
from ._drivers import (
    AsyncH3Connection,
    AsyncH3Pool,
    BackendName,
    SyncH3Connection,
    SyncH3Pool,
    VerifyType,
    flush_all,
    quic_configuration,
    select_backend,
    tickets_for,
)
from ._h3._client import StreamState
from ._h3._errors import H3ReadTimeout, H3StreamError, H3TLSError

__all__ = ["AsyncH3TransportImpl", "H3TransportImpl"]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


@contextlib.contextmanager
def _map_errors(client: ModuleType, request: Any) -> Generator[None, None, None]:
    try:
        yield
    except H3TLSError as exc:
        raise client.ConnectError(str(exc), request=request) from exc
    except DialTimeout as exc:
        raise client.ConnectTimeout(str(exc), request=request) from exc
    except (DialError, socket.gaierror) as exc:
        raise client.ConnectError(str(exc), request=request) from exc
    except H3ReadTimeout as exc:
        raise client.ReadTimeout(str(exc), request=request) from exc
    except H3StreamError as exc:
        raise client.RemoteProtocolError(str(exc), request=request) from exc


def _prepare(request: Any) -> tuple[str, int, float | None, float | None, tuple[Any, ...]]:
    """What a request needs of the pool: host, port, the connect and read timeouts, and
    ``:authority``, path and headers for ``conn.request`` (after the method)."""
    timeout: dict[str, Any] = request.extensions.get("timeout", {})
    url = request.url
    head = (url.netloc, url.raw_path, request.headers.raw)
    return url.host, url.port or 443, timeout.get("connect"), timeout.get("read"), head


def _response(client: ModuleType, state: StreamState, stream: Any, conn: Any, request: Any) -> Any:
    return client.Response(
        state.status or 0,
        headers=state.headers,
        stream=stream,
        extensions={"http_version": b"HTTP/3", INFO_EXTENSION: conn.info_for(state)},
        request=request,
    )


class _Body:
    """A response body: the connection's chunks, its errors mapped to the client's."""

    def __init__(
        self,
        client: ModuleType,
        conn: SyncH3Connection | AsyncH3Connection,
        state: StreamState,
        read_timeout: float | None,
        request: Any,
    ) -> None:
        self._client = client
        self._chunks: Any = conn.iter_body(state, read_timeout)
        self._request = request


class _SyncBody(_Body):
    def __iter__(self) -> Iterator[bytes]:
        with _map_errors(self._client, self._request):
            yield from self._chunks

    def close(self) -> None:
        self._chunks.close()


class _AsyncBody(_Body):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _map_errors(self._client, self._request):
            async for chunk in self._chunks:
                yield chunk

    async def aclose(self) -> None:
        await self._chunks.aclose()


class _H3Base:
    """What the sync and async HTTP/3 transports share: arguments and the QUIC pool."""

    _client: ClassVar[ModuleType]
    _asynchronous: ClassVar[bool]

    def __init__(
        self,
        *,
        verify: VerifyType = True,
        cert: Any = None,
        trust_env: bool = True,
        backend: BackendName = "auto",
        early_data: bool = True,
        ticket_file: str | os.PathLike[str] | None = None,
    ) -> None:
        ticket_path = check_ticket_file(ticket_file)
        if cert is not None:
            raise OptionError("cert", cert, "None (HTTP/3 has no client certificates yet)")
        quic_configuration("localhost", verify, trust_env=trust_env)  # validate early
        if backend == "kernel":  # fail here, not at the first request
            select_backend(backend)
        client = self._client
        if not isinstance(early_data, bool):
            raise OptionError("early_data", early_data, "True or False")
        # The tickets: this transport's own, or the process's store for the file.
        tickets = None if ticket_path is None else tickets_for(ticket_path)
        self._ticket_file = ticket_path
        if self._asynchronous:
            self._pool: Any = AsyncH3Pool(
                backend, trust_env, early_data=early_data, tickets=tickets
            )
            self._body = derive(_AsyncBody, client.AsyncByteStream)
        else:
            self._pool = SyncH3Pool(backend, trust_env, early_data=early_data, tickets=tickets)
            self._body = derive(_SyncBody, client.SyncByteStream)
        self._verify = verify
        self._trust_env = trust_env
        self._plain: Any = None

    def _plain_transport(self) -> Any:
        """The client's own transport for ``http://`` (made on first use)."""
        if self._plain is None:
            name = "AsyncHTTPTransport" if self._asynchronous else "HTTPTransport"
            self._plain = getattr(self._client, name)(trust_env=self._trust_env)
        return self._plain


class H3TransportImpl(_H3Base, Generic[_Req, _Resp]):
    """EXPERIMENTAL: a transport that sends ``https://`` requests over HTTP/3 (QUIC).

    ``backend``: ``"auto"`` (Linux kernel QUIC when the probe finds ``IPPROTO_QUIC`` sockets,
    else userspace), ``"userspace"`` (aioquic over UDP) or ``"kernel"`` (raises
    :class:`~http_fastpath.CapabilityError` where the kernel lacks the ``quic`` module).
    ``verify`` takes what the client takes (True, False, a CA bundle path, an
    ``ssl.SSLContext``); certificate and hostname checks are always on otherwise.
    ``http://`` URLs go through the client's plain ``HTTPTransport``. Which backend
    carried a response: ``http_fastpath.connection_info(response).quic_backend``.

    Session resumption and 0-RTT (userspace backend): the transport keeps the session
    tickets servers issue; a later connection to the same origin resumes, and a GET,
    HEAD, OPTIONS or TRACE without a body rides in 0-RTT (one round trip to the first
    byte). ``early_data=False``: never send a request in 0-RTT. Other requests always
    wait for the handshake. ``connection_info(response)`` has ``resumed`` and
    ``early_data``. ``ticket_file`` (a path; the tickets are secrets, written 0600): keep
    the tickets in that file, so the next process resumes too (docs/http3.md,
    "Persistence across processes").

    There is no fallback to TCP when the server does not speak HTTP/3: the request fails
    with the client's ``ConnectError`` / ``ConnectTimeout``. See docs/http3.md.
    """

    _asynchronous = False

    def handle_request(self, request: _Req) -> _Resp:
        req: Any = request
        if req.url.scheme != "https":
            plain: _Resp = self._plain_transport().handle_request(request)
            return plain
        host, port, connect_timeout, read_timeout, head = _prepare(req)
        body = req.read()
        with _map_errors(self._client, request):
            conn = self._pool.get(host, port, self._verify, connect_timeout)
            state = conn.request(req.method.encode("ascii"), *head, body, read_timeout)
        stream = self._body(self._client, conn, state, read_timeout, request)
        response: _Resp = _response(self._client, state, stream, conn, request)
        return response

    def close(self) -> None:
        self._pool.close()
        if self._plain is not None:
            self._plain.close()
        if self._ticket_file is not None:
            flush_all()


class AsyncH3TransportImpl(_H3Base, Generic[_Req, _Resp]):
    """EXPERIMENTAL: the async twin of :class:`H3TransportImpl` (asyncio and trio, via anyio).

    Concurrent requests on one async client share one QUIC connection per origin, each
    on its own HTTP/3 stream.
    """

    _asynchronous = True

    async def handle_async_request(self, request: _Req) -> _Resp:
        req: Any = request
        if req.url.scheme != "https":
            plain: _Resp = await self._plain_transport().handle_async_request(request)
            return plain
        host, port, connect_timeout, read_timeout, head = _prepare(req)
        body = await req.aread()
        with _map_errors(self._client, request):
            conn = await self._pool.get(host, port, self._verify, connect_timeout)
            state = await conn.request(req.method.encode("ascii"), *head, body, read_timeout)
        stream = self._body(self._client, conn, state, read_timeout, request)
        response: _Resp = _response(self._client, state, stream, conn, request)
        return response

    async def aclose(self) -> None:
        await self._pool.aclose()
        if self._plain is not None:
            await self._plain.aclose()
        if self._ticket_file is not None:
            flush_all()  # (small: at most a few KB, written at once)
