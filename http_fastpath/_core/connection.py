"""One TCP or TLS connection through the fast path, for any protocol: :func:`connect`.

The HTTP integrations are the usual way in. This is the dialer for everything else (a
probe, a protocol of your own over TCP): the same TCP Fast Open, MPTCP, Happy Eyeballs,
destination memory and :class:`ConnectionInfo`, with no HTTP client involved.
``http-fastpath probe`` is built on it.
"""

from __future__ import annotations

import ssl
from types import TracebackType

from .dialer import dial
from .info import ConnectionInfo
from .options import FastpathOptions
from .sockets import FastpathSocket
from .tls import TLSSocket

__all__ = ["FastpathConnection", "connect"]


class FastpathConnection:
    """A blocking client connection made by the fastpath dialer (see :func:`connect`).

    With TCP Fast Open the connect is deferred to the first write, so the first bytes
    ride in the SYN: the TLS ClientHello (``connect`` runs the handshake), or else what
    you pass to the first :meth:`sendall`. The timeout given to ``connect`` applies to
    every read and write. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, sock: FastpathSocket, tls: TLSSocket | None = None) -> None:
        self._sock = sock
        self._tls = tls

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS session (``selected_alpn_protocol()``, ``version()``, ``getpeercert()``);
        None over plain TCP."""
        return None if self._tls is None else self._tls.ssl_object

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data`` (encrypted over TLS); the first write completes a deferred
        connect, with ``data`` in the SYN when the options allow it."""
        (self._sock if self._tls is None else self._tls).sendall(data)

    def recv(self, max_bytes: int) -> bytes:
        """Read up to ``max_bytes`` (decrypted over TLS); ``b""`` at the end of the stream."""
        if self._tls is None:
            return self._sock.recv(max_bytes)
        return self._tls.recv(max_bytes)

    def connection_info(self) -> ConnectionInfo:
        """What the kernel says about this connection: TCP Fast Open, MPTCP, RTT, fallbacks
        (see :class:`ConnectionInfo`). Read it before :meth:`close`."""
        return self._sock.connection_info()

    def close(self) -> None:
        """Close the socket (no TLS close_notify)."""
        self._sock.close()

    def __enter__(self) -> FastpathConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def connect(
    host: str,
    port: int,
    *,
    options: FastpathOptions | None = None,
    timeout: float | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> FastpathConnection:
    """Open a TCP connection to ``host``, ``port`` through the fast path; TLS with ``ssl_context``.

    ``options`` defaults to ``FastpathOptions()`` (TCP Fast Open and MPTCP on); ``timeout``
    (seconds, None: wait forever) bounds the connect and each later read and write. With
    ``ssl_context`` the TLS handshake runs before this returns, its ClientHello riding in
    the SYN (``server_hostname``: for SNI and the certificate check, ``host`` by default).

    Errors: ``socket.gaierror`` (resolution), :class:`DialError` / :class:`DialTimeout`
    (connect; with TCP Fast Open and no TLS they show up on the first write instead),
    ``ssl.SSLError`` (handshake).
    """
    sock = dial(host, port, options=options or FastpathOptions(), timeout=timeout)
    if ssl_context is None:
        return FastpathConnection(sock)
    try:
        name = host if server_hostname is None else server_hostname
        tls = TLSSocket(sock, ssl_context, server_hostname=name)
        tls.do_handshake()
    except BaseException:
        sock.close()
        raise
    return FastpathConnection(sock, tls)
