"""Real HTTP/1.1 test servers that record the kernel's view of each accepted connection.

Each server listens on its own 127.0.x.y address so TCP Fast Open cookies (cached per
destination address) never leak from one test to another.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import itertools
import json
import os
import socket
import socketserver
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

from .._core import linux as _linux

_addresses = itertools.count(1)


def next_loopback() -> str:
    """A fresh 127.0.x.y address (no TFO cookie cached for it yet)."""
    n = next(_addresses)
    return f"127.0.{n // 250 + 1}.{n % 250 + 2}"


@dataclasses.dataclass
class Accepted:
    """Server-side kernel view of one accepted connection."""

    syn_data: bool
    is_mptcp: bool | None
    peer: tuple[str, int]
    requests: list[str] = dataclasses.field(default_factory=list)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RecordingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self) -> None:
        rec = self.server.records_by_conn.get(id(self.connection))
        if rec is not None:
            rec.requests.append(self.command)

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self) -> None:
        self._record()
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = self._body()
        if url.path == "/random":  # incompressible payload with its digest, for integrity checks
            payload = os.urandom(int(query.get("n", "1024")))
            self._reply(200, payload, {"X-SHA256": hashlib.sha256(payload).hexdigest()})
        elif url.path == "/bytes":
            self._reply(200, b"x" * int(query.get("n", "1024")))
        elif url.path == "/echo":
            self._reply(200, body, {"X-Method": self.command})
        elif url.path == "/redirect":
            self._reply(302, b"", {"Location": query["to"]})
        elif url.path.startswith("/status/"):
            self._reply(int(url.path.rsplit("/", 1)[1]), b"")
        elif url.path == "/v1/models":  # an OpenAI-style API, for SDK examples
            models = {"object": "list", "data": [{"id": "lab-model", "object": "model",
                      "created": 0, "owned_by": "netlab"}]}  # fmt: skip
            self._reply(200, json.dumps(models).encode(), {"Content-Type": "application/json"})
        elif url.path == "/close":
            self.close_connection = True
            self._reply(200, b"bye", {"Connection": "close"})
        else:
            self._reply(200, b"hello " + self.command.encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _route


class RecordingServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Threaded listener (TFO / MPTCP / TLS) recording the kernel's view of each connection.

    Shared by :class:`Server` and the test proxy; ``handler`` serves each connection.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of connects overflows it, the kernel drops
    # the handshake's last ACK and the client (stock or ours) waits for SYN-ACK retransmits
    # (1 s, 2 s, 4 s...) -- a load test then times out on the server, not on the client.
    request_queue_size = 128

    def __init__(
        self,
        host: str,
        family: int,
        proto: int,
        tfo: bool,
        tls: ssl.SSLContext | None,
        handler: type[socketserver.BaseRequestHandler],
        port: int = 0,
    ) -> None:
        if not _linux.is_linux(_linux.PLATFORM):
            raise RuntimeError(
                f"http_fastpath.netlab's servers need Linux (TCP_INFO, TCP_FASTOPEN and "
                f"IPPROTO_MPTCP are Linux's numbers), not {_linux.PLATFORM}"
            )
        self.address_family = family
        super().__init__((host, port), handler, bind_and_activate=False)
        self.socket.close()
        self.socket = socket.socket(family, socket.SOCK_STREAM, proto)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if tfo:
            self.socket.setsockopt(socket.IPPROTO_TCP, _linux.TCP_FASTOPEN, 64)
        self.server_bind()
        self.server_activate()
        self.tls = tls
        self.records: list[Accepted] = []
        self.records_by_conn: dict[int, Accepted] = {}
        self.open_conns: set[socket.socket] = set()
        self.lock = threading.Lock()

    def get_request(self) -> tuple[Any, Any]:
        conn, addr = self.socket.accept()
        # Like real HTTP servers: without TCP_NODELAY, Nagle holds a TLS server's second
        # small write until the client's delayed ACK (~40 ms per HTTPS response here).
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        info = _linux.read_tcp_info(conn)
        rec = Accepted(
            syn_data=bool(info and info.syn_data_acked),
            is_mptcp=_linux.read_is_mptcp(conn) if conn.proto == _linux.IPPROTO_MPTCP else False,
            peer=(addr[0], addr[1]),
        )
        wrapped: socket.socket = conn
        if self.tls is not None:
            wrapped = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        with self.lock:
            self.records.append(rec)
            self.records_by_conn[id(wrapped)] = rec
            self.open_conns.add(wrapped)
        return wrapped, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10)
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.open_conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    def snapshot(self) -> list[Accepted]:
        """The connections accepted so far."""
        with self.lock:
            return list(self.records)

    def stop(self) -> None:
        """Stop serving, close the listener and shut every open connection down."""
        self.shutdown()
        self.server_close()
        with self.lock:
            conns = list(self.open_conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Server:
    """A threaded HTTP/1.1 (or HTTPS) server on a fresh loopback address."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        tfo: bool = True,
        mptcp: bool = False,
        host: str | None = None,
        family: int = socket.AF_INET,
        port: int = 0,
    ) -> None:
        self.host = host or (next_loopback() if family == socket.AF_INET else "::1")
        proto = _linux.IPPROTO_MPTCP if mptcp else socket.IPPROTO_TCP
        self.httpd = RecordingServer(self.host, family, proto, tfo, tls, Handler, port)
        self.port: int = self.httpd.server_address[1]
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def records(self) -> list[Accepted]:
        return self.httpd.snapshot()

    def __enter__(self) -> Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.stop()
        self._thread.join(5)


@contextlib.contextmanager
def silent_listener(host: str, backlog: int = 8, port: int = 0) -> Iterator[int]:
    """Yield the port of a listener nobody accepts on (``host`` IPv4 or IPv6).

    The kernel completes handshakes and no byte ever comes back: a *read* timeout.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        yield sock.getsockname()[1]


@contextlib.contextmanager
def full_backlog(host: str, port: int = 0) -> Iterator[int]:
    """Yield the port of a listener whose accept queue is full (``host`` IPv4 or IPv6).

    The kernel drops new SYNs: a *connect* timeout (three filler connections fill a
    ``listen(0)`` queue on Linux) -- a silent address, like a dead IPv6 route or a
    firewall that drops, for Happy Eyeballs next to a live server on ``port`` of the other
    family (see :func:`._names.resolving`).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with silent_listener(host, 0, port) as port:
        fillers: list[socket.socket] = []
        try:
            for _ in range(3):
                filler = socket.socket(family)
                fillers.append(filler)
                filler.setblocking(False)
                filler.connect_ex((host, port))
            yield port
        finally:
            for filler in fillers:
                filler.close()
