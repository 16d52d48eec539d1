"""TLS over memory buffers and the shared TLS contexts for the urllib3 connections.

Private to :mod:`.urllib3_connection`: urllib3's own ``SSLTransport`` with a leaner I/O
loop (:class:`_LeanSSLTransport`), whether a connection can do its TLS over ``MemoryBIO``
(:func:`fast_tls_supported`), and the process-wide contexts (:func:`shared_context`, see
:mod:`.._core.sslcache`) built and checked exactly as stock urllib3 builds and checks its
own. Every urllib3 private these use is read once here, and the paths that need one are
off when this urllib3 lacks it.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from typing import Any

from urllib3 import connection as _u3_connection
from urllib3.connection import HTTPSConnection
from urllib3.exceptions import SSLError
from urllib3.util import ssl_ as _u3_ssl
from urllib3.util.ssltransport import SSLTransport

from .._core import sslcache as _sslcache

#: Bytes read from the socket at most at once by :class:`_LeanSSLTransport`.
READ_SIZE = 65536

#: Private urllib3 helper that builds the TLS context and verifies exactly like stock.
_WRAP_AND_VERIFY: Callable[..., Any] | None = getattr(
    _u3_connection, "_ssl_wrap_socket_and_match_hostname", None
)


class _LeanSSLTransport(SSLTransport):
    """urllib3's ``SSLTransport`` without an empty ``send()`` syscall around every read.

    Only the I/O loop differs (same reads, same writes, same errors); a connection's
    transport is switched to it after the handshake, so keep-alive requests cost about
    what they cost over ``SSLSocket``.

    Stock's ``conn.sock`` is an ``SSLSocket``, so code calls socket methods on it (the
    server's address: ``resp.connection.sock.getpeername()``); those go to the TCP socket.
    """

    #: where the socket is read into (made at the first read): one read takes several
    #: TLS records (up to 16 KiB + 22 bytes each), so a large body costs fewer reads,
    #: no record is cut at a fixed 16 KiB, and no bytes object is made per read
    _read_view: memoryview | None = None

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
        incoming, sslobj = self.incoming, self.sslobj
        try:
            # Nothing buffered: read the socket first, rather than have OpenSSL raise
            # SSLWantReadError (an exception per response) to say so. A record cut
            # short by the last read asks for the rest the same way, in this loop.
            wait = not incoming.pending and not sslobj.pending() and not incoming.eof
            while True:
                if wait:
                    view = self._read_view
                    if view is None:  # (the class changed after the handshake: no __init__)
                        view = self._read_view = memoryview(bytearray(READ_SIZE))
                    n = self.socket.recv_into(view)
                    if n:
                        incoming.write(view[:n])
                    else:
                        incoming.write_eof()
                try:
                    ret = sslobj.read(len, buffer)
                    break
                except ssl.SSLWantReadError:
                    if self.outgoing.pending:
                        self.socket.sendall(self.outgoing.read())
                    wait = True
                except ssl.SSLWantWriteError:  # (a memory BIO takes every write)
                    return self._ssl_io_loop(sslobj.read, len, buffer)
            if self.outgoing.pending:  # (a TLS 1.3 key update answered)
                self.socket.sendall(self.outgoing.read())
            return ret
        except ssl.SSLError as e:
            if e.errno == ssl.SSL_ERROR_EOF and self.suppress_ragged_eofs:
                return 0  # eof, return 0.
            raise

    def sendall(self, data: Any, flags: int = 0) -> None:
        if flags != 0:
            raise ValueError("non-zero flags not allowed in calls to sendall")
        sslobj, outgoing = self.sslobj, self.outgoing
        with memoryview(data) as view, view.cast("B") as byte_view:
            amount, count = len(byte_view), 0
            while count < amount:
                rest = byte_view[count:] if count else byte_view
                try:  # a memory BIO takes every write: the usual case in a straight line
                    count += sslobj.write(rest)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    count += self._ssl_io_loop(sslobj.write, rest)
                    continue
                if outgoing.pending:
                    self.socket.sendall(outgoing.read())

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
