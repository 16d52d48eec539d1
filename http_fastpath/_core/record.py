"""What the dialer did for one connection (:class:`DialRecord`), and what it learned.

A :class:`DialRecord` collects, per connection, what the connect asked for and what the
kernel said (TCP Fast Open, MPTCP, the fallbacks and their reasons); it turns into the
connection's :class:`ConnectionInfo`. :func:`_learn` tells :func:`.learn.learn` what the
kernel reported about a connect attempt and stores the result in the destination memory
(:mod:`.memory`) and the counters (:mod:`.stats`).
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import learn as _learning
from . import linux as _linux
from .info import (
    ConnectAttempt,
    ConnectionInfo,
    TFOStatus,
    read_connection_info,
    tfo_status,
)
from .learn import ConnectOutcome, Learned, Observation
from .log import log_fallback_once
from .memory import LATER_MAX as _LATER_MAX
from .memory import MEMORY, UNKNOWN, Destination, DestinationKey, counted
from .options import FastpathOptions
from .reasons import Now, Reason, Why
from .stats import COUNTERS

if TYPE_CHECKING:
    from .addresses import Address
    from .proof import _Snapshot
    from .sockets import SocketOption

__all__ = ["DialRecord"]

#: The platform the dialer decides for: ``sys.platform`` (a test may set another).
_PLATFORM = sys.platform


class DialRecord:
    """What the dialer did for one connection; turns into a :class:`ConnectionInfo`.

    Until the connect is complete it is also everything finishing it takes (the
    addresses, the connect timeout, the socket options, the source address, when the
    socket was planned): a pending socket holds its record and nothing else.
    """

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

    def __init__(
        self,
        options: FastpathOptions,
        platform: str | None = None,
        addresses: Sequence[Address] = (),
        timeout: float | None = None,
        socket_options: Sequence[SocketOption] = (),
        source_address: tuple[str, int] | None = None,
        now: Now | None = None,
    ) -> None:
        self.options = options
        self.platform = _PLATFORM if platform is None else platform
        #: the addresses to connect to, in the order they are tried
        self.addresses = addresses
        #: the connect timeout (None: no limit)
        self.timeout = timeout
        self.socket_options = socket_options
        self.source_address = source_address
        #: when the socket was planned (the first attempt decides at the same instant)
        self.now = now

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


# -- what a connect attempt teaches ---------------------------------------------------

# struct tcp_info: the bytes the connect reads (see _linux.TCPInfo)
_TCPI_OPTIONS, _TCPI_BITFIELD, _TCPI_MIN = 5, 7, 104
_SOL_TCP, _TCP_INFO = _linux.SOL_TCP, _linux.TCP_INFO

#: ``MEMORY.peek`` as a bound ``dict.get`` (pass the default): one C call per lookup
_peek = MEMORY.lookup
_count_later, _waiting, _tally_later, _tallies_waiting = (
    MEMORY.count_later,
    MEMORY.pending_counts,
    COUNTERS.count_later,
    COUNTERS.pending_counts,
)
#: the counters' kind of a plain TCP connection: ``_KINDS[syn_data][acked][cookie_request]``
_KINDS = tuple(
    tuple(
        tuple((syn, acked, cookie, False, False) for cookie in (False, True))
        for acked in (False, True)
    )
    for syn in (False, True)
)


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
    sock: socket.socket,
    record: DialRecord,
    key: DestinationKey,
    plain_retry: bool,
    now: Now,
    dest: Destination | None = None,
) -> Learned:
    """:func:`_learn` for a completed handshake; the usual outcome is only counted.

    ``dest``: the destination as the plan saw it (else looked up). A count may wait only
    when it has no refusal or reset to clear; one recorded since by another connection
    is cleared by the waiting count (applied before any other change), as it should be.
    """
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
    if proto != _MPTCP and (
        not (client_fail or plain_retry)  # (only_counted is True then: tests check it)
        or _learning.only_counted(proto, plain_retry, syn_data, client_fail)
    ):
        # What most connections teach: one more connection (:func:`.learn.learn` agrees).
        # (the kind: a tuple made once, not one per connection)
        kind = _KINDS[syn_data > 0][acked][record.tfo_requested and not syn_data]
        if dest is None:
            dest = _peek(key, UNKNOWN)
        if dest[5] is None and dest[6] is None:  # no refusal or reset to clear: may wait
            _count_later((key, acked))
            _tally_later(kind)
            # Each queue is bounded on its own: either may be emptied by its readers
            # (the memory's by every update, the counters' by stats()) and not the other.
            if _waiting() > _LATER_MAX or _tallies_waiting() > _LATER_MAX:
                MEMORY.flush()
                COUNTERS.flush()
        else:
            MEMORY.update(key, counted, acked)
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
