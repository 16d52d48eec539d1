"""EXPERIMENTAL HTTP/3: backend selection, TLS settings and the sync/async drivers.

The httpx transports (:mod:`._httpx`) and the requests adapter
(:mod:`._requests`) are thin shells over :class:`SyncH3Connection` /
:class:`AsyncH3Connection` and their pools. Each connection owns one
:class:`~._h3._client.H3Client` (sans-IO) and waits on its socket: ``select.poll`` for the
sync driver, ``anyio.wait_readable`` for the async one. Concurrent requests share the
connection; whoever holds the connection's lock waits on the socket and delivers the
data of every stream.

Resumption and 0-RTT (userspace backend): each pool keeps a
:class:`~._h3._resumption.TicketStore`; a new connection takes a ticket for its key and
hands the server's new tickets back. When the ticket allows early data, ``connect``
returns before the handshake completes and requests that
:func:`~._h3._resumption.may_send_early` allows ride in 0-RTT; every other request waits
for the handshake. A ``425 Too Early`` answer to a request sent early is sent again once,
at 1-RTT (RFC 8470 section 5.2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Literal

from ._h3 import require_aioquic

require_aioquic()

from aioquic.quic.configuration import QuicConfiguration  # noqa: E402

from .._core.addresses import Address, resolve  # noqa: E402
from .._core.capabilities import probe  # noqa: E402
from .._core.exceptions import CapabilityError, OptionError  # noqa: E402
from .._core.log import log_fallback_once  # noqa: E402
from ._h3._client import H3Client, StreamState  # noqa: E402
from ._h3._errors import H3ConnectError, H3ConnectTimeout, H3ReadTimeout  # noqa: E402
from ._h3._resumption import TicketKey, TicketStore, may_send_early  # noqa: E402

if TYPE_CHECKING:
    import anyio
    from aioquic.tls import SessionTicket

    from .._core.info import ConnectionInfo
    from ._h3._stream_layer import QuicBackend

__all__ = [
    "AsyncH3Connection",
    "AsyncH3Pool",
    "BackendName",
    "SyncH3Connection",
    "SyncH3Pool",
    "VerifyType",
    "quic_configuration",
    "select_backend",
    "trust_key",
]

BackendName = Literal["auto", "userspace", "kernel"]
VerifyType = bool | str | os.PathLike[str] | ssl.SSLContext
_BACKENDS = ("auto", "userspace", "kernel")
#: Longest single wait while holding a connection's lock, so that other waiters' own
#: deadlines are checked at least this often.
_MAX_WAIT = 0.25
#: RFC 8470 section 5.2: a request sent in 0-RTT and answered "425 Too Early".
_TOO_EARLY = 425


def select_backend(backend: str) -> str:
    """Resolve ``backend`` to ``"kernel"`` or ``"userspace"`` (raises CapabilityError)."""
    if backend not in _BACKENDS:
        raise OptionError("backend", backend, "'auto', 'userspace' or 'kernel'")
    if backend == "userspace":
        return backend
    feature = probe().kernel_quic
    if backend == "kernel":
        if not feature.available:
            raise CapabilityError(
                f"backend='kernel' needs Linux kernel QUIC (IPPROTO_QUIC, the out-of-tree "
                f"'quic' kernel module): {feature.detail}. To enable: {feature.enable}. "
                "`http-fastpath doctor` shows what this kernel offers."
            )
        from ._quic_kernel import uapi_mismatch

        mismatch = uapi_mismatch()
        if mismatch is not None:
            raise CapabilityError(f"backend='kernel': {mismatch}")
        return "kernel"
    if feature.available:
        from ._quic_kernel import uapi_mismatch

        mismatch = uapi_mismatch()
        if mismatch is None:
            return "kernel"
        log_fallback_once(f"http3: kernel QUIC not used: {mismatch}")
    return "userspace"


def quic_configuration(
    host: str, verify: VerifyType, *, trust_env: bool = True
) -> QuicConfiguration:
    """A client ``QuicConfiguration`` with ALPN ``h3`` and verification as requests/httpx do.

    ``verify``: True (the default CA bundle: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when
    ``trust_env``, else certifi's, as httpx does), a CA bundle file or directory path,
    an ``ssl.SSLContext`` (its loaded CA certificates and its ``verify_mode``), or False
    (no certificate or hostname check).
    """
    server_name = host[1:-1] if host.startswith("[") else host
    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name=server_name)
    config.verify_mode = ssl.CERT_REQUIRED
    allowed = "True, False, a CA bundle file or directory path, or an ssl.SSLContext"
    if verify is False:
        config.verify_mode = ssl.CERT_NONE
    elif verify is True:
        if trust_env:
            cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
            if cafile and os.path.isfile(cafile):
                config.cafile = cafile
            elif capath and os.path.isdir(capath):
                config.capath = capath
    elif isinstance(verify, ssl.SSLContext):
        if verify.verify_mode == ssl.CERT_NONE:
            config.verify_mode = ssl.CERT_NONE
        else:
            ders = verify.get_ca_certs(binary_form=True)
            if ders:
                pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in ders)
                config.cadata = pem.encode("ascii")
            else:
                paths = ssl.get_default_verify_paths()
                config.cafile, config.capath = paths.cafile, paths.capath
    elif isinstance(verify, (str, os.PathLike)):
        path = os.fspath(verify)
        if os.path.isdir(path):
            config.capath = path
        elif os.path.isfile(path):
            config.cafile = path
        else:
            raise OptionError("verify", verify, f"{allowed} (no such file or directory)")
    else:
        raise OptionError("verify", verify, allowed)
    return config


def trust_key(config: QuicConfiguration) -> str:
    """What decided whether a server was trusted: part of a session ticket's key."""
    digest = hashlib.sha256(
        repr((int(config.verify_mode or 0), config.cafile, config.capath)).encode()
    )
    digest.update(config.cadata or b"")
    return digest.hexdigest()[:32]


#: A pool's ticket store and the key of the connection being made.
Resumption = tuple[TicketStore, TicketKey]


def open_backend(
    kind: str,
    address: Address,
    config: QuicConfiguration,
    resumption: Resumption | None = None,
    *,
    early_data: bool = True,
) -> QuicBackend:
    """Create the chosen backend's socket for ``address`` (no packet is sent yet).

    ``resumption``: the userspace backend resumes with a ticket taken from the store
    and gives the server's new tickets to it; with ``early_data=False`` the ClientHello
    does not offer 0-RTT at all. Not wired for the kernel backend.
    """
    if kind == "kernel":
        from ._quic_kernel import KernelQuic

        return KernelQuic(address, config)
    from ._quic_userspace import UserspaceQuic

    handler = None
    if resumption is not None:
        store, key = resumption
        ticket = store.take(key)
        if ticket is not None and not early_data:
            ticket = dataclasses.replace(ticket, max_early_data_size=None)
        config.session_ticket = ticket
        handler = functools.partial(_keep_ticket, store, key)
    return UserspaceQuic(address, config, session_ticket_handler=handler)


def _keep_ticket(store: TicketStore, key: TicketKey, ticket: SessionTicket) -> None:
    store.put(key, ticket)


def _connect_error(host: str, port: int, exc: OSError) -> H3ConnectError:
    err = H3ConnectError(exc.errno or errno.EHOSTUNREACH, f"{exc.strerror or exc}: {host}:{port}")
    err.__cause__ = exc
    return err


def _connect_timeout(c: H3Client) -> Exception:
    return H3ConnectTimeout(
        errno.ETIMEDOUT, f"QUIC handshake with {c.host}:{c.port} timed out ({c.backend.name})"
    )


def _read_timeout(c: H3Client, state: StreamState) -> Exception:
    return H3ReadTimeout(f"HTTP/3 read from {c.host}:{c.port} timed out (stream {state.stream_id})")


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


class _ConnectionBase:
    """What the sync and async connections share: the connection info and the deadlines."""

    def __init__(
        self, client: H3Client, *, early_data: bool, connect_deadline: float | None
    ) -> None:
        self.client = client
        self.early_data = early_data
        self.connect_deadline = connect_deadline
        self._info: ConnectionInfo = client.backend.connection_info()
        self._info_final = False
        self._forgotten: list[StreamState] = []

    @property
    def info(self) -> ConnectionInfo:
        """The connection's :class:`~http_fastpath.ConnectionInfo` (``resumed`` once the
        handshake completed)."""
        if not self._info_final and self.client.handshake_done:
            self._info = dataclasses.replace(
                self.client.backend.connection_info(), resumed=self.client.resumed
            )
            self._info_final = True
        return self._info

    def info_for(self, state: StreamState) -> ConnectionInfo:
        """:attr:`info` with ``early_data`` of the request on ``state``."""
        info = self.info
        if state.early is None:
            return info
        return dataclasses.replace(info, early_data=state.early)

    def _early(self, method: bytes, body: bytes) -> bool:
        return self.early_data and may_send_early(method, body)

    def _too_early(self, state: StreamState) -> bool:
        """A 0-RTT request the server answered 425: sent again once the handshake is done."""
        if state.status == _TOO_EARLY and state.early is not None:
            self._forgotten.append(state)
            return True
        return False

    def _connect_timeout(self) -> Exception:
        return _connect_timeout(self.client)

    def _read_timeout(self, state: StreamState) -> Exception:
        return _read_timeout(self.client, state)

    def _flush_forgotten(self) -> None:
        while self._forgotten:
            self.client.forget(self._forgotten.pop())

    def _check(self, deadline: float | None, on_timeout: Callable[[], Exception]) -> float | None:
        """Raise what ended the wait; else the deadline of the next step."""
        client = self.client
        if client.error is not None:
            raise client.error
        now = time.monotonic()
        connect = None if client.handshake_done else self.connect_deadline
        if connect is not None and now >= connect:
            raise self._connect_timeout()
        if deadline is not None and now >= deadline:
            raise on_timeout()
        points = [t for t in (deadline, connect) if t is not None]
        return min(points) if points else None


class SyncH3Connection(_ConnectionBase):
    """A blocking HTTP/3 connection (thread-safe; requests on it are multiplexed)."""

    def __init__(
        self,
        client: H3Client,
        *,
        early_data: bool = True,
        connect_deadline: float | None = None,
    ) -> None:
        super().__init__(client, early_data=early_data, connect_deadline=connect_deadline)
        self._lock = threading.Lock()
        self._poll = select.poll()

    @classmethod
    def connect(
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
    ) -> SyncH3Connection:
        """Resolve, create the socket and start the QUIC + TLS handshake.

        Returns once the handshake completed, or at once when 0-RTT is possible (the
        handshake then completes while the first requests are sent). ``connect_to``: the
        (host, port) the UDP packets go to when not the origin's (an Alt-Svc
        alternative); TLS still checks the certificate against ``host``.
        """
        deadline = _deadline(timeout)
        kind = select_backend(backend)
        dest_host, dest_port = connect_to or (host, port)
        try:
            address = resolve(dest_host, dest_port)[0]
            quic = open_backend(kind, address, config, resumption, early_data=early_data)
        except socket.gaierror:
            raise
        except OSError as exc:
            raise _connect_error(dest_host, dest_port, exc) from exc
        conn = cls(
            H3Client(quic, host=host, port=port), early_data=early_data, connect_deadline=deadline
        )
        conn.client.start(time.monotonic())
        if conn.early_data and conn.client.early_open:
            return conn
        try:
            conn.wait_handshake()
        except BaseException:
            conn.close()
            raise
        return conn

    def _step(self, deadline: float | None) -> None:
        self._flush_forgotten()
        client = self.client
        wait = client.wait_time(time.monotonic(), deadline)
        wait = _MAX_WAIT if wait is None else min(wait, _MAX_WAIT)
        mask = select.POLLIN | (select.POLLOUT if client.backend.wants_write() else 0)
        self._poll.register(client.fileno(), mask)
        try:
            ready = self._poll.poll(wait * 1000.0)
        finally:
            self._poll.unregister(client.fileno())
        client.step(time.monotonic(), bool(ready))

    def wait(
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
            with self._lock:
                if done() or client.error is not None:
                    continue
                self._step(step_deadline)

    def wait_handshake(self) -> None:
        self.wait(lambda: self.client.handshake_done, None, self._connect_timeout)

    def _send(
        self,
        method: bytes,
        authority: bytes,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        early: bool,
    ) -> StreamState:
        if not (early and self.client.early_open):
            self.wait_handshake()
        with self._lock:
            state = self.client.send_request(
                method, b"https", authority, path, headers, body, early=early
            )
            self.client.step(time.monotonic(), False)
        return state

    def request(
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
        state = self._send(method, authority, path, headers, body, early)
        self._wait_headers(state, read_timeout)
        if early and self._too_early(state):
            state = self._send(method, authority, path, headers, body, False)
            self._wait_headers(state, read_timeout)
        return state

    def _wait_headers(self, state: StreamState, read_timeout: float | None) -> None:
        self.wait(
            lambda: state.has_headers or self.client.error is not None,
            _deadline(read_timeout),
            lambda: self._read_timeout(state),
        )
        if state.status is None:
            self._forgotten.append(state)
            raise state.error or self.client.error or self._read_timeout(state)

    def iter_body(
        self, state: StreamState, read_timeout: float | None
    ) -> Generator[bytes, None, None]:
        """The response body, chunk by chunk; each wait is bounded by ``read_timeout``."""
        try:
            while True:
                self.wait(
                    lambda: state.readable,
                    _deadline(read_timeout),
                    lambda: self._read_timeout(state),
                )
                chunk = state.read_chunk()
                if chunk:
                    yield chunk
                elif state.ended:
                    return
        finally:
            # Deferred: this may run from a garbage collection inside a step of this very
            # thread. Done now when the lock is free, else by the next step.
            self._forgotten.append(state)
            if self._lock.acquire(blocking=False):
                try:
                    self._flush_forgotten()
                    self.client.step(time.monotonic(), False)  # sends the STOP_SENDING
                finally:
                    self._lock.release()

    def refresh(self) -> bool:
        """Process whatever arrived while idle (a close, an idle timeout); True if the
        connection can still carry requests."""
        with self._lock:
            self.client.step(time.monotonic(), True)
        return self.client.alive

    def close(self) -> None:
        with self._lock:
            self.client.close(time.monotonic())


class AsyncH3Connection(_ConnectionBase):
    """An async HTTP/3 connection (asyncio or trio through anyio)."""

    def __init__(
        self,
        client: H3Client,
        *,
        early_data: bool = True,
        connect_deadline: float | None = None,
    ) -> None:
        import anyio

        super().__init__(client, early_data=early_data, connect_deadline=connect_deadline)
        self._lock: anyio.Lock = anyio.Lock()

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
        """See :meth:`SyncH3Connection.connect`."""
        import anyio

        deadline = _deadline(timeout)
        kind = select_backend(backend)
        dest_host, dest_port = connect_to or (host, port)
        plain = dest_host[1:-1] if dest_host.startswith("[") else dest_host
        infos = await anyio.getaddrinfo(plain, dest_port, type=socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        try:
            quic = open_backend(
                kind, (int(family), tuple(sockaddr)), config, resumption, early_data=early_data
            )
        except OSError as exc:
            raise _connect_error(dest_host, dest_port, exc) from exc
        conn = cls(
            H3Client(quic, host=host, port=port), early_data=early_data, connect_deadline=deadline
        )
        conn.client.start(time.monotonic())
        if conn.early_data and conn.client.early_open:
            return conn
        try:
            await conn.wait_handshake()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await conn.aclose()
            raise
        return conn

    async def _step(self, deadline: float | None) -> None:
        import anyio

        self._flush_forgotten()
        client = self.client
        wait = client.wait_time(time.monotonic(), deadline)
        wait = _MAX_WAIT if wait is None else min(wait, _MAX_WAIT)
        readable = False
        with anyio.move_on_after(wait):
            if client.backend.wants_write():
                await anyio.wait_writable(client.fileno())
            else:
                await anyio.wait_readable(client.fileno())
            readable = True
        client.step(time.monotonic(), readable)

    async def wait(
        self,
        done: Callable[[], bool],
        deadline: float | None,
        on_timeout: Callable[[], Exception],
    ) -> None:
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
            _deadline(read_timeout),
            lambda: self._read_timeout(state),
        )
        if state.status is None:
            self._forgotten.append(state)
            raise state.error or self.client.error or self._read_timeout(state)

    async def iter_body(
        self, state: StreamState, read_timeout: float | None
    ) -> AsyncGenerator[bytes, None]:
        try:
            while True:
                await self.wait(
                    lambda: state.readable,
                    _deadline(read_timeout),
                    lambda: self._read_timeout(state),
                )
                chunk = state.read_chunk()
                if chunk:
                    yield chunk
                elif state.ended:
                    return
        finally:
            self._forgotten.append(state)
            if not self._lock.locked():
                async with self._lock:
                    self._flush_forgotten()
                    self.client.step(time.monotonic(), False)  # sends the STOP_SENDING

    async def refresh(self) -> bool:
        """Process whatever arrived while idle (a close, an idle timeout); True if the
        connection can still carry requests."""
        async with self._lock:
            self.client.step(time.monotonic(), True)
        return self.client.alive

    async def aclose(self) -> None:
        async with self._lock:
            self.client.close(time.monotonic())


#: (origin host, origin port, trust settings, the alternative (host, port) or None)
PoolKey = tuple[str, int, str, tuple[str, int] | None]


class _PoolBase:
    """Pool settings, the session tickets and the keys (sync and async alike)."""

    def __init__(
        self,
        backend: str,
        trust_env: bool,
        *,
        early_data: bool = True,
        tickets: TicketStore | None = None,
    ) -> None:
        if backend not in _BACKENDS:
            raise OptionError("backend", backend, "'auto', 'userspace' or 'kernel'")
        self.backend = backend
        self.trust_env = trust_env
        self.early_data = early_data
        #: Session tickets for resumption: this pool's own unless one is shared.
        self.tickets = TicketStore() if tickets is None else tickets

    def _plan(
        self, host: str, port: int, verify: VerifyType, connect_to: tuple[str, int] | None
    ) -> tuple[QuicConfiguration, Resumption]:
        """A new connection's TLS settings and its place in the ticket store."""
        config = quic_configuration(host, verify, trust_env=self.trust_env)
        alt_host, alt_port = connect_to or (host, port)
        ticket_key = TicketKey(host, port, alt_host, alt_port, trust_key(config))
        return config, (self.tickets, ticket_key)


class SyncH3Pool(_PoolBase):
    """One :class:`SyncH3Connection` per (host, port, verify, alternative) for a transport
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
        self._conns: dict[PoolKey, SyncH3Connection] = {}
        self._lock = threading.Lock()

    def get(
        self,
        host: str,
        port: int,
        verify: VerifyType,
        timeout: float | None,
        connect_to: tuple[str, int] | None = None,
    ) -> SyncH3Connection:
        key = (host, port, _verify_key(verify), connect_to)
        with self._lock:
            conn = self._conns.get(key)
            if conn is not None and conn.client.alive and conn.refresh():
                return conn
            if conn is not None:
                del self._conns[key]
                conn.close()
            config, resumption = self._plan(host, port, verify, connect_to)
            conn = SyncH3Connection.connect(
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

    def close(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()


class AsyncH3Pool(_PoolBase):
    """One :class:`AsyncH3Connection` per (host, port, verify, alternative)."""

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
        self._lock: anyio.Lock | None = None

    async def get(
        self,
        host: str,
        port: int,
        verify: VerifyType,
        timeout: float | None,
        connect_to: tuple[str, int] | None = None,
    ) -> AsyncH3Connection:
        import anyio

        if self._lock is None:
            self._lock = anyio.Lock()
        key = (host, port, _verify_key(verify), connect_to)
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
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.aclose()


def _verify_key(verify: VerifyType) -> str:
    if isinstance(verify, ssl.SSLContext):
        return f"ctx:{id(verify)}"
    if isinstance(verify, bool):
        return str(verify)
    return f"path:{os.fspath(verify)}"
