"""Kernel QUIC backend against a REAL ``IPPROTO_QUIC`` socket (lxin/quic module).

Skipped, with the capability probe's reason, wherever the kernel lacks the out-of-tree
``quic`` module — which includes this project's CI. Run them by hand on a kernel with the
module loaded (see docs/http3.md, "Checking the kernel backend by hand").
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import trustme

from http_fastpath import HTTP3Transport, connection_info, probe
from http_fastpath._quic_kernel import uapi_mismatch

from ._h3server import H3TestServer

_QUIC = probe().kernel_quic
pytestmark = [
    pytest.mark.kernel_quic,
    pytest.mark.skipif(not _QUIC.available, reason=f"kernel QUIC: {_QUIC.detail}"),
]


@pytest.fixture(scope="module")
def h3(ca: trustme.CA) -> Iterator[H3TestServer]:
    with H3TestServer(ca, "127.0.0.1") as server:
        yield server


def test_uapi_matches_the_pinned_revision() -> None:
    assert uapi_mismatch() is None


def test_get_and_post_over_kernel_quic(h3: H3TestServer, ca_file: str) -> None:
    with httpx.Client(transport=HTTP3Transport(verify=ca_file, backend="kernel")) as c:
        response = c.get(h3.url("/"))
        assert response.status_code == 200 and response.text == "hello over h3"
        info = connection_info(response)
        assert info is not None and info.quic_backend == "kernel"
        assert c.post(h3.url("/echo"), content=b"x" * 100_000).content == b"x" * 100_000
    assert h3.wait_for(lambda: 0x100 in h3.close_codes)


def test_auto_prefers_the_kernel(h3: H3TestServer, ca_file: str) -> None:
    with httpx.Client(transport=HTTP3Transport(verify=ca_file)) as c:
        info = connection_info(c.get(h3.url("/")))
    assert info is not None and info.quic_backend == "kernel"
