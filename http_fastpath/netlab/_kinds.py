"""The client flavours the lab's measurements compare: stock client vs fastpath.

A :class:`Kind` is one way of making HTTP requests (stdlib ``http.client`` vs the
fastpath dialer; requests vs ``FastpathAdapter``; httpx vs ``FastpathTransport``; httpx
async vs ``AsyncFastpathTransport``). Each can time a *cold* request (a new client and a
new connection; the client is built before the clock starts) and a series of keep-alive
requests over one connection. :mod:`._measure` pairs them and reports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import socket
import ssl
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from .._core.dialer import dial
from .._core.options import FastpathOptions
from .._core.tls import TLSSocket

__all__ = [
    "AsyncHttpxKind",
    "DialerFast",
    "HttpxKind",
    "Kind",
    "RequestsKind",
    "StdlibStock",
    "TLSConfig",
]

PATH = "/bytes?n=64"
_R = TypeVar("_R")


@dataclasses.dataclass(frozen=True)
class TLSConfig:
    """How clients trust the lab's test CA: an ``SSLContext`` and the CA file (requests)."""

    context: ssl.SSLContext
    ca_file: str


class Kind:
    """One client flavour; subclasses implement :meth:`cold` and :meth:`keepalive`."""

    library = ""
    fastpath = False
    label = ""

    def __init__(self, tls: TLSConfig) -> None:
        self.tls = tls

    def cold(self, url: str) -> float:
        """Seconds from the request call to the response headers, on a new connection."""
        raise NotImplementedError

    def keepalive(self, url: str, n: int) -> list[float]:
        """Seconds per request for ``n`` requests over one (warmed-up) connection."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the kind keeps between samples."""


def _public(name: str) -> Any:
    """A public http_fastpath name (the adapters are optional extras)."""
    import http_fastpath

    return getattr(http_fastpath, name)


def _split(url: str) -> tuple[str, str, int]:
    scheme, _, rest = url.partition("://")
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    return scheme, host, int(port)


_REQUEST = "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench\r\n\r\n"


class _Raw:
    """A minimal HTTP/1.1 client over a connected (TLS or plain) byte stream."""

    def __init__(self, conn: Any, host: str) -> None:
        self.conn = conn
        self.host = host

    def request(self) -> float:
        start = time.perf_counter()
        self.conn.sendall(_REQUEST.format(path=PATH, host=self.host).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        elapsed = time.perf_counter() - start
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(body) < length:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            body += chunk
        return elapsed


class StdlibStock(Kind):
    library, label = "stdlib", "http.client (stock)"

    def _conn(self, url: str) -> http.client.HTTPConnection:
        scheme, host, port = _split(url)
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=10, context=self.tls.context)
        return http.client.HTTPConnection(host, port, timeout=10)

    def _one(self, conn: http.client.HTTPConnection) -> float:
        start = time.perf_counter()
        conn.request("GET", PATH)
        response = conn.getresponse()
        elapsed = time.perf_counter() - start
        response.read()
        return elapsed

    def cold(self, url: str) -> float:
        conn = self._conn(url)
        try:
            return self._one(conn)
        finally:
            conn.close()

    def keepalive(self, url: str, n: int) -> list[float]:
        conn = self._conn(url)
        try:
            self._one(conn)
            return [self._one(conn) for _ in range(n)]
        finally:
            conn.close()


class DialerFast(Kind):
    """The fastpath dialer with a raw HTTP/1.1 request: the lower bound of the adapters."""

    library, fastpath, label = "stdlib", True, "http_fastpath dialer"

    def _open(self, url: str) -> tuple[_Raw, socket.socket]:
        scheme, host, port = _split(url)
        # TCP_NODELAY as http.client and urllib3 set it: without it Nagle holds the
        # request behind the unacknowledged TLS Finished for a round trip.
        nodelay = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = dial(host, port, options=FastpathOptions(), timeout=10, socket_options=[nodelay])
        if scheme == "https":
            tls = TLSSocket(sock, self.tls.context, server_hostname=host)
            return _Raw(tls, host), sock
        return _Raw(sock, host), sock

    def cold(self, url: str) -> float:
        start = time.perf_counter()
        raw, sock = self._open(url)  # pending: no packet sent yet
        try:
            if isinstance(raw.conn, TLSSocket):
                raw.conn.do_handshake()  # the ClientHello rides in the SYN
            handshake = time.perf_counter() - start
            return handshake + raw.request()
        finally:
            sock.close()

    def keepalive(self, url: str, n: int) -> list[float]:
        raw, sock = self._open(url)
        try:
            raw.request()
            return [raw.request() for _ in range(n)]
        finally:
            sock.close()


class RequestsKind(Kind):
    library = "requests"

    def __init__(self, tls: TLSConfig, fastpath: bool) -> None:
        super().__init__(tls)
        self.fastpath = fastpath
        self.label = "requests + FastpathAdapter" if fastpath else "requests (stock)"

    def _session(self) -> Any:
        import requests

        session = requests.Session()
        session.trust_env = False
        if self.fastpath:
            adapter = _public("FastpathAdapter")()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        return session

    def _one(self, session: Any, url: str) -> float:
        start = time.perf_counter()
        with session.get(url + PATH, stream=True, verify=self.tls.ca_file, timeout=10) as r:
            elapsed = time.perf_counter() - start
            r.raise_for_status()
            _ = r.content
        return elapsed

    def cold(self, url: str) -> float:
        with self._session() as session:
            return self._one(session, url)

    def keepalive(self, url: str, n: int) -> list[float]:
        with self._session() as session:
            self._one(session, url)
            return [self._one(session, url) for _ in range(n)]


def _stack(name: str) -> tuple[Any, Any]:
    """The client module (``httpx`` or ``httpx2``) and the module with our transports for it."""
    import importlib

    client = importlib.import_module(name)
    ours = importlib.import_module("http_fastpath" if name == "httpx" else "http_fastpath.httpx2")
    return client, ours


class HttpxKind(Kind):
    def __init__(self, tls: TLSConfig, fastpath: bool, stack: str = "httpx") -> None:
        super().__init__(tls)
        self.fastpath = fastpath
        self.stack = stack
        self.library = stack
        self.label = f"{stack} + FastpathTransport" if fastpath else f"{stack} (stock)"

    def _client(self) -> Any:
        client, ours = _stack(self.stack)
        if self.fastpath:
            transport = ours.FastpathTransport(verify=self.tls.context)
            return client.Client(transport=transport, trust_env=False, timeout=10)
        return client.Client(verify=self.tls.context, trust_env=False, timeout=10)

    def _one(self, client: Any, url: str) -> float:
        start = time.perf_counter()
        with client.stream("GET", url + PATH) as r:
            elapsed = time.perf_counter() - start
            r.raise_for_status()
            r.read()
        return elapsed

    def cold(self, url: str) -> float:
        with self._client() as client:
            return self._one(client, url)

    def keepalive(self, url: str, n: int) -> list[float]:
        with self._client() as client:
            self._one(client, url)
            return [self._one(client, url) for _ in range(n)]


class AsyncHttpxKind(Kind):
    def __init__(self, tls: TLSConfig, fastpath: bool, stack: str = "httpx") -> None:
        super().__init__(tls)
        self.fastpath = fastpath
        self.stack = stack
        self.library = f"{stack} async"
        self.label = (
            f"{stack} async + AsyncFastpathTransport" if fastpath else f"{stack} async (stock)"
        )
        # One event loop for all samples: a fresh loop per sample would also time the
        # start of its resolver thread pool, which no long-running application pays.
        self._loop: asyncio.AbstractEventLoop | None = None

    def _run(self, coro: Coroutine[Any, Any, _R]) -> _R:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()
            self._loop = None

    def _client(self) -> Any:
        client, ours = _stack(self.stack)
        if self.fastpath:
            transport = ours.AsyncFastpathTransport(verify=self.tls.context)
            return client.AsyncClient(transport=transport, trust_env=False, timeout=10)
        return client.AsyncClient(verify=self.tls.context, trust_env=False, timeout=10)

    async def _one(self, client: Any, url: str) -> float:
        start = time.perf_counter()
        async with client.stream("GET", url + PATH) as r:
            elapsed = time.perf_counter() - start
            r.raise_for_status()
            await r.aread()
        return elapsed

    def cold(self, url: str) -> float:
        async def run() -> float:
            async with self._client() as client:
                return await self._one(client, url)

        return self._run(run())

    def keepalive(self, url: str, n: int) -> list[float]:
        async def run() -> list[float]:
            async with self._client() as client:
                await self._one(client, url)
                return [await self._one(client, url) for _ in range(n)]

        return self._run(run())
