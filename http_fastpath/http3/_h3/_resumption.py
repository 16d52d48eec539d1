"""TLS session tickets for QUIC resumption, and what may ride in 0-RTT.

Pure: no aioquic import at run time, no I/O, the clock injected. The userspace backend
hands every ticket the server issues on an ``h3`` connection to :meth:`TicketStore.put`
and the next connection to the same key takes one with :meth:`TicketStore.take`.

A ticket is a credential: a resumed handshake is authenticated by the ticket's secret,
not by the server's certificate. So the key names everything that decided whether the
first connection was trusted: the origin (host, port), the alternative the UDP packets
went to (host, port: the origin itself unless Alt-Svc named another), and the trust
settings (:func:`http_fastpath.http3._config.trust_key`: ``verify``, CA file, path or data).
A ticket from a ``verify=False`` connection therefore only ever resumes another
``verify=False`` connection.

Tickets are single use (RFC 8446 appendix C.4: reuse links connections and eases
replay), kept newest first, at most :data:`PER_KEY` per key and :data:`MAX_KEYS` keys
(least recently stored key evicted), never beyond the lifetime the server gave
(``ticket_lifetime``) nor seven days (RFC 8446 section 4.6.1).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from aioquic.tls import SessionTicket

__all__ = [
    "EARLY_DATA_METHODS",
    "MAX_KEYS",
    "MAX_LIFETIME",
    "PER_KEY",
    "TicketKey",
    "TicketStore",
    "may_send_early",
]

#: RFC 8446 section 4.6.1: servers must not give a ticket a lifetime over seven days.
MAX_LIFETIME: Final = 7 * 24 * 3600.0
MAX_KEYS: Final = 256
PER_KEY: Final = 4

#: Methods whose request may ride in 0-RTT: the *safe* methods of RFC 9110 section 9.2.1.
#: 0-RTT data can be replayed by anyone who captured it, at any time within the ticket's
#: window and against any server sharing the ticket key, so idempotence alone (PUT,
#: DELETE: enough for a duplicated TCP Fast Open SYN, see :mod:`http_fastpath._core.policy`)
#: is not enough: a replayed DELETE after the resource was created again deletes it again.
EARLY_DATA_METHODS: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})


def may_send_early(method: bytes, body: bytes) -> bool:
    """True when a request may ride in 0-RTT: a safe method and no body (RFC 8470 section 4)."""
    return method in EARLY_DATA_METHODS and not body


class TicketKey(NamedTuple):
    """What a ticket may resume: see the module docstring."""

    host: str
    port: int
    alt_host: str
    alt_port: int
    trust: str


class _Entry(NamedTuple):
    expires: float
    ticket: SessionTicket


class TicketStore:
    """A bounded, thread-safe store of session tickets (see the module docstring).

    ``clock``: monotonic seconds (injected in tests). A ticket also stops being offered
    when aioquic's own wall-clock check (``SessionTicket.is_valid``) says it expired.
    """

    def __init__(
        self,
        *,
        max_keys: int = MAX_KEYS,
        per_key: int = PER_KEY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1 or per_key < 1:
            raise ValueError("max_keys and per_key must be at least 1")
        self._max_keys = max_keys
        self._per_key = per_key
        self._clock = clock
        self._lock = threading.Lock()
        self._tickets: collections.OrderedDict[TicketKey, collections.deque[_Entry]] = (
            collections.OrderedDict()
        )

    def put(self, key: TicketKey, ticket: SessionTicket) -> None:
        """Keep ``ticket`` for ``key`` (a ticket with no lifetime left is dropped)."""
        lifetime = (ticket.not_valid_after - ticket.not_valid_before).total_seconds()
        lifetime = min(lifetime, MAX_LIFETIME)
        if lifetime <= 0:
            return
        entry = _Entry(self._clock() + lifetime, ticket)
        with self._lock:
            entries = self._tickets.pop(key, None)
            if entries is None:
                entries = collections.deque(maxlen=self._per_key)
            entries.appendleft(entry)
            self._tickets[key] = entries
            while len(self._tickets) > self._max_keys:
                self._tickets.popitem(last=False)

    def take(self, key: TicketKey) -> SessionTicket | None:
        """Remove and return the newest unexpired ticket for ``key``, or None."""
        now = self._clock()
        with self._lock:
            entries = self._tickets.get(key)
            ticket = None
            while entries and ticket is None:
                entry = entries.popleft()
                if entry.expires > now and entry.ticket.is_valid:
                    ticket = entry.ticket
            if entries is not None and not entries:
                del self._tickets[key]
            return ticket

    def count(self, key: TicketKey) -> int:
        """Tickets held for ``key`` (expired ones included until taken or evicted)."""
        with self._lock:
            return len(self._tickets.get(key, ()))

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._tickets.values())

    def clear(self) -> None:
        with self._lock:
            self._tickets.clear()
