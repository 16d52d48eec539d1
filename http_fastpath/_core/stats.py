"""Process-wide counters of what the dialer did: :func:`stats`.

Counted once per connection when its handshake completes (or its dial fails), so a
metrics exporter can scrape them at any time; they only grow. HTTP/3 connections are
not counted (they make no TCP handshake).
"""

from __future__ import annotations

import dataclasses
import threading
import types
from collections import deque
from collections.abc import Mapping

__all__ = ["FastpathStats", "stats"]


@dataclasses.dataclass(frozen=True)
class FastpathStats:
    """A snapshot of the process-wide counters (see :func:`stats`).

    Attributes:
        connections: connections the fastpath dialer established.
        connect_errors: dials that failed on every address (the error reached the caller).
        syn_data_sent: connections whose SYN carried the first flight (TCP Fast Open).
        syn_data_acked: of those, the ones whose server acknowledged the data in the SYN:
            each saved one round trip.
        tfo_cookie_requests: connections whose SYN asked for a TFO cookie (none cached yet).
        mptcp_sockets: connections made on an ``IPPROTO_MPTCP`` socket.
        mptcp_connections: of those, the ones on which both ends speak MPTCP.
        tfo_pauses: times TCP Fast Open was paused for a destination (a middlebox dropped
            or reset a SYN with data).
        fallbacks: connections per fallback reason (the codes of
            ``ConnectionInfo.fallbacks``, e.g. ``"tfo_not_replay_safe"``).
    """

    connections: int = 0
    connect_errors: int = 0
    syn_data_sent: int = 0
    syn_data_acked: int = 0
    tfo_cookie_requests: int = 0
    mptcp_sockets: int = 0
    mptcp_connections: int = 0
    tfo_pauses: int = 0
    fallbacks: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({})
    )

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly dict (``fallbacks`` as a plain dict)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["fallbacks"] = dict(self.fallbacks)
        return out


class _Counters:
    """The live counters behind :func:`stats`; one lock, taken once per connection.

    A connection adds 1 to the tally of its kind (a tuple of five flags, see
    :meth:`tally`); :meth:`snapshot` turns the tallies into the fields.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = dict.fromkeys(
            (f.name for f in dataclasses.fields(FastpathStats) if f.name != "fallbacks"), 0
        )
        self._kinds: dict[tuple[bool, bool, bool, bool, bool], int] = {}
        #: kinds tallied without the lock, counted at the next snapshot: ``count_later(kind)``
        #: is :meth:`tally` as a bound ``deque.append`` (the connect path; the caller bounds
        #: the queue with :meth:`flush`, as it bounds the destination memory's)
        self._later: deque[tuple[bool, bool, bool, bool, bool]] = deque()
        self.count_later = self._later.append
        #: how many kinds wait (``len`` of the queue, bound)
        self.pending_counts = self._later.__len__
        self._fallbacks: dict[str, int] = {}

    def connected(
        self, *, syn_data: bool, acked: bool, cookie_request: bool, mptcp_socket: bool, mptcp: bool
    ) -> None:
        self.tally((syn_data, acked, cookie_request, mptcp_socket, mptcp))

    def tally(self, kind: tuple[bool, bool, bool, bool, bool]) -> None:
        """One connection of ``kind``: (syn_data, acked, cookie_request, mptcp_socket, mptcp)."""
        kinds = self._kinds
        with self._lock:
            kinds[kind] = kinds.get(kind, 0) + 1

    def flush(self) -> None:
        """Count the kinds waiting in :attr:`count_later` now."""
        with self._lock:
            self._apply_later()

    def _apply_later(self) -> None:
        later, kinds = self._later, self._kinds
        while later:
            try:
                kind = later.popleft()
            except IndexError:
                break
            kinds[kind] = kinds.get(kind, 0) + 1

    def add(self, name: str) -> None:
        with self._lock:
            self._n[name] += 1

    def fallback(self, code: str) -> None:
        with self._lock:
            self._fallbacks[code] = self._fallbacks.get(code, 0) + 1

    def snapshot(self) -> FastpathStats:
        with self._lock:
            self._apply_later()
            n = dict(self._n)
            for (syn_data, acked, cookie, mptcp_socket, mptcp), count in self._kinds.items():
                n["connections"] += count
                n["syn_data_sent"] += count * syn_data
                n["syn_data_acked"] += count * acked
                n["tfo_cookie_requests"] += count * cookie
                n["mptcp_sockets"] += count * mptcp_socket
                n["mptcp_connections"] += count * mptcp
            fallbacks = types.MappingProxyType(dict(self._fallbacks))
        return FastpathStats(**n, fallbacks=fallbacks)


COUNTERS = _Counters()


def stats() -> FastpathStats:
    """The process-wide counters of the fastpath dialer, as a snapshot.

    For metrics exporters: every field only grows, so rates are differences between two
    snapshots. ``stats().syn_data_acked`` is the number of round trips TCP Fast Open saved.
    """
    return COUNTERS.snapshot()
