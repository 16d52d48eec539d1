"""The fastpath dialer: the one place in http_fastpath that creates sockets.

A connection is made in two steps:

1. :func:`open_pending` creates the socket for the first resolved address, with the
   protocol chosen at ``socket()`` time (``IPPROTO_MPTCP`` or ``IPPROTO_TCP``) and every
   option set *before* ``connect`` — then stops. The socket is *pending*.
2. The first write completes the connection (:meth:`FastpathSocket.sendall` and
   friends, or :func:`connect_steps` for async drivers). When TCP Fast Open is on and
   the first flight is replay-safe (:mod:`.policy`), ``TCP_FASTOPEN_CONNECT`` is set
   and the first flight rides in the SYN; otherwise a plain SYN is sent. Either way the
   dialer then waits until the handshake is over (poll for writable, ``SO_ERROR``), so a
   refused, unreachable or silent server is reported as a *connect* error
   (:class:`DialError` / :class:`DialTimeout`) and the next address is tried, exactly as
   a blocking ``connect()`` would.

The connect logic is a generator (:func:`connect_steps`) that yields "wait until one of
these sockets is writable, at most N seconds" (:class:`.eyeballs.WaitWritable`) and
never blocks, so the sync socket and the async backends drive the same code. A host with
several addresses is dialled with Happy Eyeballs (RFC 8305): :func:`open_pending` puts
the addresses in order and :mod:`.race` races them (:mod:`.eyeballs` decides). For a
single address a blocking driver (:func:`complete_sync`) lets it block instead: a SYN
without data is then a plain blocking ``connect()`` (the kernel waits, CPython polls in
C) and the socket keeps its timeout throughout.

The connection's proof (:class:`Proof`) is read from the kernel when someone looks at
it; what the connect itself had to read (``TCP_INFO`` for the TCP Fast Open outcome,
``TCP_IS_MPTCP``) is kept on the :class:`DialRecord` and not read again.

The fast paths use Linux's option and protocol numbers. The platform (``sys.platform``,
kept on the :class:`DialRecord`) goes into every decision, so on macOS, Windows or
FreeBSD no Linux number reaches the kernel: the connection is plain TCP and
``ConnectionInfo.fallbacks`` says why.
"""

from __future__ import annotations

import _socket
import errno
import logging
import os
import select
import socket
import sys
import time
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import decide as _decide
from . import eyeballs as _eyeballs
from . import learn as _learning
from . import linux as _linux
from . import reasons as _reasons
from . import trace as _trace
from .decide import FlightPlan
from .exceptions import DialError, DialTimeout
from .info import (
    ConnectAttempt,
    ConnectionInfo,
    TFOStatus,
    deferred_info,
    read_connection_info,
    tfo_status,
)
from .learn import ConnectOutcome, Learned, Observation
from .log import dial_logger, log_fallback_once
from .memory import MEMORY, UNKNOWN, Destination, DestinationKey
from .options import FastpathOptions
from .reasons import Now, Reason, Why
from .stats import COUNTERS

__all__ = [
    "Address",
    "DialRecord",
    "FastpathSocket",
    "Pending",
    "Proof",
    "SocketOption",
    "complete_sync",
    "connect_steps",
    "detach_plain",
    "dial",
    "literal_addresses",
    "new_socket",
    "open_pending",
    "open_plain",
    "resolve",
]

Address = tuple[int, tuple[Any, ...]]  # (family, sockaddr)
SocketOption = tuple[int, int, int | bytes] | tuple[int, int, None, int]
Buffer = bytes | bytearray | memoryview

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

#: The platform the dialer decides for: ``sys.platform`` (a test may set another).
_PLATFORM = sys.platform
#: ``connect_ex`` results of a non-blocking connect still under way (Windows: WSAEWOULDBLOCK).
_IN_PROGRESS = frozenset(
    {errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY, getattr(errno, "WSAEWOULDBLOCK", 0)} - {0}
)


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


class DialRecord:
    """What the dialer did for one connection; turns into a :class:`ConnectionInfo`."""

    # Class-level defaults: a record sets only what differs (one per connection).
    mptcp_kernel_refused = False
    tfo_requested = False
    tfo_refused = False
    syn_data_bytes = 0
    early_data_safe: bool | None = None
    #: why a fast path was not used (a list once there is one)
    fallbacks: Sequence[str | Reason] = ()
    #: what shaped the connection without being a fallback (for the DEBUG line)
    notes: Sequence[Reason] = ()
    #: the ``TCP_INFO`` bytes read when the handshake completed (TCP Fast Open asked for)
    tcp_info_raw: bytes | None = None
    #: ``TCP_IS_MPTCP`` read when the handshake completed (an MPTCP socket)
    is_mptcp: bool | None = None
    _peer: tuple[Any, ...] | None = None
    #: the Happy Eyeballs attempts (several addresses only)
    attempts: tuple[ConnectAttempt, ...] = ()

    def __init__(self, options: FastpathOptions, platform: str | None = None) -> None:
        self.options = options
        self.platform = _PLATFORM if platform is None else platform

    @property
    def tcp_info(self) -> _linux.TCPInfo | None:
        """``TCP_INFO`` as read when the handshake completed (None: not read)."""
        raw = self.tcp_info_raw
        return None if raw is None else _linux.TCPInfo(raw)

    @property
    def mptcp_requested(self) -> bool:
        """MPTCP was asked for (the options)."""
        return self.options.mptcp

    @property
    def peer(self) -> tuple[str, int] | None:
        """The address connected to (None until connected)."""
        peer = self._peer
        return None if peer is None else (str(peer[0]), int(peer[1]))

    @peer.setter
    def peer(self, value: tuple[Any, ...] | None) -> None:
        self._peer = value

    def fallback(self, reason: str | Reason) -> None:
        """Record (and log once per kind of reason per process) why a fast path was not used."""
        code = reason.why.name.lower() if isinstance(reason, Reason) else reason
        fallbacks = self.fallbacks
        if reason not in fallbacks:
            if type(fallbacks) is list:  # (a Happy Eyeballs attempt shares the dial's list)
                fallbacks.append(reason)
            else:
                self.fallbacks = [reason]
            COUNTERS.fallback(code)
        log_fallback_once(code, reason)

    def note(self, reasons: Sequence[Reason]) -> None:
        """Record every reason of a decision."""
        for reason in reasons:
            self.fallback(reason)

    def said(self, reason: Reason) -> None:
        """Record a reason that shaped the connection without being a fallback."""
        notes = self.notes
        if type(notes) is list:
            notes.append(reason)
        else:
            self.notes = [*notes, reason]

    def tfo_status(self, sock: socket.socket | None) -> TFOStatus:
        """TCP Fast Open outcome (from the connect's ``TCP_INFO``, else from ``sock``)."""
        if not self.options.tfo:
            return TFOStatus.DISABLED
        return tfo_status(
            sock,
            requested=self.tfo_requested,
            refused=self.tfo_refused,
            syn_data_bytes=self.syn_data_bytes,
            info=self.tcp_info,
        )

    def connection_info(self, sock: socket.socket) -> ConnectionInfo:
        """Read the kernel's view of the connection through ``sock`` (any object on the fd)."""
        return read_connection_info(
            sock,
            mptcp_requested=self.mptcp_requested,
            tfo=self.tfo_status(sock),
            syn_data_bytes=self.syn_data_bytes,
            fallbacks=self._fallback_texts(),
            early_data_safe=self.early_data_safe,
            peer=self.peer,
            attempts=self.attempts,
            is_mptcp=self.is_mptcp,
        )

    def closed_connection_info(self, snapshot: _Snapshot) -> ConnectionInfo:
        """The proof of a connection closed before anyone looked: what was read in time."""
        return ConnectionInfo(
            # the wire's protocol; the socket's when the kernel cannot tell (Linux < 5.16)
            transport="mptcp"
            if snapshot.mptcp or (snapshot.mptcp_socket and snapshot.mptcp is None)
            else "tcp",
            tfo=self.tfo_status(None),
            socket_protocol="mptcp" if snapshot.mptcp_socket else "tcp",
            syn_data_bytes=self.syn_data_bytes,
            mptcp=snapshot.mptcp,
            mptcp_subflows=snapshot.subflows,
            fallbacks=self._fallback_texts(),
            rtt_ms=None if snapshot.tcp_info is None else snapshot.tcp_info.rtt_us / 1000.0,
            local_address=_address(snapshot.local),
            peer_address=self.peer,
            early_data_safe=self.early_data_safe,
            attempts=self.attempts,
        )

    def _fallback_texts(self) -> tuple[str, ...]:
        fallbacks = self.fallbacks
        if not fallbacks:
            return ()
        return tuple(dict.fromkeys(str(f) for f in fallbacks))


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
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


class Proof:
    """The proof of one connection: a :class:`ConnectionInfo` read when first looked at.

    :meth:`info` returns the same (deferred) object every time; its fields are read from
    the live socket the first time one is looked at. :meth:`seal` is called before the
    socket closes: if nobody looked yet, it keeps what the proof still needs from the
    socket (its local address; ``TCP_INFO`` if the connect did not read it), so the proof
    stays readable afterwards, with the RTT the connect saw.
    """

    # Defaults on the class: a proof that nobody reads costs two attribute stores.
    _info: ConnectionInfo | None = None
    _local: Any = None
    _snapshot: _Snapshot | None = None
    _read_once = False

    def __init__(self, record: DialRecord, sock: socket.socket) -> None:
        self._record = record
        self._sock: socket.socket | None = sock

    def info(self) -> ConnectionInfo:
        """The connection's :class:`ConnectionInfo` (read when first looked at)."""
        info = self._info
        if info is None:
            info = self._info = deferred_info(self._read)
        return info

    def _read(self) -> ConnectionInfo:
        self._read_once = True
        record, sock, snapshot = self._record, self._sock, self._snapshot
        if snapshot is None and sock is not None and sock.fileno() >= 0:
            try:
                return record.connection_info(sock)
            except OSError:
                snapshot = _Snapshot(record, sock)
        if snapshot is None:  # sealed, or closed without a seal: what was read in time
            snapshot = _Snapshot(record, None, self._local)
        return record.closed_connection_info(snapshot)

    def seal(self) -> None:
        """Call before the socket closes: keeps the proof readable without the socket."""
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        if self._info is None or self._read_once:
            return  # nobody can look, or somebody did
        record = self._record
        try:
            if record.tcp_info_raw is None or sock.proto == _MPTCP:
                self._snapshot = _Snapshot(record, sock)  # more to read than the address
            else:
                self._local = sock.getsockname()
        except OSError:  # closed already
            pass


class Pending:
    """Everything needed to finish a deferred connect (and to move to the next address)."""

    __slots__ = ("addresses", "now", "record", "socket_options", "source_address", "timeout")

    def __init__(
        self,
        addresses: Sequence[Address],
        timeout: float | None,
        socket_options: Sequence[SocketOption],
        source_address: tuple[str, int] | None,
        record: DialRecord,
        now: Now | None = None,
    ) -> None:
        self.addresses = addresses
        self.timeout = timeout
        self.socket_options = socket_options
        self.source_address = source_address
        self.record = record
        #: when the socket was planned (the first attempt decides at the same instant)
        self.now = now


_Pending = Pending  # the name older code used


class FastpathSocket(socket.socket):
    """A ``socket.socket`` whose connect may be deferred to its first write.

    While pending, the first ``send``/``sendall`` completes the connection (with the data
    in the SYN when allowed) and the first ``recv`` completes it without data. Once
    connected it behaves exactly like a plain socket.
    """

    __slots__ = ("_fp_pending", "fastpath_record")

    _fp_pending: Pending | None
    fastpath_record: DialRecord

    def __init__(
        self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None
    ) -> None:
        socket.socket.__init__(self, family, type, proto, fileno)
        self._fp_pending = None

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
            view = memoryview(data).cast("B")
            self._fp_pending = None
            try:
                sent = complete_sync(self, pending, view)
            except BaseException:
                self.close()
                raise
            self.__class__ = _ConnectedSocket
            if sent >= len(view):
                return None
            data = view[sent:]
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


def _key(address: Address) -> DestinationKey:
    """The destination memory's key of ``address``."""
    sockaddr = address[1]
    return (address[0], sockaddr[0], sockaddr[1])


#: ``MEMORY.peek`` as a bound ``dict.get`` (pass the default): one C call per lookup
_peek = MEMORY.lookup


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


def resolve(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[Address]:
    """``getaddrinfo`` for a stream connection; raises ``socket.gaierror`` like the stdlib."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    tracing = _trace.collecting() is not None
    if tracing:
        _trace.mark("dns_start")
    found = literal_addresses(host, port, family)
    if found is not None:
        if tracing:
            _trace.mark("dns_done")
        return found
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    if tracing:
        _trace.mark("dns_done")
    if not infos:
        raise OSError("getaddrinfo returns an empty list")
    return [(fam, sockaddr) for fam, _, _, _, sockaddr in infos]


#: IP literals already resolved (numeric resolution never changes); read-only lists
_NUMERIC: dict[tuple[str, int, int], list[Address]] = {}


def literal_addresses(host: str, port: int, family: int = 0) -> list[Address] | None:
    """The addresses of an IP literal (cached), or None when ``host`` is not one.

    No resolver is asked (``AI_NUMERICHOST``), so an event loop may call it inline.
    """
    if not host or not (host[-1].isdigit() or ":" in host):  # a name (cheap test first)
        return None
    found = _NUMERIC.get((host, port, family))
    if found is not None:
        return found
    try:
        infos = _socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, _NUMERICHOST)
    except (OSError, UnicodeError, TypeError, ValueError):
        return None
    found = [(fam, sockaddr) for fam, _, _, _, sockaddr in infos]
    if found and "%" not in host:  # (a scope names an interface, which may change)
        if len(_NUMERIC) >= 256:
            _NUMERIC.clear()
        _NUMERIC[(host, port, family)] = found
    return found or None


_NUMERICHOST = socket.AI_NUMERICHOST


def open_pending(
    addresses: Sequence[Address],
    *,
    options: FastpathOptions,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[SocketOption] = (),
) -> FastpathSocket:
    """Create the socket for ``addresses[0]`` and leave it pending (not yet connected)."""
    if not addresses:
        raise ValueError("open_pending needs at least one address")
    record = DialRecord(options)
    now = _now()
    if len(addresses) == 1:
        sock = _create(addresses[0], record, socket_options, source_address, FastpathSocket, now)
    else:
        sock, addresses = _create_first(
            addresses, record, socket_options, source_address, FastpathSocket, now
        )
    sock.fastpath_record = record
    sock._fp_pending = Pending(addresses, timeout, socket_options, source_address, record, now)
    if sock.gettimeout() != timeout:  # (a new socket already blocks: no syscall for None)
        sock.settimeout(timeout)
    return sock


def _create_first(
    addresses: Sequence[Address],
    record: DialRecord,
    socket_options: Sequence[SocketOption],
    source_address: tuple[str, int] | None,
    cls: type[_S],
    now: Now,
) -> tuple[_S, Sequence[Address]]:
    """The socket for the first address, and the addresses from there on.

    Several addresses are put in Happy Eyeballs order first (:func:`.race.race_order`);
    an address whose socket cannot be made here (IPv6 disabled) is skipped.
    """
    if len(addresses) > 1 and record.options.happy_eyeballs_delay is not None:
        from .race import race_order

        addresses = race_order(addresses)
    while True:
        try:
            return _create(addresses[0], record, socket_options, source_address, cls, now), (
                addresses
            )
        except OSError:  # no socket of this family here: the next address
            if len(addresses) == 1:
                raise
            addresses = addresses[1:]


def open_plain(
    addresses: Sequence[Address],
    *,
    options: FastpathOptions,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[SocketOption] = (),
) -> tuple[socket.socket, Pending]:
    """:func:`open_pending` for a driver that keeps the pending state itself.

    Returns a plain ``socket.socket`` (not connected yet) and its :class:`Pending`; finish
    with :func:`complete_sync` or by driving :func:`connect_steps`.
    """
    if not addresses:
        raise ValueError("open_plain needs at least one address")
    record = DialRecord(options)
    now = _now()
    sock: socket.socket
    if len(addresses) == 1:
        sock = _create(addresses[0], record, socket_options, source_address, socket.socket, now)
    else:
        sock, addresses = _create_first(
            addresses, record, socket_options, source_address, socket.socket, now
        )
    if sock.gettimeout() != timeout:
        sock.settimeout(timeout)
    return sock, Pending(addresses, timeout, socket_options, source_address, record, now)


def dial(
    host: str,
    port: int,
    *,
    options: FastpathOptions,
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[SocketOption] = (),
    family: int = socket.AF_UNSPEC,
) -> FastpathSocket:
    """Resolve ``host`` and return a :class:`FastpathSocket` for it.

    With TCP Fast Open on, the socket is returned *pending*: its first write connects it
    (see the module docstring). Otherwise it is connected before this returns. Errors:
    ``socket.gaierror`` (resolution), :class:`DialTimeout`, :class:`DialError`.
    """
    addresses = resolve(host, port, family)
    sock = open_pending(
        addresses,
        options=options,
        timeout=timeout,
        source_address=source_address,
        socket_options=socket_options,
    )
    if not options.tfo:
        sock.complete(None)
    return sock


# -- the connect state machine ----------------------------------------------------------

_TCP_SYN_SENT = 2  # tcpi_state of a connect in progress (or deferred by TCP Fast Open)
#: tcpi_state once the handshake is over: ESTABLISHED, CLOSE_WAIT (the server answered
#: and closed already)
_HANDSHAKE_OVER = (1, 8)
# struct tcp_info: the bytes the connect reads (see _linux.TCPInfo)
_TCPI_OPTIONS, _TCPI_BITFIELD, _TCPI_MIN = 5, 7, 104
_SOL_TCP, _TCP_INFO, _TCP_FASTOPEN_CONNECT = _linux.SOL_TCP, _linux.TCP_INFO, 30
_SOL_SOCKET, _SO_ERROR = socket.SOL_SOCKET, socket.SO_ERROR


def _is_deferred(sock: socket.socket) -> bool:
    """A TFO connect() that returned 0 without a handshake: nothing has been sent yet."""
    try:  # the state byte of TCP_INFO: one syscall, no exception
        return sock.getsockopt(_SOL_TCP, _TCP_INFO, 1)[0] == _TCP_SYN_SENT
    except (OSError, IndexError):
        pass
    try:  # the peer is unknown while the connect is deferred
        sock.getpeername()
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False


def _set_tfo(sock: socket.socket, record: DialRecord, plan: FlightPlan) -> None:
    """The options ``plan`` asks for before ``connect`` (``TCP_FASTOPEN_CONNECT``)."""
    record.tfo_requested = False
    if plan.tfo_unavailable:  # no TFO on this platform: reported as UNAVAILABLE
        record.tfo_refused = True
    if not plan.tfo_connect:
        return
    for level, option, value in _decide.connect_options(plan, platform=record.platform):
        try:
            sock.setsockopt(level, option, value)
        except OSError as exc:
            record.tfo_refused = True
            record.fallback(_reasons.tfo_kernel_refused(exc))
        else:
            record.tfo_requested = True


def _send_first(sock: socket.socket, record: DialRecord, data: Buffer, plan: FlightPlan) -> int:
    """After a connect TCP Fast Open deferred: the first flight, in the SYN if allowed."""
    if not plan.syn_data:
        raise _CookieCached
    try:
        sent = socket.socket.send(sock, data)
    except BlockingIOError:
        sent = 0
    except ConnectionRefusedError:
        record.syn_data_bytes = len(data)  # the reset answered the SYN that carried it
        raise
    record.syn_data_bytes = sent
    return sent


def _start(
    sock: socket.socket, record: DialRecord, address: Address, data: Buffer | None, plan: FlightPlan
) -> int:
    """Start a non-blocking connect to ``address`` as ``plan`` says; return bytes sent in the SYN."""
    _set_tfo(sock, record, plan)
    sock.setblocking(False)
    err = sock.connect_ex(address[1])
    if err in _IN_PROGRESS:
        return 0
    if err:
        raise OSError(err, os.strerror(err))
    if not (record.tfo_requested and data and _is_deferred(sock)):
        return 0  # no cookie cached: the SYN only asks for one, the data follows
    return _send_first(sock, record, data, plan)


def _start_blocking(
    sock: socket.socket,
    record: DialRecord,
    address: Address,
    data: Buffer | None,
    plan: FlightPlan,
    timeout: float | None,
) -> int:
    """Connect ``sock`` to ``address`` as ``plan`` says, blocking; bytes sent in the SYN.

    A plain SYN is a blocking ``connect()`` (CPython polls and reads ``SO_ERROR`` in C,
    with the socket's timeout). With ``TCP_FASTOPEN_CONNECT`` and a cookie cached,
    ``connect()`` returns at once without sending anything and the first flight goes out
    with the SYN; without a cookie it returns after the handshake (the SYN asked for
    one) and the first flight goes out as data. Either way ``TCP_INFO``, read once the
    handshake is over, tells which (:func:`_learn`), so nothing is asked before sending.
    """
    if plan.tfo_connect or plan.tfo_unavailable:
        _set_tfo(sock, record, plan)
    elif record.tfo_requested:  # set by an earlier attempt
        record.tfo_requested = False
    sock.connect(address[1])
    if not (record.tfo_requested and data):
        return 0  # connected
    if not plan.syn_data:  # data may not ride: only a cookie request may go on
        if _is_deferred(sock):
            raise _CookieCached
        return 0
    sent = _send_first(sock, record, data, plan)
    if not _handshake_over(sock, record):
        if not _wait_writable(sock, timeout):
            raise DialTimeout("timed out")
        _finish(sock, record)
    return sent


def _handshake_over(sock: socket.socket, record: DialRecord) -> bool:
    """After the SYN with data left: True (and ``TCP_INFO`` kept) if the handshake is over.

    On a short path (loopback) the SYN-ACK was handled before ``send`` returned: no
    ``poll`` and no ``SO_ERROR`` are needed. Otherwise the caller waits.
    """
    try:
        raw = sock.getsockopt(_SOL_TCP, _TCP_INFO, _linux.TCP_INFO_LEN)
    except OSError:
        return False
    if len(raw) >= _TCPI_MIN and raw[0] in _HANDSHAKE_OVER:
        record.tcp_info_raw = raw
        return True
    return False


class _CookieCached(Exception):
    """A cookie is cached, so the data would ride in a SYN the plan keeps data out of.

    No SYN has left yet (the connect is deferred to the first write), so dropping the
    socket costs nothing on the wire; the dialer starts again without TFO.
    """


def _finish(sock: socket.socket, record: DialRecord) -> None:
    err = sock.getsockopt(_SOL_SOCKET, _SO_ERROR)
    if err:
        _connect_failed(err, record)


def _connect_failed(err: int, record: DialRecord) -> None:
    """Raise the connect error ``SO_ERROR`` reported (unless the server already answered)."""
    if err == errno.ECONNRESET and record.syn_data_bytes > 0:
        # Only an established connection is reset (a SYN answered with a RST reports
        # ECONNREFUSED): the server got the request from the SYN, answered and reset the
        # connection before this poll. Its answer is still readable, then end of stream —
        # what a stock client sees when a server answers and resets.
        return
    raise OSError(err, os.strerror(err))


def _outcome(exc: BaseException | None) -> ConnectOutcome:
    if exc is None:
        return ConnectOutcome.CONNECTED
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return ConnectOutcome.REFUSED
    if isinstance(exc, TimeoutError):
        return ConnectOutcome.TIMEOUT
    return ConnectOutcome.FAILED


def _learn(
    sock: socket.socket,
    record: DialRecord,
    key: DestinationKey,
    exc: BaseException | None,
    plain_retry: bool,
    now: Now,
) -> Learned:
    """Tell :func:`.learn.learn` what the kernel reported; store and record the result.

    On a completed handshake this is where ``TCP_INFO`` (TCP Fast Open asked for) and
    ``TCP_IS_MPTCP`` (an MPTCP socket) are read, once: the record keeps them for the
    connection's proof.
    """
    if exc is None:
        return _learn_connected(sock, record, key, plain_retry, now)
    return _learn_outcome(sock, record, key, exc, plain_retry, now)


def _learn_connected(
    sock: socket.socket, record: DialRecord, key: DestinationKey, plain_retry: bool, now: Now
) -> Learned:
    """:func:`_learn` for a completed handshake; the usual outcome is only counted."""
    proto = sock.proto
    syn_data = record.syn_data_bytes
    acked, client_fail = False, 0
    if record.tfo_requested:  # (set on Linux only)
        raw = record.tcp_info_raw
        if raw is None:
            try:
                raw = sock.getsockopt(_SOL_TCP, _TCP_INFO, _linux.TCP_INFO_LEN)
            except OSError:
                raw = b""
            if len(raw) >= _TCPI_MIN:
                record.tcp_info_raw = raw
        if raw:
            acked = raw[_TCPI_OPTIONS] & _linux.TCPI_OPT_SYN_DATA != 0
            client_fail = (raw[_TCPI_BITFIELD] >> 1) & 0x3
            if syn_data and not acked and client_fail not in _SYN_DATA_FAILS:
                # The SYN carried no data: connect() was not deferred (no cookie), so
                # the first flight went out after the handshake.
                syn_data = record.syn_data_bytes = 0
    if proto != _MPTCP and _learning.only_counted(proto, plain_retry, syn_data, client_fail):
        # What most connections teach: one more connection (:func:`.learn.learn` agrees).
        kind = (syn_data > 0, acked, record.tfo_requested and not syn_data, False, False)
        dest = _peek(key, UNKNOWN)
        if dest[5] is None and dest[6] is None:  # no refusal or reset to clear: may wait
            MEMORY.later(key, _learning.counted, acked)
            COUNTERS.later(kind)
        else:
            MEMORY.update(key, _learning.counted, acked)
            COUNTERS.tally(kind)
        return _COUNTED
    return _learn_outcome(sock, record, key, None, plain_retry, now, acked, client_fail)


def _learn_outcome(
    sock: socket.socket,
    record: DialRecord,
    key: DestinationKey,
    exc: BaseException | None,
    plain_retry: bool,
    now: Now,
    acked: bool = False,
    client_fail: int = 0,
) -> Learned:
    """:func:`_learn` through :func:`.learn.learn` (failures, MPTCP sockets, pauses)."""
    outcome = _CONNECTED if exc is None else _outcome(exc)
    is_mptcp = None
    proto = sock.proto
    syn_data = record.syn_data_bytes
    if exc is None and proto == _MPTCP:
        is_mptcp = record.is_mptcp = _linux.read_is_mptcp(sock, platform=record.platform)
    obs = Observation(outcome, proto, syn_data, acked, client_fail, is_mptcp, plain_retry)
    options = record.options
    results: list[Learned] = []

    def change(dest: Destination) -> Destination:
        learned = _learning.learn(options, dest, key, now, obs)
        results.append(learned)
        return learned.dest

    MEMORY.update(key, change)
    learned = results[0]
    if learned.reasons:
        record.note(learned.reasons)
        for why in learned.reasons:
            if why.why in _PAUSES:
                COUNTERS.add("tfo_pauses")
    if exc is None and not learned.stall_risk:
        COUNTERS.connected(
            syn_data=record.syn_data_bytes > 0,
            acked=acked,
            cookie_request=record.tfo_requested and not record.syn_data_bytes,
            mptcp_socket=proto == _MPTCP,
            mptcp=bool(is_mptcp),
        )
    return learned


_PAUSES = frozenset({Why.TFO_PAUSE_RESET, Why.TFO_PAUSE_LOST})
#: tcpi_fastopen_client_fail values that mean the SYN carried data (not acknowledged)
_SYN_DATA_FAILS = frozenset({_linux.TFO_DATA_NOT_ACKED, _linux.TFO_SYN_RETRANSMITTED})
#: what :func:`_learn` returns for a connection that taught nothing but its count
_COUNTED = Learned(UNKNOWN)
_CONNECTED = ConnectOutcome.CONNECTED
_MPTCP = _linux.IPPROTO_MPTCP


def _to_dial_error(exc: OSError) -> DialError:
    """The connect error, with the text stock gets from ``socket.create_connection``.

    (``[Errno 111] Connection refused``, ``timed out``): urllib3 and httpcore put that
    text in their own messages, which log parsers and tests match.
    """
    if isinstance(exc, DialError):
        return exc
    if isinstance(exc, TimeoutError):
        return DialTimeout("timed out")
    if exc.errno is None:
        return DialError(str(exc))
    return DialError(exc.errno, exc.strerror or str(exc))


WaitWritable = _eyeballs.WaitWritable
ConnectSteps = Generator[WaitWritable, tuple[socket.socket, ...], int]


def connect_steps(
    sock: socket.socket,
    pending: Pending,
    data: Buffer | None,
    *,
    blocking: bool = False,
    _resume: tuple[int, bool, DialError | None] | None = None,
) -> ConnectSteps:
    """Connect ``sock``; the waiting is left to the driver.

    Yields :class:`WaitWritable` (sockets, seconds: None for no limit) and expects to be
    sent the sockets that became writable (empty on timeout). Returns the number of
    bytes of ``data`` that went out with the SYN. Leaves the socket non-blocking. What to
    do at each step is decided by :mod:`.decide`; this is the I/O around it. Several
    addresses are raced (:func:`.race.race_steps`); a driver that stops early (an
    exception, a cancellation) must ``close()`` the generator, which closes their sockets.

    ``blocking=True`` (a blocking driver, a socket with a timeout or none): it never
    yields; it blocks in ``connect()`` or ``poll()`` itself and leaves the socket's
    timeout as it was (:func:`_start_blocking`).

    ``_resume`` (index, plain_retry, last error): go on after a first attempt made by
    :func:`complete_sync` (the next attempt gets a fresh socket).
    """
    if len(pending.addresses) > 1:
        from .race import race_steps

        return (yield from race_steps(sock, pending, data))
    record = pending.record
    options = record.options
    timeout = pending.timeout
    if blocking and timeout is not None and timeout <= 0:
        blocking = False  # a non-blocking socket: connect() would not wait
    last: DialError | None = None
    addresses = pending.addresses
    index = 0
    fresh_socket_needed = False
    plain_retry = cookie_cached = False  # for the address about to be tried
    if _resume is not None:
        index, plain_retry, last = _resume
        fresh_socket_needed = True
    while index < len(addresses):
        address = addresses[index]
        index += 1
        sockaddr = address[1]
        key = (address[0], sockaddr[0], sockaddr[1])
        if fresh_socket_needed:
            fresh: socket.socket = _create(
                address, record, pending.socket_options, pending.source_address
            )
            _replace(sock, fresh)
            record.tcp_info_raw = None  # (read by the attempt before)
        fresh_socket_needed = True
        now = _tuple_new(Now, (time.monotonic(), time.time()))
        plan = _decide.plan_first_flight(
            options,
            MEMORY.peek(key),
            key,
            now,
            socket_proto=sock.proto,
            first_flight=data,
            kernel_refused=record.tfo_refused,
            plain_retry=plain_retry,
            cookie_cached=cookie_cached,
            platform=record.platform,
        )
        record.early_data_safe = plan.early_data_safe
        if plan.reasons:
            record.note(plan.reasons)
        try:
            if blocking:
                sent = _start_blocking(sock, record, address, data, plan, timeout)
            else:
                sent = _start(sock, record, address, data, plan)
                if not (sent and _handshake_over(sock, record)):
                    ready = yield WaitWritable((sock,), timeout)
                    if not ready:
                        raise DialTimeout("timed out")
                    _finish(sock, record)
        except _CookieCached:
            cookie_cached = True
            index -= 1
            continue
        except OSError as exc:
            learned = _learn(sock, record, key, exc, plain_retry, now)
            record.syn_data_bytes = 0
            if learned.retry_plain:
                plain_retry = True
                index -= 1
                continue
            plain_retry = cookie_cached = False
            last = _to_dial_error(exc)
            dial_logger.debug("connect to %s failed: %s", sockaddr, exc)
            continue
        learned = _learn(sock, record, key, None, plain_retry, now)
        if learned.stall_risk:  # the server's kernel would hold its reply: start over
            record.syn_data_bytes = 0
            plain_retry = True
            index -= 1
            continue
        record._peer = sockaddr
        if _trace.collecting() is not None:
            _trace.mark("connect_done")
        if dial_logger.isEnabledFor(logging.DEBUG):
            _log_connection(sock, record, key)
        return sent
    assert last is not None
    COUNTERS.add("connect_errors")
    raise last


def _log_connection(sock: socket.socket, record: DialRecord, key: DestinationKey) -> None:
    """The DEBUG line of one connection: what happened on the wire, and why."""
    info = record.connection_info(sock)
    why = "; ".join((*info.fallbacks, *(str(n) for n in record.notes)))
    dial_logger.debug(
        "connected to %s: transport=%s socket=%s tfo=%s syn_data=%dB mptcp=%s%s",
        _reasons.describe(key),
        info.transport,
        info.socket_protocol,
        info.tfo.value,
        info.syn_data_bytes,
        info.mptcp,
        f" ({why})" if why else "",
    )


def _wait_writable(sock: socket.socket, timeout: float | None) -> bool:
    """Block until ``sock`` is writable or its connect failed; False on timeout.

    ``poll`` where the platform has it; Windows has only ``select``, which reports a
    failed connect as exceptional rather than writable. ``timeout=None`` (the caller set
    no connect timeout) is bounded as stock's blocking ``connect()`` is: the kernel ends a
    handshake that gets no answer after ``net.ipv4.tcp_syn_retries`` with ``ETIMEDOUT``,
    which makes the socket writable with the error set.
    """
    wait = None if timeout is None else timeout if timeout > 0 else 0.0
    poll = getattr(select, "poll", None)
    if poll is not None:
        poller = poll()
        poller.register(sock, _POLLOUT)
        return bool(poller.poll(None if wait is None else wait * 1000.0))
    _, writable, failed = select.select([], [sock], [sock], wait)
    return bool(writable or failed)


_POLLOUT = getattr(select, "POLLOUT", 4)


def _wait_any(socks: tuple[socket.socket, ...], timeout: float | None) -> tuple[socket.socket, ...]:
    """Block until some of ``socks`` are writable (or failed); return those (empty: timeout).

    Every socket is connecting, so ``timeout=None`` is bounded by the kernel as in
    :func:`_wait_writable` (each unanswered handshake ends with ``ETIMEDOUT``).
    """
    wait = None if timeout is None else max(0.0, timeout)
    poll = getattr(select, "poll", None)
    if poll is None:
        _, writable, failed = select.select([], socks, socks, wait)
        return tuple(s for s in socks if s in writable or s in failed)
    poller = poll()
    for s in socks:
        poller.register(s.fileno(), select.POLLOUT)
    fds = {fd for fd, _ in poller.poll(None if wait is None else wait * 1000.0)}
    return tuple(s for s in socks if s.fileno() in fds)


def drive_sync(sock: socket.socket, steps: ConnectSteps) -> int:
    """Run :func:`connect_steps` for ``sock``, blocking in ``poll`` (``select`` on Windows).

    On any exception (``KeyboardInterrupt`` in ``poll`` included) the generator is
    closed, so every socket a race opened is closed too.
    """
    try:
        wait = next(steps)
        while True:
            socks, timeout = wait
            ready: tuple[socket.socket, ...]
            if len(socks) == 1:
                ready = socks if _wait_writable(socks[0], timeout) else ()
            else:
                ready = _wait_any(socks, timeout)
            wait = steps.send(ready)
    except StopIteration as stop:
        result: int = stop.value
        return result
    except BaseException:
        steps.close()
        raise


def complete_sync(sock: socket.socket, pending: Pending, data: Buffer | None) -> int:
    """Connect ``sock`` (blocking, with ``pending.timeout``); bytes of ``data`` in the SYN.

    The socket keeps its timeout; if it was changed since :func:`open_pending`, the
    connect still gets ``pending.timeout`` and the socket's own comes back afterwards.

    The first attempt of a usual plan (a plain SYN, or the first flight in the SYN) runs
    here in a straight line; anything else, and every attempt after a failure, is
    :func:`connect_steps` (which this path mirrors step for step).
    """
    timeout = pending.timeout
    if sock.gettimeout() != timeout:
        return _complete_with(sock, pending, data, sock.gettimeout())
    if len(pending.addresses) > 1:  # Happy Eyeballs: the race (non-blocking sockets)
        try:
            return drive_sync(sock, connect_steps(sock, pending, data))
        finally:
            if sock.fileno() >= 0 and sock.gettimeout() != timeout:
                sock.settimeout(timeout)
    record = pending.record
    address = pending.addresses[0]
    sockaddr = address[1]
    key = (address[0], sockaddr[0], sockaddr[1])
    now = pending.now or _tuple_new(Now, (time.monotonic(), time.time()))
    plan = _decide.plan_first_flight(
        record.options,
        _peek(key, UNKNOWN),
        key,
        now,
        socket_proto=sock.proto,
        first_flight=data,
        kernel_refused=record.tfo_refused,
        platform=record.platform,
    )
    if id(plan) not in _decide.USUAL_PLANS or (timeout is not None and timeout <= 0):
        return drive_sync(sock, connect_steps(sock, pending, data, blocking=True))
    # A usual plan: a plain SYN, or (on Linux: see _decide.connect_options) the first
    # flight in the SYN.
    record.early_data_safe = plan.early_data_safe
    if plan.reasons:
        record.note(plan.reasons)
    tfo = plan.tfo_connect and data
    if tfo:
        try:
            sock.setsockopt(_SOL_TCP, _TCP_FASTOPEN_CONNECT, 1)
        except OSError:  # refused: the full path records why
            return drive_sync(sock, connect_steps(sock, pending, data, blocking=True))
        record.tfo_requested = True
    sent = 0
    try:
        sock.connect(sockaddr)
        if tfo:
            sent = _send_first(sock, record, data, plan)  # type: ignore[arg-type]
            if not _handshake_over(sock, record):
                if not _wait_writable(sock, timeout):
                    raise DialTimeout("timed out")
                _finish(sock, record)
    except OSError as exc:
        learned = _learn(sock, record, key, exc, False, now)
        record.syn_data_bytes = 0
        if learned.retry_plain:
            resume: tuple[int, bool, DialError | None] = (0, True, None)
        else:
            resume = (1, False, _to_dial_error(exc))
            dial_logger.debug("connect to %s failed: %s", sockaddr, exc)
        return drive_sync(sock, connect_steps(sock, pending, data, blocking=True, _resume=resume))
    if _learn_connected(sock, record, key, False, now).stall_risk:
        record.syn_data_bytes = 0  # the server's kernel would hold its reply: start over
        steps = connect_steps(sock, pending, data, blocking=True, _resume=(0, True, None))
        return drive_sync(sock, steps)
    record._peer = sockaddr
    if _trace.collecting() is not None:
        _trace.mark("connect_done")
    if dial_logger.isEnabledFor(logging.DEBUG):
        _log_connection(sock, record, key)
    return sent


def _complete_with(
    sock: socket.socket, pending: Pending, data: Buffer | None, timeout: float | None
) -> int:
    """:func:`complete_sync` for a socket whose timeout changed since it was opened."""
    sock.settimeout(pending.timeout)
    try:
        return complete_sync(sock, pending, data)
    finally:
        if sock.fileno() >= 0:
            sock.settimeout(timeout)
