"""The connect state machine (:func:`connect_steps`) and its blocking drivers.

The first write of a pending socket (:mod:`.sockets`) completes its connect here. When
TCP Fast Open is on and the first flight is replay-safe (:mod:`.policy`),
``TCP_FASTOPEN_CONNECT`` is set and the first flight rides in the SYN; otherwise a plain
SYN is sent. Either way the handshake is waited for (poll for writable, ``SO_ERROR``), so
a refused, unreachable or silent server is reported as a *connect* error
(:class:`DialError` / :class:`DialTimeout`) and the next address is tried, exactly as a
blocking ``connect()`` would.

:func:`connect_steps` is a generator that yields "wait until one of these sockets is
writable, at most N seconds" (:class:`.eyeballs.WaitWritable`) and never blocks, so the
sync socket (:func:`drive_sync`) and the async backends drive the same code; each step's
syscalls are in :mod:`.handshake`, what they teach in :mod:`.record`. Several addresses
are raced (:mod:`.race`). For a single address the blocking driver
(:func:`complete_sync`) lets it block instead: a SYN without data is then a plain
blocking ``connect()`` (the kernel waits, CPython polls in C) and the socket keeps its
timeout throughout.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Generator

from . import decide as _decide
from . import eyeballs as _eyeballs
from . import reasons as _reasons
from . import trace as _trace
from .exceptions import DialError, DialTimeout
from .handshake import (
    _TCP_FASTOPEN_CONNECT,
    Buffer,
    _CookieCached,
    _finish,
    _handshake_over,
    _send_first,
    _start,
    _start_blocking,
    _to_dial_error,
    _wait_any,
    _wait_writable,
)
from .log import dial_logger
from .memory import MEMORY, UNKNOWN, DestinationKey
from .reasons import Now
from .record import _SOL_TCP, DialRecord, _learn, _learn_connected, _peek
from .stats import COUNTERS

__all__ = ["ConnectSteps", "WaitWritable", "complete_sync", "connect_steps", "drive_sync"]

_tuple_new = tuple.__new__

WaitWritable = _eyeballs.WaitWritable
ConnectSteps = Generator[WaitWritable, tuple[socket.socket, ...], int]


def connect_steps(
    sock: socket.socket,
    record: DialRecord,
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
    timeout as it was (:func:`.handshake._start_blocking`).

    ``_resume`` (index, plain_retry, last error): go on after a first attempt made by
    :func:`complete_sync` (the next attempt gets a fresh socket).
    """
    if len(record.addresses) > 1:
        from .race import race_steps

        return (yield from race_steps(sock, record, data))
    options = record.options
    timeout = record.timeout
    if blocking and timeout is not None and timeout <= 0:
        blocking = False  # a non-blocking socket: connect() would not wait
    last: DialError | None = None
    addresses = record.addresses
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
                address, record, record.socket_options, record.source_address
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


def complete_sync(sock: socket.socket, record: DialRecord, data: Buffer | None) -> int:
    """Connect ``sock`` (blocking, with ``record.timeout``); bytes of ``data`` in the SYN.

    The socket keeps its timeout; if it was changed since :func:`.dialer.open_pending`, the
    connect still gets ``record.timeout`` and the socket's own comes back afterwards.

    The first attempt of a usual plan (a plain SYN, or the first flight in the SYN) runs
    here in a straight line; anything else, and every attempt after a failure, is
    :func:`connect_steps` (which this path mirrors step for step).
    """
    timeout = record.timeout
    if sock.gettimeout() != timeout:
        return _complete_with(sock, record, data, sock.gettimeout())
    addresses = record.addresses
    if len(addresses) > 1:  # Happy Eyeballs: the race (non-blocking sockets)
        try:
            return drive_sync(sock, connect_steps(sock, record, data))
        finally:
            if sock.fileno() >= 0 and sock.gettimeout() != timeout:
                sock.settimeout(timeout)
    address = addresses[0]
    sockaddr = address[1]
    key = (address[0], sockaddr[0], sockaddr[1])
    now = record.now or _tuple_new(Now, (time.monotonic(), time.time()))
    dest = _peek(key, UNKNOWN)  # (what the connect learns is stored against this too)
    plan = _decide.plan_first_flight(
        record.options,
        dest,
        key,
        now,
        socket_proto=sock.proto,
        first_flight=data,
        kernel_refused=record.tfo_refused,
        platform=record.platform,
    )
    if id(plan) not in _decide.USUAL_PLANS or (timeout is not None and timeout <= 0):
        return drive_sync(sock, connect_steps(sock, record, data, blocking=True))
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
            return drive_sync(sock, connect_steps(sock, record, data, blocking=True))
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
        return drive_sync(sock, connect_steps(sock, record, data, blocking=True, _resume=resume))
    if _learn_connected(sock, record, key, False, now, dest).stall_risk:
        record.syn_data_bytes = 0  # the server's kernel would hold its reply: start over
        steps = connect_steps(sock, record, data, blocking=True, _resume=(0, True, None))
        return drive_sync(sock, steps)
    record._peer = sockaddr
    if _trace.collecting() is not None:
        _trace.mark("connect_done")
    if dial_logger.isEnabledFor(logging.DEBUG):
        _log_connection(sock, record, key)
    return sent


def _complete_with(
    sock: socket.socket, record: DialRecord, data: Buffer | None, timeout: float | None
) -> int:
    """:func:`complete_sync` for a socket whose timeout changed since it was opened."""
    sock.settimeout(record.timeout)
    try:
        return complete_sync(sock, record, data)
    finally:
        if sock.fileno() >= 0:
            sock.settimeout(timeout)


# Last, as in .sockets (whose FastpathSocket completes its connect with complete_sync):
# the two modules import each other, and either may be imported first.
from .sockets import _create, _replace  # noqa: E402
