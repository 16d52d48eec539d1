"""The connect decisions, table by table: no kernel, no namespace, no clock.

Each row is a situation and the decision expected. ``test_every_reason_has_a_row`` checks
that the tables produce every :class:`Why` the code knows, so a new fallback reason
cannot land without a row here.
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from http_fastpath import FastpathOptions
from http_fastpath._core.decide import plan_first_flight, plan_socket
from http_fastpath._core.learn import ConnectOutcome, Observation, learn
from http_fastpath._core.linux import IPPROTO_MPTCP, TFO_COOKIE_UNAVAILABLE, TFO_SYN_RETRANSMITTED
from http_fastpath._core.memory import Destination, MptcpAnswer
from http_fastpath._core.reasons import (
    Now,
    Reason,
    Why,
    describe,
    is_loopback,
    mptcp_option_refused,
    mptcp_socket_refused,
    tfo_kernel_refused,
)

TCP, MPTCP = socket.IPPROTO_TCP, IPPROTO_MPTCP
NOW = Now(mono=1000.0, wall=1_700_000_000.0)
REMOTE = (socket.AF_INET, "192.0.2.10", 443)
REMOTE6 = (socket.AF_INET6, "2001:db8::10", 443)
LOOP = (socket.AF_INET, "127.0.0.1", 8080)
LOOP6 = (socket.AF_INET6, "::1", 8080)
DEFAULT = FastpathOptions()
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"
HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"

PLAIN = Destination(mptcp=MptcpAnswer.PLAIN_TCP, mptcp_learned_at=900.0, mptcp_until=1500.0)
PLAIN_OLD = Destination(mptcp=MptcpAnswer.PLAIN_TCP, mptcp_learned_at=100.0, mptcp_until=700.0)
SPEAKS = Destination(mptcp=MptcpAnswer.MPTCP, mptcp_learned_at=900.0, mptcp_until=1500.0)
SPEAKS_OLD = Destination(mptcp=MptcpAnswer.MPTCP, mptcp_learned_at=100.0, mptcp_until=700.0)
PAUSED = Destination(tfo_paused_until=1300.0, tfo_pause_reason="a middlebox")
PAUSE_OVER = Destination(tfo_paused_until=999.0, tfo_pause_reason="a middlebox")
REFUSED = Destination(refused_at=990.0)
BLANK = Destination()


def _whys(reasons: tuple[Reason, ...]) -> list[Why]:
    return [r.why for r in reasons]


# -- plan_socket ---------------------------------------------------------------------------

SOCKET_ROWS: list[tuple[str, FastpathOptions, Destination, int, list[Why]]] = [
    ("mptcp off", FastpathOptions(mptcp=False), PLAIN, TCP, []),
    ("unknown destination: ask with MPTCP", DEFAULT, BLANK, MPTCP, []),
    ("answered in plain TCP lately", DEFAULT, PLAIN, TCP, [Why.MPTCP_KNOWN_PLAIN]),
    ("plain TCP answer expired: ask again", DEFAULT, PLAIN_OLD, MPTCP, []),
    ("speaks MPTCP", DEFAULT, SPEAKS, MPTCP, []),
    ("relearn 0 trusts nothing", FastpathOptions(mptcp_relearn=0), BLANK, MPTCP, []),
]


@pytest.mark.parametrize(("options", "dest", "proto", "whys"), [r[1:] for r in SOCKET_ROWS],
                         ids=[r[0] for r in SOCKET_ROWS])  # fmt: skip
def test_plan_socket(
    options: FastpathOptions, dest: Destination, proto: int, whys: list[Why]
) -> None:
    plan = plan_socket(options, dest, REMOTE, NOW)
    assert plan.proto == proto
    assert _whys(plan.reasons) == whys


def test_plain_tcp_reason_says_where_and_when() -> None:
    (why,) = plan_socket(DEFAULT, PLAIN, REMOTE6, NOW).reasons
    at = time.strftime("%H:%M:%S", time.localtime(NOW.wall - 100.0))
    again = time.strftime("%H:%M:%S", time.localtime(NOW.wall + 500.0))
    assert why.text == (
        f"mptcp: plain TCP socket: [2001:db8::10]:443 answered MPTCP in plain TCP at {at} "
        f"(asked again from {again})"
    )


# -- plan_first_flight ---------------------------------------------------------------------

Flags = dict[str, Any]
FLIGHT_ROWS: list[
    tuple[
        str,
        FastpathOptions,
        Destination,
        tuple[int, str, int],
        int,
        bytes | None,
        Flags,
        tuple[bool, bool, bool | None],
        list[Why],
    ]
] = [  # noqa: E501
    ("tfo off", FastpathOptions(tfo=False), BLANK, REMOTE, TCP, GET, {}, (False, False, True), []),
    (
        "kernel refused TFO earlier",
        DEFAULT,
        BLANK,
        REMOTE,
        TCP,
        GET,
        {"kernel_refused": True},
        (False, False, True),
        [],
    ),  # noqa: E501
    (
        "plain retry after a reset",
        DEFAULT,
        BLANK,
        REMOTE,
        TCP,
        GET,
        {"plain_retry": True},
        (False, False, True),
        [],
    ),  # noqa: E501
    (
        "nothing to send",
        DEFAULT,
        BLANK,
        REMOTE,
        TCP,
        None,
        {},
        (False, False, None),
        [Why.TFO_NOTHING_TO_SEND],
    ),  # noqa: E501
    (
        "empty first write",
        DEFAULT,
        BLANK,
        REMOTE,
        TCP,
        b"",
        {},
        (False, False, None),
        [Why.TFO_NOTHING_TO_SEND],
    ),  # noqa: E501
    (
        "POST under 'safe'",
        DEFAULT,
        BLANK,
        REMOTE,
        TCP,
        POST,
        {},
        (False, False, False),
        [Why.TFO_NOT_REPLAY_SAFE],
    ),  # noqa: E501
    (
        "POST under 'always'",
        FastpathOptions(tfo_policy="always"),
        BLANK,
        REMOTE,
        TCP,
        POST,
        {},
        (True, True, False),
        [],
    ),  # noqa: E501
    ("GET on TCP", DEFAULT, BLANK, REMOTE, TCP, GET, {}, (True, True, True), []),
    ("ClientHello on TCP", DEFAULT, BLANK, REMOTE, TCP, HELLO, {}, (True, True, True), []),
    ("paused", DEFAULT, PAUSED, REMOTE, TCP, GET, {}, (False, False, True), [Why.TFO_PAUSED]),
    ("pause over", DEFAULT, PAUSE_OVER, REMOTE, TCP, GET, {}, (True, True, True), []),
    (
        "refused last time: cookie request only",
        DEFAULT,
        REFUSED,
        REMOTE,
        TCP,
        GET,
        {},
        (True, False, True),
        [],
    ),  # noqa: E501
    (
        "refused last time, cookie cached",
        DEFAULT,
        REFUSED,
        REMOTE,
        TCP,
        GET,
        {"cookie_cached": True},
        (False, False, True),
        [Why.TFO_AFTER_REFUSAL],
    ),  # noqa: E501
    (
        "MPTCP socket off loopback: cookie request only",
        DEFAULT,
        BLANK,
        REMOTE,
        MPTCP,
        GET,
        {},
        (True, False, True),
        [],
    ),  # noqa: E501
    (
        "MPTCP socket off loopback, cookie cached",
        DEFAULT,
        BLANK,
        REMOTE,
        MPTCP,
        HELLO,
        {"cookie_cached": True},
        (False, False, True),
        [Why.TFO_MPTCP_SYN_DATA],
    ),  # noqa: E501
    (
        "MPTCP socket to an MPTCP server",
        DEFAULT,
        SPEAKS,
        REMOTE,
        MPTCP,
        GET,
        {},
        (False, False, True),
        [Why.TFO_MPTCP_PEER],
    ),  # noqa: E501
    (
        "MPTCP answer expired: cookie request only",
        DEFAULT,
        SPEAKS_OLD,
        REMOTE6,
        MPTCP,
        GET,
        {},
        (True, False, True),
        [],
    ),  # noqa: E501
    ("MPTCP socket on loopback", DEFAULT, SPEAKS, LOOP, MPTCP, GET, {}, (True, True, True), []),
    ("MPTCP socket on ::1", DEFAULT, BLANK, LOOP6, MPTCP, HELLO, {}, (True, True, True), []),
    (
        "plain TCP socket to a plain-TCP destination",
        DEFAULT,
        PLAIN,
        REMOTE,
        TCP,
        GET,
        {},
        (True, True, True),
        [],
    ),  # noqa: E501
]


@pytest.mark.parametrize(("options", "dest", "key", "proto", "data", "flags", "plan", "whys"),
                         [r[1:] for r in FLIGHT_ROWS], ids=[r[0] for r in FLIGHT_ROWS])  # fmt: skip
def test_plan_first_flight(
    options: FastpathOptions,
    dest: Destination,
    key: tuple[int, str, int],
    proto: int,
    data: bytes | None,
    flags: Flags,
    plan: tuple[bool, bool, bool | None],
    whys: list[Why],
) -> None:
    got = plan_first_flight(options, dest, key, NOW, socket_proto=proto, first_flight=data, **flags)
    assert (got.tfo_connect, got.syn_data, got.early_data_safe) == plan
    assert _whys(got.reasons) == whys
    for r in got.reasons:
        assert describe(key) in r.text or "{" not in r.why.value


_dests = st.builds(
    Destination,
    mptcp=st.sampled_from(list(MptcpAnswer)),
    mptcp_learned_at=st.none() | st.floats(0, 2000),
    mptcp_until=st.none() | st.floats(0, 2000),
    tfo_paused_until=st.none() | st.floats(0, 2000),
    refused_at=st.none() | st.floats(0, 2000),
)
_non_loopback = st.sampled_from([REMOTE, REMOTE6, (socket.AF_INET, "10.0.0.1", 80)])


@given(
    dest=_dests,
    key=_non_loopback,
    data=st.sampled_from([GET, POST, HELLO, None]),
    policy=st.sampled_from(["safe", "always"]),
    cookie_cached=st.booleans(),
    plain_retry=st.booleans(),
)
def test_no_data_in_an_mptcp_syn_off_loopback_ever(
    dest: Destination,
    key: tuple[int, str, int],
    data: bytes | None,
    policy: Any,
    cookie_cached: bool,
    plain_retry: bool,
) -> None:
    options = FastpathOptions(tfo_policy=policy)
    plan = plan_first_flight(
        options, dest, key, NOW, socket_proto=MPTCP, first_flight=data,
        cookie_cached=cookie_cached, plain_retry=plain_retry,
    )  # fmt: skip
    assert not plan.syn_data
    if cookie_cached:  # a second try never loops: it always goes without TFO
        assert not plan.tfo_connect


# -- learn ---------------------------------------------------------------------------------

CONNECTED, REFUSED_, TIMEOUT, FAILED = (
    ConnectOutcome.CONNECTED,
    ConnectOutcome.REFUSED,
    ConnectOutcome.TIMEOUT,
    ConnectOutcome.FAILED,
)
LEARN_ROWS: list[tuple[str, FastpathOptions, Destination, tuple[int, str, int], Observation, dict[str, Any], dict[str, bool], list[Why]]] = [  # noqa: E501
    ("SYN data reset: retry once plain", DEFAULT, BLANK, REMOTE,
     Observation(REFUSED_, TCP, syn_data_bytes=60),
     {"syn_data_reset_at": 1000.0, "refused_at": None}, {"retry_plain": True}, [Why.TFO_SYN_DATA_RESET]),
    ("plain retry refused too: dead server, no pause", DEFAULT, Destination(syn_data_reset_at=1000.0), REMOTE,
     Observation(REFUSED_, TCP, plain_retry=True),
     {"refused_at": 1000.0, "tfo_paused_until": None, "syn_data_reset_at": None}, {}, [Why.TFO_DEAD_SERVER]),
    ("plain SYN refused", DEFAULT, BLANK, REMOTE, Observation(REFUSED_, MPTCP),
     {"refused_at": 1000.0, "tfo_paused_until": None}, {}, []),
    ("timeout changes nothing", DEFAULT, PLAIN, REMOTE, Observation(TIMEOUT, TCP, syn_data_bytes=60),
     {"mptcp": MptcpAnswer.PLAIN_TCP, "refused_at": None, "tfo_paused_until": None, "connections": 0}, {}, []),
    ("other failure changes nothing", DEFAULT, REFUSED, REMOTE, Observation(FAILED, TCP),
     {"refused_at": 990.0, "connections": 0}, {}, []),
    ("plain retry got through: middlebox, pause", DEFAULT, Destination(syn_data_reset_at=1000.0), REMOTE,
     Observation(CONNECTED, TCP, plain_retry=True),
     {"tfo_paused_until": 1600.0, "tfo_pauses": 1, "connections": 1, "syn_data_reset_at": None}, {},
     [Why.TFO_PAUSE_RESET]),
    ("tfo_pause=0 never pauses", FastpathOptions(tfo_pause=0), BLANK, REMOTE,
     Observation(CONNECTED, TCP, plain_retry=True), {"tfo_paused_until": None, "tfo_pauses": 0}, {}, []),
    ("SYN data lost, plain retransmit got through: pause", FastpathOptions(tfo_pause=30), BLANK, REMOTE,
     Observation(CONNECTED, TCP, syn_data_bytes=60, tfo_client_fail=TFO_SYN_RETRANSMITTED),
     {"tfo_paused_until": 1030.0, "tfo_pauses": 1}, {}, [Why.TFO_PAUSE_LOST]),
    ("cookie requested is no evidence", DEFAULT, BLANK, REMOTE,
     Observation(CONNECTED, TCP, tfo_client_fail=TFO_COOKIE_UNAVAILABLE), {"tfo_paused_until": None}, {}, []),
    ("SYN data acked is counted; refusal forgotten", DEFAULT, REFUSED, REMOTE,
     Observation(CONNECTED, TCP, syn_data_bytes=60, syn_data_acked=True),
     {"syn_data_acked": 1, "connections": 1, "refused_at": None}, {}, []),
    ("MPTCP socket answered in plain TCP", DEFAULT, BLANK, REMOTE, Observation(CONNECTED, MPTCP, is_mptcp=False),
     {"mptcp": MptcpAnswer.PLAIN_TCP, "mptcp_learned_at": 1000.0, "mptcp_until": 1600.0}, {}, []),
    ("MPTCP socket answered with MPTCP", FastpathOptions(mptcp_relearn=60), PLAIN_OLD, REMOTE,
     Observation(CONNECTED, MPTCP, is_mptcp=True),
     {"mptcp": MptcpAnswer.MPTCP, "mptcp_until": 1060.0}, {"stall_risk": False}, []),
    ("kernel cannot tell: keep what is known", DEFAULT, SPEAKS, REMOTE, Observation(CONNECTED, MPTCP, is_mptcp=None),
     {"mptcp": MptcpAnswer.MPTCP, "mptcp_until": 1500.0}, {}, []),
    ("TCP socket says nothing about MPTCP", DEFAULT, PLAIN, REMOTE, Observation(CONNECTED, TCP),
     {"mptcp": MptcpAnswer.PLAIN_TCP, "mptcp_until": 1500.0}, {}, []),
    ("data in an MPTCP SYN to an MPTCP server off loopback", DEFAULT, BLANK, REMOTE,
     Observation(CONNECTED, MPTCP, syn_data_bytes=60, syn_data_acked=True, is_mptcp=True),
     {"mptcp": MptcpAnswer.MPTCP}, {"stall_risk": True}, [Why.MPTCP_SYN_DATA_STALL]),
    ("the same on loopback is fine", DEFAULT, BLANK, LOOP,
     Observation(CONNECTED, MPTCP, syn_data_bytes=60, syn_data_acked=True, is_mptcp=True),
     {"mptcp": MptcpAnswer.MPTCP, "syn_data_acked": 1}, {"stall_risk": False}, []),
]  # fmt: skip


@pytest.mark.parametrize(("options", "dest", "key", "obs", "fields", "flags", "whys"),
                         [r[1:] for r in LEARN_ROWS], ids=[r[0] for r in LEARN_ROWS])  # fmt: skip
def test_learn(
    options: FastpathOptions,
    dest: Destination,
    key: tuple[int, str, int],
    obs: Observation,
    fields: dict[str, Any],
    flags: dict[str, bool],
    whys: list[Why],
) -> None:
    got = learn(options, dest, key, NOW, obs)
    for name, value in fields.items():
        assert getattr(got.dest, name) == value, name
    assert got.retry_plain is flags.get("retry_plain", False)
    assert got.stall_risk is flags.get("stall_risk", False)
    assert _whys(got.reasons) == whys


def test_learn_then_plan_round_trip() -> None:
    """A plain-TCP answer moves the next connection to a TCP socket with data in the SYN."""
    first = learn(DEFAULT, BLANK, REMOTE, NOW, Observation(CONNECTED, MPTCP, is_mptcp=False))
    later = Now(NOW.mono + 5, NOW.wall + 5)
    socket_plan = plan_socket(DEFAULT, first.dest, REMOTE, later)
    assert socket_plan.proto == TCP
    flight = plan_first_flight(
        DEFAULT, first.dest, REMOTE, later, socket_proto=socket_plan.proto, first_flight=GET
    )
    assert flight.tfo_connect and flight.syn_data
    expired = Now(NOW.mono + DEFAULT.mptcp_relearn, NOW.wall + DEFAULT.mptcp_relearn)
    assert plan_socket(DEFAULT, first.dest, REMOTE, expired).proto == MPTCP


# -- what the kernel refuses -----------------------------------------------------------------

# fmt: off
KERNEL_ROWS: list[tuple[str, Reason | None, Why | None, str]] = [
    ("MPTCP disabled", mptcp_socket_refused(OSError(errno.ENOPROTOOPT, "x")), Why.MPTCP_SOCKET_REFUSED, "net.mptcp.enabled=0"),  # noqa: E501
    ("kernel too old", mptcp_socket_refused(OSError(errno.EINVAL, "x")), Why.MPTCP_SOCKET_REFUSED, "Linux < 5.6"),  # noqa: E501
    ("other socket error", mptcp_socket_refused(OSError(errno.EMFILE, "too many")), Why.MPTCP_SOCKET_REFUSED, "socket() failed"),  # noqa: E501
    ("option not on MPTCP", mptcp_option_refused(OSError(errno.ENOPROTOOPT, "no")), Why.MPTCP_OPTION_REFUSED, "not supported on MPTCP"),  # noqa: E501
    ("option error that is not MPTCP's", mptcp_option_refused(OSError(errno.EBADF, "bad")), None, ""),  # noqa: E501
    ("TFO client bit off", tfo_kernel_refused(OSError(errno.EOPNOTSUPP, "Operation not supported")), Why.TFO_KERNEL_REFUSED, "net.ipv4.tcp_fastopen=1"),  # noqa: E501
    ("MPTCP not on Windows", plan_socket(DEFAULT, BLANK, REMOTE, NOW, platform="win32").reasons[0], Why.MPTCP_PLATFORM, "not implemented on win32"),  # noqa: E501
    ("TFO not on macOS", plan_first_flight(DEFAULT, BLANK, REMOTE, NOW, socket_proto=TCP, first_flight=GET, platform="darwin").reasons[0], Why.TFO_PLATFORM, "not implemented on darwin"),  # noqa: E501
]
# fmt: on


@pytest.mark.parametrize(("got", "why", "text"), [r[1:] for r in KERNEL_ROWS], ids=[r[0] for r in KERNEL_ROWS])  # fmt: skip
def test_kernel_refusals(got: Reason | None, why: Why | None, text: str) -> None:
    if why is None:
        assert got is None
    else:
        assert got is not None and got.why is why and text in got.text


def test_every_reason_has_a_row() -> None:
    seen: set[Why] = set()
    seen.update(why for row in SOCKET_ROWS for why in row[4])
    seen.update(why for row in FLIGHT_ROWS for why in row[8])
    seen.update(why for row in LEARN_ROWS for why in row[7])
    seen.update(row[2] for row in KERNEL_ROWS if row[2] is not None)
    assert seen == set(Why)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("::1%lo", True),
     ("10.0.0.1", False), ("example.test", False), ("", False)],
)  # fmt: skip
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@given(dest=_dests, key=_non_loopback, now=st.floats(0, 3000))
def test_any_remembered_state_plans_without_error(
    dest: Destination, key: tuple[int, str, int], now: float
) -> None:
    """Wrong or odd memory degrades to plain TCP or no TFO, never to an exception."""
    at = Now(now, NOW.wall)
    plan = plan_socket(DEFAULT, dest, key, at)
    assert plan.proto in (TCP, MPTCP)
    flight = plan_first_flight(DEFAULT, dest, key, at, socket_proto=plan.proto, first_flight=GET)
    assert all(isinstance(r.text, str) for r in plan.reasons + flight.reasons)
    for outcome in ConnectOutcome:
        learned = learn(DEFAULT, dest, key, at, Observation(outcome, plan.proto, is_mptcp=True))
        assert isinstance(learned.dest, Destination)


# -- the usual outcome, as the dialer stores it without calling learn() -------------------


@given(
    dest=st.sampled_from([BLANK, PLAIN, SPEAKS, PAUSED, REFUSED, PAUSE_OVER, PLAIN_OLD]),
    proto=st.sampled_from([TCP, MPTCP]),
    syn_data=st.sampled_from([0, 60]),
    acked=st.booleans(),
    client_fail=st.integers(min_value=0, max_value=3),
    plain_retry=st.booleans(),
    is_mptcp=st.sampled_from([None, False, True]),
    key=st.sampled_from([REMOTE, LOOP]),
)
def test_only_counted_means_learn_just_counts(
    dest: Destination,
    proto: int,
    syn_data: int,
    acked: bool,
    client_fail: int,
    plain_retry: bool,
    is_mptcp: bool | None,
    key: tuple[int, str, int],
) -> None:
    """Where ``only_counted`` holds, ``learn`` returns ``Learned(counted(dest, acked))``."""
    from http_fastpath._core.learn import Learned, counted, only_counted

    if proto == TCP:
        is_mptcp = None  # (only MPTCP sockets are asked)
    obs = Observation(
        ConnectOutcome.CONNECTED, proto, syn_data, acked, client_fail, is_mptcp, plain_retry
    )
    got = learn(DEFAULT, dest, key, NOW, obs)
    if only_counted(proto, plain_retry, syn_data, client_fail):
        assert got == Learned(counted(dest, acked))
        assert got.dest == dest._replace(
            connections=dest.connections + 1,
            syn_data_acked=dest.syn_data_acked + acked,
            refused_at=None,
            syn_data_reset_at=None,
        )
    else:
        assert proto == MPTCP or plain_retry or (syn_data and client_fail == TFO_SYN_RETRANSMITTED)
    # The shell's shortcut (record._learn_connected): on a plain TCP socket, no client
    # failure and no plain retry means only_counted without asking it.
    if proto == TCP and not (client_fail or plain_retry):
        assert only_counted(proto, plain_retry, syn_data, client_fail)


def test_usual_plans_are_the_ones_the_shell_may_run_straight() -> None:
    from http_fastpath._core.decide import USUAL_PLANS

    for first in (GET, HELLO, POST, None):
        plan = plan_first_flight(DEFAULT, PLAIN, REMOTE, NOW, socket_proto=TCP, first_flight=first)
        assert id(plan) in USUAL_PLANS and not plan.tfo_unavailable
        assert plan.syn_data == plan.tfo_connect
    for dest in (PAUSED, REFUSED, SPEAKS):  # reasons that hold data back: the full path
        plan = plan_first_flight(DEFAULT, dest, REMOTE, NOW, socket_proto=MPTCP, first_flight=GET)
        assert id(plan) not in USUAL_PLANS, plan
    darwin = plan_first_flight(
        DEFAULT, PLAIN, REMOTE, NOW, socket_proto=TCP, first_flight=GET, platform="darwin"
    )
    assert id(darwin) not in USUAL_PLANS
