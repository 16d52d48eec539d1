"""Alt-Svc (RFC 7838) for the HTTP/3 upgrade: the names and a bounded parser.

Pure: no I/O, no clock, no aioquic. :func:`parse_alt_svc` reads an ``Alt-Svc`` field
value and keeps only ``h3`` alternatives. Anything malformed makes the whole field ignored
(None): a field value replaces everything cached for the origin, so half of a broken one
must not. The caches that remember what it returns are in :mod:`.altsvc_cache`, their file
format in :mod:`.altsvc_file`.

Identity stays the origin's: an alternative only names where the UDP packets go. TLS
(SNI, certificate and hostname checks) and ``:authority`` remain the origin's, which is
what makes a cross-host alternative safe (RFC 7838 section 2.1). Who may feed the cache
(verified TLS responses only, never ``verify=False``, never through a proxy) is the
caller's rule; see docs/http3.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final, NamedTuple

__all__ = [
    "DEFAULT_MAX_AGE",
    "MAX_ALTERNATIVES",
    "MAX_FIELD_LENGTH",
    "MAX_MAX_AGE",
    "MAX_VALUES",
    "AltSvc",
    "Alternative",
    "Origin",
    "ParsedAltSvc",
    "parse_alt_svc",
    "parse_authority",
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


def parse_authority(text: str) -> Alternative | None:
    """An alt-authority (``host:port``, ``[v6]:port`` or ``:port``), checked as the parser
    checks it; None when malformed."""
    try:
        return _authority(text)
    except _Malformed:
        return None


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
