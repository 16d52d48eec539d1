"""Reliability matrix, lab rows: faults on emulated paths between two namespaces.

Rows (see docs/reliability.md): 5 a middlebox drops SYNs carrying data (TFO blackhole),
6 a middlebox answers them with a RST, 8 one MPTCP path cut mid-download, 9 every path cut
mid-download, 11 one per cent packet loss. Clients run in the lab's client namespace, the
server (``netlab.Server``) in its server namespace; the relay counts what it dropped.
Timings are printed (``-s``) and written up in docs/reliability.md, never asserted — except
row 9's "no hang" bound, which is the row's behaviour.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import trustme

from http_fastpath import TFOStatus, stats
from http_fastpath.netlab import SERVICE_ADDRESS, Lab, LabError, PathSpec, Server

from .._clients import BOTH, KINDS, Outcome, ok, run
from .._kernel import TFO_NO_KERNEL_BLACKHOLE
from .._servers import server_tls
from .._stack import httpx

pytestmark = pytest.mark.netns


def _lab(paths: list[PathSpec]) -> Lab:
    try:
        return Lab(paths)
    except LabError as exc:
        pytest.skip(f"the network lab cannot run here: {exc}")


@pytest.fixture(scope="module")
def lab1() -> Iterator[Lab]:
    with _lab([PathSpec(delay_ms=5)]) as lab:
        yield lab


@pytest.fixture(scope="module")
def lab2() -> Iterator[Lab]:
    with _lab([PathSpec(delay_ms=5), PathSpec(delay_ms=5)]) as lab:
        yield lab


def _serve(lab: Lab, tls: Any = None, mptcp: bool = False) -> Server:
    with lab.server.entered():
        return Server(host="0.0.0.0", tls=tls, mptcp=mptcp)


def _flush_cookies(lab: Lab) -> None:
    """Forget the client kernel's TFO cookies and SYN-loss history (tcp_metrics)."""
    lab.client.ip("tcp_metrics flush all")


def _relay_count(lab: Lab, name: str) -> int:
    return sum(path["up"][name] for path in lab.stats())


def _connections(
    lab: Lab, kind: str, impl: str, url: str, verify: Any
) -> tuple[list[Outcome], list[float]]:
    """Three fresh connections to ``url``, each through a fresh client, timed.

    With the default options (MPTCP + TFO) against a plain-TCP server: 1 asks for a TFO
    cookie (and learns that the server answers MPTCP in plain TCP), 2 sends data in its SYN,
    3 comes after the verdict on 2.
    """
    outcomes: list[Outcome] = []
    elapsed: list[float] = []
    for _ in range(3):
        start = time.monotonic()
        outcomes += ok(lab.client.run(run, kind, impl, [("GET", url)], verify=verify))
        elapsed.append(time.monotonic() - start)
    return outcomes, elapsed


SCHEMES = pytest.mark.parametrize("scheme", ["http", "https"])


# -- 5: SYN-data blackhole ---------------------------------------------------------------------


@TFO_NO_KERNEL_BLACKHOLE.mark
@BOTH
@SCHEMES
def test_5_syn_data_blackhole_only_the_first_connection_pays(
    lab1: Lab, kind: str, impl: str, scheme: str, ca: trustme.CA, ca_file: str
) -> None:
    _flush_cookies(lab1)
    tls = server_tls(ca, SERVICE_ADDRESS) if scheme == "https" else None
    dropped = _relay_count(lab1, "syn_data")
    pauses = stats().tfo_pauses
    lab1.set(0, drop_syn_data=True)
    try:
        with _serve(lab1, tls) as server:
            url = f"{scheme}://{SERVICE_ADDRESS}:{server.port}/"
            outcomes, elapsed = _connections(lab1, kind, impl, url, ca_file)
            records = server.records
    finally:
        lab1.set(0, drop_syn_data=False)
    dropped = _relay_count(lab1, "syn_data") - dropped
    print(f"\n5 {kind}-{impl} {scheme}: " + ", ".join(f"{e * 1000:.0f} ms" for e in elapsed))
    assert [o.status for o in outcomes] == [200] * 3
    assert not any(r.syn_data for r in records)  # nothing with data ever got through
    if impl == "stock":
        assert dropped == 0
        return
    infos = [o.info for o in outcomes]
    assert infos[0] is not None and infos[0].tfo is TFOStatus.COOKIE_REQUESTED
    assert infos[1] is not None and infos[1].tfo is TFOStatus.SYN_RETRANSMITTED
    assert any("TFO is paused" in f for f in infos[1].fallbacks)
    # The verdict sticks: the next connection sends a plain SYN and loses nothing.
    assert infos[2] is not None and infos[2].tfo is TFOStatus.NOT_ATTEMPTED
    assert any("paused" in f for f in infos[2].fallbacks)
    assert dropped == 1
    assert stats().tfo_pauses - pauses == 1  # what an operator's exporter sees


# -- 6: SYN data answered with a reset ---------------------------------------------------------


@BOTH
@SCHEMES
def test_6_syn_data_reset_is_retried_without_data(
    lab1: Lab, kind: str, impl: str, scheme: str, ca: trustme.CA, ca_file: str
) -> None:
    _flush_cookies(lab1)
    tls = server_tls(ca, SERVICE_ADDRESS) if scheme == "https" else None
    resets = _relay_count(lab1, "syn_data_rst")
    pauses = stats().tfo_pauses
    lab1.set(0, rst_syn_data=True)
    try:
        with _serve(lab1, tls) as server:
            url = f"{scheme}://{SERVICE_ADDRESS}:{server.port}/"
            outcomes, elapsed = _connections(lab1, kind, impl, url, ca_file)
            records = server.records
    finally:
        lab1.set(0, rst_syn_data=False)
    resets = _relay_count(lab1, "syn_data_rst") - resets
    print(f"\n6 {kind}-{impl} {scheme}: " + ", ".join(f"{e * 1000:.0f} ms" for e in elapsed))
    assert [o.status for o in outcomes] == [200] * 3
    assert len(records) == 3 and not any(r.syn_data for r in records)
    if impl == "stock":
        assert resets == 0
        return
    infos = [o.info for o in outcomes]
    assert infos[0] is not None and infos[0].tfo is TFOStatus.COOKIE_REQUESTED
    assert infos[1] is not None and infos[1].tfo is TFOStatus.NOT_ATTEMPTED
    assert any("answered with a reset" in f for f in infos[1].fallbacks)
    assert infos[2] is not None and any("paused" in f for f in infos[2].fallbacks)
    assert resets == 1  # one SYN with data, reset once; every other SYN was plain
    assert stats().tfo_pauses - pauses == 1


# -- 8, 9: MPTCP paths cut mid-download -------------------------------------------------------

BODY = 6_000_000
BODY_SHA = hashlib.sha256(b"x" * BODY).hexdigest()


def _cut_later(lab: Lab, paths: list[int], after: float) -> threading.Timer:
    def cut() -> None:
        for path in paths:
            lab.cut(path)

    timer = threading.Timer(after, cut)
    timer.start()
    return timer


@pytest.mark.parametrize("kind", KINDS)
def test_8_one_mptcp_path_cut_mid_download_completes(lab2: Lab, kind: str) -> None:
    for path in (0, 1):
        lab2.set(path, rate_mbit=40)
    try:
        with _serve(lab2, mptcp=True) as server:
            url = f"http://{SERVICE_ADDRESS}:{server.port}/bytes?n={BODY}"
            timer = _cut_later(lab2, [0], 0.4)  # the initial subflow's path
            start = time.monotonic()
            try:
                (outcome,) = ok(lab2.client.run(run, kind, "fast", [("GET", url)], read_timeout=20))
            finally:
                timer.join()
            elapsed = time.monotonic() - start
            records = server.records
    finally:
        for path in (0, 1):
            lab2.set(path, rate_mbit=None, cut=False)
    print(f"\n8 {kind}: {BODY / 1e6:.0f} MB in {elapsed:.2f} s with path 0 cut at 0.4 s")
    assert len(outcome.body) == BODY and outcome.sha256 == BODY_SHA
    assert outcome.info is not None and outcome.info.mptcp is True
    assert records[0].is_mptcp


def _timeout_types(kind: str) -> tuple[type[BaseException], ...]:
    if kind == "requests":
        return (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError)
    return (httpx.ReadTimeout,)


@BOTH
def test_9_every_path_cut_is_a_clean_timeout(lab2: Lab, kind: str, impl: str) -> None:
    read_timeout = 1.0
    for path in (0, 1):
        lab2.set(path, rate_mbit=40)
    try:
        with _serve(lab2, mptcp=True) as server:
            url = f"http://{SERVICE_ADDRESS}:{server.port}/bytes?n={BODY}"
            timer = _cut_later(lab2, [0, 1], 0.3)
            start = time.monotonic()
            try:
                (outcome,) = lab2.client.run(
                    run, kind, impl, [("GET", url)], read_timeout=read_timeout
                )
            finally:
                timer.join()
            elapsed = time.monotonic() - start
    finally:
        for path in (0, 1):
            lab2.set(path, rate_mbit=None, cut=False)
    print(f"\n9 {kind}-{impl}: {type(outcome.error).__name__} after {elapsed:.2f} s")
    assert isinstance(outcome.error, _timeout_types(kind)), repr(outcome.error)
    if kind == "requests" and isinstance(outcome.error, requests.exceptions.ConnectionError):
        assert "timed out" in str(outcome.error).lower()
    # No hang: the read timeout fires after the cut (plus slack for a busy 2-core VM).
    assert elapsed < 0.3 + read_timeout + 3.0


# -- 11: one per cent loss -----------------------------------------------------------------


@BOTH
def test_11_one_percent_loss_completes_intact(lab1: Lab, kind: str, impl: str) -> None:
    lab1.set(0, loss=0.01, seed=11, rate_mbit=100)
    lost = _relay_count(lab1, "loss")
    try:
        with _serve(lab1) as server:
            url = f"http://{SERVICE_ADDRESS}:{server.port}/bytes?n={BODY // 2}"
            start = time.monotonic()
            outcomes = ok(lab1.client.run(run, kind, impl, [("GET", url)] * 2, read_timeout=20))
            elapsed = time.monotonic() - start
    finally:
        lab1.set(0, loss=0.0, rate_mbit=None)
    lost = _relay_count(lab1, "loss") - lost
    print(f"\n11 {kind}-{impl}: 2 x {BODY / 2e6:.0f} MB in {elapsed:.2f} s, {lost} packets lost up")
    expected = hashlib.sha256(b"x" * (BODY // 2)).hexdigest()
    assert [o.sha256 for o in outcomes] == [expected] * 2
