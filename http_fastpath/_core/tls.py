"""TLS over ``ssl.MemoryBIO`` for blocking sockets.

CPython's ``SSLContext.wrap_socket`` cannot wrap a TCP Fast Open socket whose connect
is deferred (``SSLSocket`` sees ``ENOTCONN`` and its CVE-2023-40217 check raises
``BlockingIOError``). Driving an ``ssl.SSLObject`` through memory BIOs instead lets the
ClientHello be the socket's first write, so it rides in the SYN. Certificate and
hostname checks are OpenSSL's, configured by the caller's ``SSLContext`` exactly as
``wrap_socket`` would use it.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import TypeVar

from . import trace as _trace

__all__ = ["TLSSocket"]

_T = TypeVar("_T")
_READ_SIZE = 65536


class TLSSocket:
    """A blocking TLS client connection over a (possibly pending) socket."""

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None,
    ) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )

    def first_flight(self) -> bytes:
        """Start the handshake without I/O: the ClientHello, for the caller to send first."""
        try:
            self.ssl_object.do_handshake()
        except ssl.SSLWantReadError:
            self._waiting = True  # for the server's flight
        return self._outgoing.read()

    _waiting = False

    def do_handshake(self) -> None:
        """Run the TLS handshake (the socket's timeout applies to each read and write)."""
        if self._waiting:  # the ClientHello went out: read the answer before asking OpenSSL
            self._waiting = False
            self._fill()
        self._retry(self.ssl_object.do_handshake)
        _trace.mark("tls_done")

    def recv(self, max_bytes: int) -> bytes:
        """Read up to ``max_bytes`` of plaintext; ``b""`` at a clean end of stream."""
        # The hot path of every response: kept inline (no closures, no helper calls).
        ssl_object, incoming, outgoing = self.ssl_object, self._incoming, self._outgoing
        try:
            if not incoming.pending and not ssl_object.pending() and not incoming.eof:
                # Nothing buffered: read the socket first, rather than have OpenSSL raise
                # SSLWantReadError (an exception per response) to say so.
                self._fill()
            while True:
                try:
                    data = ssl_object.read(max_bytes)
                except ssl.SSLWantReadError:
                    if outgoing.pending:
                        self.sock.sendall(outgoing.read())
                    self._fill()
                    continue
                if outgoing.pending:  # e.g. a TLS 1.3 KeyUpdate reply
                    self.sock.sendall(outgoing.read())
                return data
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            # A clean close_notify, or a ragged EOF: SSLSocket's suppress_ragged_eofs=True.
            return b""

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send all of ``data``."""
        view = memoryview(data)
        write = self.ssl_object.write
        while view:
            try:
                written = write(view)
            except ssl.SSLWantReadError:  # renegotiation-like states: read, then retry
                self._flush()
                self._fill()
                continue
            view = view[written:]
        self._flush()

    def close(self) -> None:
        """Close the socket (no close_notify: like httpcore, the connection is discarded)."""
        self.sock.close()

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self.sock.sendall(pending)

    def _fill(self) -> None:
        data = self.sock.recv(_READ_SIZE)
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    def _retry(self, func: Callable[[], _T]) -> _T:
        while True:
            try:
                result = func()
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
                continue
            self._flush()
            return result
