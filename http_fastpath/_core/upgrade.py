"""The Alt-Svc upgrade to HTTP/3 (``http3="auto"``): every decision, pure, in one place.

No I/O, no aioquic; time comes from an injected clock. The shells
(:mod:`http_fastpath.http3._upgrade`, called by the requests adapter and the httpx
transports) ask three questions and do what the answers say:

* :func:`choose_route` -- which route for this request: TCP, or HTTP/3 to which
  alternative. A function of the request (scheme, method, body, proxy, trust settings,
  client certificate) and of what :class:`UpgradeMemory` knows about the origin.
* :func:`may_learn` -- may this response's ``Alt-Svc`` be remembered.
* :func:`may_fall_back` -- the HTTP/3 attempt failed: may TCP carry the request, or was
  something of it possibly delivered (then the error is the caller's, as on TCP).

The fallback is the simple, safe one (docs/http3.md, "Alt-Svc upgrade"): the QUIC
handshake to an alternative gets :data:`HANDSHAKE_BOUND` seconds; if it does not complete
the request goes over TCP, and the alternative is kept out (exponential back-off, 5
minutes doubling up to 2 days) so later requests go straight to TCP.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Final, Literal, NamedTuple

from .altsvc import Alternative, Origin, parse_alt_svc
from .altsvc_cache import AltSvcCache, BrokenAlternatives, CachedAlternative
from .altsvc_file import FileEntry
from .exceptions import OptionError

__all__ = [
    "HANDSHAKE_BOUND",
    "BodyKind",
    "Decision",
    "UpgradeMemory",
    "check_files",
    "check_http3",
    "choose_route",
    "fallback_note",
    "handshake_timeout",
    "is_misdirected",
    "may_fall_back",
    "may_learn",
    "parse_age",
]

#: Longest wait for the QUIC handshake with an alternative before the request goes over
#: TCP (seconds). Loopback and LAN handshakes take a few ms, 1-RTT across a continent
#: about 150 ms; a path slower than that loses the upgrade, not the request.
HANDSHAKE_BOUND: Final = 0.3

#: What the request carries: nothing, bytes in memory (can be sent again), or a stream
#: (a generator, a file, multipart: read once, so it stays on TCP).
BodyKind = Literal["none", "bytes", "stream"]

#: RFC 9110 section 9.2.2
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

_HTTP3_ALLOWED: Final = "False (the default) or 'auto'"


def check_http3(value: object) -> bool:
    """Validate ``http3=``: True for ``"auto"``, False for False; else :class:`OptionError`
    (a ``ValueError``) naming the value and what is allowed."""
    if value is False:
        return False
    if isinstance(value, str) and value == "auto":
        return True
    raise OptionError("http3", value, _HTTP3_ALLOWED)


def check_files(
    http3: bool, alt_svc_file: object, ticket_file: object
) -> tuple[str | None, str | None]:
    """Validate ``alt_svc_file=`` and ``ticket_file=``: None, or a path (``str`` or
    ``os.PathLike``, not empty), and only with ``http3="auto"``; else :class:`OptionError`.
    Returns them as strings."""
    out: list[str | None] = []
    for name, value in (("alt_svc_file", alt_svc_file), ("ticket_file", ticket_file)):
        if value is None:
            out.append(None)
            continue
        path = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
        if not isinstance(path, str) or not path or "\0" in path:
            raise OptionError(name, value, "None (the default) or a file path")
        if not http3:
            raise OptionError(name, value, "a file path only together with http3='auto'")
        out.append(path)
    return out[0], out[1]


def check_ticket_file(ticket_file: object) -> str | None:
    """Validate ``ticket_file=`` of the HTTP/3 transports and adapter (no ``http3="auto"``
    there: they are HTTP/3 already): None or a path, as :func:`check_files` says."""
    return check_files(True, None, ticket_file)[1]


class Decision(NamedTuple):
    """Where a request goes: HTTP/3 to ``alternative``, or TCP (``alternative`` None)
    because of ``why``."""

    alternative: Alternative | None
    why: str


def choose_route(
    *,
    scheme: str,
    proxied: bool,
    verified: bool,
    client_cert: bool,
    method: str,
    body: BodyKind,
    alternatives: tuple[Alternative, ...],
) -> Decision:
    """Which route for this request. ``alternatives``: the origin's usable ones (not
    expired, not broken), most preferred first."""
    if scheme != "https":
        return Decision(None, "not https")
    if proxied:
        return Decision(None, "through a proxy (HTTP/3 cannot be tunnelled)")
    if not verified:
        return Decision(None, "verify=False (Alt-Svc is only trusted from a verified origin)")
    if client_cert:
        return Decision(None, "a client certificate (HTTP/3 has none yet)")
    if method.upper() == "CONNECT":
        return Decision(None, "CONNECT")
    if body == "stream":
        return Decision(None, "a streamed body (could not be sent again over TCP)")
    if not alternatives:
        return Decision(None, "no usable h3 alternative known")
    return Decision(alternatives[0], "h3 advertised by the origin")


def may_learn(*, scheme: str, proxied: bool, verified: bool) -> bool:
    """May ``Alt-Svc`` of this response be remembered (RFC 7838 section 2.1: only from
    an origin whose identity was checked, and not through a proxy, which could have
    added the header)."""
    return scheme == "https" and not proxied and verified


def may_fall_back(*, handshake_done: bool, method: str, has_body: bool) -> bool:
    """The HTTP/3 attempt failed: may the request go over TCP now?

    Before the handshake completed nothing of the request left, except a bodyless safe
    request in 0-RTT (only those ride in 0-RTT), which may be sent again. After it, the
    server may have the request: only an idempotent request without a body is sent again
    (RFC 9110 section 9.2.2); anything else fails as it would have on TCP.
    """
    if not handshake_done:
        return True
    return method.upper() in _IDEMPOTENT and not has_body


def is_misdirected(status: int | None) -> bool:
    """A ``421 Misdirected Request`` from the alternative (RFC 9110 section 15.5.20): the
    server did not process the request and cannot answer for the origin. The request goes
    to the origin over TCP, whatever its method (:func:`may_fall_back` does not apply),
    and the alternative is removed from the origin's entries (RFC 7838 section 7: MUST) and
    kept out as after a failed handshake, so the retry's own ``Alt-Svc`` does not bring it
    straight back (:meth:`UpgradeMemory.misdirected`)."""
    return status == 421


def handshake_timeout(connect_timeout: float | None) -> float:
    """The handshake bound for one attempt: :data:`HANDSHAKE_BOUND`, or less when the
    caller's own connect timeout is shorter."""
    if connect_timeout is None:
        return HANDSHAKE_BOUND
    return max(0.0, min(HANDSHAKE_BOUND, connect_timeout))


def fallback_note(
    alternative: Alternative,
    origin: Origin,
    error: BaseException,
    back_off: float,
    *,
    misdirected: bool = False,
) -> str:
    """The ``ConnectionInfo.fallbacks`` line of a request that went over TCP instead
    (``misdirected``: because the alternative answered 421)."""
    host, port = alternative.destination(origin)
    after = f"sent over TCP, alternative not tried for {back_off:.0f} s"
    if misdirected:
        return f"http3: h3 alternative {host}:{port} answered 421 Misdirected Request; {after}"
    reason = type(error).__name__
    detail = str(error)
    if detail:
        reason = f"{reason}: {detail}"
    return f"http3: QUIC to h3 alternative {host}:{port} did not complete ({reason}); {after}"


def parse_age(value: str | None) -> float:
    """The ``Age`` header in seconds (0 when absent or malformed)."""
    if value is None:
        return 0.0
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return 0.0
    return float(text)


class UpgradeMemory:
    """What one adapter or transport knows: origins' ``h3`` alternatives and the broken
    ones. Thread-safe (both caches are); ``clock`` is ``time.monotonic`` unless a test
    hands another. ``on_change`` (set by a file that keeps the alternatives) is called
    after a response changed them."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.altsvc = AltSvcCache()
        self.broken = BrokenAlternatives()
        self.on_change: Callable[[], None] | None = None

    def usable(self, origin: Origin) -> tuple[Alternative, ...]:
        now = self.clock()
        return self.broken.usable(origin, self.altsvc.lookup(origin, now), now)

    def learn(self, origin: Origin, values: Iterable[str], age: float = 0.0) -> None:
        """Apply the response's ``Alt-Svc`` field values (none: nothing changes)."""
        values = list(values)
        parsed = parse_alt_svc(values) if values else None
        if parsed is not None:
            self.altsvc.update(origin, parsed, self.clock(), age=age)
            if self.on_change is not None:
                self.on_change()

    def failed(self, origin: Origin, alternative: Alternative) -> float:
        """Keep ``alternative`` out; returns for how many seconds."""
        now = self.clock()
        return self.broken.mark_broken(origin, alternative, now) - now

    def misdirected(self, origin: Origin, alternative: Alternative) -> float:
        """A 421 from ``alternative``: remove it from the origin's entries and keep it out
        (see :func:`is_misdirected`); returns for how many seconds."""
        self.altsvc.remove(origin, alternative)
        if self.on_change is not None:
            self.on_change()
        return self.failed(origin, alternative)

    def worked(self, origin: Origin, alternative: Alternative) -> None:
        self.broken.mark_working(origin, alternative)

    def file_entries(self, wall: float) -> list[FileEntry]:
        """The alternatives to write to a file, expiry as wall-clock time ``wall`` + what
        is left (least recently used origin first)."""
        now = self.clock()
        return [
            FileEntry(origin, e.alternative, wall + (e.expires - now), e.persist)
            for origin, entries in self.altsvc.snapshot(now)
            for e in entries
        ]

    def load_file_entries(self, entries: list[FileEntry], wall: float) -> None:
        """Remember what a file held (read at ``wall``), under what was learnt since."""
        now = self.clock()
        by_origin: dict[Origin, list[CachedAlternative]] = {}
        for entry in entries:
            cached = CachedAlternative(
                entry.alternative, now + (entry.expires - wall), entry.persist
            )
            by_origin.setdefault(entry.origin, []).append(cached)
        for origin in reversed(list(by_origin)):  # restore() puts each one oldest
            self.altsvc.restore(origin, by_origin[origin], now)
