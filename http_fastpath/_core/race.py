"""Happy Eyeballs (RFC 8305): the I/O around :class:`.eyeballs.Race`.

:func:`race_order` puts a host's addresses in order (the destination memory says which
address won lately); :func:`race_steps` is the connect generator of a dial with several
addresses (see :func:`.connect.connect_steps` for the protocol with the drivers). Each
attempt is the dialer's own connect -- :mod:`.decide` plans its socket and its first
flight, so with TCP Fast Open each attempt carries a replay-safe first flight in its SYN
and none carries any other -- on its own socket with its own :class:`~.record.DialRecord`
(the reasons are shared). The winner's socket moves into the dial's socket (its fd), its
record into the dial's record; every other socket is closed on every path: a loss, a
failure, the timeout, or the driver closing the generator (cancellation,
``KeyboardInterrupt``).
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Sequence

from . import addresses as _addresses
from . import connect as _connect
from . import decide as _decide
from . import eyeballs as _eyeballs
from . import handshake as _handshake
from . import reasons as _reasons
from . import record as _record
from . import sockets as _sockets
from . import trace as _trace
from .addresses import Address
from .connect import ConnectSteps
from .exceptions import DialTimeout
from .eyeballs import Expire, Phase, Race, Start, Wait, WaitWritable
from .handshake import Buffer
from .info import ConnectAttempt
from .log import dial_logger
from .memory import MEMORY, Destination
from .record import DialRecord
from .stats import COUNTERS

__all__ = ["race_order", "race_steps"]


def race_order(addresses: Sequence[Address]) -> list[Address]:
    """``addresses`` in the order their attempts start (:func:`.eyeballs.sort_addresses`)."""
    won = [MEMORY.get(_addresses._key(a)).won_race_at for a in addresses]
    return _eyeballs.sort_addresses(addresses, won, time.monotonic())


def _child(main: DialRecord) -> DialRecord:
    """A record for one attempt: its own TFO state; the reasons land on the dial's."""
    record = DialRecord(main.options, main.platform)
    if type(main.fallbacks) is not list:  # (a record starts with a shared empty tuple)
        main.fallbacks = list(main.fallbacks)
    if type(main.notes) is not list:
        main.notes = list(main.notes)
    record.fallbacks = main.fallbacks
    record.notes = main.notes
    record.mptcp_kernel_refused = main.mptcp_kernel_refused
    record.tfo_refused = main.tfo_refused
    return record


class _Attempt:
    """The connect to one address (the dialer's loop body for that address)."""

    __slots__ = (
        "address",
        "cookie_cached",
        "error",
        "key",
        "plain_retry",
        "record",
        "sent",
        "sock",
        "syn_data_bytes",
    )

    def __init__(self, address: Address, record: DialRecord, sock: socket.socket | None) -> None:
        self.address = address
        self.key = _addresses._key(address)
        self.record = record
        self.sock = sock
        self.plain_retry = self.cookie_cached = False
        self.sent = 0
        self.syn_data_bytes = 0  # what rode in this attempt's last SYN (for the report)
        self.error: OSError | None = None

    def begin(self, main: DialRecord, data: Buffer | None, again: bool = False) -> None:
        """Start the connect (``again``: on a fresh socket); OSError: it failed at once."""
        fresh_needed = again or self.sock is None
        record = self.record
        while True:
            if fresh_needed:
                fresh: socket.socket = _sockets._create(
                    self.address, self.record, main.socket_options, main.source_address
                )
                if self.sock is None:
                    self.sock = fresh
                else:
                    _sockets._replace(self.sock, fresh)
                    record.tcp_info_raw = None  # (read by the try before)
            fresh_needed = True
            plan = _decide.plan_first_flight(
                record.options,
                MEMORY.get(self.key),
                self.key,
                _sockets._now(),
                socket_proto=self.sock.proto,  # type: ignore[union-attr]
                first_flight=data,
                kernel_refused=record.tfo_refused,
                plain_retry=self.plain_retry,
                cookie_cached=self.cookie_cached,
                platform=record.platform,
            )
            record.early_data_safe = plan.early_data_safe
            record.note(plan.reasons)
            try:
                self.sent = _handshake._start(self.sock, record, self.address, data, plan)  # type: ignore[arg-type]
                self.syn_data_bytes = record.syn_data_bytes
            except _handshake._CookieCached:
                self.cookie_cached = True
                continue
            except OSError as exc:
                if self._again(exc):
                    continue
                raise
            return

    def _again(self, exc: OSError) -> bool:
        """Learn from a failure; True when the same address is tried once more (plain SYN)."""
        assert self.sock is not None
        learned = _record._learn(
            self.sock, self.record, self.key, exc, self.plain_retry, _sockets._now()
        )
        self.record.syn_data_bytes = 0
        if learned.retry_plain:
            self.plain_retry = True
            return True
        self.error = exc
        dial_logger.debug("connect to %s failed: %s", self.address[1], exc)
        return False

    def ready(self, main: DialRecord, data: Buffer | None) -> bool:
        """The socket is writable: True when connected, False when started over (plain SYN).

        OSError: the attempt failed.
        """
        assert self.sock is not None
        try:
            _handshake._finish(self.sock, self.record)
        except OSError as exc:
            if not self._again(exc):
                raise
            self.begin(main, data, again=True)
            return False
        learned = _record._learn(
            self.sock, self.record, self.key, None, self.plain_retry, _sockets._now()
        )
        if learned.stall_risk:  # the server's kernel would hold its reply: start over
            self.record.syn_data_bytes = 0
            self.plain_retry = True
            self.begin(main, data, again=True)
            return False
        return True

    def expire(self) -> None:
        """The time ran out (the caller closes the socket)."""
        self.error = DialTimeout("timed out")
        if self.sock is not None:
            _record._learn(
                self.sock, self.record, self.key, self.error, self.plain_retry, _sockets._now()
            )

    def socket(self) -> socket.socket:
        assert self.sock is not None  # an attempt in flight has its socket
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def _outcome(phase: Phase, error: OSError | None) -> str:
    if phase is Phase.FAILED:
        refused = isinstance(error, ConnectionRefusedError) or (
            error is not None and error.errno == errno.ECONNREFUSED
        )
        return "refused" if refused else "failed"
    return {Phase.TIMED_OUT: "timeout", Phase.CONNECTED: "connected"}.get(phase, "abandoned")


def _report(race: Race, attempts: dict[int, _Attempt]) -> tuple[ConnectAttempt, ...]:
    out = []
    for i in sorted(attempts):
        attempt, phase = attempts[i], race.phase[i]
        started = race.started[i]
        ended = race.ended[i]
        started = race.start if started is None else started
        ended = started if ended is None else ended
        error = attempt.error if phase in (Phase.FAILED, Phase.TIMED_OUT) else None
        out.append(
            ConnectAttempt(
                address=(str(attempt.address[1][0]), int(attempt.address[1][1])),
                outcome=_outcome(phase, error),
                started_ms=round((started - race.start) * 1000.0, 3),
                ended_ms=round((ended - race.start) * 1000.0, 3),
                syn_data_bytes=attempt.syn_data_bytes,
                error=None if error is None or phase is Phase.TIMED_OUT else str(error),
            )
        )
    return tuple(out)


def race_steps(sock: socket.socket, main: DialRecord, data: Buffer | None) -> ConnectSteps:
    """Connect ``sock`` to the first of ``main.addresses`` that answers (RFC 8305).

    ``sock`` was made for the first address: the first attempt runs on it (a failed or
    losing attempt's socket is closed at once, ``sock`` included: the winner's fd moves
    into it). Returns the bytes of ``data`` that rode in the winner's SYN; raises the
    error of the attempt that ended last, or :class:`DialTimeout` when the time ran out.
    """
    addresses = main.addresses
    race = Race(
        len(addresses),
        delay=main.options.happy_eyeballs_delay,
        timeout=main.timeout,
        now=time.monotonic(),
    )
    attempts: dict[int, _Attempt] = {}  # the started ones
    winner: _Attempt | None = None
    try:
        while winner is None:
            step = race.step(time.monotonic())
            if isinstance(step, Start):
                i = step.attempt
                attempt = attempts[i] = _Attempt(
                    addresses[i], _child(main), sock if i == 0 else None
                )
                try:
                    attempt.begin(main, data)
                except OSError as exc:
                    attempt.error = exc  # also when socket() itself failed
                    race.failed(i, time.monotonic())
                    attempt.close()
            elif isinstance(step, Wait):
                socks = tuple(attempts[i].socket() for i in step.indices)
                ready = yield WaitWritable(socks, step.timeout)
                for i, waited in zip(step.indices, socks, strict=True):
                    if waited not in ready:
                        continue
                    attempt = attempts[i]
                    try:
                        connected = attempt.ready(main, data)
                    except OSError as exc:
                        attempt.error = exc
                        race.failed(i, time.monotonic())
                        attempt.close()
                        continue
                    if connected:
                        for loser in race.connected(i, time.monotonic()):
                            attempts[loser].close()
                        winner = attempt
                        break
            elif isinstance(step, Expire):
                for i in step.indices:
                    attempts[i].expire()
                    attempts[i].close()
            else:
                main.attempts = _report(race, attempts)
                COUNTERS.add("connect_errors")
                error = None if step.last is None else attempts[step.last].error
                if step.timed_out or error is None:
                    raise DialTimeout("timed out")
                raise _handshake._to_dial_error(error)
    finally:
        if winner is None:
            race.abandon(time.monotonic())
            for attempt in attempts.values():
                attempt.close()
    try:
        return _won(sock, main, race, attempts, winner)
    except BaseException:
        winner.close()
        raise


def _won(
    sock: socket.socket,
    main: DialRecord,
    race: Race,
    attempts: dict[int, _Attempt],
    winner: _Attempt,
) -> int:
    """Move the winner into the dial's socket and record; remember it when it teaches."""
    assert winner.sock is not None and race.winner is not None
    if winner.sock is not sock:
        _sockets._replace(sock, winner.sock)  # closes the first attempt's socket
    record = winner.record
    main.tcp_info_raw = record.tcp_info_raw  # (what the proof reuses)
    main.is_mptcp = record.is_mptcp
    main.tfo_requested = record.tfo_requested
    main.tfo_refused = record.tfo_refused
    main.syn_data_bytes = record.syn_data_bytes
    main.early_data_safe = record.early_data_safe
    main.mptcp_kernel_refused = (
        any(a.record.mptcp_kernel_refused for a in attempts.values()) or main.mptcp_kernel_refused
    )
    address = winner.address
    main.peer = (str(address[1][0]), int(address[1][1]))
    main.attempts = _report(race, attempts)
    if _eyeballs.remember_win(race.winner):
        now = time.monotonic()

        def won(dest: Destination) -> Destination:
            return dest.replace(won_race_at=now)

        MEMORY.update(winner.key, won)
    _trace.mark("connect_done")
    if dial_logger.isEnabledFor(logging.DEBUG):
        keys = [attempts[i].key for i in sorted(attempts)]
        for key, shown in zip(keys, main.attempts, strict=True):
            dial_logger.debug(
                "attempt %s: %s at +%.1f ms (started at +%.1f ms)",
                _reasons.describe(key),
                shown.outcome,
                shown.ended_ms,
                shown.started_ms,
            )
        _connect._log_connection(sock, main, winner.key)
    return winner.sent
