"""The proof of a connection: read from the kernel when looked at, found on a response.

:class:`Proof` is one connection's :class:`ConnectionInfo`, read from the live socket the
first time someone looks (what the connect itself read is on its :class:`.record.DialRecord`).
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

__all__ = ["INFO_ATTR", "INFO_EXTENSION", "Proof", "connection_info"]

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
    """What a proof needs when the socket is gone (see :meth:`Proof.seal`).

    From ``sock`` when given (about to close), else from what the connect read.
    """

    __slots__ = ("local", "mptcp", "mptcp_socket", "subflows", "tcp_info")

    def __init__(self, record: DialRecord, sock: socket.socket | None, local: Any = None) -> None:
        self.local = local
        self.tcp_info = record.tcp_info
        self.subflows: int | None = None
        mptcp: bool | None = False if record.mptcp_requested else None
        self.mptcp_socket = record.is_mptcp is not None
        if sock is not None:
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


class _Reader:
    """What a proof reads from, without the proof: the deferred info holds this, not the
    :class:`Proof` that holds the info, so a connection's proof is freed by reference
    counting (no cycle for the garbage collector on every connection)."""

    __slots__ = ("local", "read_once", "record", "snapshot", "sock")

    def __init__(self, record: DialRecord, sock: socket.socket) -> None:
        self.record = record
        self.sock: socket.socket | None = sock
        self.snapshot: _Snapshot | None = None
        self.local: Any = None
        self.read_once = False

    def __call__(self) -> ConnectionInfo:
        self.read_once = True
        record, sock, snapshot = self.record, self.sock, self.snapshot
        if snapshot is None and sock is not None and sock.fileno() >= 0:
            try:
                return record.connection_info(sock)
            except OSError:
                snapshot = _Snapshot(record, sock)
        if snapshot is None:  # sealed, or closed without a seal: what was read in time
            snapshot = _Snapshot(record, None, self.local)
        return record.closed_connection_info(snapshot)


class Proof:
    """The proof of one connection: a :class:`ConnectionInfo` read when first looked at.

    :meth:`info` returns the same (deferred) object every time; its fields are read from
    the live socket the first time one is looked at. :meth:`seal` is called before the
    socket closes: if nobody looked yet, it keeps what the proof still needs from the
    socket (its local address; ``TCP_INFO`` if the connect did not read it), so the proof
    stays readable afterwards, with the RTT the connect saw.
    """

    __slots__ = ("_info", "_reader")

    def __init__(self, record: DialRecord, sock: socket.socket) -> None:
        self._reader = _Reader(record, sock)
        self._info: ConnectionInfo | None = None

    def info(self) -> ConnectionInfo:
        """The connection's :class:`ConnectionInfo` (read when first looked at)."""
        info = self._info
        if info is None:  # (deferred_info, inline: once per connection)
            info = self._info = _new_deferred(_DeferredInfo)
            _set(info, "_read", self._reader)
        return info

    def seal(self) -> None:
        """Call before the socket closes: keeps the proof readable without the socket."""
        reader = self._reader
        sock = reader.sock
        if sock is None:
            return
        reader.sock = None
        if self._info is None or reader.read_once:
            return  # nobody can look, or somebody did
        record = reader.record
        try:
            if record.tcp_info_raw is None or sock.proto == _MPTCP:
                reader.snapshot = _Snapshot(record, sock)  # more to read than the address
            else:
                reader.local = sock.getsockname()
        except OSError:  # closed already
            pass


_MPTCP = _linux.IPPROTO_MPTCP
_new_deferred, _set = object.__new__, object.__setattr__
