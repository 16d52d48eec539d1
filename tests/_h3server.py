"""A real HTTP/3 server for the tests: aioquic's own asyncio server API in a thread.

Routes: ``/`` (text), ``/echo`` (body back, ``x-method``), ``/bytes?n=N`` (N pseudo-random
bytes, ``x-sha256`` of them), ``/status/NNN``, ``/reset`` (headers and 10 body bytes, then the
stream is reset), ``/reset-early`` (reset before the headers), ``/slow?s=S`` (answers after S seconds),
``/too-early`` (425 when the request arrived in 0-RTT, RFC 8470). Records the requests it saw,
the number of QUIC connections and the error code each connection was closed with.

Session resumption and 0-RTT, from the server's side (the evidence the client's tests use):
the server issues session tickets (single use, as aioquic's own example server keeps them)
unless ``tickets=False``; ``early_data="accept"`` (default) takes 0-RTT on a resumed
connection, ``"reject"`` resumes but refuses 0-RTT (EncryptedExtensions without
``early_data``, no 0-RTT keys: the client's early packets cannot be read).
:attr:`H3TestServer.handshakes` has ``(session_resumed, early_data_accepted)`` per
connection as the server's TLS stack saw it, and :attr:`H3TestServer.epochs` the packet
type (``"0rtt"`` or ``"1rtt"``) that carried the first STREAM frame of each request, in
the order of :attr:`H3TestServer.requests`.
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
from aioquic import tls
from aioquic._buffer import Buffer
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    ProtocolNegotiated,
    QuicEvent,
    StopSendingReceived,
)

_STREAM_FRAMES = range(0x08, 0x10)


def payload(n: int) -> bytes:
    """The deterministic body of ``/bytes?n=N``."""
    return random.Random(n).randbytes(n)


class _Protocol(QuicConnectionProtocol):
    server: H3TestServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._h3: H3Connection | None = None
        self._requests: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}
        self._first_epoch: dict[int, str] = {}
        self.server.connections += 1
        self.server.protocols.append(self)
        self._watch_stream_epochs()
        if self.server.early_data == "reject":
            self._refuse_early_data()

    # aioquic has no switch for either of these; both hook private attributes of the pinned
    # aioquic (1.7.2) on this server-side connection only, before its first datagram.

    def _watch_stream_epochs(self) -> None:
        """Note the packet type that carried the first STREAM frame of each stream."""
        handlers = self._quic._QuicConnection__frame_handlers  # type: ignore[attr-defined]
        for frame_type in _STREAM_FRAMES:
            handler, epochs = handlers[frame_type]

            def watched(context: Any, ftype: int, buf: Buffer, handler: Any = handler) -> None:
                start = buf.tell()
                stream_id = buf.pull_uint_var()
                buf.seek(start)
                name = "0rtt" if context.epoch == tls.Epoch.ZERO_RTT else "1rtt"
                self._first_epoch.setdefault(stream_id, name)
                handler(context, ftype, buf)

            handlers[frame_type] = (watched, epochs)

    def _refuse_early_data(self) -> None:
        """Resume, but refuse 0-RTT: the 0-RTT read key is never installed and the
        EncryptedExtensions (built after this callback) carry no ``early_data``."""
        quic: Any = self._quic
        install = quic._update_traffic_key

        def update_traffic_key(
            direction: tls.Direction, epoch: tls.Epoch, suite: tls.CipherSuite, secret: bytes
        ) -> None:
            if epoch == tls.Epoch.ZERO_RTT and direction == tls.Direction.DECRYPT:
                quic.tls.early_data_accepted = False
                return
            install(direction, epoch, suite, secret)

        quic._update_traffic_key = update_traffic_key

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._h3 = H3Connection(self._quic)
        elif isinstance(event, HandshakeCompleted):
            self.server.handshakes.append((event.session_resumed, event.early_data_accepted))
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
        epoch = self._first_epoch.get(sid, "1rtt")
        self.server.epochs.append(epoch)
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
        elif url.path == "/too-early":
            if epoch == "0rtt":
                self._send(sid, 425, b"too early", [])
            else:
                self._send(sid, 200, b"not too early", [])
        elif url.path == "/slow":
            delay = float(query["s"][0])
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self._send, sid, 200, b"late", [])
        else:
            self._send(sid, 404, b"not found", [])


class H3TestServer:
    """``with H3TestServer(ca, "127.0.0.1") as srv: srv.url("/")``."""

    def __init__(
        self,
        ca: trustme.CA,
        *identities: str,
        host: str = "127.0.0.1",
        tickets: bool = True,
        early_data: str = "accept",
    ) -> None:
        if early_data not in ("accept", "reject"):
            raise ValueError(early_data)
        self.host = host
        self.port = 0
        self.connections = 0
        self.tickets = tickets
        self.early_data = early_data
        self.requests: list[tuple[str, str, list[tuple[bytes, bytes]], bytes]] = []
        self.epochs: list[str] = []
        self.handshakes: list[tuple[bool, bool]] = []
        self.tickets_issued = 0
        self.protocols: list[_Protocol] = []
        self._ticket_store: dict[bytes, tls.SessionTicket] = {}
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

    def close_connections(self) -> None:
        """Close every QUIC connection (H3_NO_ERROR), as a server going idle does; returns
        once the CONNECTION_CLOSE datagrams were handed to the kernel."""

        async def close_all() -> None:
            for proto in self.protocols:
                proto._quic.close(error_code=ErrorCode.H3_NO_ERROR)
                proto.transmit()

        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(5)

    def forget_tickets(self) -> None:
        """Lose every ticket issued so far (a server restart): the next handshake is full."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._ticket_store.clear)
        self.wait_for(lambda: not self._ticket_store)

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

        def add_ticket(ticket: tls.SessionTicket) -> None:
            self.tickets_issued += 1
            self._ticket_store[ticket.ticket] = ticket

        def pop_ticket(label: bytes) -> tls.SessionTicket | None:
            return self._ticket_store.pop(label, None)  # single use: no replayed resumption

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._server = await serve(
            self.host,
            0,
            configuration=config,
            create_protocol=Proto,
            session_ticket_fetcher=pop_ticket if self.tickets else None,
            session_ticket_handler=add_ticket if self.tickets else None,
        )
        transport = self._server._transport
        assert transport is not None  # serve() returns a bound server
        self.port = transport.get_extra_info("sockname")[1]
        self._ready.set()
        await self._stop.wait()
        self._server.close()
        await asyncio.sleep(0)
