"""The explicit interface between the HTTP/3 layer and a QUIC backend.

``aioquic.h3.connection.H3Connection`` calls an *implicit* QUIC interface (anchor note
in STYLE.md). :class:`QuicStreamLayer` spells out exactly what it uses, and
:class:`QuicBackend` adds the sans-IO driving surface both backends share:

* ``userspace`` (:mod:`http_fastpath.http3._quic_userspace`): aioquic's ``QuicConnection`` over a
  UDP socket;
* ``kernel`` (:mod:`http_fastpath.http3._quic_kernel`): an ``IPPROTO_QUIC`` socket whose TLS
  handshake runs in userspace.

Time is always passed in (``now``, ``time.monotonic()`` seconds); a backend never blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aioquic.quic.events import QuicEvent

    from ..._core.info import ConnectionInfo

__all__ = ["H3Configuration", "QuicBackend", "QuicStreamLayer"]


class H3Configuration(Protocol):
    """The part of ``QuicConfiguration`` that ``H3Connection`` reads."""

    @property
    def is_client(self) -> bool: ...


class QuicStreamLayer(Protocol):
    """Everything ``aioquic.h3.connection.H3Connection`` (aioquic 1.7.2) calls on its ``quic``.

    Two private attributes are part of it because ``H3Connection`` reads them:
    ``_quic_logger`` (always None here) and ``_remote_max_datagram_frame_size`` (None
    unless the backend negotiated RFC 9221 datagrams).
    """

    @property
    def configuration(self) -> H3Configuration: ...

    @property
    def _quic_logger(self) -> None: ...

    @property
    def _remote_max_datagram_frame_size(self) -> int | None: ...

    def get_next_available_stream_id(self, is_unidirectional: bool = False) -> int: ...

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None: ...

    def reset_stream(self, stream_id: int, error_code: int) -> None: ...

    def close(
        self, error_code: int = 0, frame_type: int | None = None, reason_phrase: str = ""
    ) -> None: ...

    def send_datagram_frame(self, data: bytes) -> None: ...


class QuicBackend(QuicStreamLayer, Protocol):
    """A QUIC connection plus its socket, driven without blocking by a sync or async loop.

    The driver loop is: wait until :meth:`fileno` is readable (or writable when
    :meth:`wants_write`), at most until :meth:`next_timer`; then :meth:`receive`,
    :meth:`handle_timer` when due, drain :meth:`next_event`, and :meth:`transmit`.
    """

    #: ``"userspace"`` or ``"kernel"``.
    name: str

    def fileno(self) -> int: ...

    def start(self, now: float) -> None:
        """Begin the handshake (the first flight is queued; call :meth:`transmit`)."""

    def early_data_ready(self) -> bool:
        """True after :meth:`start` when stream data may be sent before the handshake
        completes: the connection resumes a session whose ticket allows 0-RTT and the
        0-RTT keys are installed. Whether the server took it comes with
        ``HandshakeCompleted.early_data_accepted``; data it refused is sent again at
        1-RTT by the backend (the application sends nothing twice)."""

    def receive(self, now: float) -> None:
        """Read everything the socket has (never blocks); raises OSError on socket errors."""

    def transmit(self, now: float) -> None:
        """Send what is queued, as far as the socket accepts without blocking."""

    def wants_write(self) -> bool:
        """True when queued output waits for the socket to become writable."""

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` must run next (``now`` clock), or None."""

    def handle_timer(self, now: float) -> None: ...

    def next_event(self) -> QuicEvent | None:
        """The next ``aioquic.quic.events`` event: ``HandshakeCompleted``,
        ``StreamDataReceived``, ``StreamReset``, ``ConnectionTerminated``..., or None."""

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        """Ask the peer to stop sending on ``stream_id`` (STOP_SENDING)."""

    def connection_info(self) -> ConnectionInfo: ...

    def close_socket(self) -> None:
        """Release the socket (after :meth:`close` and a last :meth:`transmit`)."""
