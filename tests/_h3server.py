"""A real HTTP/3 server for the tests: aioquic's own asyncio server API in a thread.

Routes: ``/`` (text), ``/echo`` (body back, ``x-method``), ``/bytes?n=N`` (N pseudo-random
bytes, ``x-sha256`` of them), ``/status/NNN``, ``/reset`` (headers and 10 body bytes, then the
stream is reset), ``/reset-early`` (reset before the headers), ``/slow?s=S`` (answers after S seconds). Records the requests it saw, the number of
QUIC connections and the error code each connection was closed with.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme
from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import (
    ConnectionTerminated,
    ProtocolNegotiated,
    QuicEvent,
    StopSendingReceived,
)


def payload(n: int) -> bytes:
    """The deterministic body of ``/bytes?n=N``."""
    return random.Random(n).randbytes(n)


class _Protocol(QuicConnectionProtocol):
    server: H3TestServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._h3: H3Connection | None = None
        self._requests: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}
        self.server.connections += 1

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._h3 = H3Connection(self._quic)
        elif isinstance(event, ConnectionTerminated):
            self.server.close_codes.append(event.error_code)
        elif isinstance(event, StopSendingReceived):
            self.server.stop_sending.append((event.stream_id, event.error_code))
        if self._h3 is not None:
            for h3_event in self._h3.handle_event(event):
                self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            self._requests[event.stream_id] = (list(event.headers), bytearray())
            if event.stream_ended:
                self._respond(event.stream_id)
        elif isinstance(event, DataReceived) and event.stream_id in self._requests:
            self._requests[event.stream_id][1].extend(event.data)
            if event.stream_ended:
                self._respond(event.stream_id)

    def _send(self, sid: int, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        assert self._h3 is not None
        self._h3.send_headers(
            sid,
            [
                (b":status", str(status).encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        )
        self._h3.send_data(sid, body, end_stream=True)
        self.transmit()

    def _reset(self, sid: int) -> None:
        self._quic.reset_stream(sid, ErrorCode.H3_INTERNAL_ERROR)
        self.transmit()

    def _respond(self, sid: int) -> None:
        assert self._h3 is not None
        headers, body = self._requests.pop(sid)
        h = dict(headers)
        method, path = h[b":method"].decode(), h[b":path"].decode()
        self.server.requests.append((method, path, headers, bytes(body)))
        url = urlsplit(path)
        query = parse_qs(url.query)
        if url.path == "/":
            self._send(sid, 200, b"hello over h3", [(b"content-type", b"text/plain")])
        elif url.path == "/echo":
            self._send(sid, 200, bytes(body), [(b"x-method", method.encode())])
        elif url.path == "/bytes":
            data = payload(int(query["n"][0]))
            digest = hashlib.sha256(data).hexdigest().encode()
            self._send(sid, 200, data, [(b"x-sha256", digest)])
        elif url.path.startswith("/status/"):
            self._send(sid, int(url.path.rsplit("/", 1)[1]), b"status body", [])
        elif url.path == "/reset":  # headers and part of the body, then a reset
            self._h3.send_headers(sid, [(b":status", b"200"), (b"content-length", b"1000")])
            self._h3.send_data(sid, b"x" * 10, end_stream=False)
            self.transmit()
            asyncio.get_running_loop().call_later(0.1, self._reset, sid)
        elif url.path == "/reset-early":  # reset before any response
            self._reset(sid)
        elif url.path == "/slow":
            delay = float(query["s"][0])
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self._send, sid, 200, b"late", [])
        else:
            self._send(sid, 404, b"not found", [])


class H3TestServer:
    """``with H3TestServer(ca, "127.0.0.1") as srv: srv.url("/")``."""

    def __init__(self, ca: trustme.CA, *identities: str, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.connections = 0
        self.requests: list[tuple[str, str, list[tuple[bytes, bytes]], bytes]] = []
        self.close_codes: list[int] = []
        self.stop_sending: list[tuple[int, int]] = []
        self._cert = ca.issue_cert(*(identities or (host,)))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: QuicServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    def url(self, path: str, host: str | None = None) -> str:
        return f"https://{host or self.host}:{self.port}{path}"

    def __enter__(self) -> H3TestServer:
        self._thread = threading.Thread(target=self._run, name="h3-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the HTTP/3 test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def wait_for(self, cond: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Bounded wait for the server thread to record something."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.02)
        return cond()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        config = QuicConfiguration(
            is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=None
        )
        chain = b"".join(blob.bytes() for blob in self._cert.cert_chain_pems)
        with tempfile.TemporaryDirectory() as tmp:
            certfile, keyfile = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            with open(certfile, "wb") as f:
                f.write(chain)
            self._cert.private_key_pem.write_to_path(keyfile)
            config.load_cert_chain(certfile, keyfile)
        server_self = self

        class Proto(_Protocol):
            server = server_self

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._server = await serve(self.host, 0, configuration=config, create_protocol=Proto)
        self.port = self._server._transport.get_extra_info("sockname")[1]
        self._ready.set()
        await self._stop.wait()
        self._server.close()
        await asyncio.sleep(0)
