"""Destination memory: what this process learned about each (address, port).

MPTCP and TCP Fast Open are properties of the *listener*, so facts are kept per
destination ``(family, address, port)`` — never per host: an MPTCP service and a plain
one on the same IP address are two destinations. Each :class:`Destination` records

* how the server answered an MPTCP SYN (:class:`MptcpAnswer`), until when that holds;
* whether TCP Fast Open is paused there (and why, until when);
* whether the last connection attempt was refused (a dead server: no SYN data next time,
  so a retrying client sends as many SYNs as stock);
* when it won a Happy Eyeballs race against an address tried before it (the next dial
  to the same addresses starts with it: :mod:`.eyeballs`);
* counters.

The store is a bounded LRU (:data:`DEFAULT_MAX_ENTRIES` entries, about 0.4 KB each as
measured by ``tests/unit/test_memory.py``), thread-safe, and holds plain frozen values: the decisions about
them live in :mod:`.decide`, which reads a :class:`Destination` and returns the next
one. Nothing here reads a clock; times are passed in (``time.monotonic`` seconds).
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from .exceptions import OptionError

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "Destination",
    "DestinationKey",
    "DestinationMemory",
    "MEMORY",
    "MptcpAnswer",
]

#: Destinations remembered at most (least recently used forgotten first).
DEFAULT_MAX_ENTRIES: Final = 4096

#: ``(socket family, address, port)``; the address as the kernel gives it (no brackets).
DestinationKey = tuple[int, str, int]


class MptcpAnswer(str, enum.Enum):
    """How a destination answered the last MPTCP SYN sent to it."""

    #: Never asked, or the answer expired.
    UNKNOWN = "unknown"
    #: It answered with MPTCP (``TCP_IS_MPTCP`` = 1).
    MPTCP = "mptcp"
    #: It answered in plain TCP (``TCP_IS_MPTCP`` = 0): a plain listener or a middlebox.
    PLAIN_TCP = "plain_tcp"

    def __str__(self) -> str:
        return self.value


class Destination(NamedTuple):
    """The facts known about one destination; times are ``time.monotonic()`` seconds.

    Attributes:
        mptcp: the last answer to an MPTCP SYN; valid until ``mptcp_until``.
        mptcp_learned_at: when that answer came.
        mptcp_until: when it expires (then the next connection asks again).
        tfo_paused_until: TCP Fast Open is off for this destination until then.
        tfo_pause_reason: why it was paused (a sentence).
        refused_at: when a plain SYN to it was last refused (cleared by a success).
        syn_data_reset_at: when a SYN with data was last answered with a reset.
        connections: connections completed to it.
        syn_data_acked: of those, how many had their SYN data acknowledged.
        tfo_pauses: how often TCP Fast Open was paused for it.
        won_race_at: when it last won a Happy Eyeballs race against an address tried
            before it: dials to its host start with it until ``PREFERENCE_TTL`` later.
    """

    mptcp: MptcpAnswer = MptcpAnswer.UNKNOWN
    mptcp_learned_at: float | None = None
    mptcp_until: float | None = None
    tfo_paused_until: float | None = None
    tfo_pause_reason: str | None = None
    refused_at: float | None = None
    syn_data_reset_at: float | None = None
    connections: int = 0
    syn_data_acked: int = 0
    tfo_pauses: int = 0
    won_race_at: float | None = None

    def replace(self, **changes: Any) -> Destination:
        """A copy with ``changes`` applied."""
        return self._replace(**changes)


UNKNOWN: Final = Destination()


class DestinationMemory:
    """A bounded, thread-safe LRU map of :data:`DestinationKey` to :class:`Destination`."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._entries: OrderedDict[DestinationKey, Destination] = OrderedDict()
        self._lock = threading.Lock()
        #: connections counted but not applied yet (:attr:`count_later`), oldest first
        self._later: deque[tuple[DestinationKey, bool]] = deque()
        #: ``count_later((key, syn_data_acked))``: one more connection to ``key``
        #: (:func:`counted`), applied before the next read or write (:meth:`peek` excepted).
        #: For the connect path: a bound ``deque.append`` (one C call, no lock), for the
        #: connections no decision waits for (no refusal or reset to clear); the caller
        #: bounds the queue (:meth:`flush` once ``pending_counts()`` passes ``LATER_MAX``).
        self.count_later = self._later.append
        #: how many counts wait (``len`` of the queue, bound)
        self.pending_counts = self._later.__len__
        self.max_entries = max_entries
        #: :meth:`peek` as a bound ``dict.get(key, default)``: one C call (the connect path)
        self.lookup = self._entries.get

    @property
    def max_entries(self) -> int:
        """The bound; lowering it forgets the least recently used entries at once."""
        return self._max

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError("max_entries", value, "a whole number >= 1")
        with self._lock:
            self._max = value
            self._apply_later()
            while len(self._entries) > value:
                self._entries.popitem(last=False)

    def flush(self) -> None:
        """Apply the counts waiting in :attr:`count_later` now."""
        with self._lock:
            self._apply_later()

    def _apply_later(self) -> None:
        """Apply the waiting counts (the lock held)."""
        later, entries = self._later, self._entries
        if later:
            self._apply_runs(later, entries)
        while len(entries) > self._max:
            entries.popitem(last=False)

    @staticmethod
    def _apply_runs(
        later: deque[tuple[DestinationKey, bool]], entries: OrderedDict[DestinationKey, Destination]
    ) -> None:
        """Apply ``later``'s counts to ``entries``: one new entry per destination."""
        runs: dict[DestinationKey, list[int]] = {}  # key: [connections, syn_data_acked]
        last, run = None, [0, 0]
        while later:
            try:
                key, acked = later.popleft()
            except IndexError:  # (emptied by another thread meanwhile)
                break
            if key == last:
                run[0] += 1
                run[1] += acked
                continue
            run = runs.pop(key, [0, 0])  # (re-inserted: the order of last use)
            run[0] += 1
            run[1] += acked
            runs[key] = run
            last = key
        for key, (connections, acked_count) in runs.items():
            entries[key] = counted(entries.get(key, UNKNOWN), acked_count, connections)
            entries.move_to_end(key)

    def get(self, key: DestinationKey) -> Destination:
        """The facts for ``key`` (a blank :class:`Destination` when nothing is known)."""
        with self._lock:
            self._apply_later()
            found = self._entries.get(key)
            if found is None:
                return UNKNOWN
            self._entries.move_to_end(key)
            return found

    def peek(self, key: DestinationKey) -> Destination:
        """:meth:`get` without the lock and without refreshing the entry's recency.

        For the connect path: one dict lookup (atomic), and the entry is refreshed when
        the connection's outcome is stored with :meth:`update`. Changes waiting in
        :meth:`later` are not applied (none of them is one a decision reads).
        """
        return self._entries.get(key, UNKNOWN)

    def update(
        self, key: DestinationKey, change: Callable[..., Destination], *args: Any
    ) -> Destination:
        """Atomically replace the entry for ``key`` with ``change(entry, *args)``; return it."""
        entries = self._entries
        with self._lock:
            if self._later:
                self._apply_later()
            new = entries[key] = change(entries.get(key, UNKNOWN), *args)
            entries.move_to_end(key)
            if len(entries) > self._max:
                entries.popitem(last=False)
        return new

    def items(self) -> list[tuple[DestinationKey, Destination]]:
        """Every entry, least recently used first."""
        with self._lock:
            self._apply_later()
            return list(self._entries.items())

    def forget(self, address: str | None = None, port: int | None = None) -> int:
        """Forget the entries matching ``address`` and/or ``port`` (all when both are None).

        Returns how many were forgotten.
        """
        with self._lock:
            self._apply_later()
            doomed = [
                key
                for key in self._entries
                if (address is None or key[1] == address) and (port is None or key[2] == port)
            ]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def __len__(self) -> int:
        with self._lock:
            self._apply_later()
            return len(self._entries)


#: Counts that may wait in :attr:`DestinationMemory.count_later` before they are applied.
LATER_MAX: Final = 1024


_tuple_new = tuple.__new__


def counted(dest: Destination, syn_data_acked: int, connections: int = 1) -> Destination:
    """``dest`` after one more completed connection: counters up, refusal and reset cleared.

    ``syn_data_acked``: whether (or, for several ``connections``, how many times) the
    server acknowledged data in the SYN.
    """
    return _tuple_new(
        Destination,
        (
            dest[0],  # mptcp
            dest[1],  # mptcp_learned_at
            dest[2],  # mptcp_until
            dest[3],  # tfo_paused_until
            dest[4],  # tfo_pause_reason
            None,  # refused_at
            None,  # syn_data_reset_at
            dest[7] + connections,  # connections
            dest[8] + syn_data_acked,  # syn_data_acked
            dest[9],  # tfo_pauses
            dest[10],  # won_race_at
        ),
    )


#: The process-wide memory every connection consults.
MEMORY: Final = DestinationMemory()
