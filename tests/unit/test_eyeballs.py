"""Happy Eyeballs (RFC 8305) without a kernel: the order and the race's state machine."""

from __future__ import annotations

import math
import socket
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from http_fastpath import FastpathOptions, OptionError
from http_fastpath._core.eyeballs import (
    MAX_IN_FLIGHT,
    PREFERENCE_TTL,
    Exhausted,
    Expire,
    Phase,
    Race,
    Start,
    Wait,
    interleave,
    preferred_index,
    remember_win,
    sort_addresses,
)

Addr = tuple[int, tuple[Any, ...]]  # (family, sockaddr), as getaddrinfo gives them

V6, V4 = socket.AF_INET6, socket.AF_INET
A6 = (V6, ("2001:db8::a", 443, 0, 0))
B6 = (V6, ("2001:db8::b", 443, 0, 0))
C6 = (V6, ("2001:db8::c", 443, 0, 0))
A4 = (V4, ("192.0.2.1", 443))
B4 = (V4, ("192.0.2.2", 443))

# -- order ----------------------------------------------------------------------------------


def about(seconds: float) -> float:
    """A timeout compared with ``pytest.approx`` inside a ``Wait`` (which is typed float)."""
    return cast(float, pytest.approx(seconds))


ORDER = [
    # (what, resolver order, lead index, expected)
    ("one address", [A4], 0, [A4]),
    ("v6 first, interleaved", [A6, B6, C6, A4, B4], 0, [A6, A4, B6, B4, C6]),
    ("v4 first when the resolver says so", [A4, B4, A6], 0, [A4, A6, B4]),
    ("one family only keeps the order", [A6, B6, C6], 0, [A6, B6, C6]),
    ("duplicates dropped", [A6, A6, A4, A4], 0, [A6, A4]),
    ("a v4 lead, then v6 first", [A6, B6, A4, B4], 2, [A4, A6, B4, B6]),
    ("a second v6 lead, then v4", [A6, B6, A4], 1, [B6, A4, A6]),
]


@pytest.mark.parametrize(
    ("what", "given_order", "lead", "expected"), ORDER, ids=[r[0] for r in ORDER]
)
def test_interleave(what: str, given_order: list[Addr], lead: int, expected: list[Addr]) -> None:
    assert interleave(given_order, lead) == expected


@given(
    st.lists(
        st.tuples(st.sampled_from([V4, V6]), st.integers(0, 5)).map(lambda t: (t[0], (t[1],))),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 11),
)
def test_interleave_is_a_permutation_that_alternates(addresses: list[Addr], lead: int) -> None:
    lead %= len(addresses)
    out = interleave(addresses, lead)
    assert sorted(out) == sorted(set(addresses))
    assert out[0] == addresses[lead]
    for family in (V4, V6):  # within a family, the resolver's order
        mine = [a for a in dict.fromkeys(addresses) if a[0] == family and a != out[0]]
        assert [a for a in out[1:] if a[0] == family] == mine
    # the families alternate as long as both have addresses left
    fams = [a[0] for a in out]
    for i in range(1, len(fams)):
        rest = fams[i:]
        if fams[i] == fams[i - 1]:
            assert len(set(rest)) == 1 or len(set(fams[: i + 1])) == 1


PREFERRED = [
    # (what, won_at, now, expected index)
    ("never won", [None, None], 100.0, None),
    ("the only winner", [None, 90.0], 100.0, 1),
    ("the latest winner", [80.0, 90.0, 70.0], 100.0, 1),
    ("expired", [None, 100.0 - PREFERENCE_TTL], 100.0, None),
    ("just in time", [None, 100.0 - PREFERENCE_TTL + 0.001], 100.0, 1),
    ("a time in the future is ignored", [None, 200.0], 100.0, None),
]


@pytest.mark.parametrize(
    ("what", "won_at", "now", "expected"), PREFERRED, ids=[r[0] for r in PREFERRED]
)
def test_preferred_index(
    what: str, won_at: list[float | None], now: float, expected: int | None
) -> None:
    assert preferred_index(won_at, now) == expected


def test_sort_starts_with_the_address_that_won_then_interleaves() -> None:
    resolver = [A6, B6, A4, B4]
    assert sort_addresses(resolver, [None] * 4, 50.0) == [A6, A4, B6, B4]
    # without a recent winner IPv6 leads, whatever the resolver's order (as anyio)
    assert sort_addresses([A4, B4, A6], [None] * 3, 50.0) == [A6, A4, B4]
    assert sort_addresses([A4, B4], [None] * 2, 50.0) == [A4, B4]
    assert sort_addresses(resolver, [None, None, None, 40.0], 50.0) == [B4, A6, A4, B6]
    later = 40.0 + PREFERENCE_TTL
    assert sort_addresses(resolver, [None, None, None, 40.0], later) == [A6, A4, B6, B4]


def test_only_a_win_that_teaches_is_remembered() -> None:
    assert not remember_win(0)  # the first attempt won: the order was right already
    assert remember_win(1)


# -- the race -------------------------------------------------------------------------------


def test_silent_first_address_the_second_starts_after_the_delay_and_wins() -> None:
    race = Race(2, delay=0.25, timeout=5.0, now=0.0)
    assert race.step(0.0) == Start(0)
    assert race.step(0.0) == Wait((0,), 0.25)
    assert race.step(0.1) == Wait((0,), about(0.15))
    assert race.step(0.25) == Start(1)
    assert race.step(0.25) == Wait((0, 1), about(4.75))  # the overall deadline
    assert race.connected(1, 0.26) == (0,)  # the silent one is abandoned
    assert race.phase == [Phase.ABANDONED, Phase.CONNECTED]
    assert (race.started, race.ended) == ([0.0, 0.25], [0.26, 0.26])
    with pytest.raises(RuntimeError):
        race.step(0.3)


def test_a_refused_attempt_hands_its_turn_on_at_once() -> None:
    race = Race(3, delay=0.25, timeout=5.0, now=0.0)
    assert race.step(0.0) == Start(0)
    race.failed(0, 0.001)
    assert race.step(0.001) == Start(1)
    race.failed(1, 0.002)
    assert race.step(0.002) == Start(2)
    assert race.connected(2, 0.003) == ()


def test_a_failure_while_others_connect_starts_the_next_at_once() -> None:
    race = Race(3, delay=0.25, timeout=5.0, now=0.0)
    assert race.step(0.0) == Start(0)
    assert race.step(0.25) == Start(1)
    race.failed(0, 0.3)  # the older one fails: the third does not wait for 0.5
    assert race.step(0.3) == Start(2)
    assert race.step(0.3) == Wait((1, 2), about(4.7))


def test_both_silent_the_timeout_bounds_the_whole_race() -> None:
    race = Race(2, delay=0.25, timeout=1.0, now=10.0)
    assert race.step(10.0) == Start(0)
    assert race.step(10.25) == Start(1)
    assert race.step(10.5) == Wait((0, 1), about(0.5))
    assert race.step(11.0) == Expire((0, 1))
    assert race.phase == [Phase.TIMED_OUT, Phase.TIMED_OUT]
    assert race.step(11.0) == Exhausted(True, 1)


def test_the_deadline_stops_attempts_not_started_yet() -> None:
    race = Race(3, delay=0.25, timeout=0.3, now=0.0)
    assert race.step(0.0) == Start(0)
    assert race.step(0.25) == Start(1)
    assert race.step(0.3) == Expire((0, 1))
    assert race.step(0.3) == Exhausted(True, 1)
    assert race.phase[2] is Phase.WAITING


def test_all_refused_is_the_last_error_not_a_timeout() -> None:
    race = Race(2, delay=0.25, timeout=5.0, now=0.0)
    race.step(0.0)
    race.failed(0, 0.001)
    race.step(0.001)
    race.failed(1, 0.002)
    assert race.step(0.002) == Exhausted(False, 1)


def test_without_a_delay_one_after_another_each_with_the_full_timeout() -> None:
    race = Race(2, delay=None, timeout=1.0, now=0.0)
    assert race.step(0.0) == Start(0)
    assert race.step(0.5) == Wait((0,), 0.5)  # no second attempt while the first runs
    assert race.step(1.0) == Expire((0,))
    assert race.step(1.0) == Start(1)
    assert race.step(1.0) == Wait((1,), 1.0)  # its own full timeout
    assert race.step(2.0) == Expire((1,))
    assert race.step(2.0) == Exhausted(True, 1)


def test_no_timeout_waits_for_the_kernel() -> None:
    race = Race(2, delay=0.25, timeout=None, now=0.0)
    assert race.step(0.0) == Start(0)
    assert race.step(0.25) == Start(1)
    assert race.step(0.25) == Wait((0, 1), None)
    race.failed(0, 127.0)  # the kernel gave up (tcp_syn_retries)
    race.failed(1, 127.25)
    assert race.step(127.25) == Exhausted(False, 1)


def test_at_most_max_in_flight_attempts() -> None:
    race = Race(4, delay=0.25, timeout=None, now=0.0, max_in_flight=2)
    assert race.step(0.0) == Start(0)
    assert race.step(0.25) == Start(1)
    assert race.step(0.5) == Wait((0, 1), None)  # full: no wake-up for a third
    race.failed(0, 0.7)
    assert race.step(0.7) == Start(2)
    assert race.connecting() == (1, 2)


def test_cancel_abandons_every_attempt_in_flight() -> None:
    race = Race(3, delay=0.25, timeout=5.0, now=0.0)
    race.step(0.0)
    race.step(0.25)
    assert race.abandon(0.3) == (0, 1)
    assert race.phase == [Phase.ABANDONED, Phase.ABANDONED, Phase.WAITING]


def test_events_for_attempts_not_connecting_are_refused() -> None:
    race = Race(2, delay=0.25, timeout=5.0, now=0.0)
    with pytest.raises(RuntimeError):
        race.failed(1, 0.0)
    race.step(0.0)
    race.failed(0, 0.1)
    with pytest.raises(RuntimeError):
        race.connected(0, 0.2)
    with pytest.raises(ValueError):
        Race(0, delay=0.25, timeout=1.0, now=0.0)


@given(
    st.integers(1, 6),
    st.sampled_from([None, 0.01, 0.25, 2.0]),
    st.sampled_from([None, 0.0, 0.3, 5.0]),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 2)), max_size=40),
)
def test_any_event_order_keeps_the_invariants(
    count: int, delay: float | None, timeout: float | None, events: list[tuple[float, int]]
) -> None:
    """Driven like the shell with random kernel answers: bounded, ends, never reopens."""
    race = Race(count, delay=delay, timeout=timeout, now=0.0, max_in_flight=MAX_IN_FLIGHT)
    now = 0.0
    for _ in range(200):
        step = race.step(now)
        assert len(race.connecting()) <= MAX_IN_FLIGHT
        if isinstance(step, Exhausted):
            assert not race.connecting() and race.winner is None
            return
        if isinstance(step, Start):
            assert race.phase[step.attempt] is Phase.CONNECTING
            continue
        if isinstance(step, Expire):
            assert all(race.phase[i] is Phase.TIMED_OUT for i in step.indices)
            continue
        assert step.indices == race.connecting() and step.indices
        assert step.timeout is None or step.timeout >= 0
        if not events:  # nothing more happens: the time runs out
            if step.timeout is None:
                return  # a wait without end: the kernel decides (no timeout)
            now += step.timeout
            continue
        advance, what = events.pop(0)
        if step.timeout is not None:
            advance = min(advance, step.timeout)
        now += advance
        target = step.indices[0]
        if what == 1:
            race.failed(target, now)
        elif what == 2:
            losers = race.connected(target, now)
            assert all(race.phase[i] is Phase.ABANDONED for i in losers)
            assert race.phase.count(Phase.CONNECTED) == 1
            return
    pytest.fail("the race did not end")


# -- the option -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.01, 0.1, 0.25, 2, 2.0, None])
def test_happy_eyeballs_delay_accepted(value: float | None) -> None:
    assert FastpathOptions(happy_eyeballs_delay=value).happy_eyeballs_delay == value


@pytest.mark.parametrize("value", [0, 0.009, -1, 2.01, math.nan, math.inf, True, "0.25"])
def test_happy_eyeballs_delay_validated(value: object) -> None:
    with pytest.raises(OptionError) as info:
        FastpathOptions(happy_eyeballs_delay=value)  # type: ignore[arg-type]
    assert "happy_eyeballs_delay" in str(info.value) and "0.01" in str(info.value)


def test_replace_keeps_or_switches_the_race_off() -> None:
    opts = FastpathOptions(happy_eyeballs_delay=0.1)
    assert opts.replace(tfo=False).happy_eyeballs_delay == 0.1
    assert opts.replace(happy_eyeballs_delay=None).happy_eyeballs_delay is None
    assert FastpathOptions().happy_eyeballs_delay == 0.25
    with pytest.raises(OptionError):
        opts.replace(happy_eyeballs_delay=0.001)
