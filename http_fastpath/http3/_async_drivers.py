"""EXPERIMENTAL HTTP/3: the connection and its pool, written once.

``_async_drivers.py`` is the source: the async driver (asyncio or trio, through anyio).
``_sync_drivers.py``, the blocking driver, is generated from it by ``scripts/unasync.py``
(which drops the coroutine keywords and renames the classes), and ``scripts/test`` checks
that it is up to date. What truly differs between the two is behind ``io``
(``_io_async.py`` / ``_io_sync.py``): the lock, the wait on the socket, the resolver, the
cancellation shield.

Each connection owns one :class:`~._h3._client.H3Client` (sans-IO) and waits on its
socket. Concurrent requests share the connection; whoever holds the connection's lock
waits on the socket and delivers the data of every stream. Resumption and 0-RTT: see
:mod:`._drivers`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import _io_async as io
from ._base import MAX_WAIT, ConnectionBase, PoolBase, deadline_in
from ._config import (
    PoolKey,
    Resumption,
    VerifyType,
    connect_error,
    open_backend,
    select_backend,
    verify_key,
)
from ._h3._client import H3Client, StreamState
from ._h3._resumption import TicketStore

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration

__all__ = ["AsyncH3Connection", "AsyncH3Pool"]


class AsyncH3Connection(ConnectionBase):
    """An HTTP/3 connection; requests on it are multiplexed (the blocking one is
    thread-safe; the async one runs on asyncio or trio through anyio)."""

    def __init__(
        self,
        client: H3Client,
        *,
        early_data: bool = True,
        connect_deadline: float | None = None,
    ) -> None:
        super().__init__(client, early_data=early_data, connect_deadline=connect_deadline)
        self._lock = io.Lock()

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        backend: str,
        config: QuicConfiguration,
        timeout: float | None,
        connect_to: tuple[str, int] | None = None,
        resumption: Resumption | None = None,
        early_data: bool = True,
    ) -> AsyncH3Connection:
        """Resolve, create the socket and start the QUIC + TLS handshake.

        Returns once the handshake completed, or at once when 0-RTT is possible (the
        handshake then completes while the first requests are sent). ``connect_to``: the
        (host, port) the UDP packets go to when not the origin's (an Alt-Svc
        alternative); TLS still checks the certificate against ``host``.
        """
        connect_deadline = deadline_in(timeout)
        kind = select_backend(backend)
        dest_host, dest_port = connect_to or (host, port)
        try:
            address = await io.resolve_first(dest_host, dest_port)
            quic = open_backend(kind, address, config, resumption, early_data=early_data)
        except socket.gaierror:
            raise
        except OSError as exc:
            raise connect_error(dest_host, dest_port, exc) from exc
        conn = cls(
            H3Client(quic, host=host, port=port),
            early_data=early_data,
            connect_deadline=connect_deadline,
        )
        conn.client.start(time.monotonic())
        if conn.early_data and conn.client.early_open:
            return conn
        try:
            await conn.wait_handshake()
        except BaseException:
            await conn.aclose()
            raise
        return conn

    async def _step(self, deadline: float | None) -> None:
        self._flush_forgotten()
        client = self.client
        wait = client.wait_time(time.monotonic(), deadline)
        wait = MAX_WAIT if wait is None else min(wait, MAX_WAIT)
        ready = await io.wait_socket(client.fileno(), client.backend.wants_write(), wait)
        client.step(time.monotonic(), ready)

    async def wait(
        self,
        done: Callable[[], bool],
        deadline: float | None,
        on_timeout: Callable[[], Exception],
    ) -> None:
        """Drive the connection until ``done()``, the connection fails or ``deadline``
        (or the connect deadline, while the handshake is under way)."""
        client = self.client
        while not done():
            step_deadline = self._check(deadline, on_timeout)
            async with self._lock:
                if done() or client.error is not None:
                    continue
                await self._step(step_deadline)

    async def wait_handshake(self) -> None:
        await self.wait(lambda: self.client.handshake_done, None, self._connect_timeout)

    async def _send(
        self,
        method: bytes,
        authority: bytes,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        early: bool,
    ) -> StreamState:
        if not (early and self.client.early_open):
            await self.wait_handshake()
        async with self._lock:
            state = self.client.send_request(
                method, b"https", authority, path, headers, body, early=early
            )
            self.client.step(time.monotonic(), False)
        return state

    async def request(
        self,
        method: bytes,
        authority: bytes,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        read_timeout: float | None,
    ) -> StreamState:
        """Send a request (in 0-RTT when allowed) and wait for the response headers."""
        early = self._early(method, body)
        state = await self._send(method, authority, path, headers, body, early)
        await self._wait_headers(state, read_timeout)
        if early and self._too_early(state):
            state = await self._send(method, authority, path, headers, body, False)
            await self._wait_headers(state, read_timeout)
        return state

    async def _wait_headers(self, state: StreamState, read_timeout: float | None) -> None:
        await self.wait(
            lambda: state.has_headers or self.client.error is not None,
            deadline_in(read_timeout),
            lambda: self._read_timeout(state),
        )
        if state.status is None:
            self._forgotten.append(state)
            raise state.error or self.client.error or self._read_timeout(state)

    async def iter_body(self, state: StreamState, read_timeout: float | None) -> io.Chunks:
        """The response body, chunk by chunk; each wait is bounded by ``read_timeout``."""
        try:
            while True:
                await self.wait(
                    lambda: state.readable,
                    deadline_in(read_timeout),
                    lambda: self._read_timeout(state),
                )
                chunk = state.read_chunk()
                if chunk:
                    yield chunk
                elif state.ended:
                    return
        finally:
            # Deferred: this may run from a garbage collection inside a step of this very
            # thread or task. Done now when the lock is free (without waiting for it),
            # else by the next step.
            self._forgotten.append(state)
            if self._lock.acquire_nowait():
                try:
                    self._flush_forgotten()
                    self.client.step(time.monotonic(), False)  # sends the STOP_SENDING
                finally:
                    self._lock.release()

    async def refresh(self) -> bool:
        """Process whatever arrived while idle (a close, an idle timeout); True if the
        connection can still carry requests."""
        async with self._lock:
            self.client.step(time.monotonic(), True)
        return self.client.alive

    async def aclose(self) -> None:
        """Close the connection and release its socket (shielded from cancellation: the
        close always happens)."""
        with io.shield_cancellation():
            async with self._lock:
                self.client.close(time.monotonic())


class AsyncH3Pool(PoolBase):
    """One :class:`AsyncH3Connection` per (host, port, verify, alternative) for a transport
    or adapter, and its session tickets."""

    def __init__(
        self,
        backend: str,
        trust_env: bool,
        *,
        early_data: bool = True,
        tickets: TicketStore | None = None,
    ) -> None:
        super().__init__(backend, trust_env, early_data=early_data, tickets=tickets)
        self._conns: dict[PoolKey, AsyncH3Connection] = {}
        self._lock = io.Lock()

    async def get(
        self,
        host: str,
        port: int,
        verify: VerifyType,
        timeout: float | None,
        connect_to: tuple[str, int] | None = None,
    ) -> AsyncH3Connection:
        key = (host, port, verify_key(verify), connect_to)
        async with self._lock:
            conn = self._conns.get(key)
            if conn is not None and conn.client.alive and await conn.refresh():
                return conn
            if conn is not None:
                del self._conns[key]
                await conn.aclose()
            config, resumption = self._plan(host, port, verify, connect_to)
            conn = await AsyncH3Connection.connect(
                host,
                port,
                backend=self.backend,
                config=config,
                timeout=timeout,
                connect_to=connect_to,
                resumption=resumption,
                early_data=self.early_data,
            )
            self._conns[key] = conn
            return conn

    async def aclose(self) -> None:
        """Close every connection: under the pool's lock (a ``get`` under way finishes
        first, and its connection is closed too) and shielded from cancellation. One that
        fails to close does not leave the others open: the first error is raised after."""
        error: Exception | None = None
        with io.shield_cancellation():
            async with self._lock:
                conns, self._conns = list(self._conns.values()), {}
                for conn in conns:
                    try:
                        await conn.aclose()
                    except Exception as exc:
                        if error is None:
                            error = exc
        if error is not None:
            raise error
