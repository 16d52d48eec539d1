"""Every reason a fast path is not used (:class:`Why`), and the facts reasons cite.

Each :class:`Why` carries a sentence for people (``ConnectionInfo.fallbacks``); a
:class:`Reason` fills it in when first read. The decisions (:mod:`.decide` before the
connect, :mod:`.learn` after it) return them; the builders here turn what the kernel
refused (``socket()``, an option, ``TCP_FASTOPEN_CONNECT``) and the platform into one.
Nothing here does I/O or reads a clock: the time comes in as :class:`Now`.
"""

from __future__ import annotations

import enum
import errno
import functools
import ipaddress
import socket
import time
from typing import Final, NamedTuple

__all__ = ["Now", "Reason", "Why", "describe", "is_loopback", "reason"]


class Now(NamedTuple):
    """The time, passed in: ``time.monotonic()`` for deadlines, ``time.time()`` for people."""

    mono: float
    wall: float


class Why(enum.Enum):
    """Every reason the dialer does not use a fast path (or changes course)."""

    TFO_NOTHING_TO_SEND = "tfo: nothing to send first (the connection starts with a read)"
    TFO_NOT_REPLAY_SAFE = "tfo: the first flight is not replay-safe (tfo_policy='safe')"
    TFO_KERNEL_REFUSED = (
        "tfo: the kernel refused TCP_FASTOPEN_CONNECT ({error}); "
        "enable with: sysctl -w net.ipv4.tcp_fastopen=1"
    )
    TFO_PLATFORM = "tfo: TCP Fast Open is not implemented on {platform}: {detail} (plain SYN)"
    TFO_PAUSED = "tfo: paused for {dest} until {until}: {cause}"
    TFO_AFTER_REFUSAL = (
        "tfo: {dest} refused the last connection, so no data rides in this SYN (a retrying "
        "client sends as many SYNs as stock); TCP Fast Open resumes after a success"
    )
    TFO_MPTCP_PEER = (
        "tfo: plain SYN on the MPTCP socket to {dest}, which answered with MPTCP at {at}: "
        "an MPTCP server holds data that came in the SYN until the client's next segment "
        "(Linux 6.18), so data never rides in an MPTCP SYN off loopback"
    )
    TFO_MPTCP_SYN_DATA = (
        "tfo: no data in the SYN of an MPTCP socket to {dest} (off loopback, an MPTCP "
        "server would hold it until the client's next segment); if {dest} answers in plain "
        "TCP, the next connections use a plain TCP socket with TCP Fast Open"
    )
    TFO_SYN_DATA_RESET = (
        "tfo: the SYN with data to {dest} was answered with a reset; trying once more with "
        "a plain SYN"
    )
    TFO_DEAD_SERVER = (
        "tfo: {dest} refused a plain SYN too: the server is down, not a middlebox (TFO not paused)"
    )
    TFO_PAUSE_RESET = (
        "tfo: a plain SYN to {dest} got through after the SYN with data was reset: a "
        "middlebox rejects SYN data there; TFO is paused for {dest} until {until}"
    )
    TFO_PAUSE_LOST = (
        "tfo: the SYN with data to {dest} was lost and sent again without data; TFO is "
        "paused for {dest} until {until}"
    )
    MPTCP_KNOWN_PLAIN = (
        "mptcp: plain TCP socket: {dest} answered MPTCP in plain TCP at {at} "
        "(asked again from {until})"
    )
    MPTCP_PLATFORM = (
        "mptcp: Multipath TCP is not implemented on {platform}: {detail} (plain TCP socket)"
    )
    MPTCP_SOCKET_REFUSED = "mptcp: {detail}"
    MPTCP_OPTION_REFUSED = "mptcp: a socket option is not supported on MPTCP sockets ({error})"
    MPTCP_SYN_DATA_STALL = (
        "mptcp: data rode in the SYN of an MPTCP connection to {dest}, which speaks MPTCP "
        "(its kernel would hold the reply until the client's next data segment): the "
        "connection was dropped and the first flight sent again on a new one with a plain "
        "SYN (it was replay-safe, or tfo_policy='always')"
    )


class Reason:
    """One :class:`Why` with its fields; the sentence is built when first read."""

    __slots__ = ("_text", "fields", "why")

    def __init__(self, why: Why, fields: dict[str, object]) -> None:
        self.why = why
        self.fields = fields
        self._text: str | None = None

    @property
    def text(self) -> str:
        """The sentence for people."""
        if self._text is None:
            self._text = self.why.value.format(**self.fields)
        return self._text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Reason({self.why.name}, {self.text!r})"


def reason(why: Why, **fields: object) -> Reason:
    """``why`` with its placeholders to be filled from ``fields`` (lazily)."""
    return Reason(why, fields)


_MPTCP_ERRNO_DETAIL: Final = {
    errno.EINVAL: "the kernel predates MPTCP (Linux < 5.6)",
    errno.EPROTONOSUPPORT: "the kernel is built without MPTCP (CONFIG_MPTCP)",
    errno.ENOPROTOOPT: "MPTCP is disabled (sysctl net.mptcp.enabled=0)",
    errno.EAFNOSUPPORT: "MPTCP does not support this address family here",
}
#: setsockopt errnos that mean "not on an MPTCP socket": retry the options on plain TCP.
MPTCP_SOFT_OPTION_ERRNOS: Final = frozenset({errno.ENOPROTOOPT, errno.EOPNOTSUPP})


def mptcp_socket_refused(error: OSError) -> Reason:
    """Why an ``IPPROTO_MPTCP`` ``socket()`` failed (the dialer then opens a TCP socket)."""
    detail = _MPTCP_ERRNO_DETAIL.get(error.errno or 0, f"socket() failed: {error}")
    return reason(Why.MPTCP_SOCKET_REFUSED, detail=detail)


def mptcp_option_refused(error: OSError) -> Reason | None:
    """Why an option failed on an MPTCP socket; None when the error is not MPTCP's fault."""
    if error.errno not in MPTCP_SOFT_OPTION_ERRNOS:
        return None
    return reason(Why.MPTCP_OPTION_REFUSED, error=error)


def tfo_kernel_refused(error: OSError) -> Reason:
    """Why ``TCP_FASTOPEN_CONNECT`` could not be set."""
    return reason(Why.TFO_KERNEL_REFUSED, error=error.strerror or error)


_DARWIN: Final = ("darwin", "ios", "tvos", "watchos", "visionos")
_WINDOWS: Final = ("win32", "cygwin", "msys")


def tfo_platform_detail(platform: str) -> str:
    """Why TCP Fast Open is not offered on ``platform`` (a non-Linux ``sys.platform``)."""
    if platform.startswith(_DARWIN):
        return (
            "Apple's kernels put data in a client's SYN only through connectx(), "
            "which Python's socket module does not offer"
        )
    if platform.startswith(_WINDOWS):
        return (
            "Windows puts data in a client's SYN only through ConnectEx() (overlapped I/O), "
            "which Python's socket module does not offer"
        )
    if platform.startswith("freebsd"):
        return (
            "FreeBSD's client API (its own TCP_FASTOPEN, then sendto() with the data) "
            "differs from Linux's TCP_FASTOPEN_CONNECT and is not implemented"
        )
    return "only Linux's TCP_FASTOPEN_CONNECT is implemented"


def mptcp_platform_detail(platform: str) -> str:
    """Why Multipath TCP is not offered on ``platform`` (a non-Linux ``sys.platform``)."""
    if platform.startswith(_DARWIN):
        return (
            "Apple offers MPTCP to apps through Network.framework (and URLSession on iOS), "
            "not as a socket protocol"
        )
    if platform.startswith(_WINDOWS):
        return "Windows has no Multipath TCP sockets"
    if platform.startswith("freebsd"):
        return "FreeBSD's kernel has no Multipath TCP"
    return "only Linux's IPPROTO_MPTCP is implemented"


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (a zone suffix is ignored); False for names."""
    try:
        return ipaddress.ip_address(address.partition("%")[0]).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=1024)
def describe(key: tuple[int, str, int]) -> str:
    """``address:port`` as people write it (``[v6]:port``)."""
    family, address, port = key
    return f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"


class _Clock:
    """The wall-clock second (local, HH:MM:SS) of a monotonic instant, formatted when shown."""

    __slots__ = ("wall",)

    def __init__(self, now: Now, mono: float) -> None:
        self.wall = int(now.wall + (mono - now.mono))

    def __format__(self, spec: str) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.wall))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Clock) and other.wall == self.wall

    def __hash__(self) -> int:
        return hash(self.wall)


@functools.lru_cache(maxsize=1024)
def _cached(why: Why, *fields: tuple[str, object]) -> Reason:
    """The same reason for the same facts: built (and formatted) once, not per connection."""
    return Reason(why, dict(fields))


def _clock(now: Now, mono: float) -> _Clock:
    return _Clock(now, mono)


def _since(now: Now, mono: float | None) -> _Clock | str:
    """When a fact was learned, for people (tolerates a fact without its time)."""
    return "an earlier connection" if mono is None else _Clock(now, mono)
