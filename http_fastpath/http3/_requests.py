"""EXPERIMENTAL HTTP/3 adapter for requests: ``session.mount("https://", HTTP3Adapter())``.

A thin shell: configuration in, :mod:`._drivers` underneath, requests/urllib3 exceptions
out. ``http://`` URLs and requests that go through a proxy are handed to the stock
``HTTPAdapter`` (HTTP/3 cannot be tunnelled through an HTTP proxy), so proxies and
``NO_PROXY`` behave exactly as stock.
"""

from __future__ import annotations

import http
import io
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.exceptions import ConnectionError, ConnectTimeout, ReadTimeout, SSLError
from requests.utils import select_proxy
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from .._core.exceptions import DialError, DialTimeout, OptionError
from .._core.proof import INFO_ATTR
from .._core.upgrade import check_ticket_file
from ._drivers import (
    BackendName,
    SyncH3Connection,
    SyncH3Pool,
    VerifyType,
    flush_all,
    select_backend,
    tickets_for,
)
from ._h3._client import StreamState
from ._h3._errors import H3ReadTimeout, H3StreamError, H3TLSError

__all__ = ["HTTP3Adapter"]


class _RawBody(io.RawIOBase):
    """The response body as the file object urllib3's ``HTTPResponse`` reads from."""

    def __init__(self, chunks: Iterator[bytes], url: str) -> None:
        super().__init__()
        self._chunks = chunks
        self._url = url
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not self._buffer:
            try:
                self._buffer = next(self._chunks, b"")
            except H3ReadTimeout as exc:
                raise ReadTimeoutError(None, self._url, str(exc)) from exc  # type: ignore[arg-type]
            except H3StreamError as exc:
                raise ProtocolError(str(exc), exc) from exc
            if not self._buffer:
                self.close()  # urllib3 stops reading once the file object is closed
                return 0
        n = min(len(view), len(self._buffer))
        view[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        super().close()


def _timeouts(timeout: object) -> tuple[float | None, float | None]:
    if timeout is None:
        return None, None
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(
                f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, or a single "
                "float to set both timeouts to the same value."
            )
        return timeout[0], timeout[1]
    if isinstance(timeout, urllib3.Timeout):
        connect = timeout.connect_timeout
        read = timeout.read_timeout
        return (
            connect if isinstance(connect, (int, float)) else None,
            read if isinstance(read, (int, float)) else None,
        )
    if isinstance(timeout, (int, float)):
        return float(timeout), float(timeout)
    raise ValueError(f"Invalid timeout {timeout!r}")


class HTTP3Adapter(HTTPAdapter):
    """EXPERIMENTAL: a requests transport adapter that sends ``https://`` requests over HTTP/3.

    Mount it with ``session.mount("https://", HTTP3Adapter())``. ``backend``: ``"auto"``
    (Linux kernel QUIC when available, else userspace aioquic), ``"userspace"`` or
    ``"kernel"`` (raises :class:`~http_fastpath.CapabilityError` where the kernel lacks the
    ``quic`` module). ``verify`` comes from requests as usual (``session.verify``, the
    ``verify=`` argument, ``REQUESTS_CA_BUNDLE``): True, False or a CA bundle path.
    Requests for ``http://`` URLs or through a proxy are sent by the stock ``HTTPAdapter``.
    Which backend carried a response: ``http_fastpath.connection_info(response).quic_backend``.
    Session resumption and 0-RTT as for ``HTTP3Transport`` (``early_data=False`` turns
    0-RTT off); the tickets belong to this adapter, or to the file ``ticket_file`` names
    (a path; secrets, written 0600), which the next process resumes from.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "_h3_backend", "_h3_early_data", "_h3_ticket_file"]

    def __init__(
        self,
        *,
        backend: BackendName = "auto",
        early_data: bool = True,
        ticket_file: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        ticket_path = check_ticket_file(ticket_file)
        if backend == "kernel":  # fail here, not at the first request
            select_backend(backend)
        if not isinstance(early_data, bool):
            raise OptionError("early_data", early_data, "True or False")
        self._h3_backend = backend
        self._h3_early_data = early_data
        self._h3_ticket_file = ticket_path
        self._h3_pool = _pool(backend, early_data, ticket_path)
        super().__init__(**kwargs)

    def __setstate__(self, state: dict[str, Any]) -> None:
        HTTPAdapter.__setstate__(self, state)  # type: ignore[attr-defined]
        early_data = getattr(self, "_h3_early_data", True)
        self._h3_early_data = early_data
        self._h3_ticket_file = getattr(self, "_h3_ticket_file", None)
        self._h3_pool = _pool(self._h3_backend, early_data, self._h3_ticket_file)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: None | float | tuple[float, float] | tuple[float, None] | urllib3.Timeout = None,
        verify: bool | str = True,
        cert: None | bytes | str | tuple[bytes | str, bytes | str] = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        parts = urlsplit(url)
        if parts.scheme != "https" or select_proxy(url, dict(proxies or {})):
            return super().send(request, stream, timeout, verify, cert, proxies)  # type: ignore[arg-type]
        if cert is not None:
            raise OptionError(
                "cert", cert, "None (the EXPERIMENTAL HTTP/3 adapter has no client certificates)"
            )
        connect_timeout, read_timeout = _timeouts(timeout)
        host = parts.hostname or ""
        port = parts.port or 443
        method, authority, path, headers, body = h3_request(request, parts)
        try:
            conn = self._h3_pool.get(host, port, _verify(verify), connect_timeout)
            state = conn.request(method, authority, path, headers, body, read_timeout)
        except Exception as exc:
            mapped = map_error(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        return self.build_response(request, raw_response(conn, state, read_timeout, request))

    def close(self) -> None:
        self._h3_pool.close()
        if self._h3_ticket_file is not None:
            flush_all()
        super().close()


def _pool(backend: BackendName, early_data: bool, ticket_file: str | None) -> SyncH3Pool:
    """The adapter's QUIC pool; its tickets the process's store for ``ticket_file``."""
    tickets = None if ticket_file is None else tickets_for(ticket_file)
    return SyncH3Pool(backend, trust_env=False, early_data=early_data, tickets=tickets)


def h3_request(
    request: requests.PreparedRequest, parts: SplitResult
) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]], bytes]:
    """(method, authority, path, headers, body) of a request (``parts``: its URL, split)."""
    body = _body_bytes(request.body)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()]
    if body and not any(k.lower() == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(len(body)).encode("ascii")))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (
        (request.method or "GET").encode("ascii"),
        parts.netloc.rsplit("@", 1)[-1].encode("idna"),
        path.encode("ascii"),
        headers,
        body,
    )


def map_error(exc: Exception, request: requests.PreparedRequest) -> Exception:
    """The requests exception for an HTTP/3 error before the response headers (``exc``
    itself when it has none)."""
    if isinstance(exc, H3TLSError):
        return SSLError(exc, request=request)
    if isinstance(exc, DialTimeout):
        return ConnectTimeout(exc, request=request)
    if isinstance(exc, (DialError, socket.gaierror, H3StreamError)):
        return ConnectionError(exc, request=request)
    if isinstance(exc, H3ReadTimeout):
        return ReadTimeout(exc, request=request)
    return exc


def raw_response(
    conn: SyncH3Connection,
    state: StreamState,
    read_timeout: float | None,
    request: requests.PreparedRequest,
) -> urllib3.HTTPResponse:
    """The urllib3 response ``build_response`` takes, its body read from ``state``."""
    status = state.status or 0
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    headers = urllib3.HTTPHeaderDict()
    for name, value in state.headers:
        headers.add(name.decode("latin-1"), value.decode("latin-1"))
    raw = urllib3.HTTPResponse(
        body=_RawBody(conn.iter_body(state, read_timeout), request.url or ""),
        headers=headers,
        status=status,
        version=30,
        version_string="HTTP/3",
        reason=reason,
        preload_content=False,
        decode_content=False,
        request_method=request.method,
        request_url=request.url,
    )
    setattr(raw, INFO_ATTR, conn.info_for(state))
    return raw


def _verify(verify: object) -> VerifyType:
    if isinstance(verify, (bool, str)):
        return verify
    raise OptionError("verify", verify, "True, False or a CA bundle path (as requests takes)")


def _body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    read = getattr(body, "read", None)
    if read is not None:
        data = read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(
        part.encode("utf-8") if isinstance(part, str) else bytes(part)
        for part in body  # type: ignore[attr-defined]
    )
