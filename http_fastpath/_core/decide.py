"""Connect decisions: what to do on a new connection, as pure functions.

Rule 1 (as in h11's ``_state.py``): everything that decides how a connection is made —
which socket protocol, whether ``TCP_FASTOPEN_CONNECT`` is set, whether data may ride in
the SYN, when TCP Fast Open pauses, what the process learns from an outcome — lives
here. Nothing here does I/O, reads a clock or calls the kernel: the options, the
destination's :class:`~.memory.Destination`, the first flight and the time come in; a
plan, the destination's next state and the reasons come out. :mod:`.dialer` is the shell
that makes the syscalls these functions ask for and reports what the kernel said.

The three functions, in the order a connection meets them:

* :func:`plan_socket` — ``IPPROTO_MPTCP`` or ``IPPROTO_TCP`` for this destination;
* :func:`plan_first_flight` — TCP Fast Open for this first flight on this socket
  (:func:`connect_options` turns the plan into the ``setsockopt`` calls);
* :func:`learn` — the destination's next state from what the kernel reported.

The platform (a ``sys.platform`` value) is an input too: the fast paths use Linux's option
and protocol numbers, which name other options on other kernels, so off Linux the plans
are plain TCP with a reason saying so (the shell passes ``sys.platform``).

Every reason a fast path is not used is a :class:`Why`; each carries a sentence for
people (``ConnectionInfo.fallbacks``).
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import functools
import ipaddress
import socket
import time
from typing import Final, NamedTuple

from . import linux as _linux
from .memory import Destination, MptcpAnswer
from .options import FastpathOptions
from .policy import is_replay_safe

__all__ = [
    "ConnectOutcome",
    "FlightPlan",
    "Learned",
    "Now",
    "Observation",
    "Reason",
    "SocketPlan",
    "Why",
    "connect_options",
    "is_loopback",
    "learn",
    "plan_first_flight",
    "plan_socket",
]

Buffer = bytes | bytearray | memoryview


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


def _valid(until: float | None, now: Now) -> bool:
    return until is not None and now.mono < until


def _since(now: Now, mono: float | None) -> _Clock | str:
    """When a fact was learned, for people (tolerates a fact without its time)."""
    return "an earlier connection" if mono is None else _Clock(now, mono)


# -- before the connect -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SocketPlan:
    """Which protocol ``socket()`` gets for one destination."""

    proto: int
    reasons: tuple[Reason, ...] = ()


def plan_socket(
    options: FastpathOptions,
    dest: Destination,
    key: tuple[int, str, int],
    now: Now,
    *,
    platform: str = _linux.PLATFORM,
) -> SocketPlan:
    """``IPPROTO_MPTCP`` when MPTCP is on, unless ``dest`` answered in plain TCP lately.

    A destination that answered MPTCP in plain TCP gets plain TCP sockets until the
    answer expires (``options.mptcp_relearn``): they can carry data in the SYN safely and
    skip the CPU cost of MPTCP sockets that fell back. Wrong memory costs MPTCP, never a
    connection: the worst case is plain TCP where MPTCP was possible.

    ``platform`` (``sys.platform``): off Linux, always ``IPPROTO_TCP`` (262 is not MPTCP
    there).
    """
    if not options.mptcp:
        return _TCP_SOCKET
    if not _linux.is_linux(platform):
        why = _cached(
            Why.MPTCP_PLATFORM,
            ("platform", platform),
            ("detail", mptcp_platform_detail(platform)),
        )
        return SocketPlan(socket.IPPROTO_TCP, (why,))
    if dest.mptcp is MptcpAnswer.PLAIN_TCP:
        until = dest.mptcp_until
        if until is not None and now.mono < until:
            return _known_plain(key, dest, now)
    return _MPTCP_SOCKET


_TCP_SOCKET: Final = SocketPlan(socket.IPPROTO_TCP)
_MPTCP_SOCKET: Final = SocketPlan(_linux.IPPROTO_MPTCP)
#: plans for destinations known to answer MPTCP in plain TCP, per (key, learned, until)
_KNOWN_PLAIN: dict[tuple[tuple[int, str, int], float | None, float | None], SocketPlan] = {}


def _known_plain(key: tuple[int, str, int], dest: Destination, now: Now) -> SocketPlan:
    """The same plan (and reason) for the same fact, built once: a dict lookup per connection."""
    fact = (key, dest.mptcp_learned_at, dest.mptcp_until)
    plan = _KNOWN_PLAIN.get(fact)
    if plan is None:
        if len(_KNOWN_PLAIN) >= 1024:
            _KNOWN_PLAIN.clear()
        why = reason(
            Why.MPTCP_KNOWN_PLAIN,
            dest=describe(key),
            at=_since(now, dest.mptcp_learned_at),
            until=_since(now, dest.mptcp_until),
        )
        plan = _KNOWN_PLAIN[fact] = SocketPlan(socket.IPPROTO_TCP, (why,))
    return plan


@dataclasses.dataclass(frozen=True)
class FlightPlan:
    """What TCP Fast Open does for one first flight on one socket.

    Attributes:
        tfo_connect: set ``TCP_FASTOPEN_CONNECT`` before ``connect``.
        syn_data: the first flight may ride in the SYN. When ``tfo_connect`` is set but
            this is False, the SYN may only ask for a cookie: if the kernel has one cached
            (the connect is deferred), the shell starts again on a fresh socket and asks
            :func:`plan_first_flight` with ``cookie_cached=True``.
        early_data_safe: the replay policy's verdict on the first flight (None: none).
        tfo_unavailable: TCP Fast Open cannot be used on this platform at all (the
            connection reports ``TFOStatus.UNAVAILABLE``, as when the kernel refuses it).
    """

    tfo_connect: bool
    syn_data: bool
    early_data_safe: bool | None
    reasons: tuple[Reason, ...] = ()
    tfo_unavailable: bool = False


def plan_first_flight(
    options: FastpathOptions,
    dest: Destination,
    key: tuple[int, str, int],
    now: Now,
    *,
    socket_proto: int,
    first_flight: Buffer | None,
    kernel_refused: bool = False,
    plain_retry: bool = False,
    cookie_cached: bool = False,
    platform: str = _linux.PLATFORM,
) -> FlightPlan:
    """Decide TCP Fast Open for ``first_flight`` on a ``socket_proto`` socket to ``key``.

    ``kernel_refused``: ``TCP_FASTOPEN_CONNECT`` failed earlier in this dial.
    ``plain_retry``: this is the plain-SYN retry after a SYN with data was reset.
    ``cookie_cached``: the previous try found a cookie where data may not ride.
    ``platform`` (``sys.platform``): off Linux, a plain SYN (no Linux option is set).
    """
    safe = None if not first_flight else is_replay_safe(first_flight)
    if not options.tfo or kernel_refused or plain_retry:
        return _PLAIN_SYN[safe]
    if not _linux.is_linux(platform):
        why = _cached(
            Why.TFO_PLATFORM, ("platform", platform), ("detail", tfo_platform_detail(platform))
        )
        return FlightPlan(False, False, safe, (why,), tfo_unavailable=True)
    if safe is None:
        return _NOTHING_TO_SEND
    if not safe and options.tfo_policy != "always":
        return _NOT_REPLAY_SAFE
    if _valid(dest.tfo_paused_until, now):
        why = _cached(
            Why.TFO_PAUSED,
            ("dest", describe(key)),
            ("until", _since(now, dest.tfo_paused_until)),
            ("cause", dest.tfo_pause_reason or "an earlier SYN with data did not get through"),
        )
        return FlightPlan(False, False, safe, (why,))
    hold: Why | None = None  # data may not ride, but the SYN may still ask for a cookie
    if dest.refused_at is not None:
        hold = Why.TFO_AFTER_REFUSAL
    elif socket_proto == _linux.IPPROTO_MPTCP and not is_loopback(key[1]):
        if dest.mptcp is MptcpAnswer.MPTCP and _valid(dest.mptcp_until, now):
            at = _since(now, dest.mptcp_learned_at)
            why = _cached(Why.TFO_MPTCP_PEER, ("dest", describe(key)), ("at", at))
            return FlightPlan(False, False, safe, (why,))
        hold = Why.TFO_MPTCP_SYN_DATA
    if hold is None:
        return _SYN_DATA[safe]
    if cookie_cached:
        return FlightPlan(False, False, safe, (reason(hold, dest=describe(key)),))
    return _COOKIE_ONLY[safe]


# The plans most connections get, made once (plans are frozen).
_PLAIN_SYN: Final = {s: FlightPlan(False, False, s) for s in (None, True, False)}
_SYN_DATA: Final = {s: FlightPlan(True, True, s) for s in (True, False)}
_COOKIE_ONLY: Final = {s: FlightPlan(True, False, s) for s in (True, False)}
_NOTHING_TO_SEND: Final = FlightPlan(False, False, None, (reason(Why.TFO_NOTHING_TO_SEND),))
_NOT_REPLAY_SAFE: Final = FlightPlan(False, False, False, (reason(Why.TFO_NOT_REPLAY_SAFE),))
#: ``id()`` of the plans a shell may carry out in a straight line: a plain SYN (maybe with
#: the reason why), or the first flight in the SYN (only ever made on Linux)
USUAL_PLANS: Final = frozenset(
    id(p) for p in (*_PLAIN_SYN.values(), *_SYN_DATA.values(), _NOTHING_TO_SEND, _NOT_REPLAY_SAFE)
)


def connect_options(
    plan: FlightPlan, *, platform: str = _linux.PLATFORM
) -> tuple[tuple[int, int, int], ...]:
    """The ``setsockopt(level, option, value)`` calls ``plan`` asks for before ``connect``.

    ``TCP_FASTOPEN_CONNECT`` (30) is Linux's number: none is returned off Linux, whatever
    the plan says.
    """
    if plan.tfo_connect and _linux.is_linux(platform):
        return ((_linux.SOL_TCP, _linux.TCP_FASTOPEN_CONNECT, 1),)
    return ()


# -- after the connect --------------------------------------------------------------------


class ConnectOutcome(enum.Enum):
    """How a connect attempt ended."""

    CONNECTED = "connected"
    REFUSED = "refused"  # ECONNREFUSED: the SYN was answered with a reset
    TIMEOUT = "timeout"
    FAILED = "failed"  # anything else (unreachable, reset after the handshake...)


@dataclasses.dataclass(frozen=True)
class Observation:
    """What the kernel reported about one connect attempt.

    Attributes:
        outcome: how the attempt ended.
        socket_proto: the protocol the socket was created with.
        syn_data_bytes: bytes of the first flight the kernel took with the SYN.
        syn_data_acked: ``TCP_INFO`` says the server acknowledged the SYN data.
        tfo_client_fail: ``tcpi_fastopen_client_fail`` (0 none, 3 SYN retransmitted).
        is_mptcp: ``TCP_IS_MPTCP`` on a connected MPTCP socket (None: not asked / unknown).
        plain_retry: the attempt was the plain-SYN retry after a reset to SYN data.
    """

    outcome: ConnectOutcome
    socket_proto: int
    syn_data_bytes: int = 0
    syn_data_acked: bool = False
    tfo_client_fail: int = 0
    is_mptcp: bool | None = None
    plain_retry: bool = False


@dataclasses.dataclass(frozen=True)
class Learned:
    """The result of :func:`learn`.

    Attributes:
        dest: the destination's next state.
        reasons: what happened, for the connection's record.
        retry_plain: try the same address once more with a plain SYN (no TFO).
        stall_risk: data rode in an MPTCP SYN to an MPTCP server off loopback, which the
            plans never allow (a safety net): the server's kernel holds its reply until the
            client's next MPTCP data segment, and nothing the client can send without
            closing or splitting the request releases it (measured: keep-alive probes,
            window updates, zero-length sends all fail). The shell drops the connection and
            sends the first flight again with a plain SYN: the server may handle it twice,
            which the replay policy accepted when it let the flight into the SYN.
    """

    dest: Destination
    reasons: tuple[Reason, ...] = ()
    retry_plain: bool = False
    stall_risk: bool = False


def learn(
    options: FastpathOptions,
    dest: Destination,
    key: tuple[int, str, int],
    now: Now,
    obs: Observation,
) -> Learned:
    """The destination's next state after the attempt ``obs`` (see :class:`Learned`).

    TCP Fast Open pauses only on evidence of a middlebox: a SYN with data lost while the
    plain retransmit got through (``TFO_SYN_RETRANSMITTED``), or a SYN with data reset
    while the plain SYN that follows is accepted. A refused plain SYN is a dead server:
    no pause, and the next attempt starts with a plain SYN, as stock's does.
    """
    if obs.outcome is ConnectOutcome.REFUSED:
        dest_text = describe(key)
        if obs.syn_data_bytes > 0 and not obs.plain_retry:
            return Learned(
                dest.replace(syn_data_reset_at=now.mono),
                (reason(Why.TFO_SYN_DATA_RESET, dest=dest_text),),
                retry_plain=True,
            )
        reasons: tuple[Reason, ...] = ()
        if obs.plain_retry:
            reasons = (reason(Why.TFO_DEAD_SERVER, dest=dest_text),)
        return Learned(dest.replace(refused_at=now.mono, syn_data_reset_at=None), reasons)
    if obs.outcome is not ConnectOutcome.CONNECTED:
        return Learned(dest)
    new = counted(dest, obs.syn_data_acked)
    if only_counted(obs.socket_proto, obs.plain_retry, obs.syn_data_bytes, obs.tfo_client_fail):
        return Learned(new)
    pause_why: Why | None = None
    if obs.plain_retry:
        pause_why = Why.TFO_PAUSE_RESET
        pause_text = "a middlebox reset a SYN with data while a plain SYN got through"
    elif obs.syn_data_bytes > 0 and obs.tfo_client_fail == _linux.TFO_SYN_RETRANSMITTED:
        pause_why = Why.TFO_PAUSE_LOST
        pause_text = "a SYN with data was lost while the plain retransmit got through"
    dest_text = describe(key)
    out: list[Reason] = []
    if pause_why is not None and options.tfo_pause > 0:
        until = now.mono + options.tfo_pause
        new = new.replace(
            tfo_paused_until=until, tfo_pause_reason=pause_text, tfo_pauses=new.tfo_pauses + 1
        )
        out.append(reason(pause_why, dest=dest_text, until=_clock(now, until)))
    stall_risk = False
    if obs.socket_proto == _linux.IPPROTO_MPTCP and obs.is_mptcp is not None:
        answer = MptcpAnswer.MPTCP if obs.is_mptcp else MptcpAnswer.PLAIN_TCP
        new = new.replace(
            mptcp=answer, mptcp_learned_at=now.mono, mptcp_until=now.mono + options.mptcp_relearn
        )
        if obs.is_mptcp and obs.syn_data_bytes > 0 and not is_loopback(key[1]):
            stall_risk = True
            out.append(reason(Why.MPTCP_SYN_DATA_STALL, dest=dest_text))
    return Learned(new, tuple(out), stall_risk=stall_risk)


def only_counted(
    socket_proto: int, plain_retry: bool, syn_data_bytes: int, client_fail: int
) -> bool:
    """True when a completed connect teaches nothing but one more connection (most do).

    A plain TCP socket (nothing to learn about MPTCP), not the plain retry after a reset
    SYN with data, and no lost SYN with data: :func:`learn` returns just
    ``Learned(counted(dest, acked))``, so the shell may store :func:`counted` directly.
    """
    return (
        socket_proto != _linux.IPPROTO_MPTCP
        and not plain_retry
        and not (syn_data_bytes > 0 and client_fail == _linux.TFO_SYN_RETRANSMITTED)
    )


_tuple_new = tuple.__new__


def counted(dest: Destination, syn_data_acked: bool) -> Destination:
    """``dest`` after one more completed connection: counters up, refusal and reset cleared."""
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
            dest[7] + 1,  # connections
            dest[8] + syn_data_acked,  # syn_data_acked
            dest[9],  # tfo_pauses
            dest[10],  # won_race_at
        ),
    )
