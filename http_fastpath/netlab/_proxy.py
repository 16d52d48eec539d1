"""A small threaded HTTP proxy (plain forwarding and CONNECT tunnels) for tests and demos.

It listens on its own fresh 127.0.x.y address (so TCP Fast Open cookies never leak between
tests), is a TFO server, and records the server kernel's view of each accepted client
connection exactly like :class:`~http_fastpath.netlab.Server` does: whether the SYN carried
data, whether it is MPTCP, and the requests seen (``"GET http://host:port/path"``,
``"CONNECT host:port"``). Upstream connections go only where the client asked, which in the
lab is always another loopback server.
"""

from __future__ import annotations

import select
import socket
import socketserver
import ssl
import threading
import urllib.parse
from typing import Protocol

from .._core import linux as _linux
from ._servers import Accepted, RecordingServer, next_loopback

__all__ = ["Proxy"]

_HOP_HEADERS = frozenset(
    {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}
)
_RELAY_CHUNK = 65536
_UPSTREAM_TIMEOUT = 10.0


class _Reader(Protocol):
    def readline(self, size: int = ..., /) -> bytes: ...
    def read(self, size: int = ..., /) -> bytes: ...


def _read_head(rfile: _Reader) -> list[bytes] | None:
    """Request or response head lines (without CRLF); None at a clean end of stream."""
    lines: list[bytes] = []
    while True:
        line = rfile.readline(65537)
        if not line:
            return None if not lines else lines
        line = line.rstrip(b"\r\n")
        if not line:
            if not lines:
                continue  # tolerate stray CRLF between requests
            return lines
        lines.append(line)


def _header(lines: list[bytes], name: bytes) -> bytes | None:
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _copy_body(rfile: _Reader, out: socket.socket, lines: list[bytes]) -> None:
    """Copy a message body framed by Content-Length or chunked encoding, unchanged."""
    if (_header(lines, b"transfer-encoding") or b"").lower() == b"chunked":
        while True:
            size_line = rfile.readline(65537)
            out.sendall(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the final CRLF
                    trailer = rfile.readline(65537)
                    out.sendall(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return
            _copy_exact(rfile, out, size + 2)
    _copy_exact(rfile, out, int(_header(lines, b"content-length") or b"0"))


def _copy_exact(rfile: _Reader, out: socket.socket, length: int) -> None:
    while length > 0:
        data = rfile.read(min(length, _RELAY_CHUNK))
        if not data:
            raise ConnectionError("client closed in the middle of a request body")
        out.sendall(data)
        length -= len(data)


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until one side closes."""
    socks = [a, b]
    while True:
        # A TLS client connection may hold decrypted bytes that select() cannot see.
        readable: list[socket.socket] = [
            s for s in socks if isinstance(s, ssl.SSLSocket) and s.pending()
        ]
        if not readable:
            readable, _, _ = select.select(socks, [], [], _UPSTREAM_TIMEOUT)
        if not readable:
            return
        for src in readable:
            data = src.recv(_RELAY_CHUNK)
            if not data:
                return
            (b if src is a else a).sendall(data)


class _ProxyHandler(socketserver.StreamRequestHandler):
    # Unbuffered reads: nothing the client sends after CONNECT can get stuck in our buffer.
    rbufsize = 0
    server: RecordingServer

    def _record(self, what: str) -> None:
        with self.server.lock:
            rec = self.server.records_by_conn.get(id(self.connection))
            if rec is not None:
                rec.requests.append(what)

    def handle(self) -> None:
        while True:
            lines = _read_head(self.rfile)
            if lines is None:
                return
            method, target, _ = (lines[0].decode("latin-1").split(" ", 2) + ["", ""])[:3]
            if method == "CONNECT":
                self._record(f"CONNECT {target}")
                self._tunnel(target)
                return
            self._record(f"{method} {target}")
            if not self._forward(method, target, lines):
                return

    def _tunnel(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), _UPSTREAM_TIMEOUT)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            _relay(self.connection, upstream)

    def _forward(self, method: str, target: str, lines: list[bytes]) -> bool:
        """Forward one absolute-form request; True when the client connection may be reused."""
        url = urllib.parse.urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return False
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        head = [f"{method} {path} HTTP/1.1".encode()]
        head += [
            ln for ln in lines[1:] if ln.partition(b":")[0].strip().lower() not in _HOP_HEADERS
        ]
        head.append(b"Connection: close")
        try:
            upstream = socket.create_connection((url.hostname, url.port or 80), _UPSTREAM_TIMEOUT)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return True
        with upstream:
            upstream.sendall(b"\r\n".join(head) + b"\r\n\r\n")
            _copy_body(self.rfile, upstream, lines)
            return self._relay_response(upstream, method)

    def _relay_response(self, upstream: socket.socket, method: str) -> bool:
        rfile = upstream.makefile("rb")
        try:
            lines = _read_head(rfile)
            if lines is None:
                self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return False
            framed = method == "HEAD" or (
                _header(lines, b"content-length") is not None
                or (_header(lines, b"transfer-encoding") or b"").lower() == b"chunked"
            )
            keep = [ln for ln in lines if not (framed and ln.lower().startswith(b"connection:"))]
            self.wfile.write(b"\r\n".join(keep) + b"\r\n\r\n")
            while data := rfile.read1(_RELAY_CHUNK):
                self.wfile.write(data)
            self.wfile.flush()
            return framed
        finally:
            rfile.close()


class Proxy:
    """A threaded HTTP proxy (forwarding + CONNECT) on a fresh loopback address.

    ``proxy.url`` is ``http://127.0.x.y:port`` (``https://`` with ``tls=``: clients then
    talk TLS to the proxy itself); ``proxy.records`` lists one
    :class:`~http_fastpath.netlab.Accepted` per client connection, whose ``requests`` are
    ``"GET http://host:port/path"`` or ``"CONNECT host:port"`` strings.
    """

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        tfo: bool = True,
        mptcp: bool = False,
        host: str | None = None,
    ) -> None:
        self.host = host or next_loopback()
        self.scheme = "https" if tls is not None else "http"
        proto = _linux.IPPROTO_MPTCP if mptcp else socket.IPPROTO_TCP
        self.server = RecordingServer(self.host, socket.AF_INET, proto, tfo, tls, _ProxyHandler)
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def records(self) -> list[Accepted]:
        return self.server.snapshot()

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.stop()
        self._thread.join(5)
