"""The Alt-Svc upgrade's decisions (``http_fastpath._core.upgrade``), table by table.

Pure: no server, no aioquic, a fake clock. The loopback tests
(``tests/loopback/test_altsvc_upgrade.py``) check that the shells do what these say.
"""

from __future__ import annotations

from typing import Any

import pytest

from http_fastpath import OptionError
from http_fastpath._core.altsvc import Alternative, Origin
from http_fastpath._core.upgrade import (
    HANDSHAKE_BOUND,
    Decision,
    UpgradeMemory,
    check_http3,
    choose_route,
    fallback_note,
    handshake_timeout,
    may_fall_back,
    may_learn,
    parse_age,
)

ALT = Alternative(None, 4433)
OTHER = Alternative("alt.example", 443)
ORIGIN = Origin("example.test", 443)

#: the request every row starts from: an https GET, verified, no proxy, one alternative
BASE: dict[str, Any] = {
    "scheme": "https",
    "proxied": False,
    "verified": True,
    "client_cert": False,
    "method": "GET",
    "body": "none",
    "alternatives": (ALT, OTHER),
}

ROUTES = [
    # (what changes, expected alternative, words of the reason)
    ({}, ALT, "advertised"),
    ({"alternatives": (OTHER,)}, OTHER, "advertised"),
    ({"method": "POST", "body": "bytes"}, ALT, "advertised"),
    ({"method": "PUT", "body": "bytes"}, ALT, "advertised"),
    ({"method": "delete"}, ALT, "advertised"),
    ({"alternatives": ()}, None, "no usable h3 alternative"),
    ({"scheme": "http"}, None, "not https"),
    ({"scheme": "http", "alternatives": ()}, None, "not https"),
    ({"proxied": True}, None, "proxy"),
    ({"verified": False}, None, "verify=False"),
    ({"client_cert": True}, None, "client certificate"),
    ({"method": "CONNECT"}, None, "CONNECT"),
    ({"method": "POST", "body": "stream"}, None, "streamed body"),
    ({"body": "stream"}, None, "streamed body"),
    # the first reason that applies wins
    ({"scheme": "http", "proxied": True, "verified": False}, None, "not https"),
    ({"proxied": True, "verified": False}, None, "proxy"),
]


@pytest.mark.parametrize(("change", "alternative", "why"), ROUTES)
def test_choose_route(change: dict[str, Any], alternative: Alternative | None, why: str) -> None:
    decision = choose_route(**{**BASE, **change})
    assert isinstance(decision, Decision)
    assert decision.alternative == alternative
    assert why in decision.why


LEARN = [
    ("https", False, True, True),
    ("https", True, True, False),  # a proxy could have added the header
    ("https", False, False, False),  # verify=False: anyone could have answered
    ("http", False, True, False),  # RFC 7838 section 2.1: not from http://
    ("http", True, False, False),
]


@pytest.mark.parametrize(("scheme", "proxied", "verified", "expected"), LEARN)
def test_may_learn(scheme: str, proxied: bool, verified: bool, expected: bool) -> None:
    assert may_learn(scheme=scheme, proxied=proxied, verified=verified) is expected


FALL_BACK = [
    # before the handshake nothing left (or a safe bodyless request in 0-RTT)
    (False, "GET", False, True),
    (False, "POST", True, True),
    (False, "PATCH", True, True),
    # after it the server may have the request: only idempotent and bodyless again
    (True, "GET", False, True),
    (True, "HEAD", False, True),
    (True, "DELETE", False, True),
    (True, "get", False, True),
    (True, "PUT", True, False),
    (True, "GET", True, False),
    (True, "POST", False, False),
    (True, "POST", True, False),
    (True, "PATCH", False, False),
]


@pytest.mark.parametrize(("handshake_done", "method", "has_body", "expected"), FALL_BACK)
def test_may_fall_back(handshake_done: bool, method: str, has_body: bool, expected: bool) -> None:
    result = may_fall_back(handshake_done=handshake_done, method=method, has_body=has_body)
    assert result is expected


@pytest.mark.parametrize(
    ("connect_timeout", "expected"),
    [(None, HANDSHAKE_BOUND), (5.0, HANDSHAKE_BOUND), (0.1, 0.1), (0.0, 0.0), (-1.0, 0.0)],
)
def test_handshake_timeout(connect_timeout: float | None, expected: float) -> None:
    assert handshake_timeout(connect_timeout) == expected
    assert HANDSHAKE_BOUND <= 0.3


@pytest.mark.parametrize("value", [False, "auto"])
def test_check_http3_accepts(value: object) -> None:
    assert check_http3(value) is (value == "auto")


@pytest.mark.parametrize("value", [True, None, "on", "AUTO", "h3", 1, 0, ""])
def test_check_http3_refuses_with_the_value_and_what_is_allowed(value: object) -> None:
    with pytest.raises(ValueError, match="http3") as caught:
        check_http3(value)
    assert isinstance(caught.value, OptionError)
    assert repr(value) in str(caught.value) and "'auto'" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 0.0),
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("-3", 0.0),
        ("1e3", 0.0),
        ("9" * 11, 0.0),
    ],
)
def test_parse_age(value: str | None, expected: float) -> None:
    assert parse_age(value) == expected


def test_fallback_note_names_the_destination_the_error_and_the_back_off() -> None:
    note = fallback_note(OTHER, ORIGIN, TimeoutError("no answer"), 300.0)
    assert note.startswith("http3: QUIC to h3 alternative alt.example:443 did not complete")
    assert "TimeoutError: no answer" in note and "not tried for 300 s" in note
    assert "example.test:4433" in fallback_note(ALT, ORIGIN, OSError(), 600.0)


# -- the memory: learning, expiry, clear, back-off -------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_learns_expires_and_clears() -> None:
    clock = Clock()
    memory = UpgradeMemory(clock=clock)
    assert memory.usable(ORIGIN) == ()
    memory.learn(ORIGIN, [])  # no Alt-Svc: nothing changes
    memory.learn(ORIGIN, ['h3=":4433"; ma=60, h2=":443"'])
    assert memory.usable(ORIGIN) == (ALT,)
    assert memory.usable(Origin("other.test", 443)) == ()
    clock.now += 61
    assert memory.usable(ORIGIN) == ()
    memory.learn(ORIGIN, ['h3=":4433"; ma=60'], age=50)  # Age counts against ma
    clock.now += 11
    assert memory.usable(ORIGIN) == ()
    memory.learn(ORIGIN, ['h3="alt.example:443"'])
    assert memory.usable(ORIGIN) == (OTHER,)
    memory.learn(ORIGIN, ["clear"])
    assert memory.usable(ORIGIN) == ()
    memory.learn(ORIGIN, ['h3=":4433"'])
    memory.learn(ORIGIN, ["not a valid value"])  # malformed: ignored whole, kept as it was
    assert memory.usable(ORIGIN) == (ALT,)


def test_memory_backs_off_a_broken_alternative_then_tries_again() -> None:
    clock = Clock()
    memory = UpgradeMemory(clock=clock)
    memory.learn(ORIGIN, ['h3=":4433", h3="alt.example:443"'])
    assert memory.usable(ORIGIN) == (ALT, OTHER)
    assert memory.failed(ORIGIN, ALT) == 300.0
    assert memory.usable(ORIGIN) == (OTHER,)  # the next one is used meanwhile
    clock.now += 301
    assert memory.usable(ORIGIN) == (ALT, OTHER)
    assert memory.failed(ORIGIN, ALT) == 600.0  # a second failure in a row: doubled
    clock.now += 301
    assert memory.usable(ORIGIN) == (OTHER,)
    memory.worked(ORIGIN, ALT)  # a success forgets the failures
    assert memory.usable(ORIGIN) == (ALT, OTHER)
    assert memory.failed(ORIGIN, ALT) == 300.0
