"""HTTP/2 over TLS against a real h2 server (hypercorn) on loopback, ClientHello in the SYN.

hypercorn never sets ``TCP_FASTOPEN`` on its listener, so the test switches on the
kernel's "TFO on every listener" bit (``net.ipv4.tcp_fastopen=1027``) in the test
namespace; the server side is then checked with the namespace's ``TcpExt`` counters.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from http_fastpath import connection_info
from http_fastpath.netlab import next_loopback

from .._httpx_util import ASYNC_LIBS, run_async
from .._observe import tcp_ext
from .._stack import AsyncFastpathTransport, FastpathTransport, httpx

pytestmark = pytest.mark.netns

PORT = 8443


class H2Server:
    """hypercorn serving a tiny ASGI app in its own thread; records each request's client."""

    def __init__(self, host: str, certfile: str, keyfile: str) -> None:
        from hypercorn.config import Config

        self.host = host
        self.url = f"https://{host}:{PORT}"
        self.clients: list[tuple[str, int]] = []
        self.versions: list[str] = []
        self.config = Config()
        self.config.bind = [f"{host}:{PORT}"]
        self.config.certfile = certfile
        self.config.keyfile = keyfile
        self.config.alpn_protocols = ["h2", "http/1.1"]
        self.config.loglevel = "WARNING"
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def app(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        client = scope["client"]
        self.clients.append((client[0], client[1]))
        self.versions.append(scope["http_version"])
        await asyncio.sleep(0.01)  # keep streams open at the same time
        body = f"stream ok {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    def _run(self) -> None:
        from hypercorn.asyncio import serve

        async def main() -> None:
            self._stop = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._ready.set)
            await serve(self.app, self.config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]

        asyncio.run(main())

    def __enter__(self) -> H2Server:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def h2_server(ca: trustme.CA, tmp_path: Path, sysctl: Any) -> Iterator[H2Server]:
    sysctl("net.ipv4.tcp_fastopen", "1027")
    host = next_loopback()
    cert = ca.issue_cert(host)
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    with H2Server(host, str(certfile), str(keyfile)) as server:
        # hypercorn binds asynchronously: wait until the port answers. The first fastpath
        # connection also gets the TFO cookie for this address.
        for _ in range(200):
            try:
                transport = FastpathTransport(verify=False)
                with httpx.Client(transport=transport, timeout=1) as probe:
                    probe.get(server.url)
                break
            except httpx.TransportError:
                import time

                time.sleep(0.025)
        server.clients.clear()
        server.versions.clear()
        yield server


def test_sync_h2_clienthello_in_the_syn(h2_server: H2Server, client_tls: ssl.SSLContext) -> None:
    active, passive = tcp_ext("TCPFastOpenActive"), tcp_ext("TCPFastOpenPassive")
    with httpx.Client(transport=FastpathTransport(verify=client_tls, http2=True)) as client:
        resp = client.get(f"{h2_server.url}/one")
        assert resp.http_version == "HTTP/2"
        assert resp.text == "stream ok /one"
        info = connection_info(resp)
    assert info is not None and info.tfo_used and info.syn_data_bytes > 0
    assert tcp_ext("TCPFastOpenActive") - active == 1
    assert tcp_ext("TCPFastOpenPassive") - passive == 1
    assert h2_server.versions == ["2"]


@pytest.mark.parametrize("lib", ASYNC_LIBS)
def test_async_h2_fifty_streams_on_one_connection(
    lib: str, h2_server: H2Server, client_tls: ssl.SSLContext
) -> None:
    async def main(url: str) -> list[httpx.Response]:
        transport = AsyncFastpathTransport(verify=client_tls, http2=True)
        async with httpx.AsyncClient(transport=transport) as client:
            out: list[httpx.Response] = []
            if lib == "asyncio":
                out = list(await asyncio.gather(*(client.get(f"{url}/{i}") for i in range(50))))
            else:
                import trio

                async def one(i: int) -> None:
                    out.append(await client.get(f"{url}/{i}"))

                async with trio.open_nursery() as nursery:
                    for i in range(50):
                        nursery.start_soon(one, i)
            # Looked at while the connection is open: the proof is read whole (a proof
            # first read after the close has no local address).
            info = connection_info(out[0])
            assert info is not None and info.local_address is not None
            return out

    active, passive = tcp_ext("TCPFastOpenActive"), tcp_ext("TCPFastOpenPassive")
    responses = run_async(lib, main, h2_server.url)
    assert len(responses) == 50
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert sorted(r.text for r in responses) == sorted(f"stream ok /{i}" for i in range(50))
    infos = {id(connection_info(r)) for r in responses}
    assert len(infos) == 1, "all 50 requests must share one connection"
    info = connection_info(responses[0])
    assert info is not None and info.tfo_used
    # The server's view: 50 HTTP/2 requests, all from the same client port.
    assert len(h2_server.clients) == 50
    assert len(set(h2_server.clients)) == 1
    assert set(h2_server.versions) == {"2"}
    assert info.local_address == h2_server.clients[0]
    assert tcp_ext("TCPFastOpenActive") - active == 1
    assert tcp_ext("TCPFastOpenPassive") - passive == 1
