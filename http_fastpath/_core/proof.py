"""The proof of a connection: read from the kernel when looked at, found on a response.

:func:`new_proof` makes one connection's :class:`ConnectionInfo`, read from the live socket
the first time someone looks (what the connect itself read is on its
:class:`.record.DialRecord`); :func:`seal` keeps it readable once the socket is closed.
``connection_info(response)`` finds the proof our adapters attached to a response.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import linux as _linux
from .info import ConnectionInfo, _DeferredInfo

if TYPE_CHECKING:
    from .record import DialRecord

__all__ = ["INFO_ATTR", "INFO_EXTENSION", "connection_info", "new_proof", "seal"]

#: httpx responses: ``response.extensions[INFO_EXTENSION]`` (set by our transports).
INFO_EXTENSION = "http_fastpath.connection_info"
#: requests responses: ``response.raw.<INFO_ATTR>`` on the urllib3 response (set by our pools).
INFO_ATTR = "_http_fastpath_info"


def connection_info(response: object) -> ConnectionInfo | None:
    """The :class:`ConnectionInfo` of the connection that served ``response``.

    Works for requests, httpx, urllib3 and httpcore responses; it is captured when
    the response headers arrive, so it is still there after the body was read and the
    connection went back to the pool. Returns None when the response did not come
    through an http_fastpath adapter or transport.
    """
    extensions = getattr(response, "extensions", None)
    if isinstance(extensions, Mapping):
        info = extensions.get(INFO_EXTENSION)
        if isinstance(info, ConnectionInfo):
            return info
        # httpcore used directly: the stream keeps the proof (captured by close at the latest).
        get_extra_info = getattr(extensions.get("network_stream"), "get_extra_info", None)
        if get_extra_info is not None:
            try:
                info = get_extra_info(INFO_EXTENSION)
            except OSError:
                info = None
            if isinstance(info, ConnectionInfo):
                return info
    for holder in (response, getattr(response, "raw", None)):
        info = getattr(holder, INFO_ATTR, None)
        if isinstance(info, ConnectionInfo):
            return info
    return None


class _Snapshot:
    """What a proof needs when the socket is gone (see :func:`seal`).

    From ``sock`` when given (about to close), else from what the connect read; the local
    address only when ``read_local`` (the seal does not read it: see :func:`seal`).
    """

    __slots__ = ("local", "mptcp", "mptcp_socket", "subflows", "tcp_info")

    def __init__(
        self,
        record: DialRecord,
        sock: socket.socket | None,
        local: Any = None,
        *,
        read_local: bool = True,
    ) -> None:
        self.local = local
        self.tcp_info = record.tcp_info
        self.subflows: int | None = None
        mptcp: bool | None = False if record.mptcp_requested else None
        self.mptcp_socket = record.is_mptcp is not None
        if sock is not None:
            if read_local:
                try:
                    self.local = sock.getsockname()
                except OSError:
                    pass
            if self.tcp_info is None:  # the connect did not read it (no TCP Fast Open)
                self.tcp_info = _linux.read_tcp_info(sock, platform=record.platform)
            self.mptcp_socket = sock.proto == _linux.IPPROTO_MPTCP
            if self.mptcp_socket:
                mptcp = record.is_mptcp
                if mptcp is None:
                    mptcp = _linux.read_is_mptcp(sock, platform=record.platform)
                if mptcp:
                    self.subflows = _linux.read_mptcp_subflows(sock, platform=record.platform)
        elif self.mptcp_socket:
            mptcp = record.is_mptcp
        self.mptcp = mptcp


class _ProofInfo(_DeferredInfo):
    """One connection's proof: its :class:`ConnectionInfo`, read when first looked at.

    One object per connection, nothing else: its ``__dict__`` holds the record and the
    socket (``_sock``, None once :func:`seal` ran), what the seal kept (``_snapshot``,
    when the connect did not read ``TCP_INFO``, the socket is MPTCP or it was bound to a
    source address) and, once looked at, the real info (``_real``). It references the
    record and the socket, never the other way round: freed by reference counting.
    """

    def __getattribute__(self, name: str) -> Any:
        state = _getattr(self, "__dict__")
        real = state.get("_real")
        if real is None:
            real = state.setdefault("_real", _read(state))
        return getattr(real, name)


def new_proof(record: DialRecord, sock: socket.socket) -> ConnectionInfo:
    """The proof of the connection ``record`` describes, on ``sock`` (any object on the fd).

    Nothing is read until someone looks; call :func:`seal` before the socket closes.
    """
    info = _new_deferred(_ProofInfo)
    state = _getattr(info, "__dict__")
    state["_record"] = record
    state["_sock"] = sock
    return info


def seal(info: ConnectionInfo) -> None:
    """Call before the socket closes: keeps the proof readable without the socket.

    If nobody looked yet, keeps what the connect read (the TCP Fast Open outcome, the
    handshake's ``TCP_INFO``), and reads what it did not: ``TCP_INFO`` when TCP Fast Open
    was not asked for (the RTT is then the one at the close) and, on an MPTCP socket,
    whether the peer speaks MPTCP and the subflows. The local address only when the
    connection was bound to a source address (the proof then confirms the source the
    caller chose): otherwise it is one more syscall on every connection closed before
    anyone looked (measured at ~1 % of a fresh plain-HTTP request's client CPU), and such
    a proof has ``local_address=None``; read the proof while the connection is open to
    have it. Only for a :func:`new_proof`; sealing twice is harmless.
    """
    state = _getattr(info, "__dict__")
    sock = state.get("_sock")
    if sock is None:
        return
    state["_sock"] = None
    if "_real" in state:
        return  # somebody looked: nothing more to keep
    record = state["_record"]
    try:
        if record.tcp_info_raw is None or sock.proto == _MPTCP:
            bound = record.source_address is not None
            state["_snapshot"] = _Snapshot(record, sock, read_local=bound)
        elif record.source_address is not None:
            state["_snapshot"] = _Snapshot(record, None, sock.getsockname())
    except OSError:  # closed already
        pass


def _read(state: dict[str, Any]) -> ConnectionInfo:
    """The real info: from the live socket, else from what :func:`seal` kept."""
    record: DialRecord = state["_record"]
    sock: socket.socket | None = state.get("_sock")
    snapshot: _Snapshot | None = state.get("_snapshot")
    if snapshot is None and sock is not None and sock.fileno() >= 0:
        try:
            return record.connection_info(sock)
        except OSError:
            snapshot = _Snapshot(record, sock)
    if snapshot is None:  # sealed, or closed without a seal: what was read in time
        snapshot = _Snapshot(record, None)
    return record.closed_connection_info(snapshot)


_MPTCP = _linux.IPPROTO_MPTCP
_new_deferred = object.__new__
_getattr = object.__getattribute__
