"""The session-ticket store and the 0-RTT method policy, without a network (clock injected)."""

from __future__ import annotations

import datetime
import threading

import pytest
from aioquic import tls

from http_fastpath._core.policy import SAFE_METHODS
from http_fastpath.http3._h3._resumption import (
    EARLY_DATA_METHODS,
    MAX_LIFETIME,
    TicketKey,
    TicketStore,
    may_send_early,
)

KEY = TicketKey("example.test", 443, "example.test", 443, "trust")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ticket(label: bytes = b"t", lifetime: float = 3600.0) -> tls.SessionTicket:
    start = datetime.datetime.now(datetime.timezone.utc)
    return tls.SessionTicket(
        age_add=0,
        cipher_suite=tls.CipherSuite.AES_128_GCM_SHA256,
        not_valid_after=start + datetime.timedelta(seconds=lifetime),
        not_valid_before=start,
        resumption_secret=b"s" * 32,
        server_name="example.test",
        ticket=label,
        max_early_data_size=0xFFFFFFFF,
    )


@pytest.mark.parametrize(
    ("method", "body", "early"),
    [
        (b"GET", b"", True),
        (b"HEAD", b"", True),
        (b"OPTIONS", b"", True),
        (b"TRACE", b"", True),
        (b"GET", b"x", False),  # a body is never replayed
        (b"POST", b"", False),
        (b"POST", b"x", False),
        (b"PUT", b"", False),  # idempotent is enough for a SYN, not for 0-RTT
        (b"DELETE", b"", False),
        (b"PATCH", b"", False),
        (b"CONNECT", b"", False),
        (b"get", b"", False),  # methods are case-sensitive (RFC 9110 section 9.1)
    ],
)
def test_may_send_early(method: bytes, body: bytes, early: bool) -> None:
    assert may_send_early(method, body) is early


def test_early_methods_are_within_the_replay_policy() -> None:
    assert EARLY_DATA_METHODS <= SAFE_METHODS


def test_tickets_are_single_use_newest_first() -> None:
    store = TicketStore(clock=Clock())
    store.put(KEY, ticket(b"old"))
    store.put(KEY, ticket(b"new"))
    assert store.count(KEY) == 2
    first, second = store.take(KEY), store.take(KEY)
    assert first is not None and second is not None
    assert (first.ticket, second.ticket) == (b"new", b"old")
    assert store.take(KEY) is None and len(store) == 0


def test_ticket_lifetime_is_honoured_and_capped() -> None:
    clock = Clock()
    store = TicketStore(clock=clock)
    store.put(KEY, ticket(lifetime=60))
    clock.now += 59
    assert store.take(KEY) is not None
    store.put(KEY, ticket(lifetime=60))
    clock.now += 61
    assert store.take(KEY) is None
    # a server asking for more than seven days gets seven days (RFC 8446 section 4.6.1)
    store.put(KEY, ticket(lifetime=30 * 86400))
    clock.now += MAX_LIFETIME + 1
    assert store.take(KEY) is None
    store.put(KEY, ticket(lifetime=0))
    assert store.count(KEY) == 0


def test_aioquic_wall_clock_validity_is_checked_too() -> None:
    store = TicketStore(clock=Clock())
    stale = ticket()
    stale.not_valid_after = stale.not_valid_before - datetime.timedelta(seconds=1)
    stale.not_valid_before -= datetime.timedelta(seconds=10)
    store.put(KEY, stale)
    assert store.take(KEY) is None


def test_keys_are_distinct() -> None:
    store = TicketStore(clock=Clock())
    store.put(KEY, ticket(b"a"))
    for other in (
        KEY._replace(host="other.test"),
        KEY._replace(port=8443),
        KEY._replace(alt_host="alt.test"),
        KEY._replace(alt_port=8443),
        KEY._replace(trust="insecure"),
    ):
        assert store.take(other) is None
    assert store.count(KEY) == 1


def test_store_is_bounded() -> None:
    store = TicketStore(max_keys=3, per_key=2, clock=Clock())
    for i in range(5):
        store.put(KEY, ticket(b"%d" % i))
    assert store.count(KEY) == 2  # the two newest
    taken = store.take(KEY)
    assert taken is not None and taken.ticket == b"4"
    keys = [KEY._replace(port=i) for i in range(10)]
    for key in keys:
        store.put(key, ticket())
    assert len(store) == 3
    assert [store.count(k) for k in keys[-3:]] == [1, 1, 1]  # least recently stored go first
    with pytest.raises(ValueError):
        TicketStore(max_keys=0)


def test_store_is_thread_safe() -> None:
    store = TicketStore(max_keys=8, per_key=4)
    taken: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        key = KEY._replace(port=n % 8)
        got = 0
        for i in range(300):
            store.put(key, ticket(b"%d-%d" % (n, i)))
            if store.take(key) is not None:
                got += 1
        with lock:
            taken.append(got)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(taken) == 8 and len(store) <= 8 * 4
    assert sum(taken) + len(store) == 8 * 300  # every ticket taken once or still held
