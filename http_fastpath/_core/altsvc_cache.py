"""The Alt-Svc upgrade's two bounded caches (RFC 7838): what origins advertised, and
which alternatives failed.

Pure: no I/O, no clock (times are passed in, ``time.monotonic()`` seconds), no aioquic.

* :class:`AltSvcCache` remembers, per origin, the ``h3`` alternatives of the last verified
  response (parsed by :func:`.altsvc.parse_alt_svc`), until their ``ma`` (capped) runs out.
* :class:`BrokenAlternatives` is the negative cache: an alternative that failed is not
  tried again for an exponentially growing time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import NamedTuple

from .altsvc import MAX_ALTERNATIVES, Alternative, Origin, ParsedAltSvc

__all__ = ["AltSvcCache", "BrokenAlternatives", "CachedAlternative"]


class CachedAlternative(NamedTuple):
    """One remembered alternative: until when (the cache's clock) and its ``persist``."""

    alternative: Alternative
    expires: float
    persist: bool


_Entry = CachedAlternative


class AltSvcCache:
    """The ``h3`` alternatives each origin advertised (bounded LRU, thread-safe).

    RFC 7838 section 3.1: a field value replaces everything cached for the origin; a
    value with no ``h3`` alternative, or ``clear``, leaves none.
    """

    def __init__(self, max_origins: int = 512) -> None:
        if max_origins < 1:
            raise ValueError("max_origins must be at least 1")
        self._max = max_origins
        self._lock = threading.Lock()
        self._origins: OrderedDict[Origin, tuple[_Entry, ...]] = OrderedDict()

    def update(
        self, origin: Origin, parsed: ParsedAltSvc | None, now: float, *, age: float = 0.0
    ) -> None:
        """Apply a parsed field value from a response ``age`` seconds old (its ``Age``
        header: ``ma`` counts from when the response was generated). None: ignored."""
        if parsed is None:
            return
        age = max(0.0, age)
        entries = tuple(
            _Entry(alt.alternative, now + alt.max_age - age, alt.persist)
            for alt in parsed.alternatives
            if alt.max_age - age > 0
        )
        with self._lock:
            self._origins.pop(origin, None)
            if entries:
                self._origins[origin] = entries
                while len(self._origins) > self._max:
                    self._origins.popitem(last=False)

    def lookup(self, origin: Origin, now: float) -> tuple[Alternative, ...]:
        """The origin's unexpired alternatives, most preferred first."""
        with self._lock:
            entries = self._origins.get(origin)
            if entries is None:
                return ()
            fresh = tuple(e for e in entries if e.expires > now)
            if not fresh:
                del self._origins[origin]
                return ()
            if len(fresh) != len(entries):
                self._origins[origin] = fresh
            self._origins.move_to_end(origin)
            return tuple(e.alternative for e in fresh)

    def snapshot(self, now: float) -> list[tuple[Origin, tuple[CachedAlternative, ...]]]:
        """Every origin's unexpired alternatives, least recently used first."""
        with self._lock:
            items = [
                (o, tuple(e for e in es if e.expires > now)) for o, es in self._origins.items()
            ]
        return [(origin, entries) for origin, entries in items if entries]

    def restore(self, origin: Origin, entries: Iterable[CachedAlternative], now: float) -> None:
        """Put back what :meth:`snapshot` gave (from a file): kept unless the origin is known
        already (what this process learnt is newer), at most :data:`.MAX_ALTERNATIVES`."""
        fresh = tuple(e for e in entries if e.expires > now)[:MAX_ALTERNATIVES]
        with self._lock:
            if not fresh or origin in self._origins:
                return
            self._origins[origin] = fresh
            self._origins.move_to_end(origin, last=False)  # older than anything learnt
            while len(self._origins) > self._max:
                self._origins.popitem(last=False)

    def remove(self, origin: Origin, alternative: Alternative) -> None:
        """Drop one of the origin's alternatives (a 421 from it, RFC 7838 section 7)."""
        with self._lock:
            entries = self._origins.get(origin)
            if entries is None:
                return
            kept = tuple(e for e in entries if e.alternative != alternative)
            if kept:
                self._origins[origin] = kept
            else:
                del self._origins[origin]

    def forget(self, origin: Origin) -> None:
        with self._lock:
            self._origins.pop(origin, None)

    def network_changed(self) -> None:
        """RFC 7838 section 2.2: drop what was not advertised with ``persist=1``."""
        with self._lock:
            for origin in list(self._origins):
                kept = tuple(e for e in self._origins[origin] if e.persist)
                if kept:
                    self._origins[origin] = kept
                else:
                    del self._origins[origin]

    def __len__(self) -> int:
        with self._lock:
            return len(self._origins)

    def clear(self) -> None:
        with self._lock:
            self._origins.clear()


class _Broken(NamedTuple):
    failures: int
    until: float


class BrokenAlternatives:
    """Negative cache: alternatives whose QUIC handshake did not complete.

    The n-th failure in a row keeps the alternative out for ``base * 2**(n-1)`` seconds,
    at most ``cap``; a success forgets it. Bounded LRU, thread-safe.
    """

    def __init__(self, *, base: float = 300.0, cap: float = 2 * 86400.0, max_entries: int = 512):
        if not 0 < base <= cap or max_entries < 1:
            raise ValueError("need 0 < base <= cap and max_entries >= 1")
        self.base = base
        self.cap = cap
        self._max = max_entries
        self._lock = threading.Lock()
        self._broken: OrderedDict[tuple[Origin, Alternative], _Broken] = OrderedDict()

    def mark_broken(self, origin: Origin, alternative: Alternative, now: float) -> float:
        """Record a failure; returns until when the alternative is not tried."""
        key = (origin, alternative)
        with self._lock:
            previous = self._broken.pop(key, None)
            failures = 1 if previous is None else min(previous.failures + 1, 64)
            delay = min(self.base * 2.0 ** (failures - 1), self.cap)
            self._broken[key] = _Broken(failures, now + delay)
            while len(self._broken) > self._max:
                self._broken.popitem(last=False)
            return now + delay

    def mark_working(self, origin: Origin, alternative: Alternative) -> None:
        with self._lock:
            self._broken.pop((origin, alternative), None)

    def is_broken(self, origin: Origin, alternative: Alternative, now: float) -> bool:
        """True while the back-off runs (after it, the alternative may be tried again; a
        new failure doubles the next back-off)."""
        with self._lock:
            entry = self._broken.get((origin, alternative))
            return entry is not None and now < entry.until

    def failures(self, origin: Origin, alternative: Alternative) -> int:
        with self._lock:
            entry = self._broken.get((origin, alternative))
            return 0 if entry is None else entry.failures

    def usable(
        self, origin: Origin, alternatives: Iterable[Alternative], now: float
    ) -> tuple[Alternative, ...]:
        """``alternatives`` without the broken ones, order kept."""
        return tuple(a for a in alternatives if not self.is_broken(origin, a, now))

    def __len__(self) -> int:
        with self._lock:
            return len(self._broken)
