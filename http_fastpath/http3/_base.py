"""EXPERIMENTAL HTTP/3: what the sync and async connections and pools share (no waiting).

:mod:`._async_drivers` (written once) and :mod:`._sync_drivers` (generated from it) build
on these bases; everything here runs without I/O or a lock of its own.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._core.exceptions import OptionError
from ._config import (
    BACKENDS,
    Resumption,
    VerifyType,
    connect_timeout_error,
    quic_configuration,
    read_timeout_error,
    trust_key,
)
from ._h3._resumption import TicketKey, TicketStore, may_send_early

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration

    from .._core.info import ConnectionInfo
    from ._h3._client import H3Client, StreamState

__all__ = ["MAX_WAIT", "ConnectionBase", "PoolBase", "deadline_in"]

#: Longest single wait while holding a connection's lock, so that other waiters' own
#: deadlines are checked at least this often.
MAX_WAIT = 0.25
#: RFC 8470 section 5.2: a request sent in 0-RTT and answered "425 Too Early".
TOO_EARLY = 425


def deadline_in(timeout: float | None) -> float | None:
    """The monotonic time ``timeout`` seconds from now (None: no limit)."""
    return None if timeout is None else time.monotonic() + timeout


class ConnectionBase:
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
        if state.status == TOO_EARLY and state.early is not None:
            self._forgotten.append(state)
            return True
        return False

    def _connect_timeout(self) -> Exception:
        return connect_timeout_error(self.client)

    def _read_timeout(self, state: StreamState) -> Exception:
        return read_timeout_error(self.client, state)

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


class PoolBase:
    """Pool settings, the session tickets and the keys (sync and async alike)."""

    def __init__(
        self,
        backend: str,
        trust_env: bool,
        *,
        early_data: bool = True,
        tickets: TicketStore | None = None,
    ) -> None:
        if backend not in BACKENDS:
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
