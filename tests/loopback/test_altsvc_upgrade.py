"""EXPERIMENTAL: the Alt-Svc upgrade (``http3="auto"``) against real servers on loopback.

A TCP origin (``tests/_altsvc_server.py``, TLS with a trustme certificate) sends
``Alt-Svc: h3=":PORT"`` naming a real aioquic HTTP/3 server (``tests/_h3server.py``), or a
UDP port that swallows every datagram, or one where nothing listens. Which transport
carried each request is proven from the servers' side (each records what it served) and
from the client's datagrams (the black hole counts them), and ``connection_info`` must
agree. Runs with requests, httpx sync, httpx on asyncio and on trio (and httpx2 in the
second leg of scripts/test).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
import requests
import trustme

from http_fastpath import FastpathAdapter, connection_info
from http_fastpath._core.altsvc_cache import BrokenAlternatives

from .._altsvc_server import AltSvcOrigin, UdpBlackHole
from .._h3server import H3TestServer
from .._servers import server_tls
from .._stack import AsyncFastpathTransport, FastpathTransport, httpx

pytestmark = pytest.mark.netns

KINDS = ["requests", "httpx", "asyncio", "trio"]

#: (method, url, body) -> (status, text, ConnectionInfo)
Exchange = tuple[str, str, bytes | None]


@pytest.fixture(autouse=True)
def _no_ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def h3(ca: trustme.CA) -> Iterator[H3TestServer]:
    with H3TestServer(ca, "127.0.0.1", "localhost") as server:
        yield server


def _origin(ca: trustme.CA, alt_svc: str | None) -> AltSvcOrigin:
    return AltSvcOrigin(server_tls(ca, "127.0.0.1", "localhost"), alt_svc)


class Client:
    """One client of ``kind`` with ``http3="auto"``, kept across :meth:`run` calls (the
    async ones keep their transport; each run is one event loop)."""

    def __init__(self, kind: str, verify: Any) -> None:
        self.kind = kind
        self.verify = verify
        if kind != "requests" and isinstance(verify, str):  # httpx: a path is deprecated
            verify = ssl.create_default_context(cafile=verify)
        if kind == "requests":
            self.session = requests.Session()
            self.adapter = FastpathAdapter(http3="auto")
            self.session.mount("https://", self.adapter)
            self.session.mount("http://", self.adapter)
            self.upgrade: Any = self.adapter._upgrade
        elif kind == "httpx":
            self.transport: Any = FastpathTransport(verify=verify, http3="auto")
            self.upgrade = self.transport._upgrade
        else:
            self.transport = AsyncFastpathTransport(verify=verify, http3="auto")
            self.upgrade = self.transport._upgrade

    def run(self, exchanges: list[Exchange]) -> list[tuple[int, str, Any]]:
        if self.kind == "requests":
            out = []
            for method, url, body in exchanges:
                r = self.session.request(method, url, data=body, verify=self.verify, timeout=5)
                out.append((r.status_code, r.text, connection_info(r)))
            return out
        if self.kind == "httpx":
            with httpx.Client(transport=self.transport, timeout=5) as client:
                results = []
                for method, url, body in exchanges:
                    resp = client.request(method, url, content=body)
                    results.append((resp.status_code, resp.text, connection_info(resp)))
                return results
            raise AssertionError("unreachable")  # pragma: no cover

        async def main() -> list[tuple[int, str, Any]]:
            async with httpx.AsyncClient(transport=self.transport, timeout=5) as client:
                results = []
                for method, url, body in exchanges:
                    r = await client.request(method, url, content=body)
                    results.append((r.status_code, r.text, connection_info(r)))
                return results

        result: list[tuple[int, str, Any]] = anyio.run(main, backend=self.kind)
        return result

    def close(self) -> None:
        if self.kind == "requests":
            self.session.close()
        elif self.kind == "httpx":
            self.transport.close()


@pytest.fixture(params=KINDS)
def make_client(request: pytest.FixtureRequest, ca_file: str) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(verify: Any = ca_file) -> Client:
        client = Client(request.param, verify)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _gets(url: str, n: int) -> list[Exchange]:
    return [("GET", url, None)] * n


# -- the upgrade -------------------------------------------------------------------------------


def test_first_over_tcp_then_http3(
    make_client: Callable[..., Client], ca: trustme.CA, h3: H3TestServer
) -> None:
    with _origin(ca, f'h3=":{h3.port}"; ma=3600') as origin:
        client = make_client()
        results = client.run(_gets(origin.url("/"), 3))
    assert [status for status, _, _ in results] == [200, 200, 200]
    assert [text for _, text, _ in results] == ["hello over tcp"] + ["hello over h3"] * 2
    transports = [info.transport for _, _, info in results]
    assert transports[0] in ("tcp", "mptcp") and transports[1:] == ["quic", "quic"]
    assert all(info.fallbacks == () for _, _, info in results[1:])
    # the servers' side: one request over TCP, two over HTTP/3, on one QUIC connection
    assert len(origin.requests) == 1
    assert [(m, p) for m, p, _, _ in h3.requests] == [("GET", "/"), ("GET", "/")]
    assert h3.connections == 1
    # identity stays the origin's: :authority is the origin, not the alternative
    authority = dict(h3.requests[0][2])[b":authority"]
    assert authority == f"127.0.0.1:{origin.port}".encode()


def test_alternative_host_changes_only_the_udp_destination(
    make_client: Callable[..., Client], ca: trustme.CA, h3: H3TestServer
) -> None:
    with _origin(ca, f'h3="localhost:{h3.port}"') as origin:
        results = make_client().run(_gets(origin.url("/"), 2))
    assert [info.transport for _, _, info in results][1] == "quic"
    assert results[1][1] == "hello over h3"
    assert dict(h3.requests[0][2])[b":authority"] == f"127.0.0.1:{origin.port}".encode()


def test_post_with_a_body_goes_over_http3_once_upgraded(
    make_client: Callable[..., Client], ca: trustme.CA, h3: H3TestServer
) -> None:
    with _origin(ca, f'h3=":{h3.port}"') as origin:
        results = make_client().run(
            [("GET", origin.url("/"), None), ("POST", origin.url("/echo"), b"payload")]
        )
    assert results[1][:2] == (200, "payload") and results[1][2].transport == "quic"
    assert [(m, p, b) for m, p, _, b in h3.requests] == [("POST", "/echo", b"payload")]
    assert h3.epochs == ["1rtt"]  # a POST never rides in 0-RTT


# -- what never teaches ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_never_teaches(
    make_client: Callable[..., Client], ca: trustme.CA, h3: H3TestServer
) -> None:
    with _origin(ca, f'h3=":{h3.port}"') as origin:
        client = make_client(verify=False)
        results = client.run(_gets(origin.url("/"), 3))
    assert all(info.transport in ("tcp", "mptcp") for _, _, info in results)
    assert len(origin.requests) == 3 and h3.requests == [] and h3.connections == 0
    assert len(client.upgrade.memory.altsvc) == 0


def test_plain_http_never_upgrades(make_client: Callable[..., Client], h3: H3TestServer) -> None:
    with AltSvcOrigin(None, f'h3=":{h3.port}"') as origin:
        client = make_client()
        results = client.run(_gets(origin.url("/"), 3))
    assert all(info is None or info.transport in ("tcp", "mptcp") for _, _, info in results)
    assert len(origin.requests) == 3 and h3.connections == 0
    assert len(client.upgrade.memory.altsvc) == 0


# -- fallback ---------------------------------------------------------------------------------


def _fallback_round(client: Client, origin: AltSvcOrigin, hole: UdpBlackHole, n: int) -> Any:
    results = client.run(_gets(origin.url("/"), n))
    assert [(s, t) for s, t, _ in results] == [(200, "hello over tcp")] * n
    assert all(info.transport in ("tcp", "mptcp") for _, _, info in results)
    return results


def test_udp_dropped_every_request_succeeds_over_tcp(
    make_client: Callable[..., Client], ca: trustme.CA
) -> None:
    with UdpBlackHole() as hole, _origin(ca, f'h3=":{hole.port}"') as origin:
        client = make_client()
        clock = [1000.0]
        client.upgrade.memory.clock = lambda: clock[0]
        # 1st: learns the alternative (no QUIC yet)
        _fallback_round(client, origin, hole, 1)
        assert hole.datagrams() == 0
        # 2nd: tries QUIC, which never completes: TCP within the bound, with a note
        [(_, _, info)] = _fallback_round(client, origin, hole, 1)
        assert hole.datagrams() >= 1
        [note] = info.fallbacks
        assert note.startswith(f"http3: QUIC to h3 alternative 127.0.0.1:{hole.port}")
        assert "not tried for 300 s" in note
        # later ones go straight to TCP: not one datagram
        results = _fallback_round(client, origin, hole, 3)
        assert hole.datagrams() == 0
        assert all(info.fallbacks == () for _, _, info in results)
        # once the back-off ran out, QUIC is tried again, and fails again (back-off doubled)
        clock[0] += BrokenAlternatives().base + 1
        [(_, _, info)] = _fallback_round(client, origin, hole, 1)
        assert hole.datagrams() >= 1 and "not tried for 600 s" in info.fallbacks[0]
        _fallback_round(client, origin, hole, 1)
        assert hole.datagrams() == 0
    assert len(origin.requests) == 7


def test_nothing_listening_on_the_alternative(
    make_client: Callable[..., Client], ca: trustme.CA
) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: ICMP port unreachable
    with _origin(ca, f'h3=":{closed_port}"') as origin:
        client = make_client()
        results = client.run(_gets(origin.url("/"), 3))
    assert [(s, t) for s, t, _ in results] == [(200, "hello over tcp")] * 3
    assert results[0][2].fallbacks == ()
    assert len(results[1][2].fallbacks) == 1 and results[2][2].fallbacks == ()
    assert len(origin.requests) == 3


def test_post_falls_back_when_quic_never_completes(
    make_client: Callable[..., Client], ca: trustme.CA
) -> None:
    with UdpBlackHole() as hole, _origin(ca, f'h3=":{hole.port}"') as origin:
        client = make_client()
        results = client.run(
            [("GET", origin.url("/"), None), ("POST", origin.url("/echo"), b"once")]
        )
    assert results[1][:2] == (200, "once") and results[1][2].fallbacks
    # the body reached the origin exactly once, over TCP
    assert [(m, b) for m, _, b in origin.requests] == [("GET", b""), ("POST", b"once")]


# -- errors on the HTTP/3 path after the handshake ---------------------------------------------


def test_get_reset_on_http3_is_sent_again_over_tcp(
    make_client: Callable[..., Client], ca: trustme.CA, h3: H3TestServer
) -> None:
    with _origin(ca, f'h3=":{h3.port}"') as origin:
        results = make_client().run(
            [("GET", origin.url("/"), None), ("GET", origin.url("/reset-early"), None)]
        )
    # the HTTP/3 server reset the stream before any answer: a GET may go again, over TCP
    assert results[1][:2] == (200, "hello over tcp")
    assert "H3StreamError" in results[1][2].fallbacks[0]
    assert [p for _, p, _ in origin.requests] == ["/", "/reset-early"]
    assert [p for _, p, _, _ in h3.requests] == ["/reset-early"]


def test_post_reset_on_http3_is_not_sent_twice(
    make_client: Callable[..., Client], ca: trustme.CA, h3: H3TestServer
) -> None:
    with _origin(ca, f'h3=":{h3.port}"') as origin:
        client = make_client()
        client.run(_gets(origin.url("/"), 1))
        with pytest.raises((requests.ConnectionError, httpx.RemoteProtocolError)):
            client.run([("POST", origin.url("/reset-early"), b"once")])
    # the server may have acted on it: the error is the caller's, as on TCP
    assert [(m, b) for m, _, _, b in h3.requests] == [("POST", b"once")]
    assert [m for m, _, _ in origin.requests] == ["GET"]


# -- resumption on upgraded connections --------------------------------------------------------


def test_upgraded_connection_resumes_with_0rtt(
    make_client: Callable[..., Client], ca: trustme.CA, h3: H3TestServer
) -> None:
    with _origin(ca, f'h3=":{h3.port}"') as origin:
        client = make_client()
        client.run(_gets(origin.url("/"), 2))
        assert h3.wait_for(lambda: h3.tickets_issued >= 1)
        h3.close_connections()
        [(status, text, info)] = client.run(_gets(origin.url("/"), 1))
    assert (status, text, info.transport) == (200, "hello over h3", "quic")
    assert info.resumed is True and info.early_data in ("accepted", "sent")
    assert h3.wait_for(lambda: len(h3.handshakes) == 2)
    assert h3.handshakes == [(False, False), (True, True)] and h3.epochs == ["1rtt", "0rtt"]


# -- proxies -----------------------------------------------------------------------------------


def test_requests_through_a_proxy_stay_on_tcp_and_never_teach(
    ca: trustme.CA, ca_file: str, h3: H3TestServer
) -> None:
    from http_fastpath.netlab import Proxy

    with Proxy() as proxy, _origin(ca, f'h3=":{h3.port}"') as origin:
        proxies = {"https": proxy.url}
        with requests.Session() as session:
            adapter = FastpathAdapter(http3="auto")
            session.mount("https://", adapter)
            for _ in range(2):  # through the proxy: nothing learnt
                r = session.get(origin.url("/"), verify=ca_file, proxies=proxies, timeout=5)
                assert r.text == "hello over tcp"
            assert adapter._upgrade is not None and len(adapter._upgrade.memory.altsvc) == 0
            session.get(origin.url("/"), verify=ca_file, timeout=5)  # direct: learns
            assert len(adapter._upgrade.memory.altsvc) == 1
            r = session.get(origin.url("/"), verify=ca_file, proxies=proxies, timeout=5)
            assert r.text == "hello over tcp"  # known, but through the proxy: TCP
            assert session.get(origin.url("/"), verify=ca_file, timeout=5).text == "hello over h3"
    assert len(origin.requests) == 4 and len(h3.requests) == 1


def test_httpx_proxy_routes_stay_on_tcp(ca: trustme.CA, ca_file: str, h3: H3TestServer) -> None:
    from http_fastpath.netlab import Proxy

    from .._stack import fastpath_client

    context = ssl.create_default_context(cafile=ca_file)
    with Proxy() as proxy, _origin(ca, f'h3=":{h3.port}"') as origin:
        with fastpath_client(proxy=proxy.url, verify=context, http3="auto") as client:
            texts = [client.get(origin.url("/")).text for _ in range(3)]
    assert texts == ["hello over tcp"] * 3 and h3.requests == []


# -- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, "on", None, "h3"])
def test_bad_http3_value_is_a_clear_value_error(value: object) -> None:
    for build in (FastpathAdapter, FastpathTransport, AsyncFastpathTransport):
        with pytest.raises(ValueError, match=r"http3.*allowed: False \(the default\) or 'auto'"):
            build(http3=value)  # type: ignore[arg-type]  # wrong on purpose


def test_default_is_off_and_pickled_adapter_keeps_http3() -> None:
    import pickle

    assert FastpathAdapter()._upgrade is None and FastpathTransport()._upgrade is None
    adapter = pickle.loads(pickle.dumps(FastpathAdapter(http3="auto")))
    assert adapter.fastpath_http3 == "auto" and adapter._upgrade is not None
    assert pickle.loads(pickle.dumps(FastpathAdapter()))._upgrade is None


# -- the process-wide opt-in (HTTP_FASTPATH=...,h3) --------------------------------------------


def test_install_http3_upgrades_stock_clients_with_one_memory(
    ca: trustme.CA, ca_file: str, h3: H3TestServer
) -> None:
    from http_fastpath import FastpathOptions
    from http_fastpath._integrations import autoinstall, h3_optin

    context = ssl.create_default_context(cafile=ca_file)
    autoinstall.install(FastpathOptions(), http3=True)
    try:
        status = autoinstall.status()
        patched = status["patched"]
        assert isinstance(patched, list)
        assert status["http3"] is True and "requests.adapters" in patched
        with _origin(ca, f'h3=":{h3.port}"') as origin:
            with requests.Session() as session:  # the stock HTTPAdapter
                infos = [
                    connection_info(session.get(origin.url("/"), verify=ca_file, timeout=5))
                    for _ in range(2)
                ]
            with httpx.Client(verify=context, timeout=5) as client:  # the stock HTTPTransport
                infos += [connection_info(client.get(origin.url("/"))) for _ in range(2)]

            async def main() -> list[Any]:
                async with httpx.AsyncClient(verify=context, timeout=5) as client:
                    return [connection_info(await client.get(origin.url("/")))]

            infos += anyio.run(main)
    finally:
        autoinstall.uninstall()
        h3_optin._h3_memory_made.clear()  # the next test starts with no memory
    assert infos[0] is not None and infos[0].transport in ("tcp", "mptcp")
    # the memory is the process's: httpx knew the alternative from requests' first answer
    assert [info and info.transport for info in infos[1:]] == ["quic"] * 4
    assert len(origin.requests) == 1 and len(h3.requests) == 4
    assert autoinstall.status()["http3"] is False


def test_install_without_http3_leaves_stock_clients_alone(
    ca: trustme.CA, ca_file: str, h3: H3TestServer
) -> None:
    from http_fastpath import FastpathOptions
    from http_fastpath._integrations import autoinstall

    autoinstall.install(FastpathOptions())
    try:
        patched = autoinstall.status()["patched"]
        assert isinstance(patched, list) and "requests.adapters" not in patched
        with _origin(ca, f'h3=":{h3.port}"') as origin, requests.Session() as session:
            for _ in range(3):
                session.get(origin.url("/"), verify=ca_file, timeout=5)
    finally:
        autoinstall.uninstall()
    assert len(origin.requests) == 3 and h3.connections == 0


def test_install_http3_keeps_excluded_hosts_on_tcp(
    ca: trustme.CA, ca_file: str, h3: H3TestServer
) -> None:
    from http_fastpath import FastpathOptions
    from http_fastpath._integrations import autoinstall, h3_optin

    autoinstall.install(FastpathOptions(), http3=True, exclude="127.0.0.1")
    try:
        with _origin(ca, f'h3=":{h3.port}"') as origin, requests.Session() as session:
            for _ in range(3):
                session.get(origin.url("/"), verify=ca_file, timeout=5)
    finally:
        autoinstall.uninstall()
        h3_optin._h3_memory_made.clear()  # the next test starts with no memory
    assert len(origin.requests) == 3 and h3.connections == 0


def test_read_timeout_before_the_headers_on_http3(
    ca: trustme.CA, ca_file: str, h3: H3TestServer
) -> None:
    """No answer over HTTP/3 within the read timeout: a GET goes again over TCP, a POST
    gets the read timeout (the server may be acting on it)."""
    with _origin(ca, f'h3=":{h3.port}"') as origin, requests.Session() as session:
        session.mount("https://", FastpathAdapter(http3="auto"))
        session.get(origin.url("/"), verify=ca_file, timeout=5)
        r = session.get(origin.url("/slow?s=2"), verify=ca_file, timeout=(5, 0.3))
        info = connection_info(r)
        assert r.text == "hello over tcp"
        assert info is not None and "H3ReadTimeout" in info.fallbacks[0]
        # the alternative is now kept out: wait it out with a clock that jumped ahead
        upgrade: Any = session.get_adapter("https://").__dict__["_upgrade"]
        now = upgrade.memory.clock()
        upgrade.memory.clock = lambda: now + 301
        assert session.get(origin.url("/"), verify=ca_file, timeout=5).text == "hello over h3"
        with pytest.raises(requests.ReadTimeout):
            session.post(origin.url("/slow?s=2"), data=b"once", verify=ca_file, timeout=(5, 0.3))
    assert [m for m, _, _ in origin.requests] == ["GET", "GET"]
    assert [(m, p) for m, p, _, _ in h3.requests] == [
        ("GET", "/slow?s=2"),
        ("GET", "/"),
        ("POST", "/slow?s=2"),
    ]
