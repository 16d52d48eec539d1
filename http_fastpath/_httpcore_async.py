"""The async httpcore network backend on the fastpath dialer (anyio: asyncio or trio).

Same design as :mod:`._httpcore_backend` (read its docstring): a pending socket whose
first write completes the connect. The sans-IO connect of the dialer is driven with
``anyio.wait_writable``; once connected, the fd moves to a plain socket handed to anyio's
own socket stream (trio insists on a plain ``socket.socket``), and TLS is anyio's
``TLSStream`` over a byte stream whose first send -- the ClientHello -- completes the
connect, so it rides in the SYN.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import anyio.abc
import httpcore
from anyio.streams.tls import TLSAttribute, TLSStream

from . import _dialer
from ._dialer import Address, FastpathSocket
from ._httpcore_backend import (
    _CONNECT_ERRORS,
    CoreSocketOption,
    _backoff,
    _InfoMixin,
    _map,
    _options_list,
    _Redial,
)
from ._options import FastpathOptions
from ._proof import INFO_EXTENSION

__all__ = ["AsyncFastpathBackend", "AsyncFastpathStream"]

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
