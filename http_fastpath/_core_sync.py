"""The network backend of httpcore and httpcore2, on the fastpath dialer (blocking side).

One implementation for both stacks (their backend interfaces are the same): the public
classes in :mod:`._httpcore_backend` and :mod:`._httpcore2_backend` only add the stack's
base classes and its exception classes (:class:`CoreErrors`).

``connect_tcp`` returns a stream over a *pending* socket (see :mod:`._dialer`): nothing
is sent yet. The stream's first write completes the connection, so for ``http://`` the
request (when replay-safe) and for ``https://`` the TLS ClientHello (``start_tls`` drives
TLS over memory BIOs) rides in the SYN.

A connect failure that only shows up at that first write (a dead server whose TFO cookie
is cached) is reported as the stack's ``ConnectError`` / ``ConnectTimeout`` -- never as a
read or write error -- and, for cleartext, retried like httpcore retries a failed
``connect_tcp`` (``retries=N``, same backoff), because httpcore's own retry loop has
already returned by then. For ``https://`` the failure surfaces inside ``start_tls``,
which httpcore's retry loop covers by itself.

Several addresses are raced with Happy Eyeballs (RFC 8305) by the dialer (:mod:`._race`),
where stock sync httpcore tries them one after another with the full connect timeout.

:class:`FastpathBackend` is blocking; :class:`AsyncFastpathBackend` runs on anyio, so it
works under asyncio and trio (it lives in :mod:`._core_async`).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any, ClassVar, cast

from . import _dialer
from ._dialer import Address, FastpathSocket, SocketOption
from ._info import ConnectionInfo
from ._options import FastpathOptions
from ._proof import INFO_EXTENSION
from ._tls import TLSSocket

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


def _options_list(socket_options: Iterable[CoreSocketOption] | None) -> list[SocketOption]:
    # Stock httpcore always sets TCP_NODELAY (after connect); we set it before.
    return [*cast(Iterable[SocketOption], socket_options or ()), _NODELAY]


def _source(local_address: str | None) -> tuple[str, int] | None:
    return None if local_address is None else (local_address, 0)


class _Redial:
    """How to open the same connection again (deferred connect errors are retried)."""

    __slots__ = ("addresses", "local_address", "options", "retries", "socket_options", "timeout")

    def __init__(
        self,
        addresses: list[Address],
        options: FastpathOptions,
        timeout: float | None,
        local_address: str | None,
        socket_options: list[SocketOption],
        retries: int,
    ) -> None:
        self.addresses = addresses
        self.options = options
        self.timeout = timeout
        self.local_address = local_address
        self.socket_options = socket_options
        self.retries = retries

    def open(self) -> FastpathSocket:
        return _dialer.open_pending(
            self.addresses,
            options=self.options,
            timeout=self.timeout,
            source_address=_source(self.local_address),
            socket_options=self.socket_options,
        )


class _InfoMixin:
    """``get_extra_info`` keys shared by the sync and async streams."""

    _sock: FastpathSocket
    _info: ConnectionInfo | None = None

    def _live(self) -> socket.socket | None:
        """The connected socket (None while the connect is pending)."""
        raise NotImplementedError

    def connection_info(self) -> ConnectionInfo | None:
        """The kernel's view of this connection (None while it is not connected yet).

        Captured once, when first asked for (the transports ask when the first response
        on the connection arrives) or at the latest when the stream is closed, so it
        stays readable afterwards.
        """
        live = self._live()
        if self._info is None and live is not None and live.fileno() >= 0:
            self._info = self._sock.fastpath_record.connection_info(live)
        return self._info

    def _capture(self) -> None:
        """Keep the proof readable after close (for direct httpcore users)."""
        try:
            self.connection_info()
        except OSError:
            pass

    def _extra(self, info: str, ssl_object: ssl.SSLObject | None) -> Any:
        if info == INFO_EXTENSION:
            return self.connection_info()
        if info == "ssl_object":
            return ssl_object
        live = self._live()
        if info == "socket":
            return self._sock if live is None else live
        if info == "is_readable":
            if live is None:
                return not self._sock.is_pending  # pending: nothing sent, nothing to read
            return _is_readable(live)
        try:
            if info == "client_addr":
                # Pending: not bound yet (the kernel picks the port with the SYN).
                return (self._sock if live is None else live).getsockname()
            if info == "server_addr":
                if live is None:  # pending: the address the first write will connect to
                    pending = self._sock._fp_pending
                    return None if pending is None else pending.addresses[0][1]
                return live.getpeername()
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
        sock: FastpathSocket,
        redial: _Redial | None,
        tls: TLSSocket | None = None,
        io: socket.socket | None = None,
    ) -> None:
        self._sock = sock  # the dialer's socket: its record describes the connection
        self._redial = redial
        self._tls = tls
        # Once connected, the fd moves to a plain socket (no Python-level overrides).
        self._io = io

    def _live(self) -> socket.socket | None:
        return self._io

    def _connected(self) -> socket.socket:
        io = self._io = _dialer.detach_plain(self._sock)
        return io

    def _complete(self, data: bytes | None) -> int:
        """Finish a pending connect (with ``data`` as the first flight); retry like httpcore."""
        redial = self._redial
        retries = 0 if redial is None else redial.retries
        delays = _backoff()
        errors = self._errors
        while True:
            try:
                with _map(errors.connect):
                    sent = self._sock.complete(data)
                    self._connected()
                    return sent
            except errors.retryable:
                if retries <= 0 or redial is None:
                    raise
                retries -= 1
                time.sleep(next(delays))
                with _map(errors.connect):
                    self._sock = redial.open()

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        io = self._io
        if io is None:
            self._complete(None)
            io = self._io
            assert io is not None
        with _map(self._errors.read):
            io.settimeout(timeout)
            if self._tls is not None:
                return self._tls.recv(max_bytes)
            return io.recv(max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        io = self._io
        if io is None:
            buffer = buffer[self._complete(buffer) :]
            io = self._io
            assert io is not None
            if not buffer:
                return
        with _map(self._errors.write):
            io.settimeout(timeout)
            if self._tls is not None:
                self._tls.sendall(buffer)
            else:
                io.sendall(buffer)

    def close(self) -> None:
        if self._io is not None:
            self._capture()
            self._io.close()
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        # TLS over memory BIOs: on a pending socket the ClientHello is the first write and
        # completes the connect (errors of that connect are connect errors, retried by
        # httpcore's own loop). Over an existing TLS layer (HTTPS proxy) it is TLS-in-TLS.
        lower: Any = self._tls if self._tls is not None else (self._io or self._sock)
        try:
            with _map(self._errors.connect):
                (self._io or self._sock).settimeout(timeout)
                tls = TLSSocket(lower, ssl_context, server_hostname)
                tls.do_handshake()
                if self._io is None:  # the handshake completed the connect
                    tls.sock = self._connected()
        except BaseException:
            self.close()
            raise
        return type(self)(self._sock, None, tls, self._io)

    def get_extra_info(self, info: str) -> Any:
        if info == INFO_EXTENSION and self._info is not None:
            return self._info
        return self._extra(info, None if self._tls is None else self._tls.ssl_object)


class BackendBase:
    """What the sync and async backends share: the options and the pool's ``retries``."""

    def __init__(self, options: FastpathOptions | None = None, *, retries: int = 0) -> None:
        self.options = options if options is not None else FastpathOptions()
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
        opts = _options_list(socket_options)
        stream_cls = self._stream_cls
        with _map(stream_cls._errors.connect):
            addresses = _dialer.resolve(host, port)
            redial = _Redial(addresses, self.options, timeout, local_address, opts, self.retries)
            stream = stream_cls(redial.open(), redial)
            if not self.options.tfo:
                stream._sock.complete(None)
                stream._connected()
        return stream

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[CoreSocketOption] | None = None,
    ) -> Any:
        # No TFO or MPTCP on Unix sockets: the stack's own implementation.
        return self._unix_backend().connect_unix_socket(path, timeout, socket_options)
