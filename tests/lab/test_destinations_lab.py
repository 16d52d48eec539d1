"""Destination memory on a real path (10 ms RTT lab): MPTCP and TFO are per (address, port).

The defect this guards against: a process that had talked to a plain-TCP service on one
IP address then put data into the MPTCP SYN of a connection to an MPTCP service on the
same address but another port — the MPTCP server holds such data until the client's next
segment, so the request hung (``ReadTimeout``; forever with requests' ``timeout=None``).
Timings are printed (``-s``), never asserted; the read timeout (2 s, 20 round trips) is
what turns a hang into a failure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from http_fastpath import TFOStatus, destinations
from http_fastpath._core.linux import IPPROTO_MPTCP
from http_fastpath.netlab import SERVICE_ADDRESS, Lab, LabError, PathSpec, Server

from .._clients import IMPLS, ok, run
from .._kernel import TFO_NO_KERNEL_BLACKHOLE

pytestmark = pytest.mark.netns

KINDS4 = ("requests", "httpx", "httpx-async", "httpx-trio")
EVERY = pytest.mark.parametrize(
    ("kind", "impl"),
    [(k, i) for k in KINDS4 for i in IMPLS],
    ids=[f"{k}-{i}" for k in KINDS4 for i in IMPLS],
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    try:
        with Lab([PathSpec(delay_ms=5)]) as lab:
            yield lab
    except LabError as exc:
        pytest.skip(f"the network lab cannot run here: {exc}")


def _serve(lab: Lab, *, mptcp: bool, port: int = 0) -> Server:
    with lab.server.entered():
        return Server(host="0.0.0.0", mptcp=mptcp, port=port)


def _get(lab: Lab, kind: str, impl: str, url: str, **kw: Any) -> tuple[Any, float]:
    """One request through a fresh client (a fresh connection); outcome and seconds."""
    start = time.monotonic()
    (outcome,) = ok(lab.client.run(run, kind, impl, [("GET", url)], read_timeout=2.0, **kw))
    return outcome, time.monotonic() - start


@EVERY
def test_mptcp_and_plain_services_on_one_address_never_hang(lab: Lab, kind: str, impl: str) -> None:
    lab.client.ip("tcp_metrics flush all")
    with _serve(lab, mptcp=False) as plain, _serve(lab, mptcp=True) as mp:
        a = f"http://{SERVICE_ADDRESS}:{plain.port}/"
        b = f"http://{SERVICE_ADDRESS}:{mp.port}/"
        results = [_get(lab, kind, impl, url) for url in (a, a, b, a, b)]
        plain_records, mp_records = plain.records, mp.records
    ms = [f"{t * 1000:.0f}" for _, t in results]
    print(f"\nA A B A B {kind}-{impl}: {' '.join(ms)} ms")
    assert [o.status for o, _ in results] == [200] * 5
    assert len(plain_records) == 3 and len(mp_records) == 2
    if impl == "stock":
        assert not any(r.syn_data for r in plain_records + mp_records)
        return
    # The plain port: a cookie first, then data in the SYN of every repeat connection.
    assert [r.syn_data for r in plain_records] == [False, True, True]
    # The MPTCP port: MPTCP end to end, never data in an MPTCP SYN off loopback.
    assert all(r.is_mptcp for r in mp_records)
    assert not any(r.syn_data for r in mp_records)
    infos = [o.info for o, _ in results]
    assert infos[1].transport == "tcp" and infos[1].tfo is TFOStatus.SYN_DATA_ACKED
    assert infos[2].transport == "mptcp" and infos[2].mptcp is True
    assert any("no data in the SYN of an MPTCP socket" in f for f in infos[2].fallbacks)
    assert any("answered with MPTCP" in f for f in infos[4].fallbacks)
    seen = {(d.port, d.mptcp) for d in destinations(SERVICE_ADDRESS)}
    assert seen == {(plain.port, "plain_tcp"), (mp.port, "mptcp")}


@pytest.mark.parametrize("kind", KINDS4)
def test_a_destination_that_flips_between_mptcp_and_plain(lab: Lab, kind: str) -> None:
    """The same address:port served alternately by an MPTCP and a plain listener."""
    lab.client.ip("tcp_metrics flush all")
    port = 0
    kinds: list[bool | None] = []
    for mptcp in (False, True, False, True, True, False, False):
        with _serve(lab, mptcp=mptcp, port=port) as server:
            port = server.port
            url = f"http://{SERVICE_ADDRESS}:{port}/"
            outcome, _ = _get(lab, kind, "fast", url)
            assert outcome.status == 200
            (record,) = server.records
            kinds.append(record.is_mptcp)
            # Data only ever rides in a plain TCP SYN: never in an MPTCP one.
            assert not (record.syn_data and record.is_mptcp)
    # Wrong memory costs MPTCP, never a request: a server that became MPTCP while the
    # memory said "plain TCP" is reached over plain TCP until the answer is asked again.
    assert kinds == [False, False, False, False, False, False, False]


@TFO_NO_KERNEL_BLACKHOLE.mark
@pytest.mark.parametrize("kind", KINDS4)
def test_blackhole_on_one_port_keeps_tfo_on_another(lab: Lab, kind: str) -> None:
    lab.client.ip("tcp_metrics flush all")
    with _serve(lab, mptcp=False) as hole, _serve(lab, mptcp=False) as fine:
        dropped = sum(p["up"]["syn_data"] for p in lab.stats())
        lab.set(0, drop_syn_data=True, syn_data_port=hole.port)
        try:
            h = f"http://{SERVICE_ADDRESS}:{hole.port}/"
            f = f"http://{SERVICE_ADDRESS}:{fine.port}/"
            results = [_get(lab, kind, "fast", url) for url in (h, h, h, f, f, f)]
        finally:
            lab.set(0, drop_syn_data=False, syn_data_port=0)
        dropped = sum(p["up"]["syn_data"] for p in lab.stats()) - dropped
        fine_records = fine.records
    print(f"\nblackhole {kind}: " + " ".join(f"{t * 1000:.0f}" for _, t in results) + " ms")
    infos = [o.info for o, _ in results]
    assert infos[1].tfo is TFOStatus.SYN_RETRANSMITTED  # the one connection that paid
    assert infos[2].tfo is TFOStatus.NOT_ATTEMPTED and any(
        "paused" in x for x in infos[2].fallbacks
    )
    assert dropped == 1
    # Another port of the same address: TFO is not paused there.
    # (Default options: each port's first connection is an MPTCP socket that learns the
    # port answers in plain TCP, and carries no SYN data; the next ones do.)
    assert [r.syn_data for r in fine_records] == [False, True, True]
    assert [i.tfo for i in infos[4:]] == [TFOStatus.SYN_DATA_ACKED] * 2
    assert not any("paused" in x for i in infos[3:] for x in i.fallbacks)
    stats = {d.port: d for d in destinations(SERVICE_ADDRESS)}
    assert stats[hole.port].tfo_paused_for is not None and stats[hole.port].tfo_pauses == 1
    assert stats[fine.port].tfo_paused_for is None


@pytest.mark.parametrize("kind", KINDS4)
def test_safety_net_when_data_slips_into_an_mptcp_syn(
    lab: Lab, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision bug that lets data into an MPTCP SYN costs a redo, never a hang.

    The plans never allow it (``tests/unit/test_decide.py``); here they are forced to, to prove
    the dialer's safety net: the reply that the MPTCP server's kernel would hold back is
    not waited for.
    """
    from http_fastpath._core import decide as _decide

    real = _decide.plan_first_flight

    def buggy(*args: Any, **kwargs: Any) -> _decide.FlightPlan:
        plan = real(*args, **kwargs)
        if kwargs["socket_proto"] == IPPROTO_MPTCP and not kwargs.get("plain_retry"):
            return _decide.FlightPlan(True, True, plan.early_data_safe)
        return plan

    monkeypatch.setattr(_decide, "plan_first_flight", buggy)
    lab.client.ip("tcp_metrics flush all")
    with _serve(lab, mptcp=True) as mp:
        url = f"http://{SERVICE_ADDRESS}:{mp.port}/"
        results = [_get(lab, kind, "fast", url) for _ in range(2)]
        records = mp.records
    print(f"\nsafety net {kind}: " + " ".join(f"{t * 1000:.0f}" for _, t in results) + " ms")
    # 1: asks for a cookie; 2: the GET rides in the MPTCP SYN (the bug), the server handles
    # it but its kernel holds the reply; the dialer drops that connection and redoes it.
    assert [r.syn_data for r in records] == [False, True, False]
    assert all(r.is_mptcp for r in records)
    info = results[1][0].info
    assert any("sent again on a new one with a plain SYN" in f for f in info.fallbacks)
    assert info.mptcp is True and info.syn_data_bytes == 0
