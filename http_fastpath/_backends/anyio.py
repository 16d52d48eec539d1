"""The async network backend of httpcore and httpcore2 on the fastpath dialer (anyio).

Same design as :mod:`.sync` (read its docstring), and like it one implementation
for both stacks: :mod:`.httpcore_anyio` and :mod:`.httpcore2_anyio` add the stack's
base classes and exception classes (:class:`AsyncCoreErrors`): a pending socket whose
first write completes the connect. The sans-IO connect of the dialer is driven with
``anyio.wait_writable`` (one per socket in a task group while Happy Eyeballs races
several addresses); the socket is a plain ``socket.socket`` from the start (trio insists
on one), handed to anyio's own socket stream once connected, and TLS is anyio's
``TLSStream`` over a byte stream whose first send -- the ClientHello -- completes the
connect, so it rides in the SYN.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from .._core import addresses as _addresses
from .._core import connect as _connect
from .._core import handshake as _handshake
from .._core import sslcache as _sslcache
from .._core.info import ConnectionInfo
from .._core.proof import INFO_EXTENSION, new_proof, seal
from .._core.record import DialRecord
from .common import (
    BackendBase,
    CoreErrors,
    CoreSocketOption,
    _backoff,
    _InfoMixin,
    _map,
    _mapped,
    _open,
    _options_list,
    _reopen,
    _source,
)

__all__ = ["AsyncBackendImpl", "AsyncCoreErrors", "AsyncStreamImpl"]


class AsyncCoreErrors(CoreErrors):
    """:class:`CoreErrors` plus what anyio raises, for one httpcore stack."""

    __slots__ = ("async_connect", "async_read", "async_write", "tls")

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self.async_connect: dict[type[Exception], type[Exception]] = {
            **self.connect,
            anyio.BrokenResourceError: core.ConnectError,
        }
        self.async_read: dict[type[Exception], type[Exception]] = {
            TimeoutError: core.ReadTimeout,
            anyio.BrokenResourceError: core.ReadError,
            anyio.ClosedResourceError: core.ReadError,
            anyio.EndOfStream: core.ReadError,
        }
        self.async_write: dict[type[Exception], type[Exception]] = {
            TimeoutError: core.WriteTimeout,
            anyio.BrokenResourceError: core.WriteError,
            anyio.ClosedResourceError: core.WriteError,
        }
        self.tls: dict[type[Exception], type[Exception]] = {
            TimeoutError: core.ConnectTimeout,
            anyio.BrokenResourceError: core.ConnectError,
            anyio.EndOfStream: core.ConnectError,
            OSError: core.ConnectError,  # ssl.SSLError and deferred DialError included
        }


async def _writable(sock: socket.socket, ready: list[socket.socket], scope: Any) -> None:
    await anyio.wait_writable(sock)
    ready.append(sock)
    scope.cancel()


async def _wait_any(wait: _connect.WaitWritable) -> tuple[socket.socket, ...]:
    """Wait until some of ``wait.socks`` are writable; return those (empty: timeout).

    A connect that is already over (loopback, or a fast path) is seen with a
    zero-timeout poll, without a trip through the event loop.
    """
    socks, timeout = wait
    if len(socks) == 1:
        if _handshake._wait_writable(socks[0], 0):
            return socks
        with anyio.move_on_after(timeout):
            await anyio.wait_writable(socks[0])
            return socks
        return ()
    with anyio.move_on_after(timeout):
        ready: list[socket.socket] = []
        async with anyio.create_task_group() as group:
            for sock in socks:
                group.start_soon(_writable, sock, ready, group.cancel_scope)
        return tuple(ready)
    return ()


async def _drive_async(sock: socket.socket, pending: DialRecord, data: bytes | None) -> int:
    """Run the dialer's sans-IO connect for ``sock`` on the running anyio loop.

    On any exception (a cancellation included) the generator is closed, which closes
    every socket a Happy Eyeballs race opened, and ``sock`` is closed.
    """
    steps = _connect.connect_steps(sock, pending, data)
    try:
        wait = next(steps)
        while True:
            wait = steps.send(await _wait_any(wait))
    except StopIteration as stop:
        sent: int = stop.value
        return sent
    except BaseException:
        steps.close()
        sock.close()
        raise


class _DeferredByteStream(anyio.abc.ByteStream):
    """The byte stream anyio's ``TLSStream`` runs over while the connect is pending.

    Its first ``send`` (the ClientHello) completes the connect; afterwards it forwards to
    anyio's own socket stream (the methods are rebound, so there is no extra hop).
    """

    def __init__(self, owner: AsyncStreamImpl) -> None:
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
        sock = self._owner._sock
        return {anyio.abc.SocketAttribute.raw_socket: lambda: sock}


def _drain(sock: socket.socket) -> bytes:
    """Everything still readable on a reset socket (non-blocking)."""
    sock.setblocking(False)
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


class _Answered(anyio.abc.ByteStream):
    """A finished exchange: ``data`` to read, then end of stream; sending is broken."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self._data:
            raise anyio.EndOfStream
        chunk, self._data = self._data[:max_bytes], self._data[max_bytes:]
        return chunk

    async def send(self, item: bytes) -> None:
        raise anyio.BrokenResourceError("the server reset the connection")

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self._data = b""


class AsyncStreamImpl(_InfoMixin):
    """An async httpcore stream over a fastpath socket (anyio: asyncio or trio).

    The stack's class (``AsyncFastpathStream``) adds its base class and sets ``_errors``.
    """

    _errors: ClassVar[AsyncCoreErrors]

    def __init__(
        self,
        sock: socket.socket,
        pending: DialRecord | None,
        retries: int = 0,
        stream: anyio.abc.ByteStream | None = None,
        proof: ConnectionInfo | None = None,
    ) -> None:
        self._sock = sock  # a plain socket (trio wants exactly that); connect maybe pending
        self._pending = pending
        self._retries = retries
        self._stream = stream
        self._proof = proof

    async def _wrap(self) -> None:
        plain = self._sock
        try:
            self._stream = await anyio.abc.SocketStream.from_socket(plain)
        except ValueError:
            # Not connected any more: the server answered the request that rode in the
            # SYN and reset the connection before the handshake was polled. anyio will
            # not wrap it; hand httpcore what the server sent, then the end of stream.
            self._stream = _Answered(_drain(plain))
            plain.close()
            return
        except BaseException:
            plain.close()
            raise

    async def _complete(self, data: bytes | None, *, retry: bool = True) -> int:
        retries = self._retries if retry else 0
        delays = _backoff()
        errors = self._errors
        while True:
            pending, sock = self._pending, self._sock
            assert pending is not None
            self._pending = None
            try:
                sent = await _drive_async(sock, pending, data)
            except Exception as exc:
                mapped = _mapped(errors.connect, exc)
                if mapped is None:
                    raise
                if retries <= 0:
                    raise mapped from exc
                retries -= 1
                await anyio.sleep(next(delays))
                with _map(errors.connect):
                    self._sock, self._pending = _reopen(pending)
                continue
            self._proof = new_proof(pending, sock)
            with _map(errors.connect):
                await self._wrap()
            return sent

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._stream is None:
            await self._complete(None)
        assert self._stream is not None
        with _map(self._errors.async_read):
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
        with _map(self._errors.async_write):
            with anyio.fail_after(timeout):
                await self._stream.send(buffer)

    async def aclose(self) -> None:
        if self._proof is not None:
            seal(self._proof)
        if self._stream is not None:
            await self._stream.aclose()
        else:
            self._sock.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        lower = self._stream if self._stream is not None else _DeferredByteStream(self)
        try:
            with _map(self._errors.tls):
                with anyio.fail_after(timeout):
                    tls = await TLSStream.wrap(
                        lower,
                        ssl_context=_sslcache.unwrap(ssl_context),
                        hostname=server_hostname,
                        standard_compatible=False,
                        server_side=False,
                    )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.aclose()
            raise
        return type(self)(self._sock, None, 0, tls, self._proof)

    def get_extra_info(self, info: str) -> Any:
        if info == INFO_EXTENSION:
            return self._proof
        ssl_object = None
        if self._stream is not None:
            ssl_object = self._stream.extra(TLSAttribute.ssl_object, None)
        return self._extra(info, ssl_object)


class AsyncBackendImpl(BackendBase):
    """An async httpcore ``NetworkBackend`` on the fastpath dialer (asyncio or trio).

    The stack's class (``AsyncFastpathBackend``) adds its base class and names its stream
    class and its own anyio backend (for Unix sockets).
    """

    _stream_cls: ClassVar[type[AsyncStreamImpl]]
    _unix_backend: ClassVar[type[Any]]

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[CoreSocketOption] | None = None,
    ) -> Any:
        opts = _options_list(socket_options)
        stream_cls = self._stream_cls
        options = self.options
        with _map(stream_cls._errors.async_connect):
            addresses = _addresses.literal_addresses(host.strip("[]"), port)
            if addresses is None:
                with anyio.fail_after(timeout):
                    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                addresses = [(int(fam), addr) for fam, _, _, _, addr in infos]
            if not addresses:
                raise OSError(f"getaddrinfo returned no address for {host!r}")
            sock, pending = _open(addresses, options, timeout, _source(local_address), opts)
            stream = stream_cls(sock, pending, self.retries)
            if not options.tfo:
                await stream._complete(None, retry=False)  # httpcore retries this
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[CoreSocketOption] | None = None,
    ) -> Any:
        return await self._unix_backend().connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
