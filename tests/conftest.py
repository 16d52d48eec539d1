from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from http_fastpath._core import log as _log
from http_fastpath._core import memory as _memory
from http_fastpath._core import sslcache as _sslcache
from http_fastpath.netlab import _netns as netns

# Server fixtures live in tests/_servers.py; importing them here registers them.
from ._servers import (  # noqa: F401
    full_backlog,
    http_server,
    https_server,
    mptcp_server,
    proxy,
    silent_listener,
    tls_server,
)


def pytest_configure(config: pytest.Config) -> None:
    # Must run before any thread exists: a network namespace belongs to a thread.
    netns.enter()


def pytest_report_header(config: pytest.Config) -> str:
    reason = netns.skip_reason()
    return "netns: private namespace" if reason is None else f"netns: unavailable ({reason})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = netns.skip_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"needs a private network namespace: {reason}")
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without proxy or fastpath variables from the caller's environment,
    and without TFO pauses left by another test."""
    for name in list(os.environ):
        if name.upper().endswith("_PROXY") or name.upper().startswith("HTTP_FASTPATH"):
            monkeypatch.delenv(name)
    _log.reset_fallback_log()
    _memory.MEMORY.forget()  # no destination memory carries over from another test
    _sslcache.CACHE.clear()  # nor shared TLS contexts (their keys are exact anyway)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def sysctl() -> Iterator[Any]:
    """``sysctl(name, value)``: set a namespace sysctl until the end of the test."""
    undo: list[tuple[str, str]] = []

    def set_(name: str, value: str) -> None:
        undo.append((name, netns.get_sysctl(name)))
        netns.set_sysctl(name, value)

    yield set_
    for name, value in reversed(undo):
        netns.set_sysctl(name, value)
