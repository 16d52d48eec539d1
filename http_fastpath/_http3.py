"""EXPERIMENTAL HTTP/3: backend selection, TLS settings and the sync/async drivers.

The httpx transports (:mod:`._http3_httpx`) and the requests adapter
(:mod:`._http3_requests`) are thin shells over :class:`SyncH3Connection` /
:class:`AsyncH3Connection` and their pools. Each connection owns one
:class:`~._h3._client.H3Client` (sans-IO) and waits on its socket: ``select.poll`` for the
sync driver, ``anyio.wait_readable`` for the async one. Concurrent requests share the
connection; whoever holds the connection's lock waits on the socket and delivers the
data of every stream.
"""

from __future__ import annotations

import contextlib
import errno
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

from ._capabilities import probe  # noqa: E402
from ._dialer import Address, resolve  # noqa: E402
from ._exceptions import CapabilityError, OptionError  # noqa: E402
from ._h3._client import H3Client, StreamState  # noqa: E402
from ._h3._errors import H3ConnectError, H3ConnectTimeout, H3ReadTimeout  # noqa: E402
from ._log import log_fallback_once  # noqa: E402

if TYPE_CHECKING:
    import anyio

    from ._h3._stream_layer import QuicBackend
    from ._info import ConnectionInfo

__all__ = [
    "AsyncH3Connection",
    "AsyncH3Pool",
    "BackendName",
    "SyncH3Connection",
    "SyncH3Pool",
    "VerifyType",
    "quic_configuration",
    "select_backend",
]

BackendName = Literal["auto", "userspace", "kernel"]
VerifyType = bool | str | os.PathLike[str] | ssl.SSLContext
_BACKENDS = ("auto", "userspace", "kernel")
#: Longest single wait while holding a connection's lock, so that other waiters' own
#: deadlines are checked at least this often.
_MAX_WAIT = 0.25


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


def open_backend(kind: str, address: Address, config: QuicConfiguration) -> QuicBackend:
    """Create the chosen backend's socket for ``address`` (no packet is sent yet)."""
    if kind == "kernel":
        from ._quic_kernel import KernelQuic

        return KernelQuic(address, config)
    from ._quic_userspace import UserspaceQuic

    return UserspaceQuic(address, config)


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


class SyncH3Connection:
    """A blocking HTTP/3 connection (thread-safe; requests on it are multiplexed)."""

    def __init__(self, client: H3Client) -> None:
        self.client = client
        self.info: ConnectionInfo = client.backend.connection_info()
        self._lock = threading.Lock()
        self._poll = select.poll()
        self._forgotten: list[StreamState] = []

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        *,
        backend: str,
        config: QuicConfiguration,
        timeout: float | None,
    ) -> SyncH3Connection:
        """Resolve, create the socket and complete the QUIC + TLS handshake."""
        deadline = _deadline(timeout)
        kind = select_backend(backend)
        try:
            address = resolve(host, port)[0]
            quic = open_backend(kind, address, config)
        except socket.gaierror:
            raise
        except OSError as exc:
            raise _connect_error(host, port, exc) from exc
        conn = cls(H3Client(quic, host=host, port=port))
        conn.client.start(time.monotonic())
        try:
            conn.wait(lambda: conn.client.handshake_done, deadline, conn._connect_timeout)
        except BaseException:
            conn.close()
            raise
        conn.info = quic.connection_info()
        return conn

    def _connect_timeout(self) -> Exception:
        return _connect_timeout(self.client)

    def _flush_forgotten(self) -> None:
        while self._forgotten:
            self.client.forget(self._forgotten.pop())

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
        """Drive the connection until ``done()``, the connection fails or ``deadline``."""
        client = self.client
        while not done():
            if client.error is not None:
                raise client.error
            if deadline is not None and time.monotonic() >= deadline:
                raise on_timeout()
            with self._lock:
                if done() or client.error is not None:
                    continue
                self._step(deadline)

    def request(
        self,
        method: bytes,
        authority: bytes,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        read_timeout: float | None,
    ) -> StreamState:
        """Send a request and wait for the response headers."""
        with self._lock:
            state = self.client.send_request(method, b"https", authority, path, headers, body)
            self.client.step(time.monotonic(), False)
        self.wait(
            lambda: state.has_headers or self.client.error is not None,
            _deadline(read_timeout),
            lambda: self._read_timeout(state),
        )
        if state.status is None:
            self._forgotten.append(state)
            raise state.error or self.client.error or self._read_timeout(state)
        return state

    def _read_timeout(self, state: StreamState) -> Exception:
        return _read_timeout(self.client, state)

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
        """Process whatever arrived while idle (a close, an idle timeout); True if usable."""
        with self._lock:
            self.client.step(time.monotonic(), True)
        return self.client.usable

    def close(self) -> None:
        with self._lock:
            self.client.close(time.monotonic())


class AsyncH3Connection:
    """An async HTTP/3 connection (asyncio or trio through anyio)."""

    def __init__(self, client: H3Client) -> None:
        import anyio

        self.client = client
        self.info: ConnectionInfo = client.backend.connection_info()
        self._lock: anyio.Lock = anyio.Lock()
        self._forgotten: list[StreamState] = []

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        backend: str,
        config: QuicConfiguration,
        timeout: float | None,
    ) -> AsyncH3Connection:
        import anyio

        deadline = _deadline(timeout)
        kind = select_backend(backend)
        plain = host[1:-1] if host.startswith("[") else host
        infos = await anyio.getaddrinfo(plain, port, type=socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        try:
            quic = open_backend(kind, (int(family), tuple(sockaddr)), config)
        except OSError as exc:
            raise _connect_error(host, port, exc) from exc
        conn = cls(H3Client(quic, host=host, port=port))
        conn.client.start(time.monotonic())
        try:
            await conn.wait(lambda: conn.client.handshake_done, deadline, conn._connect_timeout)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await conn.aclose()
            raise
        conn.info = quic.connection_info()
        return conn

    def _connect_timeout(self) -> Exception:
        return _connect_timeout(self.client)

    def _read_timeout(self, state: StreamState) -> Exception:
        return _read_timeout(self.client, state)

    def _flush_forgotten(self) -> None:
        while self._forgotten:
            self.client.forget(self._forgotten.pop())

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
            if client.error is not None:
                raise client.error
            if deadline is not None and time.monotonic() >= deadline:
                raise on_timeout()
            async with self._lock:
                if done() or client.error is not None:
                    continue
                await self._step(deadline)

    async def request(
        self,
        method: bytes,
        authority: bytes,
        path: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        read_timeout: float | None,
    ) -> StreamState:
        async with self._lock:
            state = self.client.send_request(method, b"https", authority, path, headers, body)
            self.client.step(time.monotonic(), False)
        await self.wait(
            lambda: state.has_headers or self.client.error is not None,
            _deadline(read_timeout),
            lambda: self._read_timeout(state),
        )
        if state.status is None:
            self._forgotten.append(state)
            raise state.error or self.client.error or self._read_timeout(state)
        return state

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
        """Process whatever arrived while idle (a close, an idle timeout); True if usable."""
        async with self._lock:
            self.client.step(time.monotonic(), True)
        return self.client.usable

    async def aclose(self) -> None:
        async with self._lock:
            self.client.close(time.monotonic())


PoolKey = tuple[str, int, str]


class SyncH3Pool:
    """One :class:`SyncH3Connection` per (host, port, verify) for a transport or adapter."""

    def __init__(self, backend: str, trust_env: bool) -> None:
        if backend not in _BACKENDS:
            raise OptionError("backend", backend, "'auto', 'userspace' or 'kernel'")
        self.backend = backend
        self.trust_env = trust_env
        self._conns: dict[PoolKey, SyncH3Connection] = {}
        self._lock = threading.Lock()

    def get(
        self, host: str, port: int, verify: VerifyType, timeout: float | None
    ) -> SyncH3Connection:
        key = (host, port, _verify_key(verify))
        with self._lock:
            conn = self._conns.get(key)
            if conn is not None and conn.client.usable and conn.refresh():
                return conn
            if conn is not None:
                del self._conns[key]
                conn.close()
            config = quic_configuration(host, verify, trust_env=self.trust_env)
            conn = SyncH3Connection.connect(
                host, port, backend=self.backend, config=config, timeout=timeout
            )
            self._conns[key] = conn
            return conn

    def close(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()


class AsyncH3Pool:
    """One :class:`AsyncH3Connection` per (host, port, verify)."""

    def __init__(self, backend: str, trust_env: bool) -> None:
        if backend not in _BACKENDS:
            raise OptionError("backend", backend, "'auto', 'userspace' or 'kernel'")
        self.backend = backend
        self.trust_env = trust_env
        self._conns: dict[PoolKey, AsyncH3Connection] = {}
        self._lock: anyio.Lock | None = None

    async def get(
        self, host: str, port: int, verify: VerifyType, timeout: float | None
    ) -> AsyncH3Connection:
        import anyio

        if self._lock is None:
            self._lock = anyio.Lock()
        key = (host, port, _verify_key(verify))
        async with self._lock:
            conn = self._conns.get(key)
            if conn is not None and conn.client.usable and await conn.refresh():
                return conn
            if conn is not None:
                del self._conns[key]
                await conn.aclose()
            config = quic_configuration(host, verify, trust_env=self.trust_env)
            conn = await AsyncH3Connection.connect(
                host, port, backend=self.backend, config=config, timeout=timeout
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
