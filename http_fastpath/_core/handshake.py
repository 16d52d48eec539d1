"""One connect attempt's syscalls: the options, ``connect``, the first flight, the wait.

What :func:`.connect.connect_steps` (and each attempt of :mod:`.race`) does for one
address, as :mod:`.decide`'s :class:`~.decide.FlightPlan` says: set
``TCP_FASTOPEN_CONNECT`` before ``connect`` (:func:`_set_tfo`), start the connect
(:func:`_start`, or :func:`_start_blocking` for a blocking driver), send the first flight
in the SYN when allowed (:func:`_send_first`), see whether the handshake is over
(:func:`_handshake_over`, ``SO_ERROR``) or wait for it (:func:`_wait_writable`,
:func:`_wait_any`). A connect error comes out with the stock client's text
(:func:`_to_dial_error`).
"""

from __future__ import annotations

import errno
import os
import select
import socket

from . import decide as _decide
from . import linux as _linux
from . import reasons as _reasons
from .addresses import Address
from .decide import FlightPlan
from .exceptions import DialError, DialTimeout
from .record import _SOL_TCP, _TCP_INFO, _TCPI_MIN, DialRecord

__all__ = ["Buffer"]

Buffer = bytes | bytearray | memoryview

#: ``connect_ex`` results of a non-blocking connect still under way (Windows: WSAEWOULDBLOCK).
_IN_PROGRESS = frozenset(
    {errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY, getattr(errno, "WSAEWOULDBLOCK", 0)} - {0}
)


_TCP_SYN_SENT = 2  # tcpi_state of a connect in progress (or deferred by TCP Fast Open)
#: tcpi_state once the handshake is over: ESTABLISHED, CLOSE_WAIT (the server answered
#: and closed already)
_HANDSHAKE_OVER = (1, 8)
_TCP_FASTOPEN_CONNECT = 30
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
    handshake is over, tells which (:func:`.record._learn`), so nothing is asked before sending.
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
