"""EXPERIMENTAL userspace QUIC backend: aioquic's sans-IO ``QuicConnection`` over a UDP socket.

Implements :class:`http_fastpath.http3._h3._stream_layer.QuicBackend`. The UDP socket comes from
:func:`http_fastpath._core.sockets.new_socket`, is connected to the server's address (so ICMP
"port unreachable" surfaces as ``ECONNREFUSED``) and is non-blocking; the drivers in
:mod:`http_fastpath.http3._drivers` wait on it.

Resumption and 0-RTT: ``configuration.session_ticket`` resumes a session; tickets the
server issues on an ``h3`` connection go to ``session_ticket_handler``. When the server
refuses 0-RTT it has read none of the 0-RTT packets (RFC 9001 section 4.6.2: it installs
no 0-RTT key and must not process them); they are declared lost at once, so their stream
data goes again in the next 1-RTT flight rather than after a loss-detection timeout.
RFC 9001 asks a client to reset its stream state on rejection; aioquic cannot, so the
data goes again on the same streams. The server sees exactly a request first sent at
1-RTT; ALPN is still checked (h3 or the connection fails) and the transport parameters
in force are the ones of the new handshake.
"""

from __future__ import annotations

import collections
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._h3 import require_aioquic

require_aioquic()

from aioquic import tls  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration  # noqa: E402
from aioquic.quic.connection import QuicConnection, QuicConnectionAdapter  # noqa: E402
from aioquic.quic.events import ConnectionTerminated, QuicEvent  # noqa: E402
from aioquic.quic.packet import QuicPacketType  # noqa: E402

from .._core.addresses import Address  # noqa: E402
from .._core.info import ConnectionInfo, TFOStatus  # noqa: E402
from .._core.log import quic_logger  # noqa: E402
from .._core.sockets import new_socket  # noqa: E402

if TYPE_CHECKING:
    from ._h3._stream_layer import QuicBackend

__all__ = ["UserspaceQuic"]

_RECV_SIZE = 65535


class UserspaceQuic:
    """aioquic ``QuicConnection`` + a connected, non-blocking UDP socket."""

    name = "userspace"

    def __init__(
        self,
        address: Address,
        configuration: QuicConfiguration,
        *,
        session_ticket_handler: Callable[[tls.SessionTicket], None] | None = None,
    ) -> None:
        family, sockaddr = address
        self._addr = sockaddr
        self._ticket_handler = session_ticket_handler
        self._quic = QuicConnection(
            configuration=configuration,
            session_ticket_handler=None if session_ticket_handler is None else self._on_ticket,
        )
        # aioquic logs under "quic" through a private adapter: ours, under http_fastpath.quic
        self._quic._logger = QuicConnectionAdapter(
            quic_logger, dict(self._quic._logger.extra or {})
        )
        self._early: collections.deque[QuicEvent] = collections.deque()
        self._close_reported = False
        self._zero_rtt = False  # 0-RTT keys installed, the server's answer not yet known
        self._sock = new_socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            self._sock.setblocking(False)
            self._sock.connect(sockaddr)
        except OSError:
            self._sock.close()
            raise

    # -- QuicStreamLayer: delegated to aioquic ------------------------------------------

    @property
    def configuration(self) -> QuicConfiguration:
        return self._quic.configuration

    @property
    def _quic_logger(self) -> None:
        return None

    @property
    def _remote_max_datagram_frame_size(self) -> int | None:
        return self._quic._remote_max_datagram_frame_size

    def get_next_available_stream_id(self, is_unidirectional: bool = False) -> int:
        return self._quic.get_next_available_stream_id(is_unidirectional)

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self._quic.send_stream_data(stream_id, data, end_stream)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        self._quic.reset_stream(stream_id, error_code)

    def close(
        self, error_code: int = 0, frame_type: int | None = None, reason_phrase: str = ""
    ) -> None:
        self._quic.close(error_code=error_code, frame_type=frame_type, reason_phrase=reason_phrase)

    def send_datagram_frame(self, data: bytes) -> None:
        self._quic.send_datagram_frame(data)

    # -- QuicBackend: I/O ---------------------------------------------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    def start(self, now: float) -> None:
        self._quic.connect(self._addr, now)
        self._zero_rtt = self._early_keys_installed()

    def early_data_ready(self) -> bool:
        return self._zero_rtt and not self._close_reported

    def receive(self, now: float) -> None:
        while True:
            try:
                data = self._sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            self._quic.receive_datagram(data, self._addr, now)
        if self._zero_rtt and self._quic.tls.state == tls.State.CLIENT_POST_HANDSHAKE:
            self._zero_rtt = False
            if not self._quic.tls.early_data_accepted:
                self._resend_early(now)
        self._report_close_early()

    def transmit(self, now: float) -> None:
        for data, _addr in self._quic.datagrams_to_send(now):
            try:
                self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                break  # UDP: a dropped datagram is recovered by QUIC loss detection
        self._report_close_early()

    def wants_write(self) -> bool:
        return False

    def next_timer(self) -> float | None:
        return self._quic.get_timer()

    def handle_timer(self, now: float) -> None:
        self._quic.handle_timer(now)

    def next_event(self) -> QuicEvent | None:
        if self._early:
            return self._early.popleft()
        event = self._quic.next_event()
        if isinstance(event, ConnectionTerminated):
            if self._close_reported:
                return self._quic.next_event()
            self._close_reported = True
        return event

    def stop_stream(self, stream_id: int, error_code: int) -> None:
        self._quic.stop_stream(stream_id, error_code)

    def connection_info(self) -> ConnectionInfo:
        try:
            local = self._sock.getsockname()
        except OSError:
            local = None
        return ConnectionInfo(
            transport="quic",
            tfo=TFOStatus.NOT_APPLICABLE,
            socket_protocol="udp",
            local_address=_addr(local),
            peer_address=_addr(self._addr),
            quic_backend=self.name,
        )

    def close_socket(self) -> None:
        self._sock.close()

    def _on_ticket(self, ticket: tls.SessionTicket) -> None:
        # Only tickets of an h3 session: 0-RTT on it sends HTTP/3 before ALPN is confirmed.
        if self._ticket_handler is not None and self._quic.tls.alpn_negotiated == "h3":
            self._ticket_handler(ticket)

    # The three helpers below read private state of the pinned aioquic release.

    def _early_keys_installed(self) -> bool:
        cryptos: Any = getattr(self._quic, "_cryptos", {})
        pair = cryptos.get(tls.Epoch.ZERO_RTT)
        return pair is not None and pair.send.is_valid()

    def _resend_early(self, now: float) -> None:
        """The server refused 0-RTT: what those packets carried is lost, send it again.

        The server could not read them (it installed no 0-RTT key), so nothing in them
        was delivered: declaring them lost (not a congestion signal) makes aioquic queue
        their stream data for the next 1-RTT packet.
        """
        quic: Any = self._quic
        space = quic._spaces[tls.Epoch.ONE_RTT]
        early = [
            packet
            for packet in space.sent_packets.values()
            if packet.packet_type == QuicPacketType.ZERO_RTT
        ]
        if early:
            quic._loss._on_packets_lost(congestion_event=False, now=now, packets=early, space=space)

    def _report_close_early(self) -> None:
        # aioquic queues ConnectionTerminated only when its closing period (3 PTO) ends;
        # report a close (e.g. a TLS alert) at once. ``_close_event`` is private to the
        # pinned aioquic release.
        event: Any = getattr(self._quic, "_close_event", None)
        if isinstance(event, ConnectionTerminated) and not self._close_reported:
            self._close_reported = True
            self._early.append(event)


def _addr(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


if TYPE_CHECKING:

    def _implements_backend(backend: UserspaceQuic) -> QuicBackend:
        return backend
