"""Alt-Svc (RFC 7838) for the HTTP/3 upgrade: a bounded parser and two bounded caches.

Pure: no I/O, no clock (times are passed in, ``time.monotonic()`` seconds), no aioquic.

* :func:`parse_alt_svc` reads an ``Alt-Svc`` field value and keeps only ``h3``
  alternatives. Anything malformed makes the whole field ignored (None): a field value
  replaces everything cached for the origin, so half of a broken one must not.
* :class:`AltSvcCache` remembers, per origin, the alternatives of the last verified
  response, until their ``ma`` (capped) runs out.
* :class:`BrokenAlternatives` is the negative cache: an alternative that failed is not
  tried again for an exponentially growing time.

Identity stays the origin's: an alternative only names where the UDP packets go. TLS
(SNI, certificate and hostname checks) and ``:authority`` remain the origin's, which is
what makes a cross-host alternative safe (RFC 7838 section 2.1). Who may feed the cache
(verified TLS responses only, never ``verify=False``, never through a proxy) is the
caller's rule; see docs/http3.md.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Final, NamedTuple

__all__ = [
    "DEFAULT_MAX_AGE",
    "MAX_ALTERNATIVES",
    "MAX_FIELD_LENGTH",
    "MAX_MAX_AGE",
    "MAX_VALUES",
    "AltSvc",
    "AltSvcCache",
    "Alternative",
    "BrokenAlternatives",
    "Origin",
    "ParsedAltSvc",
    "parse_alt_svc",
]

#: RFC 7838 section 3.1: ``ma`` when absent (24 hours).
DEFAULT_MAX_AGE: Final = 86400
#: Longest we believe an alternative (7 days; common servers send 30 days). Once a week
#: a request goes over TCP and learns it again, which is cheap.
MAX_MAX_AGE: Final = 7 * 86400
#: Longer field values are ignored whole (a legitimate one is a few dozen bytes).
MAX_FIELD_LENGTH: Final = 2048
#: Field values with more alt-values than this are ignored whole.
MAX_VALUES: Final = 32
#: ``h3`` alternatives kept per origin, in the server's order of preference.
MAX_ALTERNATIVES: Final = 4
_MAX_HOST = 255
_ALPN = "h3"

# RFC 9110 section 5.6.2
_TCHAR: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# Of RFC 3986's reg-name, what a DNS name or an IPv4 address uses (no pct-encoding, no
# sub-delims): anything else could not be resolved anyway.
_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")


class Origin(NamedTuple):
    """An ``https`` origin: host lowercased, without brackets for IPv6."""

    host: str
    port: int

    @classmethod
    def of(cls, host: str, port: int) -> Origin:
        host = host.lower()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return cls(host, port)


class Alternative(NamedTuple):
    """Where to send QUIC for an origin: ``host`` None means the origin's own host."""

    host: str | None
    port: int

    def destination(self, origin: Origin) -> tuple[str, int]:
        """The (host, port) the UDP packets go to."""
        return (origin.host if self.host is None else self.host, self.port)


class AltSvc(NamedTuple):
    """One ``h3`` alt-value: the alternative, its ``ma`` (seconds, capped) and ``persist``."""

    alternative: Alternative
    max_age: int
    persist: bool


class _Malformed(Exception):
    pass


class _Scanner:
    """A linear, non-backtracking reader of one field value."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ows(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise _Malformed
        self.pos += 1

    def token(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TCHAR:
            self.pos += 1
        if self.pos == start:
            raise _Malformed
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """RFC 9110 section 5.6.4 quoted-string, unescaped."""
        self.expect('"')
        out: list[str] = []
        while True:
            if self.at_end():
                raise _Malformed
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\":
                if self.at_end():
                    raise _Malformed
                char = self.text[self.pos]
                self.pos += 1
            if not _qdtext_ok(char):
                raise _Malformed
            out.append(char)

    def value(self) -> str:
        return self.quoted() if self.peek() == '"' else self.token()


def _qdtext_ok(char: str) -> bool:
    code = ord(char)
    return code == 0x09 or 0x20 <= code <= 0x7E or 0x80 <= code <= 0xFF


def _percent_decode(token: str) -> str:
    """protocol-id is a percent-encoded ALPN name (RFC 7838 section 3)."""
    if "%" not in token:
        return token
    out = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "%":
            pair = token[i + 1 : i + 3]
            if len(pair) != 2 or not all(c in "0123456789abcdefABCDEF" for c in pair):
                raise _Malformed
            out.append(int(pair, 16))
            i += 3
        else:
            out += token[i].encode("ascii")
            i += 1
    return out.decode("latin-1")


def _authority(text: str) -> Alternative:
    """``[ uri-host ] ":" port``; an empty host means the origin's host."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise _Malformed
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise _Malformed
    if not host:
        return Alternative(None, port)
    if len(host) > _MAX_HOST:
        raise _Malformed
    if host.startswith("["):
        if not host.endswith("]"):
            raise _Malformed
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _Malformed from None
        return Alternative(str(address), port)
    if not all(c in _HOST_CHARS for c in host):
        raise _Malformed
    return Alternative(host.lower(), port)


def _delta_seconds(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise _Malformed
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_MAX_AGE)):  # no int() of an arbitrarily long string
        return MAX_MAX_AGE
    return min(int(digits), MAX_MAX_AGE)


def _alt_value(scanner: _Scanner) -> AltSvc | None:
    protocol = _percent_decode(scanner.token())
    scanner.expect("=")
    authority = scanner.quoted()
    max_age, persist = DEFAULT_MAX_AGE, False
    seen: set[str] = set()
    while True:
        scanner.skip_ows()
        if scanner.peek() != ";":
            break
        scanner.pos += 1
        scanner.skip_ows()
        name = scanner.token().lower()
        scanner.expect("=")
        value = scanner.value()
        if name in seen:
            continue  # the first one counts
        seen.add(name)
        if name == "ma":
            max_age = _delta_seconds(value)
        elif name == "persist":
            persist = value == "1"  # RFC 7838 section 3.1: other values are ignored
    alternative = _authority(authority)  # checked for every protocol: malformed is malformed
    if protocol != _ALPN:
        return None
    return AltSvc(alternative, min(max_age, MAX_MAX_AGE), persist)


class ParsedAltSvc(NamedTuple):
    """A field value: ``clear``, or the ``h3`` alternatives (possibly none)."""

    clear: bool
    alternatives: tuple[AltSvc, ...]


def parse_alt_svc(values: str | Iterable[str]) -> ParsedAltSvc | None:
    """Parse ``Alt-Svc`` field values (several fields are one comma-separated list).

    Returns None when the value is malformed, too long (:data:`MAX_FIELD_LENGTH`) or has
    too many alt-values (:data:`MAX_VALUES`): the field is then ignored. Otherwise the
    ``h3`` alternatives in the server's order (duplicates dropped, at most
    :data:`MAX_ALTERNATIVES`), or ``clear``. Never raises.
    """
    text = values if isinstance(values, str) else ", ".join(values)
    if len(text) > MAX_FIELD_LENGTH:
        return None
    if text.strip(" \t") == "clear":
        return ParsedAltSvc(True, ())
    scanner = _Scanner(text)
    found: list[AltSvc] = []
    count = 0
    try:
        while True:
            scanner.skip_ows()
            if scanner.at_end():
                break
            if scanner.peek() == ",":  # empty list elements are allowed (RFC 9110 5.6.1)
                scanner.pos += 1
                continue
            count += 1
            if count > MAX_VALUES:
                return None
            entry = _alt_value(scanner)
            if entry is not None and all(e.alternative != entry.alternative for e in found):
                found.append(entry)
            scanner.skip_ows()
            if not scanner.at_end():
                scanner.expect(",")
    except (_Malformed, UnicodeError):
        return None
    return ParsedAltSvc(False, tuple(found[:MAX_ALTERNATIVES]))


class _Entry(NamedTuple):
    alternative: Alternative
    expires: float
    persist: bool


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
