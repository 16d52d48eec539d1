"""The destination memory: bounded, thread-safe, keyed by (family, address, port)."""

from __future__ import annotations

import socket
import threading
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from http_fastpath import OptionError
from http_fastpath._core.memory import (
    DEFAULT_MAX_ENTRIES,
    Destination,
    DestinationMemory,
    MptcpAnswer,
)

A = (socket.AF_INET, "192.0.2.1", 80)
B = (socket.AF_INET, "192.0.2.1", 8080)  # same address, another port: another destination


def _plain(d: Destination) -> Destination:
    return d.replace(mptcp=MptcpAnswer.PLAIN_TCP, connections=d.connections + 1)


def test_ports_are_separate_destinations() -> None:
    memory = DestinationMemory()
    memory.update(A, _plain)
    assert memory.get(A).mptcp is MptcpAnswer.PLAIN_TCP
    assert memory.get(B) == Destination()
    assert memory.get((socket.AF_INET6, "192.0.2.1", 80)) == Destination()


def test_lru_bound_forgets_the_least_recently_used() -> None:
    memory = DestinationMemory(max_entries=3)
    keys = [(socket.AF_INET, f"192.0.2.{i}", 80) for i in range(4)]
    for key in keys[:3]:
        memory.update(key, _plain)
    memory.get(keys[0])  # used: now the most recent
    memory.update(keys[3], _plain)
    assert len(memory) == 3
    assert memory.get(keys[1]) == Destination()  # the least recently used went
    assert memory.get(keys[0]).connections == 1
    memory.max_entries = 1
    assert [k for k, _ in memory.items()] == [keys[0]]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10", None])
def test_max_entries_is_validated(bad: object) -> None:
    with pytest.raises(OptionError, match="max_entries"):
        DestinationMemory(max_entries=bad)  # type: ignore[arg-type]


def test_forget_one_port_one_address_or_all() -> None:
    memory = DestinationMemory()
    for key in (A, B, (socket.AF_INET, "192.0.2.2", 80)):
        memory.update(key, _plain)
    assert memory.forget(port=8080) == 1
    assert memory.forget(address="192.0.2.1") == 1
    assert memory.forget() == 1
    assert len(memory) == 0


def test_updates_from_many_threads_are_not_lost() -> None:
    memory = DestinationMemory()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(500):
            memory.update(A, _plain)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert memory.get(A).connections == 8 * 500


def _entry_cost(samples: int = 2000) -> float:
    """Bytes per remembered destination, measured with tracemalloc."""
    memory = DestinationMemory(max_entries=samples)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(samples):
            key = (10, f"2001:db8::{i:x}", 40000 + i % 20000)
            memory.update(
                key,
                lambda d: d.replace(
                    mptcp=MptcpAnswer.PLAIN_TCP,
                    mptcp_learned_at=1.0,
                    mptcp_until=2.0,
                    connections=d.connections + 1,
                ),
            )
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / samples


def test_entry_cost_is_what_the_docs_say() -> None:
    cost = _entry_cost()
    # docs/how-it-works.md: about 0.4 KB a destination, so the default bound is ~2 MB
    assert 100 < cost < 800, cost
    assert DEFAULT_MAX_ENTRIES * cost < 4_000_000


def test_public_view_and_reset() -> None:
    import http_fastpath
    from http_fastpath._core.memory import MEMORY

    MEMORY.update(A, lambda d: _plain(d).replace(mptcp_until=1e12, mptcp_learned_at=0.0))
    MEMORY.update(B, lambda d: d.replace(tfo_paused_until=1e12, tfo_pause_reason="a middlebox"))
    (a,) = http_fastpath.destinations("192.0.2.1", 80)
    assert (a.family, a.mptcp, a.connections, a.tfo_paused_for) == ("ipv4", "plain_tcp", 1, None)
    assert a.mptcp_expires_in is not None and a.mptcp_expires_in > 0
    (b,) = http_fastpath.destinations(port=8080)
    assert b.mptcp == "unknown" and b.tfo_pause_reason == "a middlebox"
    assert "192.0.2.1:8080" in str(b) and "tfo paused" in str(b)
    assert b.as_dict()["port"] == 8080
    assert http_fastpath.reset_destinations("192.0.2.1", 80) == 1
    assert [d.port for d in http_fastpath.destinations()] == [8080]
    with pytest.raises(OptionError):
        http_fastpath.set_destination_limit(0)
    assert http_fastpath.destination_limit() == DEFAULT_MAX_ENTRIES
    http_fastpath.set_destination_limit(10)
    assert http_fastpath.destination_limit() == 10
    http_fastpath.set_destination_limit(DEFAULT_MAX_ENTRIES)


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.tuples(st.sampled_from([0, 1, 2, 3]), st.booleans()), max_size=40),
    first=st.lists(st.sampled_from([0, 1, 2, 3]), unique=True),
)
def test_waiting_counts_apply_as_one_by_one(
    counts: list[tuple[int, bool]], first: list[int]
) -> None:
    """Counts applied in a batch give the entries and the recency order one by one would.

    (The bound is applied once the batch is in: a destination counted in the batch is
    not forgotten half-way through it.)
    """
    from http_fastpath._core.memory import counted

    keys = [(socket.AF_INET, f"192.0.2.{i}", 80) for i in range(4)]
    batched, one_by_one = DestinationMemory(max_entries=3), DestinationMemory(max_entries=3)
    for memory in (batched, one_by_one):
        for i in first:  # some destinations known before, in some order
            memory.update(keys[i], _plain)
    one_by_one.max_entries = 9  # (the bound applied at the end instead: see above)
    for i, acked in counts:
        batched.count_later((keys[i], acked))
        one_by_one.update(keys[i], counted, acked)
    # items() applies the waiting counts; the entries and their order must agree
    assert batched.items() == one_by_one.items()[-3:]
    assert batched.pending_counts() == 0
