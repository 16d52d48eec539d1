"""urllib3 connections whose sockets come from the fastpath dialer.

A thin shell: the dialer makes the socket (MPTCP, TCP Fast Open, fallbacks); this module
only plugs it into urllib3 2.x and translates errors so urllib3 (and requests) see
exactly the exceptions a stock connection raises.

- :class:`FastpathHTTPConnection` dials through :func:`http_fastpath._core.dialer.dial`. With
  TFO on the socket comes back *pending*; the request head (http.client's first
  ``send``) completes the connect with the request in the SYN when the replay policy
  allows it. A connect failure that only shows up on that first write is re-raised as
  ``NewConnectionError`` / ``ConnectTimeoutError`` so ``Retry(connect=N)`` counts it.
- :class:`FastpathHTTPSConnection` does TLS over ``ssl.MemoryBIO`` (urllib3's own
  ``SSLTransport`` and verification code) for direct connections, so the ClientHello is
  the first flight and rides in the SYN. CONNECT tunnels through an ``http://`` proxy use
  the stock code: the CONNECT request is the (replay-safe) first flight. Where TLS must
  go through ``SSLContext.wrap_socket`` (an ``https://`` proxy, urllib3's experimental
  HTTP/2, a context without ``wrap_bio``) the connect is completed first, without early
  data, because ``wrap_socket`` cannot take a pending socket.

The pools and pool managers that make these connections are in :mod:`.urllib3`; the TLS
over memory buffers and the shared contexts in :mod:`.urllib3_tls`.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import sys
import warnings
from typing import TYPE_CHECKING, Any

import urllib3
from urllib3 import connection as _u3_connection
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    SystemTimeWarning,
)
from urllib3.util import ssl_ as _u3_ssl
from urllib3.util.ssltransport import SSLTransport
from urllib3.util.timeout import Timeout

from .._core import dialer as _dialer
from .._core import trace as _trace
from .._core.exceptions import DialError, DialTimeout, FastpathError
from .._core.info import ConnectionInfo
from .._core.options import FastpathOptions
from .._core.proof import INFO_ATTR, new_proof, seal
from .._core.record import DialRecord
from .._core.sockets import FastpathSocket
from .urllib3_tls import (
    _WRAP_AND_VERIFY,
    _LeanSSLTransport,
    _wrap_verified,
    fast_tls_supported,
    shared_context,
)

if TYPE_CHECKING:
    from urllib3.response import HTTPResponse

__all__ = [
    "FastpathHTTPConnection",
    "FastpathHTTPSConnection",
    "ensure_stock_urllib3",
    "urllib3_future_problem",
]


# -- urllib3-future detection -------------------------------------------------------------


def urllib3_future_problem(module: Any = urllib3) -> str | None:
    """Why ``module`` (the imported ``urllib3``) is not the urllib3 we build on, or None.

    niquests installs urllib3-future, which takes over ``import urllib3`` (a ``.pth`` file)
    and creates its sockets elsewhere, so our connection classes would be bypassed or
    break. It is recognised by its version scheme (patch level >= 900, e.g. ``2.25.904``)
    and its extra top-level ``HttpVersion`` export.
    """
    version = str(getattr(module, "__version__", ""))
    parts = version.split(".")
    future_version = len(parts) >= 3 and parts[2].isdigit() and int(parts[2]) >= 900
    if not (future_version or hasattr(module, "HttpVersion")):
        return None
    return (
        f"the installed urllib3 ({version}) is urllib3-future (installed by niquests; it "
        "replaces 'import urllib3'), which http_fastpath's requests/urllib3 adapters do not "
        "support. Fix: use an environment without niquests, or reinstall stock urllib3 "
        "with: pip uninstall -y urllib3-future && pip install --force-reinstall "
        "'urllib3>=2,<3'"
    )


def ensure_stock_urllib3(module: Any = urllib3) -> None:
    """Raise :class:`FastpathError` when ``module`` is urllib3-future (see above)."""
    problem = urllib3_future_problem(module)
    if problem is not None:
        raise FastpathError(problem)


_DEFAULT_OPTIONS = FastpathOptions()
# The stock methods our overrides end in, called directly (a ``super()`` object per call
# costs more than the call): HTTPSConnection defines none of them
# (tests/loopback/test_urllib3.py checks it on every urllib3 the matrix runs).
_send, _getresponse, _close = HTTPConnection.send, HTTPConnection.getresponse, HTTPConnection.close
assert INFO_ATTR == "_http_fastpath_info"  # getresponse stores it by name


def _stock_str(obj: object, text: str) -> str:
    """``text`` (urllib3's ``__str__``) with our class name replaced by the stock base's.

    urllib3 names the class in error messages (``HTTPConnectionPool(host=..., port=...):
    Max retries exceeded``); log parsers and tests match that text, so ours reads the same.
    """
    cls = type(obj)
    stock = next((b for b in cls.__mro__ if b.__module__.startswith("urllib3.")), None)
    if stock is None:  # pragma: no cover - every class here derives from urllib3's
        return text
    if text.startswith(cls.__name__):  # urllib3 >= 2.6: "HTTPConnection(host=..., port=...)"
        return stock.__name__ + text[len(cls.__name__) :]
    # Older urllib3 has no __str__: the default "<module.Class object at 0x...>".
    ours = f"<{cls.__module__}.{cls.__qualname__} object"
    if text.startswith(ours):
        return f"<{stock.__module__}.{stock.__qualname__} object" + text[len(ours) :]
    return text


# -- connections ----------------------------------------------------------------------------


class FastpathHTTPConnection(HTTPConnection):
    """``urllib3.connection.HTTPConnection`` whose socket comes from the fastpath dialer.

    Takes every ``HTTPConnection`` argument plus ``fastpath_options``. Responses carry the
    connection's :class:`~http_fastpath.ConnectionInfo` (read once per connection, when its
    first response arrives) for :func:`http_fastpath.connection_info`.
    """

    fastpath_options: FastpathOptions = _DEFAULT_OPTIONS
    #: What the dialer did for the current socket (None before the first connect).
    fastpath_record: DialRecord | None = None
    #: the connection's proof (:func:`.._core.proof.new_proof`), on each of its responses
    _fastpath_info: ConnectionInfo | None = None
    _fastpath_complete_on_dial: bool = False

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        fastpath_options: FastpathOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(host, port, **kwargs)
        if fastpath_options is not None:
            self.fastpath_options = fastpath_options

    def __str__(self) -> str:
        return _stock_str(self, super().__str__())

    def _new_conn(self) -> socket.socket:
        """Dial through the fastpath; errors mapped exactly as urllib3's ``_new_conn``."""
        try:
            sock = _dialer.dial(
                self._dns_host,
                self.port,
                options=self.fastpath_options,
                timeout=Timeout.resolve_default_timeout(self.timeout),
                source_address=self.source_address,
                socket_options=self.socket_options or (),
            )
        except socket.gaierror as e:
            raise NameResolutionError(self.host, self, e) from e
        except TimeoutError as e:
            raise self._connect_timeout(e) from e
        except OSError as e:
            raise NewConnectionError(self, f"Failed to establish a new connection: {e}") from e
        sys.audit("http.client.connect", self, self.host, self.port)
        self.fastpath_record = sock.fastpath_record
        self._fastpath_info = None
        if self._fastpath_complete_on_dial and sock.is_pending:
            try:
                sock.complete(None)
            except DialError as e:
                raise self._connect_error(e) from e
        return sock

    def _connect_timeout(self, exc: BaseException) -> ConnectTimeoutError:
        return ConnectTimeoutError(
            self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
        )

    def _connect_error(self, exc: DialError) -> ConnectTimeoutError:
        """urllib3's connect error for a failure that surfaced on the first write."""
        # Not connected after all: lets urllib3 wrap the error in ProxyError as stock does.
        self._has_connected_to_proxy = False
        if isinstance(exc, DialTimeout):
            return self._connect_timeout(exc)
        return NewConnectionError(self, f"Failed to establish a new connection: {exc}")

    def send(self, data: Any) -> None:
        """http.client's ``send``; the first one completes a pending (TFO) connect."""
        try:
            _send(self, data)
        except DialError as e:
            raise self._connect_error(e) from e

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        # One proof per connection, made at its first response (read when looked at);
        # kept alive, every response gets that same object: no call, no read.
        info = self._fastpath_info
        if info is None:
            record, sock = self.fastpath_record, self.sock
            if record is not None and sock is not None:
                # (an SSLTransport keeps the TCP socket in .socket)
                info = self._fastpath_info = new_proof(record, getattr(sock, "socket", sock))
        response = _getresponse(self)
        if info is not None:
            response._http_fastpath_info = info  # type: ignore[attr-defined]  # (INFO_ATTR)
        return response

    def close(self) -> None:
        info = self._fastpath_info
        if info is not None:
            seal(info)  # the proof stays readable without the socket
            self._fastpath_info = None
        _close(self)


_NO_BIO_TLS = (
    "tfo: the TLS context cannot run over memory buffers (no SSLContext.wrap_bio, e.g. "
    "pyOpenSSL injected): connected first, so the ClientHello did not ride in the SYN"
)


class FastpathHTTPSConnection(FastpathHTTPConnection, HTTPSConnection):
    """``urllib3.connection.HTTPSConnection`` on the fastpath (see the module docstring)."""

    def connect(self) -> None:
        direct = self.proxy is None and self._tunnel_host is None
        if direct and "h2" not in _u3_ssl.ALPN_PROTOCOLS:
            context = shared_context(self)
            if context is not None:
                self._connect_shared(context, in_syn=self.fastpath_options.tfo)
                _trace.mark("tls_done")
                return
        if direct and self.fastpath_options.tfo and fast_tls_supported(self.ssl_context):
            self._connect_fast_tls()
            _trace.mark("tls_done")
            return
        # TLS straight on the TCP socket goes through SSLContext.wrap_socket, which cannot
        # take a pending TFO socket: connect first (a CONNECT tunnel needs nothing).
        self._fastpath_complete_on_dial = self.proxy is None or self.proxy.scheme == "https"
        try:
            super().connect()
        finally:
            self._fastpath_complete_on_dial = False
        if direct and self.fastpath_options.tfo and self.fastpath_record is not None:
            if not fast_tls_supported(self.ssl_context) and "h2" not in _u3_ssl.ALPN_PROTOCOLS:
                self.fastpath_record.fallback(_NO_BIO_TLS)
        _trace.mark("tls_done")

    def _connect_shared(self, context: ssl.SSLContext, in_syn: bool) -> None:
        """Stock ``HTTPSConnection.connect`` for a direct connection, the context shared.

        ``in_syn``: TLS over MemoryBIO on the pending socket, so the ClientHello is the
        first flight (TCP Fast Open); else the connect is complete and TLS runs in
        ``SSLSocket`` (C), as stock.
        """
        self.sock = sock = self._new_conn()
        server_hostname = self._server_hostname_checked()
        try:
            if not in_syn and isinstance(sock, FastpathSocket) and sock.is_pending:
                sock.complete(None)
            wrapped, is_verified = _wrap_verified(
                sock,
                context,
                server_hostname.rstrip("."),
                self.assert_hostname,
                self.assert_fingerprint,
                tls_in_tls=in_syn,
            )
        except DialError as e:
            raise self._connect_error(e) from e
        self._use_tls(wrapped, is_verified)

    def _use_tls(self, wrapped: Any, is_verified: bool) -> None:
        """Use the TLS transport the handshake made, as stock's ``connect`` ends."""
        if type(wrapped) is SSLTransport:
            wrapped.__class__ = _LeanSSLTransport  # (same layout: its leaner I/O loop)
        self.sock = wrapped
        self.is_verified = is_verified
        self._has_connected_to_proxy = False

    def _server_hostname_checked(self) -> str:
        """The name to verify (and stock's warning when the clock is way off)."""
        if datetime.date.today() < _u3_connection.RECENT_DATE:
            warnings.warn(
                f"System time is way off (before {_u3_connection.RECENT_DATE}). This will "
                "probably lead to SSL verification errors",
                SystemTimeWarning,
                stacklevel=3,
            )
        return self.host if self.server_hostname is None else self.server_hostname

    def _connect_fast_tls(self) -> None:
        """Stock ``HTTPSConnection.connect`` for a direct connection, TLS over MemoryBIO."""
        assert _WRAP_AND_VERIFY is not None
        self.sock = sock = self._new_conn()
        server_hostname = self._server_hostname_checked()
        try:
            wrapped, is_verified = _WRAP_AND_VERIFY(
                sock=sock,
                cert_reqs=self.cert_reqs,
                ssl_version=self.ssl_version,
                ssl_minimum_version=self.ssl_minimum_version,
                ssl_maximum_version=self.ssl_maximum_version,
                ca_certs=self.ca_certs,
                ca_cert_dir=self.ca_cert_dir,
                ca_cert_data=self.ca_cert_data,
                cert_file=self.cert_file,
                key_file=self.key_file,
                key_password=self.key_password,
                server_hostname=server_hostname.rstrip("."),
                ssl_context=self.ssl_context,
                tls_in_tls=True,  # -> urllib3's SSLTransport: TLS over MemoryBIO
                assert_hostname=self.assert_hostname,
                assert_fingerprint=self.assert_fingerprint,
            )
        except DialError as e:
            raise self._connect_error(e) from e
        self._use_tls(wrapped, is_verified)
