"""The network backend of httpcore and httpcore2, on the fastpath dialer (blocking side).

One implementation for both stacks (their backend interfaces are the same): the public
classes in :mod:`.httpcore_sync` and :mod:`.httpcore2_sync` only add the stack's
base classes and its exception classes (:class:`~.common.CoreErrors`). What this side
shares with the anyio side (:mod:`.anyio`) without waiting is in :mod:`.common`.

``connect_tcp`` returns a stream over a *pending* socket (see :mod:`.._core.dialer`): nothing
is sent yet. The stream's first write completes the connection, so for ``http://`` the
request (when replay-safe) and for ``https://`` the TLS ClientHello (``start_tls`` drives
TLS over memory BIOs) rides in the SYN.

A connect failure that only shows up at that first write (a dead server whose TFO cookie
is cached) is reported as the stack's ``ConnectError`` / ``ConnectTimeout`` -- never as a
read or write error -- and, for cleartext, retried like httpcore retries a failed
``connect_tcp`` (``retries=N``, same backoff), because httpcore's own retry loop has
already returned by then. For ``https://`` the failure surfaces inside ``start_tls``,
which httpcore's retry loop covers by itself.

Several addresses are raced with Happy Eyeballs (RFC 8305) by the dialer (:mod:`.._core.race`),
where stock sync httpcore tries them one after another with the full connect timeout.

:class:`FastpathBackend` is blocking; :class:`AsyncFastpathBackend` runs on anyio, so it
works under asyncio and trio (it lives in :mod:`.anyio`).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from .._core import connect as _connect
from .._core import dialer as _dialer
from .._core import sslcache as _sslcache
from .._core.addresses import resolve
from .._core.info import ConnectionInfo
from .._core.proof import INFO_EXTENSION, new_proof, seal
from .._core.record import DialRecord
from .._core.tls import TLSSocket
from .common import (
    _NODELAY_ONLY,
    BackendBase,
    CoreErrors,
    CoreSocketOption,
    _backoff,
    _InfoMixin,
    _map,
    _mapped,
    _options_list,
    _reopen,
)

__all__ = ["SyncBackendImpl", "SyncStreamImpl"]


class SyncStreamImpl(_InfoMixin):
    """A blocking httpcore stream over a fastpath socket (plain or TLS).

    The stack's class (``FastpathStream``) adds its base class and sets ``_errors``.
    """

    _errors: ClassVar[CoreErrors]

    def __init__(
        self,
        sock: socket.socket,
        pending: DialRecord | None,
        retries: int = 0,
        tls: TLSSocket | None = None,
        proof: ConnectionInfo | None = None,
    ) -> None:
        self._sock = sock  # a plain socket; its connect may still be pending
        self._pending = pending
        self._retries = retries  # deferred connect errors are retried like httpcore does
        self._tls = tls
        self._proof = proof

    def _complete(self, data: bytes | None, *, retry: bool = True) -> int:
        """Finish a pending connect (with ``data`` as the first flight); retry like httpcore."""
        retries = self._retries if retry else 0
        delays: Iterator[float] | None = None
        errors = self._errors
        while True:
            pending, sock = self._pending, self._sock
            assert pending is not None
            self._pending = None
            try:
                sent = _connect.complete_sync(sock, pending, data)
            except Exception as exc:
                sock.close()
                mapped = _mapped(errors.connect, exc)
                if mapped is None:
                    raise
                if retries <= 0:
                    raise mapped from exc
                retries -= 1
                delays = _backoff() if delays is None else delays
                time.sleep(next(delays))
                with _map(errors.connect):
                    self._sock, self._pending = _reopen(pending)
                continue
            except BaseException:
                sock.close()
                raise
            self._proof = new_proof(pending, sock)
            return sent

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._pending is not None:
            self._complete(None)
        sock = self._sock
        try:
            if sock.gettimeout() != timeout:  # (stock sets it every time: a syscall)
                sock.settimeout(timeout)
            if self._tls is not None:
                return self._tls.recv(max_bytes)
            return sock.recv(max_bytes)
        except Exception as exc:
            mapped = _mapped(self._errors.read, exc)
            if mapped is None:
                raise
            raise mapped from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._pending is not None:
            buffer = buffer[self._complete(buffer) :]
            if not buffer:
                return
        sock = self._sock
        try:
            if sock.gettimeout() != timeout:
                sock.settimeout(timeout)
            if self._tls is not None:
                self._tls.sendall(buffer)
            else:
                sock.sendall(buffer)
        except Exception as exc:
            mapped = _mapped(self._errors.write, exc)
            if mapped is None:
                raise
            raise mapped from exc

    def close(self) -> None:
        if self._proof is not None:
            seal(self._proof)
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        # TLS over memory BIOs: on a pending socket the ClientHello is the first flight and
        # completes the connect (errors of that connect are connect errors, retried by
        # httpcore's own loop). Over an existing TLS layer (HTTPS proxy) it is TLS-in-TLS.
        lower: Any = self._tls if self._tls is not None else self._sock
        try:
            with _map(self._errors.connect):
                self._sock.settimeout(timeout)
                tls = TLSSocket(lower, _sslcache.unwrap(ssl_context), server_hostname)
                if self._pending is not None:
                    hello = tls.first_flight()
                    sent = self._complete(hello, retry=False)
                    tls.sock = self._sock
                    if sent < len(hello):
                        self._sock.sendall(memoryview(hello)[sent:])
                tls.do_handshake()
        except BaseException:
            self.close()
            raise
        return type(self)(self._sock, None, 0, tls, self._proof)

    def get_extra_info(self, info: str) -> Any:
        if info == INFO_EXTENSION:
            return self._proof
        return self._extra(info, None if self._tls is None else self._tls.ssl_object)


class SyncBackendImpl(BackendBase):
    """An httpcore ``NetworkBackend`` whose TCP connections come from the fastpath dialer.

    The stack's class (``FastpathBackend``) adds its base class and names its stream class
    and its own blocking backend (for Unix sockets). ``retries`` should equal the pool's
    ``retries`` so a connect failure that only shows up on the first write of a TCP Fast
    Open connection is retried the same way (see the module docstring).
    """

    _stream_cls: ClassVar[type[SyncStreamImpl]]
    _unix_backend: ClassVar[type[Any]]

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[CoreSocketOption] | None = None,
    ) -> Any:
        opts = _NODELAY_ONLY if not socket_options else _options_list(socket_options)
        stream_cls = self._stream_cls
        options = self.options
        try:
            sock, pending = _dialer.open_plain(
                resolve(host, port),
                options=options,
                timeout=timeout,
                source_address=None if local_address is None else (local_address, 0),
                socket_options=opts,
            )
        except Exception as exc:
            mapped = _mapped(stream_cls._errors.connect, exc)
            if mapped is None:
                raise
            raise mapped from exc
        stream = stream_cls(sock, pending, self.retries)
        if not options.tfo:
            stream._complete(None, retry=False)  # httpcore retries connect_tcp itself
        return stream

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[CoreSocketOption] | None = None,
    ) -> Any:
        # No TFO or MPTCP on Unix sockets: the stack's own implementation.
        return self._unix_backend().connect_unix_socket(path, timeout, socket_options)
