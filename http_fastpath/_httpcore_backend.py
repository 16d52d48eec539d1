"""httpcore network backends whose sockets come from the fastpath dialer.

``connect_tcp`` returns a stream over a *pending* socket (see :mod:`._dialer`): nothing
is sent yet. The stream's first write completes the connection, so for ``http://`` the
request (when replay-safe) and for ``https://`` the TLS ClientHello (``start_tls`` drives
TLS over memory BIOs) rides in the SYN.

A connect failure that only shows up at that first write (a dead server whose TFO cookie
is cached) is reported as ``httpcore.ConnectError`` / ``ConnectTimeout`` -- never as a
read or write error -- and, for cleartext, retried like httpcore retries a failed
``connect_tcp`` (``retries=N``, same backoff), because httpcore's own retry loop has
already returned by then. For ``https://`` the failure surfaces inside ``start_tls``,
which httpcore's retry loop covers by itself.

Addresses are tried one after another (each with the full connect timeout), like the
standard library's ``socket.create_connection``; there is no Happy Eyeballs race.

:class:`FastpathBackend` is blocking; :class:`AsyncFastpathBackend` runs on anyio, so it
works under asyncio and trio.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import anyio
import anyio.abc
import httpcore
from anyio.streams.tls import TLSAttribute, TLSStream

from . import _dialer
from ._dialer import Address, FastpathSocket, SocketOption
from ._info import ConnectionInfo
from ._options import FastpathOptions
from ._proof import INFO_EXTENSION
from ._tls import TLSSocket

__all__ = ["AsyncFastpathBackend", "FastpathBackend"]

#: httpcore's socket option type (``httpcore._backends.base.SOCKET_OPTION``).
CoreSocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

_NODELAY: SocketOption = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_BACKOFF_FACTOR = 0.5  # httpcore's RETRIES_BACKOFF_FACTOR: 0 s, 0.5 s, 1 s, 2 s, ...
_CONNECT_ERRORS: dict[type[Exception], type[Exception]] = {
    TimeoutError: httpcore.ConnectTimeout,
    OSError: httpcore.ConnectError,
}
_READ_ERRORS: dict[type[Exception], type[Exception]] = {
    TimeoutError: httpcore.ReadTimeout,
    OSError: httpcore.ReadError,
}
_WRITE_ERRORS: dict[type[Exception], type[Exception]] = {
    TimeoutError: httpcore.WriteTimeout,
    OSError: httpcore.WriteError,
}


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
    poller = select.poll()
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
        if live is None:
            return None
        try:
            if info == "client_addr":
                return live.getsockname()
            if info == "server_addr":
                return live.getpeername()
        except OSError:
            return None
        return None


# -- sync ---------------------------------------------------------------------------------


class FastpathStream(_InfoMixin, httpcore.NetworkStream):
    """A blocking httpcore stream over a fastpath socket (plain or TLS)."""

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
        while True:
            try:
                with _map(_CONNECT_ERRORS):
                    sent = self._sock.complete(data)
                    self._connected()
                    return sent
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                if retries <= 0 or redial is None:
                    raise
                retries -= 1
                time.sleep(next(delays))
                with _map(_CONNECT_ERRORS):
                    self._sock = redial.open()

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        io = self._io
        if io is None:
            self._complete(None)
            io = self._io
            assert io is not None
        with _map(_READ_ERRORS):
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
        with _map(_WRITE_ERRORS):
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
    ) -> FastpathStream:
        # TLS over memory BIOs: on a pending socket the ClientHello is the first write and
        # completes the connect (errors of that connect are connect errors, retried by
        # httpcore's own loop). Over an existing TLS layer (HTTPS proxy) it is TLS-in-TLS.
        lower: Any = self._tls if self._tls is not None else (self._io or self._sock)
        try:
            with _map(_CONNECT_ERRORS):
                (self._io or self._sock).settimeout(timeout)
                tls = TLSSocket(lower, ssl_context, server_hostname)
                tls.do_handshake()
                if self._io is None:  # the handshake completed the connect
                    tls.sock = self._connected()
        except BaseException:
            self.close()
            raise
        return FastpathStream(self._sock, None, tls, self._io)

    def get_extra_info(self, info: str) -> Any:
        if info == INFO_EXTENSION and self._info is not None:
            return self._info
        return self._extra(info, None if self._tls is None else self._tls.ssl_object)


class FastpathBackend(httpcore.NetworkBackend):
    """An ``httpcore.NetworkBackend`` whose TCP connections come from the fastpath dialer.

    Use it with ``httpcore.ConnectionPool(network_backend=FastpathBackend())``, or let
    :class:`http_fastpath.FastpathTransport` do that for httpx. ``retries`` should equal
    the pool's ``retries`` so a connect failure that only shows up on the first write
    of a TCP Fast Open connection is retried the same way (see the module docstring).
    """

    def __init__(self, options: FastpathOptions | None = None, *, retries: int = 0) -> None:
        self.options = options if options is not None else FastpathOptions()
        self.retries = retries

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[CoreSocketOption] | None = None,
    ) -> FastpathStream:
        opts = _options_list(socket_options)
        with _map(_CONNECT_ERRORS):
            addresses = _dialer.resolve(host, port)
            redial = _Redial(addresses, self.options, timeout, local_address, opts, self.retries)
            stream = FastpathStream(redial.open(), redial)
            if not self.options.tfo:
                stream._sock.complete(None)
                stream._connected()
        return stream

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[CoreSocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        # No TFO or MPTCP on Unix sockets: httpcore's own implementation.
        return httpcore.SyncBackend().connect_unix_socket(path, timeout, socket_options)


# -- async --------------------------------------------------------------------------------

_ASYNC_READ_ERRORS: dict[type[Exception], type[Exception]] = {
    TimeoutError: httpcore.ReadTimeout,
    anyio.BrokenResourceError: httpcore.ReadError,
    anyio.ClosedResourceError: httpcore.ReadError,
    anyio.EndOfStream: httpcore.ReadError,
}
_ASYNC_WRITE_ERRORS: dict[type[Exception], type[Exception]] = {
    TimeoutError: httpcore.WriteTimeout,
    anyio.BrokenResourceError: httpcore.WriteError,
    anyio.ClosedResourceError: httpcore.WriteError,
}


async def _drive_async(sock: FastpathSocket, data: bytes | None) -> int:
    """Run the dialer's sans-IO connect for ``sock`` on the running anyio loop."""
    pending = sock._fp_pending
    if pending is None:
        return 0
    sock._fp_pending = None
    steps = _dialer.connect_steps(sock, pending, data)
    try:
        wait = next(steps)
        while True:
            try:
                with anyio.fail_after(wait):
                    await anyio.wait_writable(sock)
                ready = True
            except TimeoutError:
                ready = False
            wait = steps.send(ready)
    except StopIteration as stop:
        sent: int = stop.value
        return sent
    except BaseException:
        sock.close()
        raise


class _DeferredByteStream(anyio.abc.ByteStream):
    """The byte stream anyio's ``TLSStream`` runs over while the connect is pending.

    Its first ``send`` (the ClientHello) completes the connect; afterwards it forwards to
    anyio's own socket stream (the methods are rebound, so there is no extra hop).
    """

    def __init__(self, owner: AsyncFastpathStream) -> None:
        self._owner = owner

    async def _ensure(self, data: bytes | None) -> int:
        owner = self._owner
        sent = await owner._complete(data, retry=False)
        inner = owner._stream
        assert inner is not None
        self.send = inner.send  # type: ignore[method-assign]
        self.receive = inner.receive  # type: ignore[method-assign]
        return sent

    async def send(self, item: bytes) -> None:
        if self._owner._stream is None:
            item = item[await self._ensure(item) :]
            if not item:
                return
        assert self._owner._stream is not None
        await self._owner._stream.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._owner._stream is None:
            await self._ensure(None)
        assert self._owner._stream is not None
        return await self._owner._stream.receive(max_bytes)

    async def send_eof(self) -> None:
        if self._owner._stream is not None:
            await self._owner._stream.send_eof()

    async def aclose(self) -> None:
        await self._owner.aclose()

    @property
    def extra_attributes(self) -> dict[Any, Callable[[], Any]]:
        inner = self._owner._stream
        if inner is not None:
            return dict(inner.extra_attributes)
        sock: socket.socket = self._owner._sock
        return {anyio.abc.SocketAttribute.raw_socket: lambda: sock}


class AsyncFastpathStream(_InfoMixin, httpcore.AsyncNetworkStream):
    """An async httpcore stream over a fastpath socket (anyio: asyncio or trio)."""

    def __init__(
        self,
        sock: FastpathSocket,
        redial: _Redial | None,
        stream: anyio.abc.ByteStream | None = None,
    ) -> None:
        self._sock = sock
        self._redial = redial
        self._stream = stream
        self._plain: socket.socket | None = None

    def _live(self) -> socket.socket | None:
        return self._plain

    async def _wrap(self) -> None:
        # trio wants a plain socket.socket; asyncio is faster with one too.
        plain = _dialer.detach_plain(self._sock)
        try:
            self._stream = await anyio.abc.SocketStream.from_socket(plain)
        except BaseException:
            plain.close()
            raise
        self._plain = plain

    async def _complete(self, data: bytes | None, *, retry: bool = True) -> int:
        redial = self._redial
        retries = redial.retries if (retry and redial is not None) else 0
        delays = _backoff()
        while True:
            try:
                with _map(_CONNECT_ERRORS):
                    sent = await _drive_async(self._sock, data)
                    await self._wrap()
                return sent
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                if retries <= 0 or redial is None:
                    raise
                retries -= 1
                await anyio.sleep(next(delays))
                with _map(_CONNECT_ERRORS):
                    self._sock = redial.open()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._stream is None:
            await self._complete(None)
        assert self._stream is not None
        with _map(_ASYNC_READ_ERRORS):
            with anyio.fail_after(timeout):
                try:
                    return await self._stream.receive(max_bytes)
                except anyio.EndOfStream:
                    return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._stream is None:
            buffer = buffer[await self._complete(buffer) :]
            if not buffer:
                return
        assert self._stream is not None
        with _map(_ASYNC_WRITE_ERRORS):
            with anyio.fail_after(timeout):
                await self._stream.send(buffer)

    async def aclose(self) -> None:
        if self._stream is not None:
            self._capture()
            await self._stream.aclose()
        else:
            self._sock.close()
            if self._plain is not None:
                self._plain.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncFastpathStream:
        lower = self._stream if self._stream is not None else _DeferredByteStream(self)
        exc_map: dict[type[Exception], type[Exception]] = {
            TimeoutError: httpcore.ConnectTimeout,
            anyio.BrokenResourceError: httpcore.ConnectError,
            anyio.EndOfStream: httpcore.ConnectError,
            OSError: httpcore.ConnectError,  # ssl.SSLError and deferred DialError included
        }
        try:
            with _map(exc_map):
                with anyio.fail_after(timeout):
                    tls = await TLSStream.wrap(
                        lower,
                        ssl_context=ssl_context,
                        hostname=server_hostname,
                        standard_compatible=False,
                        server_side=False,
                    )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.aclose()
            raise
        upgraded = AsyncFastpathStream(self._sock, None, tls)
        upgraded._plain = self._plain
        return upgraded

    def get_extra_info(self, info: str) -> Any:
        if info == INFO_EXTENSION and self._info is not None:
            return self._info
        ssl_object = None
        if self._stream is not None:
            ssl_object = self._stream.extra(TLSAttribute.ssl_object, None)
        return self._extra(info, ssl_object)


class AsyncFastpathBackend(httpcore.AsyncNetworkBackend):
    """An ``httpcore.AsyncNetworkBackend`` on the fastpath dialer (asyncio or trio, via anyio).

    Use it with ``httpcore.AsyncConnectionPool(network_backend=AsyncFastpathBackend())``,
    or let :class:`http_fastpath.AsyncFastpathTransport` do that for httpx.
    """

    def __init__(self, options: FastpathOptions | None = None, *, retries: int = 0) -> None:
        self.options = options if options is not None else FastpathOptions()
        self.retries = retries

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[CoreSocketOption] | None = None,
    ) -> AsyncFastpathStream:
        opts = _options_list(socket_options)
        with _map({**_CONNECT_ERRORS, anyio.BrokenResourceError: httpcore.ConnectError}):
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses: list[Address] = [(int(fam), addr) for fam, _, _, _, addr in infos]
            if not addresses:
                raise OSError(f"getaddrinfo returned no address for {host!r}")
            redial = _Redial(addresses, self.options, timeout, local_address, opts, self.retries)
            stream = AsyncFastpathStream(redial.open(), redial)
            if not self.options.tfo:
                await stream._complete(None, retry=False)  # httpcore retries this
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[CoreSocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await httpcore.AnyIOBackend().connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
