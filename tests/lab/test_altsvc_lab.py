"""EXPERIMENTAL: the Alt-Svc upgrade over an emulated 100 ms path (the network lab).

The 300 ms bound on the QUIC handshake must not cost the upgrade on an ordinary path: at
100 ms RTT the 2nd request goes over HTTP/3 (the server saw it), and once the QUIC
connection is resumed a GET rides in 0-RTT. Only physical lower bounds are asserted; the
times are printed.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator

import pytest
import trustme

from http_fastpath import connection_info
from http_fastpath.netlab import Lab, LabError, PathSpec

from .._altsvc_server import AltSvcOrigin
from .._h3server import H3TestServer
from .._servers import server_tls
from .._stack import FastpathTransport, httpx

pytestmark = pytest.mark.netns

RTT = 0.100


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    try:
        lab = Lab([PathSpec(delay_ms=RTT * 1000 / 2)])
    except LabError as exc:
        pytest.skip(f"the network lab cannot run here: {exc}")
    with lab:
        yield lab


def _timed(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(url)
    return time.perf_counter() - start, response


def test_upgrade_and_0rtt_over_a_100ms_path(lab: Lab, ca: trustme.CA, ca_file: str) -> None:
    address = lab.server_address(0)
    with lab.server.entered():  # the servers' sockets live in the server namespace
        h3 = H3TestServer(ca, address, host=address).__enter__()
        origin = AltSvcOrigin(server_tls(ca, address), f'h3=":{h3.port}"', host=address)
        origin.__enter__()
    try:
        with lab.client.entered():
            context = ssl.create_default_context(cafile=ca_file)
            transport = FastpathTransport(verify=context, http3="auto")
            with httpx.Client(transport=transport, timeout=5) as client:
                tcp, first = _timed(client, origin.url("/"))
                quic, second = _timed(client, origin.url("/"))
                time.sleep(RTT * 2)  # the session ticket arrives after the handshake
                h3.close_connections()
                time.sleep(RTT)  # ...and the close reaches the client
                early, third = _timed(client, origin.url("/"))
        infos = [connection_info(r) for r in (first, second, third)]
        assert infos[0] is not None and infos[0].transport in ("tcp", "mptcp")
        assert infos[1] is not None and infos[1].transport == "quic" and not infos[1].fallbacks
        assert infos[2] is not None and infos[2].resumed and infos[2].early_data == "accepted"
        assert len(origin.requests) == 1 and h3.epochs == ["1rtt", "0rtt"]
        assert quic >= 2 * RTT and early >= RTT  # physical lower bounds
        print(
            f"\nAlt-Svc at {RTT * 1000:.0f} ms RTT: TCP {tcp / RTT:.2f} RTT, first HTTP/3 "
            f"{quic / RTT:.2f} RTT, resumed 0-RTT {early / RTT:.2f} RTT"
        )
    finally:
        origin.__exit__(None, None, None)
        h3.__exit__(None, None, None)
