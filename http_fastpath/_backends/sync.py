"""The network backend of httpcore and httpcore2, on the fastpath dialer (blocking side).

One implementation for both stacks (their backend interfaces are the same): the public
classes in :mod:`.httpcore_sync` and :mod:`.httpcore2_sync` only add the stack's
base classes and its exception classes (:class:`CoreErrors`).

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

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType
from typing import Any, ClassVar, cast

from .._core import connect as _connect
from .._core import dialer as _dialer
from .._core import sslcache as _sslcache
from .._core.addresses import Address, resolve
from .._core.exceptions import OptionError
from .._core.info import ConnectionInfo
from .._core.options import FastpathOptions, resolve_options
from .._core.proof import INFO_EXTENSION, Proof
from .._core.sockets import Pending, SocketOption
from .._core.tls import TLSSocket

__all__ = ["BackendBase", "CoreErrors", "CoreSocketOption", "SyncBackendImpl", "SyncStreamImpl"]

#: httpcore's socket option type (``httpcore._backends.base.SOCKET_OPTION``).
CoreSocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

_NODELAY: SocketOption = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_BACKOFF_FACTOR = 0.5  # httpcore's RETRIES_BACKOFF_FACTOR: 0 s, 0.5 s, 1 s, 2 s, ...


class CoreErrors:
    """The exception classes of one httpcore stack (``httpcore`` or ``httpcore2``).

    Built once per stack: the maps are what :func:`_map` turns OS errors into.
    """

    __slots__ = ("connect", "core", "read", "retryable", "write")

    def __init__(self, core: ModuleType) -> None:
        self.core = core
        self.connect: dict[type[Exception], type[Exception]] = {
            TimeoutError: core.ConnectTimeout,
            OSError: core.ConnectError,
        }
        self.read: dict[type[Exception], type[Exception]] = {
            TimeoutError: core.ReadTimeout,
            OSError: core.ReadError,
        }
        self.write: dict[type[Exception], type[Exception]] = {
            TimeoutError: core.WriteTimeout,
            OSError: core.WriteError,
        }
        #: what the stack's pool retries (``retries=N``)
        self.retryable: tuple[type[Exception], ...] = (core.ConnectError, core.ConnectTimeout)


@contextlib.contextmanager
def _map(mapping: dict[type[Exception], type[Exception]]) -> Iterator[None]:
    """Re-raise the first matching exception class of ``mapping`` (like httpcore does)."""
    try:
        yield
    except Exception as exc:
        for from_exc, to_exc in mapping.items():
            if isinstance(exc, from_exc):
                raise to_exc(exc) from exc
        raise


def _is_readable(sock: socket.socket) -> bool:
    """httpcore's ``is_readable``: True when an idle connection got data or EOF (stale)."""
    if sock.fileno() < 0:
        return True
    poll = getattr(select, "poll", None)
    if poll is None:  # Windows: select() only
        readable, _, failed = select.select([sock], [], [sock], 0)
        return bool(readable or failed)
    poller = poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _backoff() -> Iterator[float]:
    yield 0.0
    delay = _BACKOFF_FACTOR
    while True:
        yield delay
        delay *= 2


def _mapped(mapping: dict[type[Exception], type[Exception]], exc: Exception) -> Exception | None:
    """:func:`_map` without a context manager: the exception to raise instead, or None."""
    for from_exc, to_exc in mapping.items():
        if isinstance(exc, from_exc):
            return to_exc(exc)
    return None


_NODELAY_ONLY: tuple[SocketOption, ...] = (_NODELAY,)


def _options_list(socket_options: Iterable[CoreSocketOption] | None) -> Sequence[SocketOption]:
    # Stock httpcore always sets TCP_NODELAY (after connect); we set it before.
    if not socket_options:
        return _NODELAY_ONLY
    return [*cast(Iterable[SocketOption], socket_options), _NODELAY]


def _source(local_address: str | None) -> tuple[str, int] | None:
    return None if local_address is None else (local_address, 0)


def _open(
    addresses: Sequence[Address],
    options: FastpathOptions,
    timeout: float | None,
    source: tuple[str, int] | None,
    socket_options: Sequence[SocketOption],
) -> tuple[socket.socket, Pending]:
    return _dialer.open_plain(
        addresses,
        options=options,
        timeout=timeout,
        source_address=source,
        socket_options=socket_options,
    )


def _reopen(pending: Pending) -> tuple[socket.socket, Pending]:
    """The same connection opened again (a deferred connect error is retried)."""
    return _open(
        pending.addresses,
        pending.record.options,
        pending.timeout,
        pending.source_address,
        pending.socket_options,
    )


class _InfoMixin:
    """``get_extra_info`` keys shared by the sync and async streams.

    ``_sock`` is a plain ``socket.socket`` from the start; ``_pending`` is set until its
    connect completes, then ``_proof`` describes the connection.
    """

    _sock: socket.socket
    _pending: Pending | None
    _proof: Proof | None

    def connection_info(self) -> ConnectionInfo | None:
        """The kernel's view of this connection (None while it is not connected yet).

        Read when first looked at (the transports attach it to every response), once;
        a connection closed before anyone looked keeps what its connect saw (see
        :class:`http_fastpath._core.proof.Proof`).
        """
        proof = self._proof
        return None if proof is None else proof.info()

    def _capture(self) -> None:
        """Keep the proof readable after close (for direct httpcore users)."""
        if self._proof is not None:
            self._proof.seal()

    def _extra(self, info: str, ssl_object: ssl.SSLObject | None) -> Any:
        if info == INFO_EXTENSION:
            return self.connection_info()
        if info == "ssl_object":
            return ssl_object
        sock = self._sock
        if info == "socket":
            return sock
        pending = self._pending
        if info == "is_readable":
            if pending is not None:
                return False  # pending: nothing sent, nothing to read
            return _is_readable(sock)
        try:
            if info == "client_addr":
                # Pending: not bound yet (the kernel picks the port with the SYN).
                return sock.getsockname()
            if info == "server_addr":
                if pending is not None:  # the address the first write will connect to
                    return pending.addresses[0][1]
                return sock.getpeername()
        except OSError:
            return None
        return None


# -- sync ---------------------------------------------------------------------------------


class SyncStreamImpl(_InfoMixin):
    """A blocking httpcore stream over a fastpath socket (plain or TLS).

    The stack's class (``FastpathStream``) adds its base class and sets ``_errors``.
    """

    _errors: ClassVar[CoreErrors]

    def __init__(
        self,
        sock: socket.socket,
        pending: Pending | None,
        retries: int = 0,
        tls: TLSSocket | None = None,
        proof: Proof | None = None,
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
            self._proof = Proof(pending.record, sock)
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
            self._proof.seal()
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
            proof = self._proof
            return None if proof is None else proof.info()
        return self._extra(info, None if self._tls is None else self._tls.ssl_object)


class BackendBase:
    """What the sync and async backends share: the options and the pool's ``retries``."""

    def __init__(self, options: FastpathOptions | None = None, *, retries: int = 0) -> None:
        self.options = resolve_options(options)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise OptionError("retries", retries, "an int >= 0 (httpcore's pool retries)")
        self.retries = retries


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
