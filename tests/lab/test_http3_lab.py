"""EXPERIMENTAL HTTP/3: the round trips 0-RTT saves, timed over an emulated 100 ms path.

The network lab (``http_fastpath.netlab``) joins a client and a server namespace by a TUN
relay that delays every packet 50 ms each way. The aioquic test server runs in the server
namespace. A full QUIC handshake cannot bring the first response byte in less than two
round trips (a physical bound: it is asserted), a resumed one with the request in 0-RTT
brings it in one. Only physical lower bounds are asserted (no timing upper bound that a busy
machine could break); that the request rode in 0-RTT is proven by the server (which packet
space carried it). The times are printed; the medians of a run are in docs/http3.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from http_fastpath import connection_info
from http_fastpath.netlab import Lab, LabError, PathSpec

from .._h3server import H3TestServer
from .._stack import http3_transports, httpx

pytestmark = pytest.mark.netns

HTTP3Transport, _ = http3_transports()
RTT = 0.100


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    try:
        lab = Lab([PathSpec(delay_ms=RTT * 1000 / 2)])
    except LabError as exc:
        pytest.skip(f"the network lab cannot run here: {exc}")
    with lab:
        yield lab


def _server(lab: Lab, ca: trustme.CA, **kwargs: Any) -> H3TestServer:
    address = lab.server_address(0)
    with lab.server.entered():  # the server's thread (and socket) live in the namespace
        return H3TestServer(ca, address, host=address, **kwargs).__enter__()


def _ttfb(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    with client.stream("GET", url) as response:
        elapsed = time.perf_counter() - start
        response.read()
    return elapsed, response


def _resumed_samples(
    client: httpx.Client, srv: H3TestServer, n: int
) -> tuple[list[float], set[tuple[bool | None, str | None]]]:
    """Each sample on a new connection: the server closes the previous one first."""
    times, seen = [], set()
    for _ in range(n):
        time.sleep(RTT * 2)  # the session ticket arrives after the handshake
        srv.close_connections()
        time.sleep(RTT)  # ...and the close reaches the client
        elapsed, response = _ttfb(client, srv.url("/bytes?n=64"))
        info = connection_info(response)
        assert info is not None
        times.append(elapsed)
        seen.add((info.resumed, info.early_data))
    return times, seen


def test_0rtt_brings_the_first_byte_one_round_trip_earlier(
    lab: Lab, ca: trustme.CA, ca_file: str
) -> None:
    srv = _server(lab, ca)
    try:
        with lab.client.entered():
            transport = HTTP3Transport(verify=ca_file, backend="userspace")
            with httpx.Client(transport=transport) as client:
                cold, response = _ttfb(client, srv.url("/bytes?n=64"))
                assert connection_info(response).resumed is False  # type: ignore[union-attr]
                resumed, seen = _resumed_samples(client, srv, 3)
        assert seen == {(True, "accepted")}
        assert srv.epochs == ["1rtt", "0rtt", "0rtt", "0rtt"]
        assert cold >= 2 * RTT  # full handshake, then the request
        assert RTT <= min(resumed)  # physical: one round trip at least
        print(f"\n0-RTT: cold {cold / RTT:.2f} RTT, resumed {[round(t / RTT, 2) for t in resumed]}")
    finally:
        srv.__exit__(None, None, None)


def test_refused_0rtt_costs_no_extra_round_trip(lab: Lab, ca: trustme.CA, ca_file: str) -> None:
    """The refused 0-RTT packets are sent again at once, not after a loss timer: two
    round trips, as a full handshake (about 3.2 without the immediate resend)."""
    srv = _server(lab, ca, early_data="reject")
    try:
        with lab.client.entered():
            transport = HTTP3Transport(verify=ca_file, backend="userspace")
            with httpx.Client(transport=transport) as client:
                _ttfb(client, srv.url("/"))
                resumed, seen = _resumed_samples(client, srv, 3)
        assert seen == {(True, "rejected")}
        assert srv.epochs == ["1rtt"] * 4
        assert 2 * RTT <= min(resumed)  # physical: the request waits for the handshake
        print(
            f"\nrefused 0-RTT: {[round(t / RTT, 2) for t in resumed]} RTT (3.2 with a loss timer)"
        )
    finally:
        srv.__exit__(None, None, None)
