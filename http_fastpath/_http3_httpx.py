"""EXPERIMENTAL HTTP/3 transports for httpx: ``HTTP3Transport`` and ``AsyncHTTP3Transport``.

Thin shells: configuration in, :mod:`._http3` underneath, httpx exceptions out.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import httpx

from ._exceptions import DialError, DialTimeout
from ._h3._client import StreamState
from ._h3._errors import H3ReadTimeout, H3StreamError, H3TLSError
from ._http3 import (
    AsyncH3Connection,
    AsyncH3Pool,
    BackendName,
    SyncH3Connection,
    SyncH3Pool,
    VerifyType,
    quic_configuration,
)
from ._proof import INFO_EXTENSION

__all__ = ["AsyncHTTP3Transport", "HTTP3Transport"]


@contextlib.contextmanager
def _map_errors(request: httpx.Request) -> Generator[None, None, None]:
    try:
        yield
    except H3TLSError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except DialTimeout as exc:
        raise httpx.ConnectTimeout(str(exc), request=request) from exc
    except (DialError, socket.gaierror) as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except H3ReadTimeout as exc:
        raise httpx.ReadTimeout(str(exc), request=request) from exc
    except H3StreamError as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None]:
    timeout: dict[str, Any] = request.extensions.get("timeout", {})
    return timeout.get("connect"), timeout.get("read")


def _target(request: httpx.Request) -> tuple[str, int, bytes, bytes]:
    url = request.url
    host = url.host
    port = url.port or 443
    authority = url.netloc
    return host, port, authority, url.raw_path


def _response(state: StreamState, stream: Any, conn: Any, request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        state.status or 0,
        headers=state.headers,
        stream=stream,
        extensions={"http_version": b"HTTP/3", INFO_EXTENSION: conn.info},
        request=request,
    )


class _SyncBody(httpx.SyncByteStream):
    def __init__(
        self,
        conn: SyncH3Connection,
        state: StreamState,
        read_timeout: float | None,
        request: httpx.Request,
    ) -> None:
        self._chunks = conn.iter_body(state, read_timeout)
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        with _map_errors(self._request):
            yield from self._chunks

    def close(self) -> None:
        self._chunks.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(
        self,
        conn: AsyncH3Connection,
        state: StreamState,
        read_timeout: float | None,
        request: httpx.Request,
    ) -> None:
        self._chunks = conn.iter_body(state, read_timeout)
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _map_errors(self._request):
            async for chunk in self._chunks:
                yield chunk

    async def aclose(self) -> None:
        await self._chunks.aclose()


class HTTP3Transport(httpx.BaseTransport):
    """EXPERIMENTAL: an httpx transport that sends ``https://`` requests over HTTP/3 (QUIC).

    ``backend``: ``"auto"`` (Linux kernel QUIC when the probe finds ``IPPROTO_QUIC`` sockets,
    else userspace), ``"userspace"`` (aioquic over UDP) or ``"kernel"`` (raises
    :class:`~http_fastpath.CapabilityError` where the kernel lacks the ``quic`` module).
    ``verify`` takes what httpx takes (True, False, a CA bundle path, an ``ssl.SSLContext``);
    certificate and hostname checks are always on otherwise. ``http://`` URLs go through a
    plain ``httpx.HTTPTransport``. Which backend carried a response:
    ``http_fastpath.connection_info(response).quic_backend``.

    There is no fallback to TCP when the server does not speak HTTP/3: the request fails
    with ``httpx.ConnectError`` / ``httpx.ConnectTimeout``. See docs/http3.md.
    """

    def __init__(
        self,
        *,
        verify: VerifyType = True,
        trust_env: bool = True,
        backend: BackendName = "auto",
    ) -> None:
        self._pool = SyncH3Pool(backend, trust_env)
        quic_configuration("localhost", verify, trust_env=trust_env)  # validate early
        self._verify = verify
        self._trust_env = trust_env
        self._plain: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https":
            if self._plain is None:
                self._plain = httpx.HTTPTransport(trust_env=self._trust_env)
            return self._plain.handle_request(request)
        connect_timeout, read_timeout = _timeouts(request)
        host, port, authority, path = _target(request)
        body = request.read()
        with _map_errors(request):
            conn = self._pool.get(host, port, self._verify, connect_timeout)
            state = conn.request(
                request.method.encode("ascii"),
                authority,
                path,
                request.headers.raw,
                body,
                read_timeout,
            )
        return _response(state, _SyncBody(conn, state, read_timeout, request), conn, request)

    def close(self) -> None:
        self._pool.close()
        if self._plain is not None:
            self._plain.close()


class AsyncHTTP3Transport(httpx.AsyncBaseTransport):
    """EXPERIMENTAL: the async twin of :class:`HTTP3Transport` (asyncio and trio, via anyio).

    Concurrent requests on one ``httpx.AsyncClient`` share one QUIC connection per origin,
    each on its own HTTP/3 stream.
    """

    def __init__(
        self,
        *,
        verify: VerifyType = True,
        trust_env: bool = True,
        backend: BackendName = "auto",
    ) -> None:
        self._pool = AsyncH3Pool(backend, trust_env)
        quic_configuration("localhost", verify, trust_env=trust_env)
        self._verify = verify
        self._trust_env = trust_env
        self._plain: httpx.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https":
            if self._plain is None:
                self._plain = httpx.AsyncHTTPTransport(trust_env=self._trust_env)
            return await self._plain.handle_async_request(request)
        connect_timeout, read_timeout = _timeouts(request)
        host, port, authority, path = _target(request)
        body = await request.aread()
        with _map_errors(request):
            conn = await self._pool.get(host, port, self._verify, connect_timeout)
            state = await conn.request(
                request.method.encode("ascii"),
                authority,
                path,
                request.headers.raw,
                body,
                read_timeout,
            )
        return _response(state, _AsyncBody(conn, state, read_timeout, request), conn, request)

    async def aclose(self) -> None:
        await self._pool.aclose()
        if self._plain is not None:
            await self._plain.aclose()
