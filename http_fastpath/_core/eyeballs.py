"""Happy Eyeballs (RFC 8305) as pure code: the address order and the race's state machine.

Nothing here does I/O or reads a clock: the resolver's addresses, what the destination
memory knows and the time come in; an order, and what to do next, come out.
:mod:`.race` is the shell that makes the sockets and the syscalls, and the drivers
(:func:`.connect.drive_sync`, the anyio driver of :mod:`.._backends.anyio`) do the waiting.

**Order** (RFC 8305 section 4): the first IPv6 address leads (as anyio, stock async
httpx, does, so no resolver order makes us slower than stock), then the families
interleaved in the resolver's order: one address of the first family, one of the other,
and so on. An address that won a race lately
(:data:`PREFERENCE_TTL`) against an address tried before it leads instead, and the
interleaving starts again after it, so the next connection to that host starts with the
family and the address that answered.

**Race** (section 5): :class:`Race` starts the first attempt at once and the next one
each :attr:`~.options.FastpathOptions.happy_eyeballs_delay` seconds later (the
Connection Attempt Delay), or at once when an attempt fails; at most
:data:`MAX_IN_FLIGHT` attempts are open together. The first attempt that connects wins;
the others are abandoned (the shell closes them before anything is read from them). The
connect timeout bounds the whole race, as it bounds ``anyio.connect_tcp`` in stock async
httpx. Without a delay (``happy_eyeballs_delay=None``) the attempts run one after another,
each with the full timeout, like ``socket.create_connection``.

**Protocol with the drivers**: the connect is a generator that yields
:class:`WaitWritable` -- "wait until one of these sockets is writable (or its connect
failed), at most this long" -- and is sent back the tuple of those that are (empty on
timeout). A blocking driver answers with ``poll``; an async one with one
``wait_writable`` per socket in a task group; both close the generator on any exception
(cancellation, ``KeyboardInterrupt``) so the shell closes every socket it opened.
"""

from __future__ import annotations

import enum
import math
import socket
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, TypeVar

__all__ = [
    "DEFAULT_DELAY",
    "MAX_DELAY",
    "MAX_IN_FLIGHT",
    "MIN_DELAY",
    "PREFERENCE_TTL",
    "Exhausted",
    "Expire",
    "Phase",
    "Race",
    "Start",
    "Wait",
    "WaitWritable",
    "interleave",
    "preferred_index",
    "sort_addresses",
]

#: RFC 8305 section 5: the recommended Connection Attempt Delay (seconds).
DEFAULT_DELAY: Final = 0.25
#: The smallest delay allowed: the RFC forbids less than 10 ms (and advises at least 100 ms).
MIN_DELAY: Final = 0.01
#: The largest delay allowed: the RFC's Maximum Connection Attempt Delay (2 s).
MAX_DELAY: Final = 2.0
#: At most this many connect attempts (sockets) of one dial are in flight together.
MAX_IN_FLIGHT: Final = 4
#: Seconds an address that won a race stays first for its host (HEv1's 10 minutes, RFC
#: 6555 section 4.2): then the resolver's order is tried again, and the race re-learns.
PREFERENCE_TTL: Final = 600.0

_A = TypeVar("_A", bound=tuple[int, Any])


class WaitWritable(NamedTuple):
    """What a connect generator yields: wait until one of ``socks`` is writable.

    ``timeout``: seconds at most (None: no limit). The driver sends back the tuple of the
    sockets that became writable (or whose connect failed: the shell reads ``SO_ERROR``),
    the same objects, in any order; an empty tuple when the time ran out.
    """

    socks: tuple[socket.socket, ...]
    timeout: float | None


# -- order ----------------------------------------------------------------------------------


def interleave(addresses: Sequence[_A], first: int = 0) -> list[_A]:
    """``addresses[first]``, then the others alternating families (RFC 8305 section 4).

    Within a family the given (resolver's) order is kept; duplicates are dropped. After
    the first address the *other* family comes next (First Address Family Count = 1).
    """
    unique = list(dict.fromkeys(addresses))
    if not unique:
        return []
    lead = addresses[first]
    rest = [a for a in unique if a != lead]
    same = [a for a in rest if a[0] == lead[0]]
    other = [a for a in rest if a[0] != lead[0]]
    out = [lead]
    for i in range(max(len(same), len(other))):
        if i < len(other):
            out.append(other[i])
        if i < len(same):
            out.append(same[i])
    return out


def preferred_index(
    won_at: Sequence[float | None], now: float, ttl: float = PREFERENCE_TTL
) -> int | None:
    """The address that won a race most recently, within ``ttl`` seconds (None: none)."""
    best: int | None = None
    for i, at in enumerate(won_at):
        if at is None or not (now - ttl < at <= now):
            continue
        if best is None or at > won_at[best]:  # type: ignore[operator]
            best = i
    return best


def sort_addresses(addresses: Sequence[_A], won_at: Sequence[float | None], now: float) -> list[_A]:
    """The order of the attempts: the lately winning address first, then interleaved.

    Without a recent winner the first IPv6 address leads (as anyio, stock async httpx,
    does: a resolver that lists a silent IPv4 address first costs no more than stock),
    then the families alternate in the resolver's order. ``won_at[i]``: when
    ``addresses[i]`` last won a race (``time.monotonic()``), from the destination
    memory; None when it never did.
    """
    first = preferred_index(won_at, now)
    if first is None:
        first = next((i for i, a in enumerate(addresses) if a[0] == socket.AF_INET6), 0)
    if not first and len(addresses) == 2 and addresses[0] != addresses[1]:
        return list(addresses)  # already interleaved
    return interleave(addresses, first)


def remember_win(index: int) -> bool:
    """Whether the winner of a race is worth remembering: it was not the first attempt."""
    return index > 0


# -- the race -------------------------------------------------------------------------------


class Phase(enum.Enum):
    """Where one attempt of a race is."""

    WAITING = "waiting"  # not started (yet)
    CONNECTING = "connecting"
    CONNECTED = "connected"  # the winner
    FAILED = "failed"  # refused, unreachable, reset...
    TIMED_OUT = "timed_out"
    ABANDONED = "abandoned"  # still connecting when another attempt won: closed


class Start(NamedTuple):
    """Start attempt ``attempt`` now (the race counts it as connecting)."""

    attempt: int


class Wait(NamedTuple):
    """Wait for the connecting attempts ``indices``, at most ``timeout`` seconds."""

    indices: tuple[int, ...]
    timeout: float | None


class Expire(NamedTuple):
    """Attempts ``indices`` ran out of time: close them (the race counts them timed out)."""

    indices: tuple[int, ...]


class Exhausted(NamedTuple):
    """Every attempt failed, or the time ran out (``timed_out``): the dial fails.

    ``last``: the attempt that ended last (its error is the dial's), None if none started.
    """

    timed_out: bool
    last: int | None


Step = Start | Wait | Expire | Exhausted


class Race:
    """The state machine of one dial over ``count`` addresses (already in order).

    The shell asks :meth:`step` what to do at time ``now`` and reports what the kernel
    said with :meth:`failed` and :meth:`connected`. ``delay``: the Connection Attempt
    Delay (None: one attempt after another). ``timeout``: the connect timeout (None: no
    limit); with a delay it bounds the whole race, without one each attempt.
    """

    __slots__ = (
        "_flight",
        "_last",
        "_next",
        "_next_at",
        "count",
        "deadline",
        "delay",
        "ended",
        "max_in_flight",
        "phase",
        "start",
        "started",
        "timeout",
        "winner",
    )

    def __init__(
        self,
        count: int,
        *,
        delay: float | None,
        timeout: float | None,
        now: float,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        if count < 1 or max_in_flight < 1:
            raise ValueError("a race needs at least one address and one attempt in flight")
        self.count = count
        self.delay = delay
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.start = now
        self.phase = [Phase.WAITING] * count
        self.started: list[float | None] = [None] * count
        self.ended: list[float | None] = [None] * count
        self.winner: int | None = None
        #: with a delay, the connect timeout bounds the whole race
        self.deadline = None if timeout is None or delay is None else now + timeout
        self._next = 0  # the next attempt to start
        self._next_at = now  # not before then
        self._last: int | None = None  # the attempt that ended last
        self._flight: list[int] = []  # the attempts connecting, in order

    def connecting(self) -> tuple[int, ...]:
        """The attempts in flight, in order."""
        return tuple(self._flight)

    def _deadline(self, index: int) -> float | None:
        if self.deadline is not None:
            return self.deadline
        started = self.started[index]
        if self.timeout is None or started is None:
            return None
        return started + self.timeout

    def step(self, now: float) -> Step:
        """What to do at ``now``: start an attempt, expire some, wait, or give up."""
        if self.winner is not None:
            raise RuntimeError(f"the race is over: attempt {self.winner} connected")
        flight = self.connecting()
        expired = []
        for i in flight:
            deadline = self._deadline(i)
            if deadline is not None and now >= deadline:
                expired.append(i)
        if expired:
            for i in expired:
                self._end(i, Phase.TIMED_OUT, now)
            return Expire(tuple(expired))
        in_time = self.deadline is None or now < self.deadline
        more = self._next < self.count and in_time
        if more and len(flight) < self.max_in_flight and now >= self._next_at:
            index = self._next
            self._next += 1
            self._flight.append(index)
            self.phase[index] = Phase.CONNECTING
            self.started[index] = now
            self._next_at = math.inf if self.delay is None else now + self.delay
            return Start(index)
        if not flight:
            timed_out = self._last is not None and self.phase[self._last] is Phase.TIMED_OUT
            return Exhausted(timed_out or not in_time, self._last)
        wake = math.inf
        for i in flight:
            deadline = self._deadline(i)
            if deadline is not None:
                wake = min(wake, deadline)
        if more and len(flight) < self.max_in_flight:
            wake = min(wake, self._next_at)
        return Wait(flight, None if wake == math.inf else max(0.0, wake - now))

    def _end(self, index: int, phase: Phase, now: float) -> None:
        self._flight.remove(index)
        self.phase[index] = phase
        self.ended[index] = now
        self._last = index
        if phase is not Phase.CONNECTED:
            self._next_at = now  # a failed attempt hands its turn on at once

    def failed(self, index: int, now: float) -> None:
        """Attempt ``index`` failed (the next one may start at once)."""
        self._check(index)
        self._end(index, Phase.FAILED, now)

    def connected(self, index: int, now: float) -> tuple[int, ...]:
        """Attempt ``index`` won; returns the attempts to abandon (close), in order."""
        self._check(index)
        losers = tuple(i for i in self._flight if i != index)
        for i in losers:
            self.phase[i] = Phase.ABANDONED
            self.ended[i] = now
        self._flight.clear()
        self.phase[index] = Phase.CONNECTED
        self.ended[index] = now
        self.winner = index
        return losers

    def abandon(self, now: float) -> tuple[int, ...]:
        """The dial was given up (cancelled, interrupted): every connecting attempt ends."""
        flight = self.connecting()
        for i in flight:
            self.phase[i] = Phase.ABANDONED
            self.ended[i] = now
        self._flight.clear()
        return flight

    def _check(self, index: int) -> None:
        if self.phase[index] is not Phase.CONNECTING:
            raise RuntimeError(f"attempt {index} is {self.phase[index].value}, not connecting")
