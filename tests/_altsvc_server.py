"""A TCP origin for the Alt-Svc upgrade tests: HTTP/1.1 (TLS or plain) in a thread that
sends ``Alt-Svc`` with every response, and a UDP port that swallows every datagram.

Routes: ``/`` (text) and ``/echo`` (the body back, ``x-method``). :attr:`AltSvcOrigin.requests`
records (method, path, body) of each request it served, so a test knows which requests
came over TCP; the HTTP/3 server (``tests/_h3server.py``) records the others.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from typing import Any


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.origin.requests.append((self.command, self.path, body))
        reply = body if self.path.startswith("/echo") else b"hello over tcp"
        self.send_response(200)
        self.send_header("content-length", str(len(reply)))
        self.send_header("x-method", self.command)
        if self.server.origin.alt_svc is not None:
            self.send_header("alt-svc", self.server.origin.alt_svc)
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = _serve


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    origin: AltSvcOrigin


class AltSvcOrigin:
    """``with AltSvcOrigin(tls_context, 'h3=":443"') as srv: srv.url("/")``; ``tls``
    None serves plain ``http://``. ``alt_svc`` may be changed between requests."""

    def __init__(
        self, tls: ssl.SSLContext | None, alt_svc: str | None, host: str = "127.0.0.1"
    ) -> None:
        self.tls = tls
        self.host = host
        self.alt_svc = alt_svc
        self.requests: list[tuple[str, str, bytes]] = []
        self._server = _Server((host, 0), _Handler)
        self._server.origin = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.daemon = True

    def url(self, path: str) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://{self.host}:{self.port}{path}"

    def __enter__(self) -> AltSvcOrigin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class UdpBlackHole:
    """A UDP port on 127.0.0.1 that reads nothing and answers nothing (UDP dropped on
    the way, as a firewall does); :meth:`datagrams` counts what arrived since last asked."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def datagrams(self) -> int:
        count = 0
        for _ in range(100_000):  # bounded: a receive buffer holds far fewer
            try:
                self.sock.recv(65536)
            except BlockingIOError:
                break
            count += 1
        return count

    def __enter__(self) -> UdpBlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
