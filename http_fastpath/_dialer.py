"""The fastpath dialer: the one place in http_fastpath that creates sockets.

A connection is made in two steps:

1. :func:`open_pending` creates the socket for the first resolved address, with the
   protocol chosen at ``socket()`` time (``IPPROTO_MPTCP`` or ``IPPROTO_TCP``) and every
   option set *before* ``connect`` — then stops. The socket is *pending*.
2. The first write completes the connection (:meth:`FastpathSocket.sendall` and
   friends, or :func:`connect_steps` for async drivers). When TCP Fast Open is on and
   the first flight is replay-safe (:mod:`._policy`), ``TCP_FASTOPEN_CONNECT`` is set
   and the first flight rides in the SYN; otherwise a plain SYN is sent. Either way the
   dialer then waits until the handshake is over (poll for writable, ``SO_ERROR``), so a
   refused, unreachable or silent server is reported as a *connect* error
   (:class:`DialError` / :class:`DialTimeout`) and the next address is tried, exactly as
   a blocking ``connect()`` would.

The connect logic is a generator (:func:`connect_steps`) that yields "wait until one of
these sockets is writable, at most N seconds" (:class:`._eyeballs.WaitWritable`) and
never blocks, so the sync socket and the async backends drive the same code. A host with
several addresses is dialled with Happy Eyeballs (RFC 8305): :func:`open_pending` puts
the addresses in order and :mod:`._race` races them (:mod:`._eyeballs` decides).

The fast paths use Linux's option and protocol numbers. The platform (``sys.platform``,
kept on the :class:`DialRecord`) goes into every decision, so on macOS, Windows or
FreeBSD no Linux number reaches the kernel: the connection is plain TCP and
``ConnectionInfo.fallbacks`` says why.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import sys
import time
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

from . import _decide, _eyeballs, _linux, _trace
from ._decide import ConnectOutcome, FlightPlan, Learned, Now, Observation, Reason, Why
from ._exceptions import DialError, DialTimeout
from ._info import ConnectAttempt, ConnectionInfo, TFOStatus, read_connection_info, tfo_status
from ._log import dial_logger, log_fallback_once
from ._memory import MEMORY, Destination, DestinationKey
from ._options import FastpathOptions
from ._stats import COUNTERS

__all__ = [
    "Address",
    "DialRecord",
    "FastpathSocket",
    "SocketOption",
    "connect_steps",
    "detach_plain",
    "dial",
    "new_socket",
    "open_pending",
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
    plain = socket.socket(fileno=sock.detach())
    plain.settimeout(timeout)
    return plain


class DialRecord:
    """What the dialer did for one connection; turns into a :class:`ConnectionInfo`."""

    __slots__ = (
        "attempts",
        "early_data_safe",
        "fallbacks",
        "mptcp_kernel_refused",
        "mptcp_requested",
        "notes",
        "options",
        "peer",
        "platform",
        "syn_data_bytes",
        "tfo_refused",
        "tfo_requested",
    )

    def __init__(self, options: FastpathOptions, platform: str | None = None) -> None:
        self.options = options
        self.platform = _PLATFORM if platform is None else platform
        self.mptcp_requested = options.mptcp
        self.mptcp_kernel_refused = False
        self.tfo_requested = False
        self.tfo_refused = False
        self.syn_data_bytes = 0
        self.early_data_safe: bool | None = None
        self.fallbacks: list[str | Reason] = []
        #: what shaped the connection without being a fallback (for the DEBUG line)
        self.notes: list[Reason] = []
        self.peer: tuple[str, int] | None = None
        #: the Happy Eyeballs attempts (several addresses only)
        self.attempts: tuple[ConnectAttempt, ...] = ()

    def fallback(self, reason: str | Reason) -> None:
        """Record (and log once per kind of reason per process) why a fast path was not used."""
        code = reason.why.name.lower() if isinstance(reason, Reason) else reason
        if reason not in self.fallbacks:
            self.fallbacks.append(reason)
            COUNTERS.fallback(code)
        log_fallback_once(code, reason)

    def note(self, reasons: Sequence[Reason]) -> None:
        """Record every reason of a decision."""
        for reason in reasons:
            self.fallback(reason)

    def tfo_status(self, sock: socket.socket) -> TFOStatus:
        """TCP Fast Open outcome for the live socket ``sock``."""
        if not self.options.tfo:
            return TFOStatus.DISABLED
        return tfo_status(
            sock,
            requested=self.tfo_requested,
            refused=self.tfo_refused,
            syn_data_bytes=self.syn_data_bytes,
        )

    def connection_info(self, sock: socket.socket) -> ConnectionInfo:
        """Read the kernel's view of the connection through ``sock`` (any object on the fd)."""
        return read_connection_info(
            sock,
            mptcp_requested=self.mptcp_requested,
            tfo=self.tfo_status(sock),
            syn_data_bytes=self.syn_data_bytes,
            fallbacks=tuple(dict.fromkeys(str(f) for f in self.fallbacks)),
            early_data_safe=self.early_data_safe,
            peer=self.peer,
            attempts=self.attempts,
        )


class _Pending:
    """Everything needed to finish a deferred connect (and to move to the next address)."""

    __slots__ = ("addresses", "socket_options", "source_address", "timeout")

    def __init__(
        self,
        addresses: Sequence[Address],
        timeout: float | None,
        socket_options: Sequence[SocketOption],
        source_address: tuple[str, int] | None,
    ) -> None:
        self.addresses = addresses
        self.timeout = timeout
        self.socket_options = socket_options
        self.source_address = source_address


class FastpathSocket(socket.socket):
    """A ``socket.socket`` whose connect may be deferred to its first write.

    While pending, the first ``send``/``sendall`` completes the connection (with the data
    in the SYN when allowed) and the first ``recv`` completes it without data. Once
    connected it behaves exactly like a plain socket.
    """

    __slots__ = ("_fp_pending", "fastpath_record")

    _fp_pending: _Pending | None
    fastpath_record: DialRecord

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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
        timeout = self.gettimeout()
        try:
            sent = drive_sync(self, connect_steps(self, pending, first_flight))
        except BaseException:
            self.close()
            raise
        self.settimeout(timeout)
        return sent

    def sendall(self, data: ReadableBuffer, flags: int = 0, /) -> None:
        if self._fp_pending is not None:
            view = memoryview(data).cast("B")
            sent = self.complete(view)
            if sent >= len(view):
                return None
            data = view[sent:]
        return super().sendall(data, flags)

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
        timeout = self.gettimeout()
        super().close()
        fd = other.detach()
        socket.socket.__init__(self, fileno=fd)
        self.settimeout(timeout)


# -- socket creation -------------------------------------------------------------------


def _apply_options(sock: socket.socket, socket_options: Sequence[SocketOption]) -> None:
    for opt in socket_options:
        sock.setsockopt(*opt)


def _now() -> Now:
    return Now(time.monotonic(), time.time())


def _key(address: Address) -> DestinationKey:
    return (address[0], str(address[1][0]), int(address[1][1]))


def _create(
    address: Address,
    record: DialRecord,
    socket_options: Sequence[SocketOption],
    source_address: tuple[str, int] | None,
) -> FastpathSocket:
    """Create and prepare the socket for ``address`` with the protocol :mod:`._decide` picks.

    MPTCP falls back to TCP here when the kernel refuses the socket or an option.
    """
    family = address[0]
    sock: FastpathSocket | None = None
    want_mptcp = False
    if record.options.mptcp and not record.mptcp_kernel_refused:
        key = _key(address)
        plan = _decide.plan_socket(
            record.options, MEMORY.get(key), key, _now(), platform=record.platform
        )
        for said in plan.reasons:  # known to answer in plain TCP: said, but not a fallback
            if said.why is Why.MPTCP_KNOWN_PLAIN:
                record.notes.append(said)
            else:
                record.fallback(said)
        want_mptcp = plan.proto == _linux.IPPROTO_MPTCP
    if want_mptcp:
        try:
            sock = FastpathSocket(family, socket.SOCK_STREAM, _linux.IPPROTO_MPTCP)
        except OSError as exc:
            record.mptcp_kernel_refused = True
            record.fallback(_decide.mptcp_socket_refused(exc))
        else:
            try:
                _apply_options(sock, socket_options)
            except OSError as exc:
                sock.close()
                sock = None
                why = _decide.mptcp_option_refused(exc)
                if why is None:
                    raise
                record.mptcp_kernel_refused = True
                record.fallback(why)
    if sock is None:
        sock = FastpathSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            _apply_options(sock, socket_options)
        except BaseException:
            sock.close()
            raise
    sock.fastpath_record = record
    if source_address is not None:
        try:
            sock.bind(source_address)
        except BaseException:
            sock.close()
            raise
    return sock


def resolve(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[Address]:
    """``getaddrinfo`` for a stream connection; raises ``socket.gaierror`` like the stdlib."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    _trace.mark("dns_start")
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    _trace.mark("dns_done")
    if not infos:
        raise OSError("getaddrinfo returns an empty list")
    return [(fam, sockaddr) for fam, _, _, _, sockaddr in infos]


def open_pending(
    addresses: Sequence[Address],
    *,
    options: FastpathOptions,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[SocketOption] = (),
) -> FastpathSocket:
    """Create the socket for the first address and leave it pending (not yet connected).

    Several addresses are put in Happy Eyeballs order first (:func:`._race.race_order`).
    """
    if not addresses:
        raise ValueError("open_pending needs at least one address")
    if len(addresses) > 1 and options.happy_eyeballs_delay is not None:
        from ._race import race_order

        addresses = race_order(addresses)
    record = DialRecord(options)
    while True:
        try:
            sock = _create(addresses[0], record, socket_options, source_address)
        except OSError:  # no socket of this family here (IPv6 disabled): the next address
            if len(addresses) == 1:
                raise
            addresses = addresses[1:]
        else:
            break
    sock._fp_pending = _Pending(addresses, timeout, socket_options, source_address)
    sock.settimeout(timeout)
    return sock


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


def _is_deferred(sock: socket.socket) -> bool:
    """A TFO connect() that returned 0 without a handshake leaves the peer unknown."""
    try:
        sock.getpeername()
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False


def _start(sock: FastpathSocket, address: Address, data: Buffer | None, plan: FlightPlan) -> int:
    """Start a non-blocking connect to ``address`` as ``plan`` says; return bytes sent in the SYN."""
    record = sock.fastpath_record
    record.tfo_requested = False
    if plan.tfo_unavailable:  # no TFO on this platform: reported as UNAVAILABLE
        record.tfo_refused = True
    for level, option, value in _decide.connect_options(plan, platform=record.platform):
        try:
            sock.setsockopt(level, option, value)
        except OSError as exc:
            record.tfo_refused = True
            record.fallback(_decide.tfo_kernel_refused(exc))
        else:
            record.tfo_requested = True
    sock.setblocking(False)
    err = sock.connect_ex(address[1])
    if err in _IN_PROGRESS:
        return 0
    if err:
        raise OSError(err, os.strerror(err))
    if not (record.tfo_requested and data and _is_deferred(sock)):
        return 0  # no cookie cached: the SYN only asks for one, the data follows
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


class _CookieCached(Exception):
    """A cookie is cached, so the data would ride in a SYN the plan keeps data out of.

    No SYN has left yet (the connect is deferred to the first write), so dropping the
    socket costs nothing on the wire; the dialer starts again without TFO.
    """


def _finish(sock: FastpathSocket) -> None:
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err == errno.ECONNRESET and sock.fastpath_record.syn_data_bytes > 0:
        # Only an established connection is reset (a SYN answered with a RST reports
        # ECONNREFUSED): the server got the request from the SYN, answered and reset the
        # connection before this poll. Its answer is still readable, then end of stream —
        # what a stock client sees when a server answers and resets.
        return
    if err:
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
    sock: FastpathSocket, key: DestinationKey, exc: BaseException | None, plain_retry: bool
) -> Learned:
    """Tell :func:`._decide.learn` what the kernel reported; store and record the result."""
    record = sock.fastpath_record
    outcome = _outcome(exc)
    acked, client_fail, is_mptcp = False, 0, None
    if outcome is ConnectOutcome.CONNECTED:
        if record.syn_data_bytes:
            info = _linux.read_tcp_info(sock, platform=record.platform)
            if info is not None:
                acked, client_fail = info.syn_data_acked, info.fastopen_client_fail
        if sock.proto == _linux.IPPROTO_MPTCP:
            is_mptcp = _linux.read_is_mptcp(sock, platform=record.platform)
    obs = Observation(
        outcome=outcome,
        socket_proto=sock.proto,
        syn_data_bytes=record.syn_data_bytes,
        syn_data_acked=acked,
        tfo_client_fail=client_fail,
        is_mptcp=is_mptcp,
        plain_retry=plain_retry,
    )
    now = _now()
    results: list[Learned] = []

    def change(dest: Destination) -> Destination:
        results.append(_decide.learn(record.options, dest, key, now, obs))
        return results[-1].dest

    MEMORY.update(key, change)
    learned = results[0]
    record.note(learned.reasons)
    for why in learned.reasons:
        if why.why in _PAUSES:
            COUNTERS.add("tfo_pauses")
    if outcome is ConnectOutcome.CONNECTED and not learned.stall_risk:
        COUNTERS.connected(
            syn_data=record.syn_data_bytes > 0,
            acked=acked,
            cookie_request=record.tfo_requested and not record.syn_data_bytes,
            mptcp_socket=sock.proto == _linux.IPPROTO_MPTCP,
            mptcp=bool(is_mptcp),
        )
    return learned


_PAUSES = frozenset({Why.TFO_PAUSE_RESET, Why.TFO_PAUSE_LOST})


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


def connect_steps(sock: FastpathSocket, pending: _Pending, data: Buffer | None) -> ConnectSteps:
    """Connect ``sock``; the waiting is left to the driver.

    Yields :class:`WaitWritable` (sockets, seconds: None for no limit) and expects to be
    sent the sockets that became writable (empty on timeout). Returns the number of
    bytes of ``data`` that went out with the SYN. Leaves the socket non-blocking. What to
    do at each step is decided by :mod:`._decide`; this is the I/O around it. Several
    addresses are raced (:func:`._race.race_steps`); a driver that stops early (an
    exception, a cancellation) must ``close()`` the generator, which closes their sockets.
    """
    if len(pending.addresses) > 1:
        from ._race import race_steps

        return (yield from race_steps(sock, pending, data))
    record = sock.fastpath_record
    last: DialError | None = None
    queue = list(pending.addresses)
    fresh_socket_needed = False
    plain_retry = cookie_cached = False  # for the address at the head of the queue
    while queue:
        address = queue.pop(0)
        key = _key(address)
        if fresh_socket_needed:
            fresh = _create(address, record, pending.socket_options, pending.source_address)
            sock._replace_with(fresh)
        fresh_socket_needed = True
        plan = _decide.plan_first_flight(
            record.options,
            MEMORY.get(key),
            key,
            _now(),
            socket_proto=sock.proto,
            first_flight=data,
            kernel_refused=record.tfo_refused,
            plain_retry=plain_retry,
            cookie_cached=cookie_cached,
            platform=record.platform,
        )
        record.early_data_safe = plan.early_data_safe
        record.note(plan.reasons)
        try:
            sent = _start(sock, address, data, plan)
            ready = yield WaitWritable((sock,), pending.timeout)
            if not ready:
                raise DialTimeout("timed out")
            _finish(sock)
        except _CookieCached:
            cookie_cached = True
            queue.insert(0, address)
            continue
        except OSError as exc:
            learned = _learn(sock, key, exc, plain_retry)
            record.syn_data_bytes = 0
            if learned.retry_plain:
                plain_retry = True
                queue.insert(0, address)
                continue
            plain_retry = cookie_cached = False
            last = _to_dial_error(exc)
            dial_logger.debug("connect to %s failed: %s", address[1], exc)
            continue
        learned = _learn(sock, key, None, plain_retry)
        if learned.stall_risk:  # the server's kernel would hold its reply: start over
            record.syn_data_bytes = 0
            plain_retry = True
            queue.insert(0, address)
            continue
        record.peer = (str(address[1][0]), int(address[1][1]))
        _trace.mark("connect_done")
        if dial_logger.isEnabledFor(logging.DEBUG):
            _log_connection(sock, key)
        return sent
    assert last is not None
    COUNTERS.add("connect_errors")
    raise last


def _log_connection(sock: FastpathSocket, key: DestinationKey) -> None:
    """The DEBUG line of one connection: what happened on the wire, and why."""
    info = sock.connection_info()
    record = sock.fastpath_record
    why = "; ".join((*info.fallbacks, *(str(n) for n in record.notes)))
    dial_logger.debug(
        "connected to %s: transport=%s socket=%s tfo=%s syn_data=%dB mptcp=%s%s",
        _decide.describe(key),
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
    failed connect as exceptional rather than writable.
    """
    wait = None if timeout is None else max(0.0, timeout)
    poll = getattr(select, "poll", None)
    if poll is not None:
        poller = poll()
        poller.register(sock.fileno(), select.POLLOUT)
        return bool(poller.poll(None if wait is None else wait * 1000.0))
    _, writable, failed = select.select([], [sock], [sock], wait)
    return bool(writable or failed)


def _wait_any(socks: tuple[socket.socket, ...], timeout: float | None) -> tuple[socket.socket, ...]:
    """Block until some of ``socks`` are writable (or failed); return those (empty: timeout)."""
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
