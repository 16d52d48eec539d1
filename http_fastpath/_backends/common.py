"""What the blocking and the anyio network backends share (:mod:`.sync`, :mod:`.anyio`).

Neither waits here: the stack's exception classes (:class:`CoreErrors`) and the mapping
of OS errors to them, httpcore's retry backoff, the socket options and the dial of a
pending socket (:func:`_open`, :func:`_reopen`), the ``get_extra_info`` keys both streams
answer (:class:`_InfoMixin`) and the backends' shared arguments (:class:`BackendBase`).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from collections.abc import Iterable, Iterator, Sequence
from types import ModuleType
from typing import Any, cast

from .._core import dialer as _dialer
from .._core.addresses import Address
from .._core.exceptions import OptionError
from .._core.info import ConnectionInfo
from .._core.options import FastpathOptions, resolve_options
from .._core.proof import INFO_EXTENSION, seal
from .._core.record import DialRecord
from .._core.sockets import SocketOption

__all__ = ["BackendBase", "CoreErrors", "CoreSocketOption"]

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
) -> tuple[socket.socket, DialRecord]:
    return _dialer.open_plain(
        addresses,
        options=options,
        timeout=timeout,
        source_address=source,
        socket_options=socket_options,
    )


def _reopen(pending: DialRecord) -> tuple[socket.socket, DialRecord]:
    """The same connection opened again (a deferred connect error is retried)."""
    return _open(
        pending.addresses,
        pending.options,
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
    _pending: DialRecord | None
    _proof: ConnectionInfo | None

    def connection_info(self) -> ConnectionInfo | None:
        """The kernel's view of this connection (None while it is not connected yet).

        Read when first looked at (the transports attach it to every response), once;
        a connection closed before anyone looked keeps what its connect saw (see
        :func:`http_fastpath._core.proof.seal`).
        """
        return self._proof

    def _capture(self) -> None:
        """Keep the proof readable after close (for direct httpcore users)."""
        if self._proof is not None:
            seal(self._proof)

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


class BackendBase:
    """What the sync and async backends share: the options and the pool's ``retries``."""

    def __init__(self, options: FastpathOptions | None = None, *, retries: int = 0) -> None:
        self.options = resolve_options(options)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise OptionError("retries", retries, "an int >= 0 (httpcore's pool retries)")
        self.retries = retries
