"""EXPERIMENTAL: the I/O shell of the Alt-Svc upgrade (``http3="auto"`` on the TCP transports).

Every decision is in :mod:`http_fastpath._core.upgrade`; this module only does what it
says, with the HTTP/3 pools of :mod:`._drivers`:

1. ask :func:`~http_fastpath._core.upgrade.choose_route` for the request's route;
2. HTTP/3: ``pool.get(origin, connect_to=alternative)`` with the handshake bounded by
   :func:`~http_fastpath._core.upgrade.handshake_timeout`, then the request. SNI, the
   certificate check and ``:authority`` are the origin's; only the UDP destination is the
   alternative's. If it fails and :func:`~http_fastpath._core.upgrade.may_fall_back`
   allows it, the alternative is marked broken and the request goes over TCP, with a
   line in ``connection_info(response).fallbacks``;
3. TCP (the caller's own transport): its response's ``Alt-Svc`` is remembered when
   :func:`~http_fastpath._core.upgrade.may_learn` allows it.

The requests adapter and the httpx transports (``_integrations``) import this module
lazily, only when built with ``http3="auto"``.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Awaitable, Callable, Sequence
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from .._core.altsvc import Alternative, Origin
from .._core.info import ConnectionInfo, deferred_info
from .._core.proof import INFO_ATTR, INFO_EXTENSION
from .._core.upgrade import (
    BodyKind,
    Decision,
    UpgradeMemory,
    choose_route,
    fallback_note,
    handshake_timeout,
    may_fall_back,
    may_learn,
    parse_age,
)
from .._integrations.transports import derive
from ._drivers import AsyncH3Connection, AsyncH3Pool, SyncH3Connection, SyncH3Pool, VerifyType
from ._h3._client import StreamState
from ._transports import _AsyncBody, _map_errors, _response, _SyncBody

__all__ = ["HttpxUpgrade", "RequestsUpgrade"]


class H3Failed(Exception):
    """The HTTP/3 attempt failed with ``cause``; ``fall_back``: TCP may carry the request."""

    def __init__(self, cause: Exception, fall_back: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.fall_back = fall_back


def exchange(
    pool: SyncH3Pool,
    origin: Origin,
    alternative: Alternative,
    verify: VerifyType,
    request: tuple[bytes, bytes, bytes, Sequence[tuple[bytes, bytes]], bytes],
    connect_timeout: float | None,
    read_timeout: float | None,
) -> tuple[SyncH3Connection, StreamState]:
    """One request over HTTP/3 to ``alternative``, up to the response headers; raises
    :class:`H3Failed`. ``request``: (method, authority, path, headers, body)."""
    method, authority, path, headers, body = request
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
        state = conn.request(method, authority, path, headers, body, read_timeout)
    except Exception as exc:
        allowed = may_fall_back(
            handshake_done=conn.client.handshake_done,
            method=method.decode("ascii"),
            has_body=bool(body),
        )
        raise H3Failed(exc, fall_back=allowed) from exc
    return conn, state


async def aexchange(
    pool: AsyncH3Pool,
    origin: Origin,
    alternative: Alternative,
    verify: VerifyType,
    request: tuple[bytes, bytes, bytes, Sequence[tuple[bytes, bytes]], bytes],
    connect_timeout: float | None,
    read_timeout: float | None,
) -> tuple[AsyncH3Connection, StreamState]:
    """The async twin of :func:`exchange`."""
    method, authority, path, headers, body = request
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
        state = await conn.request(method, authority, path, headers, body, read_timeout)
    except Exception as exc:
        allowed = may_fall_back(
            handshake_done=conn.client.handshake_done,
            method=method.decode("ascii"),
            has_body=bool(body),
        )
        raise H3Failed(exc, fall_back=allowed) from exc
    return conn, state


def _with_note(info: ConnectionInfo, note: str) -> ConnectionInfo:
    return deferred_info(lambda: dataclasses.replace(info, fallbacks=(*info.fallbacks, note)))


class _Shell:
    """What the requests and httpx shells share: the memory and the failure bookkeeping."""

    def __init__(self, memory: UpgradeMemory | None) -> None:
        self.memory = UpgradeMemory() if memory is None else memory

    def failed(self, origin: Origin, alternative: Alternative, failure: H3Failed) -> str:
        back_off = self.memory.failed(origin, alternative)
        return fallback_note(alternative, origin, failure.cause, back_off)

    def learn(
        self,
        scheme: str,
        origin: Origin,
        proxied: bool,
        verified: bool,
        values: list[str],
        age: str | None,
    ) -> None:
        if values and may_learn(scheme=scheme, proxied=proxied, verified=verified):
            self.memory.learn(origin, values, parse_age(age))


# -- httpx and httpx2 --------------------------------------------------------------------------


def _verified(verify: object) -> bool:
    """Did the TCP connection check the server's identity (certificate and hostname)?"""
    if isinstance(verify, ssl.SSLContext):
        return verify.verify_mode != ssl.CERT_NONE and verify.check_hostname
    return verify is not False


def _httpx_body(client: ModuleType, request: Any) -> BodyKind:
    stream = request.stream
    if not isinstance(stream, client.ByteStream):
        return "stream"
    return "bytes" if request.read() else "none"


class HttpxUpgrade(_Shell):
    """The upgrade for one httpx / httpx2 transport (``FastpathTransport(http3="auto")``)."""

    def __init__(
        self,
        client: ModuleType,
        *,
        asynchronous: bool,
        verify: Any,
        cert: Any,
        trust_env: bool,
        proxied: bool,
        memory: UpgradeMemory | None = None,
    ) -> None:
        super().__init__(memory)
        self.client = client
        self.verify: VerifyType = verify
        self.verified = _verified(verify)
        self.client_cert = cert is not None
        self.proxied = proxied
        self.pool: Any
        if asynchronous:
            self.pool = AsyncH3Pool("auto", trust_env)
            self.body = derive(_AsyncBody, client.AsyncByteStream)
        else:
            self.pool = SyncH3Pool("auto", trust_env)
            self.body = derive(_SyncBody, client.SyncByteStream)

    def _decide(self, request: Any) -> tuple[Origin, Decision]:
        url = request.url
        origin = Origin.of(url.host, url.port or (443 if url.scheme == "https" else 80))
        decision = choose_route(
            scheme=url.scheme,
            proxied=self.proxied,
            verified=self.verified,
            client_cert=self.client_cert,
            method=request.method,
            body=_httpx_body(self.client, request),
            alternatives=self.memory.usable(origin),
        )
        return origin, decision

    @staticmethod
    def _h3_request(request: Any) -> tuple[bytes, bytes, bytes, Any, bytes]:
        url = request.url
        return (
            request.method.encode("ascii"),
            url.netloc,
            url.raw_path,
            request.headers.raw,
            request.read(),
        )

    def _finish(self, request: Any, origin: Origin, response: Any, note: str | None) -> Any:
        if note is not None:
            info = response.extensions.get(INFO_EXTENSION)
            if isinstance(info, ConnectionInfo):
                response.extensions[INFO_EXTENSION] = _with_note(info, note)
        self.learn(
            request.url.scheme,
            origin,
            self.proxied,
            self.verified,
            response.headers.get_list("alt-svc"),
            response.headers.get("age"),
        )
        return response

    def handle(self, request: Any, tcp: Callable[[Any], Any]) -> Any:
        """Send ``request`` over HTTP/3 when the decision says so, else (or on a failure
        that allows it) with ``tcp``."""
        origin, decision = self._decide(request)
        note = None
        alternative = decision.alternative
        if alternative is not None:
            timeout: dict[str, Any] = request.extensions.get("timeout", {})
            read_timeout = timeout.get("read")
            try:
                conn, state = exchange(
                    self.pool,
                    origin,
                    alternative,
                    self.verify,
                    self._h3_request(request),
                    timeout.get("connect"),
                    read_timeout,
                )
            except H3Failed as failure:
                if not failure.fall_back:
                    with _map_errors(self.client, request):
                        raise failure.cause from None
                note = self.failed(origin, alternative, failure)
            else:
                self.memory.worked(origin, alternative)
                stream = self.body(self.client, conn, state, read_timeout, request)
                response = _response(self.client, state, stream, conn, request)
                return self._finish(request, origin, response, None)
        return self._finish(request, origin, tcp(request), note)

    async def ahandle(self, request: Any, tcp: Callable[[Any], Awaitable[Any]]) -> Any:
        """The async twin of :meth:`handle`."""
        origin, decision = self._decide(request)
        note = None
        alternative = decision.alternative
        if alternative is not None:
            timeout: dict[str, Any] = request.extensions.get("timeout", {})
            read_timeout = timeout.get("read")
            try:
                conn, state = await aexchange(
                    self.pool,
                    origin,
                    alternative,
                    self.verify,
                    self._h3_request(request),
                    timeout.get("connect"),
                    read_timeout,
                )
            except H3Failed as failure:
                if not failure.fall_back:
                    with _map_errors(self.client, request):
                        raise failure.cause from None
                note = self.failed(origin, alternative, failure)
            else:
                self.memory.worked(origin, alternative)
                stream = self.body(self.client, conn, state, read_timeout, request)
                response = _response(self.client, state, stream, conn, request)
                return self._finish(request, origin, response, None)
        return self._finish(request, origin, await tcp(request), note)

    def close(self) -> None:
        self.pool.close()

    async def aclose(self) -> None:
        await self.pool.aclose()


# -- requests ----------------------------------------------------------------------------------


def _requests_body(body: object) -> BodyKind:
    if body is None or body in (b"", ""):
        return "none"
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        return "bytes"
    return "stream"


class RequestsUpgrade(_Shell):
    """The upgrade for one requests adapter (``FastpathAdapter(http3="auto")``)."""

    def __init__(self, memory: UpgradeMemory | None = None) -> None:
        super().__init__(memory)
        self.pool = SyncH3Pool("auto", trust_env=False)

    def send(
        self,
        adapter: Any,
        request: Any,
        tcp: Callable[..., Any],
        stream: bool,
        timeout: Any,
        verify: Any,
        cert: Any,
        proxies: Any,
    ) -> Any:
        """``adapter.send`` with the upgrade: ``tcp`` is the adapter's own TCP send."""
        from requests.utils import select_proxy

        from ._requests import _timeouts, h3_request, map_error, raw_response

        url = request.url or ""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        origin = Origin.of(parts.hostname or "", parts.port or (443 if scheme == "https" else 80))
        proxied = bool(select_proxy(url, dict(proxies or {})))
        verified = verify is not False
        decision = choose_route(
            scheme=scheme,
            proxied=proxied,
            verified=verified,
            client_cert=cert is not None,
            method=request.method or "GET",
            body=_requests_body(request.body),
            alternatives=self.memory.usable(origin),
        )
        note = None
        alternative = decision.alternative
        if alternative is not None:
            connect_timeout, read_timeout = _timeouts(timeout)
            try:
                conn, state = exchange(
                    self.pool,
                    origin,
                    alternative,
                    verify if isinstance(verify, str) else True,
                    h3_request(request, parts),
                    connect_timeout,
                    read_timeout,
                )
            except H3Failed as failure:
                if not failure.fall_back:
                    raise map_error(failure.cause, request) from failure.cause
                note = self.failed(origin, alternative, failure)
            else:
                self.memory.worked(origin, alternative)
                response = adapter.build_response(
                    request, raw_response(conn, state, read_timeout, request)
                )
                self._learn(scheme, origin, proxied, verified, response)
                return response
        response = tcp(request, stream, timeout, verify, cert, proxies)
        if note is not None:
            info = getattr(response.raw, INFO_ATTR, None)
            if isinstance(info, ConnectionInfo):
                setattr(response.raw, INFO_ATTR, _with_note(info, note))
        self._learn(scheme, origin, proxied, verified, response)
        return response

    def _learn(
        self, scheme: str, origin: Origin, proxied: bool, verified: bool, response: Any
    ) -> None:
        raw = getattr(response, "raw", None)
        headers = getattr(raw, "headers", None)
        if headers is not None and hasattr(headers, "getlist"):
            values = list(headers.getlist("alt-svc"))
        else:
            value = response.headers.get("alt-svc")
            values = [] if value is None else [value]
        self.learn(scheme, origin, proxied, verified, values, response.headers.get("age"))

    def close(self) -> None:
        self.pool.close()
