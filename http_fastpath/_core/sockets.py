"""The package's one socket factory, and the pending socket it makes.

Every socket the package opens is made here, netlab's servers aside
(tests/unit/test_layering.py checks it). :func:`_create` makes a connection's socket with
the protocol :mod:`.decide` picks (``IPPROTO_MPTCP`` or ``IPPROTO_TCP``) and every option
set *before* ``connect``; MPTCP falls back to TCP here when the kernel refuses it.
:func:`new_socket` makes a plain one (the capability probe, QUIC). A
:class:`FastpathSocket` is *pending* until its first write completes the connect
(:func:`.connect.complete_sync`); its :class:`~.record.DialRecord` holds what that takes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import decide as _decide
from . import linux as _linux
from . import reasons as _reasons
from .addresses import Address
from .handshake import Buffer
from .info import ConnectionInfo
from .memory import UNKNOWN
from .reasons import Now, Why
from .record import DialRecord, _peek

__all__ = ["FastpathSocket", "SocketOption", "detach_plain", "new_socket"]

SocketOption = tuple[int, int, int | bytes] | tuple[int, int, None, int]

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from typing_extensions import Self


def new_socket(family: int, type: int, proto: int) -> socket.socket:
    """Create a plain socket: the package's single ``socket.socket`` call for probes."""
    return socket.socket(family, type, proto)


def detach_plain(sock: FastpathSocket) -> socket.socket:
    """Move a connected :class:`FastpathSocket`'s fd into a plain ``socket.socket``.

    For event loops that insist on the exact type (trio's ``from_stdlib_socket``); the
    ``sock.fastpath_record`` still describes the connection (pass it the new socket).
    """
    if sock._fp_pending is not None:
        raise ValueError("the socket is not connected yet")
    timeout = sock.gettimeout()
    family, type_, proto = sock.family, sock.type, sock.proto
    plain = socket.socket(family, type_, proto, sock.detach())
    plain.settimeout(timeout)
    return plain


class FastpathSocket(socket.socket):
    """A ``socket.socket`` whose connect may be deferred to its first write.

    While pending, the first ``send``/``sendall`` completes the connection (with the data
    in the SYN when allowed) and the first ``recv`` completes it without data. Once
    connected it behaves exactly like a plain socket.
    """

    __slots__ = ("_fp_pending", "fastpath_record")

    #: the record while the connect is pending (what finishing it takes), then None
    _fp_pending: DialRecord | None
    fastpath_record: DialRecord

    # No __init__ of its own (socket.socket's runs: one Python frame less per connection);
    # the dialer sets both slots, and dup() sets ``_fp_pending`` on the copy.
    def dup(self) -> Self:
        copy = super().dup()
        copy._fp_pending = None
        return copy

    @property
    def is_pending(self) -> bool:
        """True until the connection has been completed."""
        return self._fp_pending is not None

    def connection_info(self) -> ConnectionInfo:
        """The kernel's view of this connection (see :class:`ConnectionInfo`)."""
        return self.fastpath_record.connection_info(self)

    # -- completing a pending connect -------------------------------------------------
    def complete(self, first_flight: Buffer | None = None) -> int:
        """Connect now; return how many bytes of ``first_flight`` went out with the SYN."""
        pending = self._fp_pending
        if pending is None:
            return 0
        self._fp_pending = None
        try:
            sent = complete_sync(self, pending, first_flight)
        except BaseException:
            self.close()
            raise
        # Connected: from here on the socket's own (C) methods, no Python layer per call.
        self.__class__ = _ConnectedSocket
        return sent

    def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None:
        pending = self._fp_pending
        if pending is not None:  # complete(), inline: the first write of every connection
            if type(data) is not bytes:  # (bytes, as http.client sends, is counted in bytes)
                data = memoryview(data).cast("B")
            self._fp_pending = None
            try:
                sent = complete_sync(self, pending, data)
            except BaseException:
                self.close()
                raise
            self.__class__ = _ConnectedSocket
            if sent >= len(data):
                return None
            data = data[sent:]
        return socket.socket.sendall(self, data, flags)

    def send(self, data: ReadableBuffer, flags: int = 0, /) -> int:
        if self._fp_pending is not None:
            sent = self.complete(memoryview(data).cast("B"))
            if sent:
                return sent
        return super().send(data, flags)

    def sendmsg(self, *args: Any, **kwargs: Any) -> int:
        if self._fp_pending is not None:
            self.complete(None)
        return super().sendmsg(*args, **kwargs)

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        if self._fp_pending is not None:
            self.complete(None)
        return super().recv(bufsize, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0, /) -> int:
        if self._fp_pending is not None:
            self.complete(None)
        return super().recv_into(buffer, nbytes, flags)

    def _replace_with(self, other: socket.socket) -> None:
        """Take over ``other``'s file descriptor (next address, or MPTCP -> TCP)."""
        _replace(self, other)


class _ConnectedSocket(FastpathSocket):
    """A :class:`FastpathSocket` once connected: the plain socket's methods again.

    Same layout (no slots of its own), so a connected socket switches to it in place:
    ``isinstance(sock, FastpathSocket)`` still holds, and every read and write is the
    C method, as on a plain ``socket.socket``.
    """

    __slots__ = ()
    sendall = socket.socket.sendall
    send = socket.socket.send
    sendmsg = socket.socket.sendmsg
    recv = socket.socket.recv
    recv_into = socket.socket.recv_into


def _replace(sock: socket.socket, other: socket.socket) -> None:
    """Make ``sock`` take over ``other``'s file descriptor (next address, or MPTCP -> TCP)."""
    timeout = sock.gettimeout()
    socket.socket.close(sock)
    family, type_, proto = other.family, other.type, other.proto
    socket.socket.__init__(sock, family, type_, proto, other.detach())
    sock.settimeout(timeout)


# -- socket creation -------------------------------------------------------------------


def _now() -> Now:
    return _tuple_new(Now, (time.monotonic(), time.time()))


_tuple_new = tuple.__new__
_KNOWN_PLAIN = Why.MPTCP_KNOWN_PLAIN


_S = TypeVar("_S", bound=socket.socket)


def _create(
    address: Address,
    record: DialRecord,
    socket_options: Sequence[SocketOption],
    source_address: tuple[str, int] | None,
    cls: type[_S] = socket.socket,  # type: ignore[assignment]
    now: Now | None = None,
) -> _S:
    """Create and prepare the socket for ``address`` with the protocol :mod:`.decide` picks.

    MPTCP falls back to TCP here when the kernel refuses the socket or an option.
    """
    family = address[0]
    sock: _S | None = None
    options = record.options
    if options.mptcp and not record.mptcp_kernel_refused:
        sockaddr = address[1]
        key = (family, sockaddr[0], sockaddr[1])
        plan = _decide.plan_socket(
            options, _peek(key, UNKNOWN), key, now or _now(), platform=record.platform
        )
        reasons = plan.reasons
        if reasons:
            if reasons[0].why is _KNOWN_PLAIN and type(record.notes) is not list:
                # (that plan has only this reason; a race's attempt shares the dial's list)
                record.notes = reasons  # known to answer in plain TCP: said, not a fallback
            else:
                for said in reasons:
                    if said.why is Why.MPTCP_KNOWN_PLAIN:
                        record.said(said)
                    else:
                        record.fallback(said)
        if plan.proto == _MPTCP:
            sock = _create_mptcp(family, record, socket_options, cls)
    if sock is None:
        sock = cls(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            for opt in socket_options:
                sock.setsockopt(*opt)
        except BaseException:
            sock.close()
            raise
    if source_address is not None:
        try:
            sock.bind(source_address)
        except BaseException:
            sock.close()
            raise
    return sock


def _create_mptcp(
    family: int, record: DialRecord, socket_options: Sequence[SocketOption], cls: type[_S]
) -> _S | None:
    """An ``IPPROTO_MPTCP`` socket with the options set; None when the kernel refuses."""
    try:
        sock = cls(family, socket.SOCK_STREAM, _MPTCP)
    except OSError as exc:
        record.mptcp_kernel_refused = True
        record.fallback(_reasons.mptcp_socket_refused(exc))
        return None
    try:
        for opt in socket_options:
            sock.setsockopt(*opt)
    except OSError as exc:
        sock.close()
        why = _reasons.mptcp_option_refused(exc)
        if why is None:
            raise
        record.mptcp_kernel_refused = True
        record.fallback(why)
        return None
    return sock


_MPTCP = _linux.IPPROTO_MPTCP

# Last, as in .connect (which takes _create and _replace from here for the next attempts):
# the two modules import each other, and either may be imported first.
from .connect import complete_sync  # noqa: E402
