"""Kernel QUIC backend against a REAL ``IPPROTO_QUIC`` socket (lxin/quic module).

Skipped, with the capability probe's reason, wherever the kernel lacks the out-of-tree
``quic`` module — which includes this project's CI. Run them by hand on a kernel with the
module loaded (see docs/http3.md, "Checking the kernel backend by hand").
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import anyio
import httpx
import pytest
import requests
import trustme

from http_fastpath import (
    AsyncHTTP3Transport,
    HTTP3Adapter,
    HTTP3Transport,
    connection_info,
    probe,
)

from .._h3server import H3TestServer, payload

pytestmark = pytest.mark.kernel_quic


@pytest.fixture(scope="module", autouse=True)
def _kernel_quic() -> None:
    """Skip, with the probe's reason, without the module: probed when the tests run, not at
    collection (the probe opens sockets)."""
    quic = probe().kernel_quic
    if not quic.available:
        pytest.skip(f"kernel QUIC: {quic.detail}")


@pytest.fixture(scope="module")
def h3(ca: trustme.CA) -> Iterator[H3TestServer]:
    with H3TestServer(ca, "127.0.0.1") as server:
        yield server


def test_uapi_matches_the_pinned_revision() -> None:
    from http_fastpath.http3._quic_kernel import uapi_mismatch

    assert uapi_mismatch() is None


def test_get_and_post_over_kernel_quic(h3: H3TestServer, ca_file: str) -> None:
    with httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="kernel")) as c:
        response = c.get(h3.url("/"))
        assert response.status_code == 200 and response.text == "hello over h3"
        info = connection_info(response)
        assert info is not None and info.quic_backend == "kernel"
        assert (info.socket_protocol, info.tfo.value) == ("quic", "not_applicable")
        assert c.post(h3.url("/echo"), content=b"x" * 100_000).content == b"x" * 100_000
    assert h3.wait_for(lambda: 0x100 in h3.close_codes)


def test_auto_prefers_the_kernel(h3: H3TestServer, ca_file: str) -> None:
    with httpx.Client(transport=HTTP3Transport(verify=ca_file)) as c:
        info = connection_info(c.get(h3.url("/")))
    assert info is not None and info.quic_backend == "kernel"


def _kernel(ca_file: str) -> httpx.Client:
    return httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="kernel"), timeout=60)


def test_upload_beyond_the_flow_control_window(h3: H3TestServer, ca_file: str) -> None:
    """aioquic's server grants 1 MiB of stream and connection credit: 3 MB must wait for
    more (the kernel says ENOSPC meanwhile), sync, async and through requests."""
    body = os.urandom(3 * 1024 * 1024)
    digest = hashlib.sha256(body).digest()
    with _kernel(ca_file) as c:
        assert hashlib.sha256(c.post(h3.url("/echo"), content=body).content).digest() == digest

    async def main() -> bytes:
        transport = AsyncHTTP3Transport(verify=ca_file, backend="kernel")
        async with httpx.AsyncClient(transport=transport, timeout=60) as c:
            return (await c.post(h3.url("/echo"), content=body)).content

    assert hashlib.sha256(anyio.run(main)).digest() == digest
    with requests.Session() as s:
        s.mount("https://", HTTP3Adapter(backend="kernel"))
        # per request: requests lets REQUESTS_CA_BUNDLE override session.verify
        response = s.post(h3.url("/echo"), data=body, verify=ca_file)
        assert hashlib.sha256(response.content).digest() == digest


def test_10mb_download_sha256(h3: H3TestServer, ca_file: str) -> None:
    n = 10 * 1000 * 1000
    with _kernel(ca_file) as c:
        response = c.get(h3.url(f"/bytes?n={n}"))
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(payload(n)).digest()


def test_20_concurrent_streams_on_one_connection(ca: trustme.CA, ca_file: str) -> None:
    async def main(srv: H3TestServer) -> list[bytes]:
        transport = AsyncHTTP3Transport(verify=ca_file, backend="kernel")
        async with httpx.AsyncClient(transport=transport, timeout=60) as c:
            bodies: list[bytes] = [b""] * 20

            async def one(i: int) -> None:
                bodies[i] = (await c.post(srv.url("/echo"), content=payload(1000 + i))).content

            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(one, i)
            return bodies

    with H3TestServer(ca, "127.0.0.1") as srv:
        bodies = anyio.run(main, srv)
        assert bodies == [payload(1000 + i) for i in range(20)]
        assert srv.connections == 1


def test_ipv6(ca: trustme.CA, ca_file: str) -> None:
    with H3TestServer(ca, "::1", host="::1") as srv, _kernel(ca_file) as c:
        response = c.get(srv.url("/", host="[::1]"))
        info = connection_info(response)
    assert response.status_code == 200
    assert info is not None and info.quic_backend == "kernel"


def test_untrusted_ca_and_wrong_hostname_are_rejected(
    h3: H3TestServer, ca: trustme.CA, tmp_path: os.PathLike[str]
) -> None:
    other = os.path.join(tmp_path, "other-ca.pem")
    trustme.CA().cert_pem.write_to_path(other)
    before = len(h3.requests)
    with _kernel(other) as c, pytest.raises(httpx.ConnectError):
        c.get(h3.url("/"))
    assert len(h3.requests) == before
    ca_file = os.path.join(tmp_path, "ca.pem")
    ca.cert_pem.write_to_path(ca_file)
    with H3TestServer(ca, "other.example") as srv, _kernel(ca_file) as c:
        with pytest.raises(httpx.ConnectError):
            c.get(srv.url("/"))
        assert srv.requests == []
