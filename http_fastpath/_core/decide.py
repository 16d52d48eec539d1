"""Connect decisions: what to do on a new connection, as pure functions.

Rule 1 (as in h11's ``_state.py``): everything that decides how a connection is made —
which socket protocol, whether ``TCP_FASTOPEN_CONNECT`` is set, whether data may ride in
the SYN, when TCP Fast Open pauses, what the process learns from an outcome — lives
here and in :mod:`.learn` (with the reasons in :mod:`.reasons`). Nothing there does I/O,
reads a clock or calls the kernel: the options, the destination's
:class:`~.memory.Destination`, the first flight and the time come in; a plan, the
destination's next state and the reasons come out. The dialer (:mod:`.sockets`,
:mod:`.connect`) is the shell that makes the syscalls these functions ask for and
reports what the kernel said.

The three functions, in the order a connection meets them:

* :func:`plan_socket` — ``IPPROTO_MPTCP`` or ``IPPROTO_TCP`` for this destination;
* :func:`plan_first_flight` — TCP Fast Open for this first flight on this socket
  (:func:`connect_options` turns the plan into the ``setsockopt`` calls);
* :func:`.learn.learn` — the destination's next state from what the kernel reported.

The platform (a ``sys.platform`` value) is an input too: the fast paths use Linux's option
and protocol numbers, which name other options on other kernels, so off Linux the plans
are plain TCP with a reason saying so (the shell passes ``sys.platform``).

Every reason a fast path is not used is a :class:`~.reasons.Why` (:mod:`.reasons`); each
carries a sentence for people (``ConnectionInfo.fallbacks``).
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Final

from . import linux as _linux
from .memory import Destination, MptcpAnswer
from .options import FastpathOptions
from .policy import is_replay_safe
from .reasons import (
    Now,
    Reason,
    Why,
    _cached,
    _since,
    describe,
    is_loopback,
    mptcp_platform_detail,
    reason,
    tfo_platform_detail,
)

__all__ = [
    "FlightPlan",
    "SocketPlan",
    "connect_options",
    "plan_first_flight",
    "plan_socket",
]

Buffer = bytes | bytearray | memoryview


#: ``sys.platform`` when it is Linux (the usual value, tested by identity first), else None
_HERE_LINUX: Final = _linux.PLATFORM if _linux.is_linux(_linux.PLATFORM) else None


def _valid(until: float | None, now: Now) -> bool:
    return until is not None and now.mono < until


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
    if platform is not _HERE_LINUX and not _linux.is_linux(platform):
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
    if platform is not _HERE_LINUX and not _linux.is_linux(platform):
        why = _cached(
            Why.TFO_PLATFORM, ("platform", platform), ("detail", tfo_platform_detail(platform))
        )
        return FlightPlan(False, False, safe, (why,), tfo_unavailable=True)
    if safe is None:
        return _NOTHING_TO_SEND
    if not safe and options.tfo_policy != "always":
        return _NOT_REPLAY_SAFE
    paused_until = dest.tfo_paused_until
    if paused_until is not None and now.mono < paused_until:  # (_valid, inline)
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
