"""urllib3 connections, pools and pool managers whose sockets come from the fastpath dialer.

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
- :class:`FastpathPoolManager` / :class:`FastpathProxyManager` install the pools on a
  *new* ``pool_classes_by_scheme`` dict (urllib3's module-level dict is never touched) and
  hand the options to each pool outside the pool key.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import urllib3
from urllib3 import connection as _u3_connection
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    SSLError,
    SystemTimeWarning,
)
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.util import ssl_ as _u3_ssl
from urllib3.util.ssltransport import SSLTransport
from urllib3.util.timeout import Timeout

from .._core import dialer as _dialer
from .._core import sslcache as _sslcache
from .._core import trace as _trace
from .._core.exceptions import DialError, DialTimeout, FastpathError
from .._core.info import ConnectionInfo
from .._core.options import FastpathOptions, TFOPolicy, resolve_options
from .._core.proof import INFO_ATTR, Proof
from .._core.record import DialRecord
from .._core.sockets import FastpathSocket

if TYPE_CHECKING:
    from urllib3.response import HTTPResponse

__all__ = [
    "FastpathHTTPConnection",
    "FastpathHTTPConnectionPool",
    "FastpathHTTPSConnection",
    "FastpathHTTPSConnectionPool",
    "FastpathPoolManager",
    "FastpathProxyManager",
    "ensure_stock_urllib3",
    "urllib3_future_problem",
]

#: Private urllib3 helper that builds the TLS context and verifies exactly like stock.
_WRAP_AND_VERIFY: Callable[..., Any] | None = getattr(
    _u3_connection, "_ssl_wrap_socket_and_match_hostname", None
)


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
    _fastpath_proof: Proof | None = None
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
        self._fastpath_proof = None
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
            super().send(data)
        except DialError as e:
            raise self._connect_error(e) from e

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        proof = self._fastpath_proof
        info = proof.info() if proof is not None else self._fastpath_capture()
        response = super().getresponse()
        if info is not None:
            setattr(response, INFO_ATTR, info)
        return response

    def _fastpath_capture(self) -> ConnectionInfo | None:
        """The connection's proof: read from the kernel when someone looks at it."""
        proof = self._fastpath_proof
        if proof is None:
            record, sock = self.fastpath_record, self.sock
            if record is None or sock is None:
                return None
            raw = getattr(sock, "socket", sock)  # SSLTransport keeps the TCP socket here
            proof = self._fastpath_proof = Proof(record, raw)
        return proof.info()

    def close(self) -> None:
        proof = self._fastpath_proof
        if proof is not None:
            proof.seal()  # the proof stays readable without the socket
            self._fastpath_proof = None
        super().close()


class _LeanSSLTransport(SSLTransport):
    """urllib3's ``SSLTransport`` without an empty ``send()`` syscall around every read.

    Only the I/O loop differs (same reads, same writes, same errors); a connection's
    transport is switched to it after the handshake, so keep-alive requests cost about
    what they cost over ``SSLSocket``.

    Stock's ``conn.sock`` is an ``SSLSocket``, so code calls socket methods on it (the
    server's address: ``resp.connection.sock.getpeername()``); those go to the TCP socket.
    """

    def getpeername(self) -> Any:
        return self.socket.getpeername()

    def getsockname(self) -> Any:
        return self.socket.getsockname()

    def getsockopt(self, *args: Any) -> Any:
        return self.socket.getsockopt(*args)

    def setsockopt(self, *args: Any) -> None:
        self.socket.setsockopt(*args)

    def shutdown(self, how: int) -> None:
        self.socket.shutdown(how)

    @property
    def family(self) -> int:
        return self.socket.family

    @property
    def type(self) -> int:
        return self.socket.type

    @property
    def proto(self) -> int:
        return self.socket.proto

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> Any:
        if flags != 0:
            raise ValueError("non-zero flags not allowed in calls to recv_into")
        return self._wrap_ssl_read(len(buffer) if nbytes is None else nbytes, buffer)

    def _wrap_ssl_read(self, len: int, buffer: bytearray | None = None) -> Any:
        try:
            incoming = self.incoming
            if not incoming.pending and not self.sslobj.pending() and not incoming.eof:
                # Nothing buffered: read the socket first, rather than have OpenSSL raise
                # SSLWantReadError (an exception per response) to say so.
                data = self.socket.recv(16384)
                if data:
                    incoming.write(data)
                else:
                    incoming.write_eof()
            return self._ssl_io_loop(self.sslobj.read, len, buffer)
        except ssl.SSLError as e:
            if e.errno == ssl.SSL_ERROR_EOF and self.suppress_ragged_eofs:
                return 0  # eof, return 0.
            raise

    def _ssl_io_loop(self, func: Callable[..., Any], arg1: Any = None, arg2: Any = None) -> Any:
        while True:
            try:
                if arg1 is None and arg2 is None:
                    ret = func()
                elif arg2 is None:
                    ret = func(arg1)
                else:
                    ret = func(arg1, arg2)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as e:
                if self.outgoing.pending:
                    self.socket.sendall(self.outgoing.read())
                if isinstance(e, ssl.SSLWantReadError):
                    buf = self.socket.recv(16384)
                    if buf:
                        self.incoming.write(buf)
                    else:
                        self.incoming.write_eof()
                continue
            if self.outgoing.pending:
                self.socket.sendall(self.outgoing.read())
            return ret


def fast_tls_supported(ssl_context: Any) -> bool:
    """Can this connection do its TLS over MemoryBIO (so the ClientHello rides in the SYN)?

    Without a context of its own urllib3 builds one from ``urllib3.util.ssl_.SSLContext``,
    which ``urllib3.contrib.pyopenssl.inject_into_urllib3()`` replaces by a class without
    ``wrap_bio``: such contexts connect first and wrap the socket as stock does.
    """
    context = _u3_ssl.SSLContext if ssl_context is None else ssl_context
    return (
        _WRAP_AND_VERIFY is not None
        and "h2" not in _u3_ssl.ALPN_PROTOCOLS
        and hasattr(context, "wrap_bio")
    )


_NO_BIO_TLS = (
    "tfo: the TLS context cannot run over memory buffers (no SSLContext.wrap_bio, e.g. "
    "pyOpenSSL injected): connected first, so the ClientHello did not ride in the SYN"
)


# urllib3 internals the shared-context path reuses (urllib3 2.x); without them it is off.
_MATCH_HOSTNAME: Callable[..., Any] | None = getattr(_u3_connection, "_match_hostname", None)
_WRAP_IMPL: Callable[..., Any] | None = getattr(_u3_ssl, "_ssl_wrap_socket_impl", None)
_KEY_ENCRYPTED: Callable[[str], bool] | None = getattr(_u3_ssl, "_is_key_file_encrypted", None)
_DEFAULT_PATHS: tuple[str, ...] | None = None


def _default_paths() -> tuple[str, ...]:
    """What ``load_default_certs`` reads besides ``SSL_CERT_FILE``/``SSL_CERT_DIR``."""
    global _DEFAULT_PATHS
    if _DEFAULT_PATHS is None:
        paths = ssl.get_default_verify_paths()
        _DEFAULT_PATHS = (paths.openssl_cafile, paths.openssl_capath)
    return _DEFAULT_PATHS


def shared_context(conn: HTTPSConnection) -> ssl.SSLContext | None:
    """The process-wide context for ``conn``'s TLS settings (see :mod:`.._core.sslcache`).

    None when urllib3 must build its own, as stock does: the caller passed an
    ``ssl_context``, the deprecated ``ssl_version``, pyOpenSSL is injected, or this
    urllib3 lacks a helper the shared path reuses.
    """
    if (
        conn.ssl_context is not None
        or conn.ssl_version is not None
        or _u3_ssl.SSLContext is not ssl.SSLContext
        or _u3_ssl.IS_PYOPENSSL
        or _MATCH_HOSTNAME is None
        or _WRAP_IMPL is None
        or _KEY_ENCRYPTED is None
    ):
        return None
    cert_reqs = _u3_ssl.resolve_cert_reqs(conn.cert_reqs)
    check_hostname_off = bool(
        conn.assert_fingerprint
        or conn.assert_hostname
        or conn.assert_hostname is False
        or not _u3_ssl.HAS_NEVER_CHECK_COMMON_NAME
    )
    alpn = tuple(_u3_ssl.ALPN_PROTOCOLS)
    key = _sslcache.urllib3_key(
        cert_reqs=cert_reqs,
        ssl_minimum_version=conn.ssl_minimum_version,
        ssl_maximum_version=conn.ssl_maximum_version,
        ca_certs=conn.ca_certs,
        ca_cert_dir=conn.ca_cert_dir,
        ca_cert_data=conn.ca_cert_data,
        cert_file=conn.cert_file,
        key_file=conn.key_file,
        key_password=conn.key_password,
        check_hostname_off=check_hostname_off,
        alpn=alpn,
        default_paths=_default_paths(),
        environ=os.environ,
    )

    def build() -> ssl.SSLContext:
        return _build_context(conn, cert_reqs, check_hostname_off, list(alpn))

    return _sslcache.CACHE.get(key, build)


def _build_context(
    conn: HTTPSConnection, cert_reqs: int, check_hostname_off: bool, alpn: list[str]
) -> ssl.SSLContext:
    """The context stock urllib3 builds for ``conn`` (``_ssl_wrap_socket_and_match_hostname``
    and ``ssl_wrap_socket``: the same calls in the same order), without a socket."""
    context = _u3_ssl.create_urllib3_context(
        ssl_version=_u3_ssl.resolve_ssl_version(None),
        ssl_minimum_version=conn.ssl_minimum_version,
        ssl_maximum_version=conn.ssl_maximum_version,
        cert_reqs=cert_reqs,
    )
    context.verify_mode = cert_reqs  # type: ignore[assignment]
    if check_hostname_off:
        context.check_hostname = False
    ca_certs, ca_cert_dir, ca_cert_data = conn.ca_certs, conn.ca_cert_dir, conn.ca_cert_data
    if not ca_certs and not ca_cert_dir and not ca_cert_data:
        context.load_default_certs()
    else:
        try:
            context.load_verify_locations(ca_certs, ca_cert_dir, ca_cert_data)
        except OSError as e:
            raise SSLError(e) from e
    key_file, key_password = conn.key_file, conn.key_password
    assert _KEY_ENCRYPTED is not None
    if key_file and key_password is None and _KEY_ENCRYPTED(key_file):
        raise SSLError("Client private key is encrypted, password is required")
    if conn.cert_file:
        if key_password is None:
            context.load_cert_chain(conn.cert_file, key_file)
        else:
            context.load_cert_chain(conn.cert_file, key_file, key_password)
    context.set_alpn_protocols(alpn)
    return context


def _wrap_verified(
    sock: socket.socket,
    context: ssl.SSLContext,
    server_hostname: str,
    assert_hostname: Any,
    assert_fingerprint: str | None,
    tls_in_tls: bool,
) -> tuple[Any, bool]:
    """Stock ``_ssl_wrap_socket_and_match_hostname`` after its context is built.

    The same wrap (``SSLTransport`` over MemoryBIO for ``tls_in_tls``, else
    ``wrap_socket``) and the same checks (fingerprint, or urllib3's own hostname match
    when ``check_hostname`` is off); nothing is set on the shared context.
    """
    normalized = server_hostname.strip("[]")
    if "%" in normalized:
        normalized = normalized[: normalized.rfind("%")]
    if _u3_ssl.is_ipaddress(normalized):
        server_hostname = normalized
    assert _WRAP_IMPL is not None and _MATCH_HOSTNAME is not None
    if tls_in_tls:  # urllib3's SSLTransport, its handshake through the lean I/O loop
        ssl_sock = _LeanSSLTransport(sock, context, server_hostname)
    else:
        ssl_sock = _WRAP_IMPL(sock, context, False, server_hostname)
    try:
        if assert_fingerprint:
            _u3_ssl.assert_fingerprint(ssl_sock.getpeercert(binary_form=True), assert_fingerprint)
        elif (
            context.verify_mode != ssl.CERT_NONE
            and not context.check_hostname
            and assert_hostname is not False
        ):
            # (a context urllib3 builds itself: hostname_checks_common_name=False)
            _MATCH_HOSTNAME(ssl_sock.getpeercert(), assert_hostname or server_hostname, False)
        return ssl_sock, context.verify_mode == ssl.CERT_REQUIRED or bool(assert_fingerprint)
    except BaseException:
        ssl_sock.close()
        raise


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
        if type(wrapped) is SSLTransport:
            wrapped.__class__ = _LeanSSLTransport
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
        if type(wrapped) is SSLTransport:
            wrapped.__class__ = _LeanSSLTransport
        self.sock = wrapped
        self.is_verified = is_verified
        self._has_connected_to_proxy = False


# -- pools and managers ---------------------------------------------------------------------


class FastpathHTTPConnectionPool(HTTPConnectionPool):
    """``HTTPConnectionPool`` making :class:`FastpathHTTPConnection` connections."""

    ConnectionCls = FastpathHTTPConnection

    def __str__(self) -> str:
        return _stock_str(self, super().__str__())


class FastpathHTTPSConnectionPool(HTTPSConnectionPool):
    """``HTTPSConnectionPool`` making :class:`FastpathHTTPSConnection` connections."""

    ConnectionCls = FastpathHTTPSConnection

    def __str__(self) -> str:
        return _stock_str(self, super().__str__())


def _pool_classes() -> dict[str, type[HTTPConnectionPool]]:
    return {"http": FastpathHTTPConnectionPool, "https": FastpathHTTPSConnectionPool}


def _with_options(
    context: dict[str, Any] | None, default: dict[str, Any], options: FastpathOptions
) -> dict[str, Any]:
    # After the pool key was computed: the options never reach PoolKey(**...).
    out = dict(default if context is None else context)
    out["fastpath_options"] = options
    return out


class _FastpathPools(PoolManager):
    """Hands the fastpath options to every new pool, after the pool key was computed."""

    fastpath_options: FastpathOptions

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        context = _with_options(request_context, self.connection_pool_kw, self.fastpath_options)
        return super()._new_pool(scheme, host, port, context)


class FastpathPoolManager(_FastpathPools):
    """A ``urllib3.PoolManager`` whose connections use TCP Fast Open and MPTCP.

    ``FastpathPoolManager(num_pools=10, headers=None, *, options=None, tfo=None,
    mptcp=None, tfo_policy=None, **connection_pool_kw)``: give either ``options`` (a
    :class:`~http_fastpath.FastpathOptions`) or the keywords (defaults: ``tfo=True``,
    ``mptcp=True``, ``tfo_policy="safe"``); every other argument is ``PoolManager``'s::

        pm = FastpathPoolManager(mptcp=False)
        resp = pm.request("GET", "https://example.test/")
        http_fastpath.connection_info(resp)
    """

    def __init__(
        self,
        num_pools: int = 10,
        headers: Any = None,
        *,
        options: FastpathOptions | None = None,
        tfo: bool | None = None,
        mptcp: bool | None = None,
        tfo_policy: TFOPolicy | None = None,
        **connection_pool_kw: Any,
    ) -> None:
        ensure_stock_urllib3()
        self.fastpath_options = resolve_options(options, tfo, mptcp, tfo_policy)
        super().__init__(num_pools, headers, **connection_pool_kw)
        self.pool_classes_by_scheme = _pool_classes()


class FastpathProxyManager(_FastpathPools, ProxyManager):
    """A ``urllib3.ProxyManager`` on the fastpath: the client→proxy hop uses TFO/MPTCP.

    Same arguments as ``ProxyManager`` plus the fastpath keywords of
    :class:`FastpathPoolManager`. Plain ``http://`` requests are forwarded (the request
    rides in the SYN when replay-safe); ``https://`` requests go through a CONNECT tunnel
    (the CONNECT request rides in the SYN).
    """

    def __init__(
        self,
        proxy_url: str,
        num_pools: int = 10,
        headers: Any = None,
        *,
        options: FastpathOptions | None = None,
        tfo: bool | None = None,
        mptcp: bool | None = None,
        tfo_policy: TFOPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        ensure_stock_urllib3()
        self.fastpath_options = resolve_options(options, tfo, mptcp, tfo_policy)
        super().__init__(proxy_url, num_pools, headers, **kwargs)
        self.pool_classes_by_scheme = _pool_classes()
