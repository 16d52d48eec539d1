"""Failures raise the same httpx exceptions as stock httpx, also once a TFO cookie is cached.

Every case runs through stock ``httpx.HTTPTransport``/``AsyncHTTPTransport`` and through
ours, sync, asyncio and trio, against real (dead, silent or misconfigured) servers.
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import trustme

from http_fastpath import connection_info
from http_fastpath.netlab import Server, full_backlog, next_loopback, silent_listener

from .._httpx_util import run_async
from .._observe import active_opens, connect_attempts
from .._servers import https, server_tls
from .._stack import AsyncFastpathTransport, FastpathTransport, httpx

pytestmark = pytest.mark.netns

KINDS = [
    (impl, lib) for impl in ("stock", "ours") for lib in ("sync", "asyncio", "trio")
]  # fmt: skip
IDS = [f"{impl}-{lib}" for impl, lib in KINDS]


def fetch(impl: str, lib: str, url: str, timeout: httpx.Timeout, **kw: Any) -> BaseException:
    """Do one GET; return the exception it raised (the test fails if none)."""
    if lib == "sync":
        transport: Any = (httpx.HTTPTransport if impl == "stock" else FastpathTransport)(**kw)
        try:
            with httpx.Client(transport=transport, timeout=timeout) as client:
                client.get(url)
        except httpx.HTTPError as exc:
            return exc
        raise AssertionError("no exception")

    async def main() -> BaseException:
        cls: Any = httpx.AsyncHTTPTransport if impl == "stock" else AsyncFastpathTransport
        try:
            async with httpx.AsyncClient(transport=cls(**kw), timeout=timeout) as client:
                await client.get(url)
        except httpx.HTTPError as exc:
            return exc
        raise AssertionError("no exception")

    return run_async(lib, main)


@pytest.fixture(scope="module")
def primed() -> str:
    """A loopback address for which the kernel has a TFO cookie cached (server gone)."""
    host = next_loopback()
    with Server(host=host) as server:
        transport = FastpathTransport(mptcp=False)
        with httpx.Client(transport=transport) as client:
            for _ in range(2):
                info = connection_info(client.get(server.url, headers={"Connection": "close"}))
        assert info is not None and info.tfo_used
    return host


def target(cached: bool, primed: str) -> str:
    """The primed address (a cookie is cached) or a fresh one (none is)."""
    return primed if cached else next_loopback()


T = httpx.Timeout(5.0, connect=0.5)


@pytest.mark.parametrize("cached", [False, True], ids=["fresh", "cookie"])
@pytest.mark.parametrize(("impl", "lib"), KINDS, ids=IDS)
def test_refused_is_connect_error(impl: str, lib: str, cached: bool, primed: str) -> None:
    host = target(cached, primed)
    exc = fetch(impl, lib, f"http://{host}:8080/", T)
    assert type(exc) is httpx.ConnectError
    if impl == "ours":  # anyio's own message is "All connection attempts failed"
        assert "refused" in str(exc).lower()


@pytest.mark.parametrize(("impl", "lib"), KINDS, ids=IDS)
def test_cached_cookie_dead_https_server(impl: str, lib: str, primed: str) -> None:
    exc = fetch(impl, lib, f"https://{primed}:8080/", T, verify=False)
    assert type(exc) is httpx.ConnectError


@pytest.mark.parametrize("cached", [False, True], ids=["fresh", "cookie"])
@pytest.mark.parametrize(("impl", "lib"), KINDS, ids=IDS)
def test_silent_server_is_connect_timeout(impl: str, lib: str, cached: bool, primed: str) -> None:
    host = target(cached, primed)
    with full_backlog(host) as port:
        exc = fetch(impl, lib, f"http://{host}:{port}/", httpx.Timeout(5.0, connect=0.3))
    assert type(exc) is httpx.ConnectTimeout


@pytest.mark.parametrize(("impl", "lib"), KINDS, ids=IDS)
def test_no_response_is_read_timeout(impl: str, lib: str, primed: str) -> None:
    with silent_listener(primed) as port:
        exc = fetch(impl, lib, f"http://{primed}:{port}/", httpx.Timeout(5.0, read=0.3))
    assert type(exc) is httpx.ReadTimeout


@pytest.mark.parametrize("cached", [False, True], ids=["fresh", "cookie"])
@pytest.mark.parametrize(("impl", "lib"), KINDS, ids=IDS)
def test_bad_certificate_is_connect_error_with_the_reason(
    impl: str,
    lib: str,
    cached: bool,
    primed: str,
    ca: trustme.CA,
    client_tls: ssl.SSLContext,
) -> None:
    host = target(cached, primed)
    tls = server_tls(ca, "wrong.example")  # valid chain, wrong name
    with Server(host=host, tls=tls) as server:
        exc = fetch(impl, lib, f"{server.url}/", T, verify=client_tls)
    assert type(exc) is httpx.ConnectError
    if (impl, lib) != ("stock", "trio"):  # trio's SSLStream drops the message
        assert "CERTIFICATE_VERIFY_FAILED" in str(exc)
        assert "mismatch" in str(exc)


@pytest.mark.parametrize(("impl", "lib"), KINDS, ids=IDS)
def test_untrusted_certificate_is_connect_error(impl: str, lib: str, ca: trustme.CA) -> None:
    with https(ca) as server:
        exc = fetch(impl, lib, f"{server.url}/", T)  # default trust store: not our CA
    assert type(exc) is httpx.ConnectError
    if (impl, lib) != ("stock", "trio"):  # trio's SSLStream drops the message
        assert "CERTIFICATE_VERIFY_FAILED" in str(exc)


@pytest.mark.parametrize("lib", ["sync", "asyncio"])
def test_retries_without_tfo_are_not_doubled(lib: str, primed: str) -> None:
    before = active_opens()
    exc = fetch("ours", lib, f"http://{primed}:8080/", T, retries=2, tfo=False)
    assert type(exc) is httpx.ConnectError
    assert active_opens() - before == connect_attempts(2, fast=False)  # no SYN data to retry
