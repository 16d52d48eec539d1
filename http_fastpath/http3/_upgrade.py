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
import sys
from collections.abc import Awaitable, Callable
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
    may_learn,
    parse_age,
)
from .._integrations.transports import derive
from ._drivers import AsyncH3Pool, SyncH3Pool, VerifyType
from ._h3._resumption import TicketStore
from ._transports import _AsyncBody, _map_errors, _response, _SyncBody
from ._upgrade_h3 import H3Call, H3Failed, MisdirectedRequest, aexchange, exchange

__all__ = ["HttpxUpgrade", "RequestsUpgrade"]


def _with_note(info: ConnectionInfo, note: str) -> ConnectionInfo:
    return deferred_info(lambda: dataclasses.replace(info, fallbacks=(*info.fallbacks, note)))


class _Shell:
    """What the requests and httpx shells share: the memory and the failure bookkeeping.

    ``memory`` / ``tickets``: shared ones (the opt-in's, or those kept in a file by
    :mod:`._persist`), else the shell's own."""

    def __init__(self, memory: UpgradeMemory | None, tickets: TicketStore | None) -> None:
        self.memory = UpgradeMemory() if memory is None else memory
        self.tickets = tickets

    def failed(self, origin: Origin, alternative: Alternative, failure: H3Failed) -> str:
        misdirected = isinstance(failure.cause, MisdirectedRequest)
        if misdirected:
            back_off = self.memory.misdirected(origin, alternative)
        else:
            back_off = self.memory.failed(origin, alternative)
        return fallback_note(alternative, origin, failure.cause, back_off, misdirected=misdirected)

    @staticmethod
    def flush() -> None:
        """Write the files that keep the memory and tickets (at close), if any."""
        persist = sys.modules.get(f"{__package__}._persist")
        if persist is not None:
            persist.flush_all()

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
        tickets: TicketStore | None = None,
    ) -> None:
        super().__init__(memory, tickets)
        self.client = client
        self.verify: VerifyType = verify
        self.verified = _verified(verify)
        self.client_cert = cert is not None
        self.proxied = proxied
        self.pool: Any
        if asynchronous:
            self.pool = AsyncH3Pool("auto", trust_env, tickets=tickets)
            self.body = derive(_AsyncBody, client.AsyncByteStream)
        else:
            self.pool = SyncH3Pool("auto", trust_env, tickets=tickets)
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

    def _call(self, request: Any) -> tuple[Origin, H3Call[Any] | None]:
        """The origin, and the HTTP/3 attempt when the decision says so."""
        origin, decision = self._decide(request)
        if decision.alternative is None:
            return origin, None
        timeout: dict[str, Any] = request.extensions.get("timeout", {})
        h3 = self._h3_request(request)
        return origin, H3Call(
            self.pool, origin, decision.alternative, self.verify, h3,
            timeout.get("connect"), timeout.get("read"),
        )  # fmt: skip

    def _not_sent(self, request: Any, call: H3Call[Any], failure: H3Failed) -> str:
        """The note for TCP; or the client's exception when TCP may not carry it."""
        if not failure.fall_back:
            with _map_errors(self.client, request):
                raise failure.cause from None
        return self.failed(call.origin, call.alternative, failure)

    def _sent(self, request: Any, call: H3Call[Any], conn: Any, state: Any) -> Any:
        self.memory.worked(call.origin, call.alternative)
        stream = self.body(self.client, conn, state, call.read_timeout, request)
        response = _response(self.client, state, stream, conn, request)
        return self._finish(request, call.origin, response, None)

    def handle(self, request: Any, tcp: Callable[[Any], Any]) -> Any:
        """Send ``request`` over HTTP/3 when the decision says so, else (or on a failure
        that allows it) with ``tcp``."""
        origin, call = self._call(request)
        note = None
        if call is not None:
            try:
                conn, state = exchange(call)
            except H3Failed as failure:
                note = self._not_sent(request, call, failure)
            else:
                return self._sent(request, call, conn, state)
        return self._finish(request, origin, tcp(request), note)

    async def ahandle(self, request: Any, tcp: Callable[[Any], Awaitable[Any]]) -> Any:
        """The async twin of :meth:`handle`."""
        origin, call = self._call(request)
        note = None
        if call is not None:
            try:
                conn, state = await aexchange(call)
            except H3Failed as failure:
                note = self._not_sent(request, call, failure)
            else:
                return self._sent(request, call, conn, state)
        return self._finish(request, origin, await tcp(request), note)

    def close(self) -> None:
        self.pool.close()
        self.flush()

    async def aclose(self) -> None:
        await self.pool.aclose()
        self.flush()


# -- requests ----------------------------------------------------------------------------------


def _requests_body(body: object) -> BodyKind:
    if body is None or body in (b"", ""):
        return "none"
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        return "bytes"
    return "stream"


class RequestsUpgrade(_Shell):
    """The upgrade for one requests adapter (``FastpathAdapter(http3="auto")``)."""

    def __init__(
        self, memory: UpgradeMemory | None = None, tickets: TicketStore | None = None
    ) -> None:
        super().__init__(memory, tickets)
        self.pool = SyncH3Pool("auto", trust_env=False, tickets=tickets)

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
                trust = verify if isinstance(verify, str) else True
                call = H3Call(
                    self.pool, origin, alternative, trust, h3_request(request, parts),
                    connect_timeout, read_timeout,
                )  # fmt: skip
                conn, state = exchange(call)
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
        self.flush()
