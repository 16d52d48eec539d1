"""EXPERIMENTAL HTTP/3 end to end over the *userspace* QUIC backend (aioquic over UDP).

A real HTTP/3 server (aioquic's server API, ``tests/_h3server.py``) runs on loopback with
a trustme certificate; the httpx transports and the requests adapter talk to it. The
kernel QUIC backend is NOT exercised here (see test_http3_kernel_*.py).
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import Iterator

import anyio
import pytest
import requests
import trustme

import http_fastpath
from http_fastpath import (
    CapabilityError,
    HTTP3Adapter,
    OptionError,
    TFOStatus,
    connection_info,
)
from http_fastpath._core.sockets import new_socket

from .._h3server import H3TestServer, payload
from .._observe import fd_count
from .._stack import http3_transports, httpx

HTTP3Transport, AsyncHTTP3Transport = http3_transports()

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def h3(ca: trustme.CA) -> Iterator[H3TestServer]:
    with H3TestServer(ca, "127.0.0.1", "localhost") as server:
        yield server


@pytest.fixture
def client(ca_file: str) -> Iterator[httpx.Client]:
    with httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="userspace")) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override session.verify (stock
    # behaviour); SSL_CERT_FILE / SSL_CERT_DIR feed httpx's verify=True.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def session(ca_file: str) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.mount("https://", HTTP3Adapter(backend="userspace"))
        s.verify = ca_file
        yield s


def _udp_port(bound: bool) -> tuple[int, socket.socket | None]:
    sock = new_socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if bound:
        return port, sock
    sock.close()
    return port, None


# -- httpx, sync -----------------------------------------------------------------------------


def test_httpx_get(h3: H3TestServer, client: httpx.Client) -> None:
    response = client.get(h3.url("/"))
    assert response.status_code == 200
    assert response.text == "hello over h3"
    assert response.http_version == "HTTP/3"
    info = connection_info(response)
    assert info is not None
    assert (info.transport, info.quic_backend) == ("quic", "userspace")
    assert (info.socket_protocol, info.tfo) == ("udp", TFOStatus.NOT_APPLICABLE)
    assert info.peer_address == ("127.0.0.1", h3.port)
    method, path, headers, _ = h3.requests[-1]
    assert (method, path) == ("GET", "/")
    names = [n for n, _ in headers]
    assert b":authority" in names and b"host" not in names and b"connection" not in names


def test_httpx_post_body_round_trip(h3: H3TestServer, client: httpx.Client) -> None:
    body = payload(200_000)
    response = client.post(h3.url("/echo"), content=body)
    assert response.status_code == 200
    assert response.headers["x-method"] == "POST"
    assert response.content == body
    assert h3.requests[-1][3] == body  # what the server received


def test_httpx_requests_share_one_connection(ca: trustme.CA, ca_file: str) -> None:
    with H3TestServer(ca, "127.0.0.1") as srv:
        with httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="userspace")) as c:
            for i in range(3):
                assert c.put(srv.url("/echo"), content=b"%d" % i).content == b"%d" % i
        assert srv.connections == 1
        # a clean close: the server saw CONNECTION_CLOSE with H3_NO_ERROR (0x100)
        assert srv.wait_for(lambda: bool(srv.close_codes))
        assert srv.close_codes == [0x100]


def test_httpx_10mb_download_sha256(h3: H3TestServer, client: httpx.Client) -> None:
    digest = hashlib.sha256()
    size = 0
    with client.stream("GET", h3.url(f"/bytes?n={TEN_MB}")) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            digest.update(chunk)
            size += len(chunk)
    assert size == TEN_MB
    assert digest.hexdigest() == response.headers["x-sha256"]
    assert digest.hexdigest() == hashlib.sha256(payload(TEN_MB)).hexdigest()


def test_httpx_closing_a_response_early_stops_the_stream(
    h3: H3TestServer, client: httpx.Client
) -> None:
    with client.stream("GET", h3.url(f"/bytes?n={TEN_MB}")) as response:
        first = next(response.iter_raw())
        assert first
    # H3_REQUEST_CANCELLED (0x10c) in STOP_SENDING: the server stops sending the rest
    assert h3.wait_for(lambda: any(code == 0x10C for _, code in h3.stop_sending))
    assert client.get(h3.url("/")).status_code == 200  # the connection is still good


def test_no_fd_or_thread_leak(h3: H3TestServer, ca_file: str) -> None:
    import threading

    before_fds, before_threads = fd_count(), threading.active_count()
    port, _ = _udp_port(bound=False)
    for _ in range(3):
        with httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="userspace")) as c:
            assert c.get(h3.url("/")).status_code == 200
            with pytest.raises(httpx.ConnectError):
                c.get(f"https://127.0.0.1:{port}/", timeout=3.0)
        with httpx.Client(transport=HTTP3Transport(backend="userspace")) as c:
            with pytest.raises(httpx.ConnectError):
                c.get(h3.url("/"))  # untrusted certificate
    assert fd_count() == before_fds
    assert threading.active_count() == before_threads


@pytest.mark.parametrize("status", [404, 500, 503])
def test_httpx_server_error_status_is_a_response(
    h3: H3TestServer, client: httpx.Client, status: int
) -> None:
    response = client.get(h3.url(f"/status/{status}"))
    assert response.status_code == status
    with pytest.raises(httpx.HTTPStatusError):
        response.raise_for_status()


def test_httpx_stream_reset_is_remote_protocol_error(
    h3: H3TestServer, client: httpx.Client
) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="reset"):
        client.get(h3.url("/reset"))  # mid-body
    with pytest.raises(httpx.RemoteProtocolError, match="reset"):
        client.get(h3.url("/reset-early"))  # before the headers
    # the connection survives a reset stream
    assert client.get(h3.url("/")).status_code == 200


def test_httpx_read_timeout(h3: H3TestServer, ca_file: str) -> None:
    with httpx.Client(
        transport=HTTP3Transport(verify=ca_file, backend="userspace"),
        timeout=httpx.Timeout(5.0, read=0.3),
    ) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get(h3.url("/slow?s=2"))


def test_httpx_nothing_listening_is_connect_error(ca_file: str) -> None:
    port, _ = _udp_port(bound=False)
    with httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="userspace")) as c:
        with pytest.raises((httpx.ConnectError, httpx.ConnectTimeout)):
            c.get(f"https://127.0.0.1:{port}/", timeout=3.0)


def test_httpx_silent_server_is_connect_timeout(ca_file: str) -> None:
    port, sock = _udp_port(bound=True)
    assert sock is not None
    with sock, httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="userspace")) as c:
        with pytest.raises(httpx.ConnectTimeout):
            c.get(f"https://127.0.0.1:{port}/", timeout=0.5)


def test_httpx_untrusted_certificate_is_connect_error(
    h3: H3TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    # default verify=True: certifi's bundle, which does not contain the test CA
    caplog.set_level(logging.WARNING)
    with httpx.Client(transport=HTTP3Transport(backend="userspace")) as c:
        with pytest.raises(httpx.ConnectError, match="TLS handshake"):
            c.get(h3.url("/"))
    # aioquic's own line for the rejection goes to our logger, which has a handler (a
    # NullHandler), so Python's last-resort handler does not print it on stderr.
    client_lines = [r for r in caplog.records if "unable to get local issuer" in r.getMessage()]
    assert client_lines and all(r.name == "http_fastpath.quic" for r in client_lines)
    assert any(
        isinstance(h, logging.NullHandler) for h in logging.getLogger("http_fastpath").handlers
    )


def test_httpx_wrong_hostname_is_rejected(ca: trustme.CA, ca_file: str) -> None:
    with H3TestServer(ca, "other.example") as srv:
        with httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="userspace")) as c:
            with pytest.raises(httpx.ConnectError, match="127.0.0.1"):
                c.get(srv.url("/"))
        assert srv.requests == []


def test_httpx_verify_false_and_sslcontext(h3: H3TestServer, ca: trustme.CA) -> None:
    with httpx.Client(transport=HTTP3Transport(verify=False, backend="userspace")) as c:
        assert c.get(h3.url("/")).status_code == 200
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # only the test CA (no system store)
    ca.configure_trust(ctx)
    with httpx.Client(transport=HTTP3Transport(verify=ctx, backend="userspace")) as c:
        assert c.get(h3.url("/")).status_code == 200


def test_bad_options_are_clear_errors(tmp_path: object) -> None:
    with pytest.raises(OptionError, match="backend"):
        HTTP3Transport(backend="quantum")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="verify"):
        HTTP3Transport(verify="/nonexistent/ca.pem")


def test_backend_kernel_without_module_raises_capability_error() -> None:
    feature = http_fastpath.probe().kernel_quic
    if feature.available:
        pytest.skip("this kernel has IPPROTO_QUIC: see test_http3_kernel_real.py")
    # At construction, not at the first request (httpx, async httpx and requests alike).
    for make in (
        lambda: HTTP3Transport(backend="kernel"),
        lambda: AsyncHTTP3Transport(backend="kernel"),
        lambda: HTTP3Adapter(backend="kernel"),
    ):
        with pytest.raises(CapabilityError, match="'quic' kernel module"):
            make()


def test_client_certificates_are_refused_with_a_clear_error() -> None:
    """httpx's transports take ``cert=``; HTTP/3 has none yet: OptionError, not TypeError."""
    for cls in (HTTP3Transport, AsyncHTTP3Transport):
        with pytest.raises(OptionError, match="cert"):
            cls(cert="client.pem")


def test_auto_backend_is_the_kernel_only_where_the_kernel_offers_quic(
    h3: H3TestServer, ca_file: str
) -> None:
    """``backend="auto"``: kernel QUIC where the probe finds ``IPPROTO_QUIC``, else userspace."""
    expected = "kernel" if http_fastpath.probe().kernel_quic.available else "userspace"
    with httpx.Client(transport=HTTP3Transport(verify=ca_file)) as c:
        info = connection_info(c.get(h3.url("/")))
    assert info is not None and info.quic_backend == expected


# -- httpx, async ----------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
def test_async_20_concurrent_streams(ca: trustme.CA, ca_file: str, anyio_backend: str) -> None:
    async def main(srv: H3TestServer) -> list[httpx.Response]:
        transport = AsyncHTTP3Transport(verify=ca_file, backend="userspace")
        async with httpx.AsyncClient(transport=transport) as c:
            responses: list[httpx.Response | None] = [None] * 20

            async def one(i: int) -> None:
                responses[i] = await c.post(srv.url("/echo"), content=payload(1000 + i))

            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(one, i)
            return [r for r in responses if r is not None]

    with H3TestServer(ca, "127.0.0.1") as srv:
        responses = anyio.run(main, srv, backend=anyio_backend)
        assert len(responses) == 20
        for i, response in enumerate(responses):
            assert response.status_code == 200
            assert response.content == payload(1000 + i)
            assert response.http_version == "HTTP/3"
        assert srv.connections == 1  # 20 streams multiplexed on one QUIC connection
        assert len(srv.requests) == 20
        assert srv.wait_for(lambda: bool(srv.close_codes))
        assert srv.close_codes == [0x100]


def test_async_10mb_download_and_errors(h3: H3TestServer, ca_file: str) -> None:
    async def main() -> None:
        transport = AsyncHTTP3Transport(verify=ca_file, backend="userspace")
        async with httpx.AsyncClient(transport=transport) as c:
            digest = hashlib.sha256()
            async with c.stream("GET", h3.url(f"/bytes?n={TEN_MB}")) as response:
                async for chunk in response.aiter_raw():
                    digest.update(chunk)
            assert digest.hexdigest() == response.headers["x-sha256"]
            with pytest.raises(httpx.RemoteProtocolError):
                await c.get(h3.url("/reset"))
            with pytest.raises(httpx.ReadTimeout):
                await c.get(h3.url("/slow?s=2"), timeout=httpx.Timeout(5.0, read=0.3))
            port, _ = _udp_port(bound=False)
            with pytest.raises((httpx.ConnectError, httpx.ConnectTimeout)):
                await c.get(f"https://127.0.0.1:{port}/", timeout=3.0)

    anyio.run(main)


def test_async_untrusted_certificate(h3: H3TestServer) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=AsyncHTTP3Transport(backend="userspace")) as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(h3.url("/"))

    anyio.run(main)


# -- requests --------------------------------------------------------------------------------


def test_requests_get_and_post(h3: H3TestServer, session: requests.Session) -> None:
    response = session.get(h3.url("/"))
    assert response.status_code == 200
    assert response.text == "hello over h3"
    info = connection_info(response)
    assert info is not None and info.quic_backend == "userspace"
    body = payload(100_000)
    response = session.post(h3.url("/echo"), data=body)
    assert response.content == body
    assert response.headers["x-method"] == "POST"
    response = session.post(h3.url("/echo"), json={"a": 1})
    assert response.json() == {"a": 1}


def test_requests_10mb_streaming_sha256(h3: H3TestServer, session: requests.Session) -> None:
    digest = hashlib.sha256()
    size = 0
    with session.get(h3.url(f"/bytes?n={TEN_MB}"), stream=True) as response:
        for chunk in response.iter_content(65536):
            digest.update(chunk)
            size += len(chunk)
    assert size == TEN_MB
    assert digest.hexdigest() == response.headers["x-sha256"]


def test_requests_errors(h3: H3TestServer, session: requests.Session) -> None:
    assert session.get(h3.url("/status/500")).status_code == 500
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.get(h3.url("/reset"))  # mid-body, as urllib3 reports a broken body
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(h3.url("/reset-early"))  # before the headers
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(h3.url("/slow?s=2"), timeout=(5, 0.3))
    port, _ = _udp_port(bound=False)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"https://127.0.0.1:{port}/", timeout=3)
    silent, sock = _udp_port(bound=True)
    assert sock is not None
    with sock, pytest.raises(requests.exceptions.ConnectTimeout):
        session.get(f"https://127.0.0.1:{silent}/", timeout=0.5)


def test_requests_tls_failures_are_ssl_errors(ca: trustme.CA, ca_file: str) -> None:
    with H3TestServer(ca, "127.0.0.1") as srv, requests.Session() as s:
        s.mount("https://", HTTP3Adapter(backend="userspace"))
        with pytest.raises(requests.exceptions.SSLError):
            s.get(srv.url("/"))  # certifi does not trust the test CA
        assert s.get(srv.url("/"), verify=False).status_code == 200
        assert s.get(srv.url("/"), verify=ca_file).status_code == 200
    with H3TestServer(ca, "other.example") as srv, requests.Session() as s:
        s.mount("https://", HTTP3Adapter(backend="userspace"))
        with pytest.raises(requests.exceptions.SSLError, match="127.0.0.1"):
            s.get(srv.url("/"), verify=ca_file)
        assert srv.requests == []


def test_requests_proxy_goes_to_stock_adapter(
    h3: H3TestServer, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = _udp_port(bound=False)  # nothing listens there on TCP either
    before = len(h3.requests)
    with pytest.raises(requests.exceptions.ProxyError):
        session.get(h3.url("/"), proxies={"https": f"http://127.0.0.1:{port}"}, timeout=3)
    assert len(h3.requests) == before  # the request never went over HTTP/3


def test_requests_threads_share_one_connection(ca: trustme.CA, ca_file: str) -> None:
    import concurrent.futures

    with H3TestServer(ca, "127.0.0.1") as srv, requests.Session() as s:
        s.mount("https://", HTTP3Adapter(backend="userspace"))

        def one(i: int) -> bytes:
            return s.post(srv.url("/echo"), data=payload(500 + i), verify=ca_file).content

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(40)))
        assert results == [payload(500 + i) for i in range(40)]
        assert srv.connections == 1


def test_requests_adapter_pickles() -> None:
    import pickle

    adapter = HTTP3Adapter(backend="userspace", max_retries=2)
    clone = pickle.loads(pickle.dumps(adapter))
    assert clone._h3_backend == "userspace"
    assert clone.max_retries.total == 2


def test_requests_adapter_refuses_client_certificates(session: requests.Session) -> None:
    with pytest.raises(OptionError, match="cert"):
        session.get("https://127.0.0.1:9/", cert="client.pem")
