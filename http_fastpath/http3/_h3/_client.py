"""A sans-IO HTTP/3 client over any :class:`~._stream_layer.QuicBackend`.

:class:`H3Client` owns one QUIC connection and its ``aioquic.h3.connection.H3Connection``
and routes HTTP/3 events to per-request :class:`StreamState` objects. It never blocks and
never reads the clock: the sync and async drivers (:mod:`http_fastpath.http3._drivers`) wait on
:meth:`H3Client.fileno` and call :meth:`H3Client.step` with ``now``.

0-RTT: when the backend resumes a session that allows early data
(:meth:`~._stream_layer.QuicBackend.early_data_ready`), the HTTP/3 layer starts at once
and :meth:`H3Client.send_request` accepts ``early=True`` requests before the handshake
completes. Which requests may go early is the caller's decision
(:func:`._resumption.may_send_early`); each one's outcome is ``StreamState.early``.
"""

from __future__ import annotations

import collections
import errno
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from . import require_aioquic

require_aioquic()

from aioquic.h3.connection import ErrorCode, H3Connection  # noqa: E402
from aioquic.h3.events import DataReceived, HeadersReceived  # noqa: E402
from aioquic.quic.events import (  # noqa: E402
    ConnectionTerminated,
    HandshakeCompleted,
    StreamDataReceived,
    StreamReset,
)

from ._errors import H3ConnectError, H3StreamError, H3TLSError  # noqa: E402

if TYPE_CHECKING:
    from aioquic.quic.connection import QuicConnection

    from ._stream_layer import QuicBackend

__all__ = [
    "H3_INTERNAL_ERROR",
    "H3_NO_ERROR",
    "H3_REQUEST_CANCELLED",
    "H3Client",
    "StreamState",
    "request_headers",
]

#: HTTP/3 application error code for a clean close (RFC 9114 §8.1).
H3_NO_ERROR = int(ErrorCode.H3_NO_ERROR)
#: ...and for a response the client no longer wants.
H3_REQUEST_CANCELLED = int(ErrorCode.H3_REQUEST_CANCELLED)
H3_INTERNAL_ERROR = int(ErrorCode.H3_INTERNAL_ERROR)
_QUIC_CRYPTO_ERROR = 0x100  # RFC 9000 §20.1: 0x0100-0x01ff carry a TLS alert
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"host"}
)


def request_headers(
    method: bytes,
    scheme: bytes,
    authority: bytes,
    path: bytes,
    headers: Sequence[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The HTTP/3 header list: pseudo-headers first, names lowercased, hop-by-hop dropped.

    RFC 9114 §4.2: connection-specific fields must not appear (``Host`` becomes
    ``:authority``; ``TE`` is kept only as ``trailers``).
    """
    out = [(b":method", method), (b":scheme", scheme), (b":authority", authority), (b":path", path)]
    for name, value in headers:
        lname = name.lower()
        if lname in _HOP_BY_HOP or (lname == b"te" and value.lower() != b"trailers"):
            continue
        out.append((lname, value))
    return out


class StreamState:
    """One request stream: the response as it arrives."""

    __slots__ = ("chunks", "early", "ended", "error", "headers", "status", "stream_id")

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        #: None (sent at 1-RTT), "sent" (in 0-RTT, outcome unknown), "accepted", "rejected"
        self.early: str | None = None
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: collections.deque[bytes] = collections.deque()
        self.ended = False
        self.error: Exception | None = None

    @property
    def has_headers(self) -> bool:
        return self.status is not None or self.error is not None

    @property
    def readable(self) -> bool:
        """True when :meth:`read_chunk` will not need more network input."""
        return bool(self.chunks) or self.ended or self.error is not None

    def read_chunk(self) -> bytes:
        """The next body chunk; ``b""`` at the end; raises the stream's error."""
        if self.chunks:
            return self.chunks.popleft()
        if self.error is not None:
            raise self.error
        return b""


class H3Client:
    """HTTP/3 over one QUIC connection (client side, sans-IO)."""

    def __init__(self, backend: QuicBackend, *, host: str, port: int) -> None:
        self.backend = backend
        self.host = host
        self.port = port
        self.handshake_done = False
        self.error: Exception | None = None
        self.alpn: str | None = None
        #: from the handshake: the TLS session was resumed; the server took 0-RTT
        self.resumed: bool | None = None
        self.early_data_accepted: bool | None = None
        self._h3: H3Connection | None = None
        self._sent_early: list[StreamState] = []
        self._streams: dict[int, StreamState] = {}
        self._closed = False
        self._terminated = False  # the peer (or the QUIC layer) ended the connection

    # -- driving -------------------------------------------------------------------------

    def fileno(self) -> int:
        return self.backend.fileno()

    @property
    def usable(self) -> bool:
        """True while new requests may be sent on this connection."""
        return self.handshake_done and self.error is None and not self._closed

    @property
    def early_open(self) -> bool:
        """True while the handshake is under way and requests may go in 0-RTT."""
        return (
            self._h3 is not None
            and not self.handshake_done
            and self.error is None
            and not self._closed
        )

    @property
    def alive(self) -> bool:
        """True while the connection can still carry requests (now or once handshaken)."""
        return self.usable or self.early_open

    def start(self, now: float) -> None:
        """Queue and send the first flight of the handshake (with 0-RTT keys when the
        backend resumes a session that allows early data)."""
        try:
            self.backend.start(now)
            if self.backend.early_data_ready():
                self._h3 = H3Connection(cast("QuicConnection", self.backend))
            self.backend.transmit(now)
        except OSError as exc:
            self._fail(self._os_error(exc))

    def wait_time(self, now: float, deadline: float | None) -> float | None:
        """Seconds to wait for the socket before :meth:`step` is due (None: no limit)."""
        points = [t for t in (self.backend.next_timer(), deadline) if t is not None]
        if not points:
            return None
        return max(0.0, min(points) - now)

    def step(self, now: float, readable: bool) -> None:
        """Process socket input (when ``readable``), timers and events; send what is due."""
        if self._closed:
            return
        try:
            if readable:
                self.backend.receive(now)
            timer = self.backend.next_timer()
            if timer is not None and timer <= now:
                self.backend.handle_timer(now)
            self._process_events()
            if not self._closed:
                self.backend.transmit(now)
        except OSError as exc:
            self._fail(self._os_error(exc))

    def close(self, now: float) -> None:
        """Close the connection and release the socket (idempotent).

        H3_NO_ERROR after an orderly life; H3_INTERNAL_ERROR when it failed here (the peer
        would otherwise see a bare 0x0); nothing when the peer closed it already.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self.error is None:
                self.backend.close(error_code=H3_NO_ERROR)
                self.backend.transmit(now)
            elif not self._terminated:
                self.backend.close(error_code=H3_INTERNAL_ERROR, reason_phrase="client error")
                self.backend.transmit(now)
        except OSError:
            pass
        finally:
            self.backend.close_socket()
        if self.error is None:
            self.error = H3StreamError("the HTTP/3 connection was closed")
        for state in self._streams.values():
            if state.error is None and not state.ended:
                state.error = self.error

    # -- requests ------------------------------------------------------------------------

    def send_request(
        self,
        method: bytes,
        scheme: bytes,
        authority: bytes,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        *,
        early: bool = False,
    ) -> StreamState:
        """Open a request stream and queue the request (sent by the next :meth:`step`).

        Before the handshake completes only with ``early=True`` and :attr:`early_open`:
        the request then rides in 0-RTT.
        """
        sent_early = early and self.early_open
        if self._h3 is None or not (self.usable or sent_early):
            raise self.error or H3StreamError("the HTTP/3 connection is not established")
        stream_id = self.backend.get_next_available_stream_id()
        state = StreamState(stream_id)
        self._streams[stream_id] = state
        if sent_early:
            state.early = "sent"
            self._sent_early.append(state)
        h3_headers = request_headers(method, scheme, authority, path, headers)
        self._h3.send_headers(stream_id, h3_headers, end_stream=not body)
        if body:
            self._h3.send_data(stream_id, body, end_stream=True)
        return state

    def forget(self, state: StreamState) -> None:
        """Drop a stream's state; a response closed before its end gets STOP_SENDING."""
        if self._streams.pop(state.stream_id, None) is None:
            return
        if not state.ended and state.error is None and self.usable:
            try:
                self.backend.stop_stream(state.stream_id, H3_REQUEST_CANCELLED)
            except OSError:
                pass  # the stream is gone either way

    # -- internals -----------------------------------------------------------------------

    def _os_error(self, exc: OSError) -> Exception:
        where = f"{self.host}:{self.port} ({self.backend.name} QUIC)"
        err: OSError
        if not self.handshake_done:
            err = H3ConnectError(exc.errno or errno.ECONNABORTED, f"{exc.strerror or exc}: {where}")
        else:
            err = H3StreamError(exc.errno or errno.EIO, f"{exc.strerror or exc}: {where}")
        err.__cause__ = exc
        return err

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        for state in self._streams.values():
            if state.error is None and not state.ended:
                state.error = self.error

    def _process_events(self) -> None:
        while (event := self.backend.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                self._on_handshake(event)
            elif isinstance(event, ConnectionTerminated):
                self._on_terminated(event)
            elif self._h3 is not None and isinstance(event, (StreamDataReceived, StreamReset)):
                if isinstance(event, StreamReset) and event.stream_id in self._streams:
                    state = self._streams[event.stream_id]
                    state.error = H3StreamError(
                        errno.ECONNRESET,
                        f"the server reset the request stream (error code {event.error_code:#x})",
                    )
                for h3_event in self._h3.handle_event(event):
                    self._route(h3_event)

    def _on_handshake(self, event: HandshakeCompleted) -> None:
        self.alpn = event.alpn_protocol
        self.resumed = event.session_resumed
        self.early_data_accepted = event.early_data_accepted
        outcome = "accepted" if event.early_data_accepted else "rejected"
        for state in self._sent_early:
            state.early = outcome
        self._sent_early.clear()
        if event.alpn_protocol != "h3":
            self._fail(
                H3TLSError(
                    errno.EPROTO,
                    f"{self.host}:{self.port} did not negotiate ALPN h3"
                    f" (got {event.alpn_protocol!r})",
                )
            )
            return
        self.handshake_done = True
        # H3Connection is typed against QuicConnection; QuicStreamLayer is exactly the
        # subset it calls (checked by tests/unit/test_http3_core.py).
        if self._h3 is None:
            self._h3 = H3Connection(cast("QuicConnection", self.backend))

    def _on_terminated(self, event: ConnectionTerminated) -> None:
        self._terminated = True
        code, reason = event.error_code, event.reason_phrase
        where = f"{self.host}:{self.port}"
        if not self.handshake_done:
            if _QUIC_CRYPTO_ERROR <= code <= _QUIC_CRYPTO_ERROR + 0xFF:
                alert = code - _QUIC_CRYPTO_ERROR
                error: Exception = H3TLSError(
                    errno.EPROTO, f"TLS handshake with {where} failed (alert {alert}): {reason}"
                )
            else:
                error = H3ConnectError(
                    errno.ECONNABORTED,
                    f"QUIC connection to {where} closed during the handshake"
                    f" (error code {code:#x}): {reason}",
                )
        else:
            error = H3StreamError(
                errno.ECONNRESET,
                f"the HTTP/3 connection to {where} was closed (error code {code:#x}): {reason}",
            )
        self._fail(error)

    def _route(self, event: object) -> None:
        if isinstance(event, HeadersReceived):
            state = self._streams.get(event.stream_id)
            if state is None:
                return
            if state.status is None:
                self._on_headers(state, event.headers)
            # A second HEADERS frame carries trailers: ignored, as stock clients do.
            if event.stream_ended:
                state.ended = True
        elif isinstance(event, DataReceived):
            state = self._streams.get(event.stream_id)
            if state is None:
                return
            if event.data:
                state.chunks.append(event.data)
            if event.stream_ended:
                state.ended = True

    def _on_headers(self, state: StreamState, headers: Sequence[tuple[bytes, bytes]]) -> None:
        status: int | None = None
        for name, value in headers:
            if name == b":status":
                try:
                    status = int(value)
                except ValueError:
                    status = None
            elif not name.startswith(b":"):
                state.headers.append((name, value))
        if status is None or not 100 <= status <= 999:
            state.error = H3StreamError(errno.EPROTO, "the response has no valid :status")
            return
        if status < 200:
            state.headers.clear()  # interim response (1xx): wait for the final one
            return
        state.status = status
