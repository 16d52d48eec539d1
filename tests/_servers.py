"""Test servers as fixtures: one place that builds them (tests/conftest.py registers these).

Everything here is a thin layer over :mod:`http_fastpath.netlab`, which owns the servers
(``Server``, ``Proxy``) and the listeners that never answer (``silent_listener``,
``full_backlog``); this module only adds certificates from the session's trustme ``ca`` and
a fresh loopback address per test.

=================  ==================================================================
fixture            what the test gets
=================  ==================================================================
``http_server``    a running ``Server`` on a fresh loopback address
``https_server``   the same over TLS, its certificate for that address, signed by ``ca``
``mptcp_server``   ``https_server`` listening with ``IPPROTO_MPTCP``
``tls_server``     a factory: ``tls_server(*identities, host=…, **Server kwargs)``, for a
                   certificate for another name (or a wrong one) or other server options
``proxy``          a running forward ``Proxy`` (CONNECT and absolute-form)
``silent_listener``  ``(host, port)``: handshakes complete, nothing is ever read (a read
                   timeout); it hands out TFO cookies; ``tcp_syn_retries`` is 1
``full_backlog``   ``(host, port)``: the accept queue is full, SYNs are dropped (a connect
                   timeout); ``tcp_syn_retries`` is 1
=================  ==================================================================

``https(ca, …)`` and ``for_scheme(scheme, ca, …)`` build a server (not started) for a test
that needs several, or one per parametrized scheme. ``server_tls(ca, *identities)`` is the
plain helper behind them, for tests that need a
server ``SSLContext`` without a server (another CA, an Alt-Svc origin, an HTTP/3 server).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from http_fastpath import netlab
from http_fastpath.netlab import Proxy, Server, next_loopback


def server_tls(ca: trustme.CA, *identities: str) -> ssl.SSLContext:
    """A server-side ``SSLContext`` with a certificate for ``identities``, signed by ``ca``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*identities).configure_cert(ctx)
    return ctx


def https(ca: trustme.CA, *identities: str, host: str | None = None, **kw: Any) -> Server:
    """An HTTPS ``Server`` (not started) on ``host`` (default: a fresh loopback address) with
    a certificate for ``identities`` (default: ``host``)."""
    host = host or next_loopback()
    return Server(tls=server_tls(ca, *(identities or (host,))), host=host, **kw)


def for_scheme(scheme: str, ca: trustme.CA, **kw: Any) -> Server:
    """``https(ca, **kw)`` for ``"https"``, a plain ``Server(**kw)`` for ``"http"`` (not started)."""
    return https(ca, **kw) if scheme == "https" else Server(**kw)


@pytest.fixture
def http_server() -> Iterator[Server]:
    with Server() as server:
        yield server


@pytest.fixture
def https_server(ca: trustme.CA) -> Iterator[Server]:
    with https(ca) as server:
        yield server


@pytest.fixture
def mptcp_server(ca: trustme.CA) -> Iterator[Server]:
    with https(ca, mptcp=True) as server:
        yield server


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[Callable[..., Server]]:
    """``tls_server(*identities, host=None, **kw)``: a started HTTPS ``Server``, stopped
    at the end of the test."""
    with contextlib.ExitStack() as stack:

        def start(*identities: str, host: str | None = None, **kw: Any) -> Server:
            return stack.enter_context(https(ca, *identities, host=host, **kw))

        yield start


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with Proxy() as running:
        yield running


@pytest.fixture
def silent_listener(sysctl: Any) -> Iterator[tuple[str, int]]:
    sysctl("net.ipv4.tcp_syn_retries", "1")
    # 0x403: client and server TFO, and on every listener without TCP_FASTOPEN set (netlab's
    # silent listener does not set it): a second connection carries its first flight in the SYN
    sysctl("net.ipv4.tcp_fastopen", "0x403")
    host = next_loopback()
    with netlab.silent_listener(host) as port:
        yield host, port


@pytest.fixture
def full_backlog(sysctl: Any) -> Iterator[tuple[str, int]]:
    sysctl("net.ipv4.tcp_syn_retries", "1")
    host = next_loopback()
    with netlab.full_backlog(host) as port:
        yield host, port
