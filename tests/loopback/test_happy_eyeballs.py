"""Happy Eyeballs (RFC 8305) against the kernel, in the private namespace.

A name (``dual.test``) resolves to ``::1`` then a fresh ``127.0.x.y`` (the resolver's
order of a dual-stack host: IPv6 first) through :func:`http_fastpath.netlab.resolving`,
so stock and fastpath clients, sync, asyncio and trio, all resolve it their own way. One
of the two addresses is *silent* (:func:`~http_fastpath.netlab.full_backlog`: a full
accept queue, the kernel drops the SYNs) on the same port as a live server on the other.

No test asserts a tight time: they assert who won, what happened to the others, and that
nothing waited for the connect timeout (5 s, against a generous bound); the times are
printed (``-s``). ``scripts/bench --only eyeballs`` measures them against stock.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import trio
import trustme

from http_fastpath import (
    DialTimeout,
    FastpathOptions,
    TFOStatus,
    connection_info,
    destinations,
)
from http_fastpath._core.dialer import dial, open_pending
from http_fastpath._core.memory import MEMORY
from http_fastpath.netlab import Server, full_backlog, next_loopback, resolving

from .. import _clients
from .._observe import open_fds
from .._servers import server_tls
from .._stack import AsyncFastpathTransport, httpx

pytestmark = pytest.mark.netns

NAME = "dual.test"
#: far above the race (0.25 s), far below the connect timeout: "did not wait for it"
BOUND = 2.5
GET = b"GET /echo HTTP/1.1\r\nHost: dual.test\r\nContent-Length: 0\r\n\r\n"
NO_MPTCP = FastpathOptions(mptcp=False)


@contextlib.contextmanager
def dual(
    live: str,
    *,
    mptcp: bool = False,
    silent_first: bool = True,
    tls: ssl.SSLContext | None = None,
) -> Iterator[tuple[Server, str]]:
    """A live server on ``live`` ("v6" or "v4"), a silent listener on the other family.

    Same port; ``dual.test`` resolves to the silent address first (``silent_first``: the
    resolver's order) then the live one. Yields the server and the IPv4 address.
    """
    v4 = next_loopback()
    if live == "v4":
        server = Server(host=v4, mptcp=mptcp, tls=tls)
        silent = "::1"
    else:
        server = Server(family=socket.AF_INET6, mptcp=mptcp, tls=tls)
        silent = v4
    order = [silent, server.host]
    with server, full_backlog(silent, server.port):
        with resolving({NAME: order if silent_first else order[::-1]}):
            yield server, v4


@contextlib.contextmanager
def both_silent() -> Iterator[int]:
    """``dual.test`` resolves to two silent addresses; yields the port."""
    v4 = next_loopback()
    with full_backlog(v4) as port, full_backlog("::1", port):
        with resolving({NAME: ["::1", v4]}):
            yield port


def _exchange(sock: socket.socket) -> bytes:
    sock.sendall(GET)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk
        data += chunk
    return data


def _outcomes(info: Any) -> list[tuple[str, str]]:
    return [(a.address[0], a.outcome) for a in info.attempts]


# -- the dialer -----------------------------------------------------------------------------


@pytest.mark.parametrize("live", ["v4", "v6"])
def test_a_silent_first_address_loses_the_race(live: str) -> None:
    with dual(live) as (server, v4):
        silent_host, live_host = ("::1", v4) if live == "v4" else (v4, "::1")
        started = time.monotonic()
        with dial(NAME, server.port, options=NO_MPTCP, timeout=5) as sock:
            _exchange(sock)
            info = sock.connection_info()
        took = time.monotonic() - started
        print(f"\nsilent {silent_host}, live {live_host}: connected in {took * 1000:.0f} ms")
        assert took < BOUND
        if live == "v6":  # IPv6 leads whatever the resolver's order (as anyio): no race
            assert _outcomes(info) == [(live_host, "connected")]
        else:
            assert _outcomes(info) == [(silent_host, "abandoned"), (live_host, "connected")]
            assert info.attempts[1].started_ms >= 250.0 * 0.9  # after the delay, not before
        assert info.peer_address is not None and info.peer_address[0] == live_host
        assert len(server.records) == 1


def test_a_live_first_address_needs_no_race() -> None:
    with dual("v6", silent_first=False) as (server, _):
        with dial(NAME, server.port, options=NO_MPTCP, timeout=5) as sock:
            _exchange(sock)
            assert _outcomes(sock.connection_info()) == [("::1", "connected")]


def test_the_winner_goes_first_next_time() -> None:
    with dual("v4") as (server, v4):
        for _ in range(3):
            with dial(NAME, server.port, options=NO_MPTCP, timeout=5) as sock:
                _exchange(sock)
                infos = sock.connection_info()
        # the 2nd and 3rd dials start with the address that won the 1st: no race
        assert _outcomes(infos) == [(v4, "connected")]
        known = destinations(v4, server.port)
        assert known and known[0].race_first_for is not None
        assert "first in races" in str(known[0])
        MEMORY.forget()
        with dial(NAME, server.port, options=NO_MPTCP, timeout=5) as sock:
            _exchange(sock)
            assert _outcomes(sock.connection_info())[0] == ("::1", "abandoned")


def test_a_refused_first_address_moves_on_at_once() -> None:
    v4 = next_loopback()
    options = FastpathOptions(mptcp=False, happy_eyeballs_delay=2.0)
    with Server(host=v4) as server, resolving({NAME: ["::1", v4]}):  # nothing on [::1]:port
        with dial(NAME, server.port, options=options, timeout=5) as sock:
            _exchange(sock)
            info = sock.connection_info()
    assert _outcomes(info) == [("::1", "refused"), (v4, "connected")], info.attempts
    assert "refused" in (info.attempts[0].error or "")
    assert info.attempts[1].started_ms < 1000.0  # not after the 2 s delay


@pytest.mark.parametrize("first", ["v6", "v4"])
def test_an_address_whose_socket_cannot_be_made_is_skipped(first: str) -> None:
    """An IPv4 source address cannot be bound on an IPv6 socket: that attempt fails at once."""
    v4 = next_loopback()
    with Server(host=v4) as server:
        six = (socket.AF_INET6, ("::1", server.port, 0, 0))
        four = (socket.AF_INET, (v4, server.port))
        addresses = [six, four] if first == "v6" else [four, six]
        sock = open_pending(addresses, options=NO_MPTCP, timeout=5, source_address=("127.0.0.1", 0))
        with sock:
            _exchange(sock)
            info = sock.connection_info()
    assert info.peer_address == (v4, server.port)  # IPv6 leads, cannot be made, is skipped
    assert (v4, "connected") in _outcomes(info) or not info.attempts


def test_both_silent_is_a_connect_timeout_and_closes_everything() -> None:
    with both_silent() as port:
        before = open_fds()
        started = time.monotonic()
        sock = dial(NAME, port, options=NO_MPTCP, timeout=0.5)
        with pytest.raises(DialTimeout):
            sock.sendall(GET)
        took = time.monotonic() - started
        assert sock.fileno() == -1
        assert open_fds() <= before
    print(f"\nboth silent, timeout 0.5 s: {took * 1000:.0f} ms")
    assert took < BOUND  # the timeout bounds the race, not each attempt


def test_without_the_race_the_addresses_go_one_after_another() -> None:
    options = FastpathOptions(mptcp=False, happy_eyeballs_delay=None)
    with dual("v4") as (server, v4):
        started = time.monotonic()
        with dial(NAME, server.port, options=options, timeout=0.5) as sock:
            _exchange(sock)
            info = sock.connection_info()
        took = time.monotonic() - started
    assert _outcomes(info) == [("::1", "timeout"), (v4, "connected")]
    assert took >= 0.5  # the first address had the whole timeout


def test_keyboard_interrupt_mid_race_leaks_nothing() -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    with both_silent() as port:
        before = open_fds()
        old = signal.signal(signal.SIGALRM, interrupt)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.4)  # after the second attempt started
            sock = dial(NAME, port, options=NO_MPTCP, timeout=5)
            with pytest.raises(KeyboardInterrupt):
                sock.sendall(GET)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        assert sock.fileno() == -1
        assert open_fds() <= before


# -- TCP Fast Open and MPTCP on each attempt ------------------------------------------------


def _prime_cookies(v4: str, port: int) -> None:
    """Cache a TFO cookie for ::1 and for ``v4`` (cookies are per server address)."""
    with Server(family=socket.AF_INET6) as six:
        with dial("::1", six.port, options=NO_MPTCP, timeout=5) as sock:
            _exchange(sock)
    with dial(v4, port, options=NO_MPTCP, timeout=5) as sock:
        _exchange(sock)
    MEMORY.forget()  # the race starts with IPv6 again


def test_a_replay_safe_request_rides_in_each_attempts_syn() -> None:
    with dual("v4") as (server, v4):
        _prime_cookies(v4, server.port)
        with dial(NAME, server.port, options=NO_MPTCP, timeout=5) as sock:
            _exchange(sock)
            info = sock.connection_info()
        last = server.records[-1]
    assert _outcomes(info) == [("::1", "abandoned"), (v4, "connected")]
    assert [a.syn_data_bytes for a in info.attempts] == [len(GET), len(GET)]
    assert info.tfo is TFOStatus.SYN_DATA_ACKED and info.syn_data_bytes == len(GET)
    assert len(server.records) == 2  # the priming connection and the winner: one each
    assert last.syn_data and last.requests == ["GET"]


def test_a_dead_first_address_with_a_cookie_is_retried_plain_then_left() -> None:
    """A SYN with data answered by a reset gets one plain SYN (as without a race)."""
    v4 = next_loopback()
    with Server(family=socket.AF_INET6) as six:  # cache a cookie for ::1
        for _ in range(2):
            with dial("::1", six.port, options=NO_MPTCP, timeout=5) as sock:
                _exchange(sock)
    with Server(host=v4) as server, resolving({NAME: ["::1", v4]}):  # nothing on [::1]:port
        with dial(NAME, server.port, options=NO_MPTCP, timeout=5) as sock:
            _exchange(sock)
            info = sock.connection_info()
    assert _outcomes(info) == [("::1", "refused"), (v4, "connected")]
    assert info.attempts[0].error == "[Errno 111] Connection refused"
    assert any("refused a plain SYN too" in f for f in info.fallbacks)


def test_a_post_rides_in_no_syn_and_goes_on_the_winner() -> None:
    post = b"POST /echo HTTP/1.1\r\nHost: dual.test\r\nContent-Length: 2\r\n\r\nhi"
    with dual("v4") as (server, v4):
        _prime_cookies(v4, server.port)
        with dial(NAME, server.port, options=NO_MPTCP, timeout=5) as sock:
            sock.sendall(post)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            info = sock.connection_info()
        last = server.records[-1]
    assert _outcomes(info) == [("::1", "abandoned"), (v4, "connected")]
    assert [a.syn_data_bytes for a in info.attempts] == [0, 0]
    assert info.tfo is TFOStatus.NOT_ATTEMPTED and info.early_data_safe is False
    assert not last.syn_data and last.requests == ["POST"]


def test_mptcp_attempts_race_too() -> None:
    with dual("v4", mptcp=True) as (server, v4):
        with dial(NAME, server.port, options=FastpathOptions(tfo=False), timeout=5) as sock:
            _exchange(sock)
            info = sock.connection_info()
    assert _outcomes(info) == [("::1", "abandoned"), (v4, "connected")]
    assert info.socket_protocol == "mptcp" and info.mptcp is True
    assert server.records[0].is_mptcp


# -- the clients ----------------------------------------------------------------------------

KINDS = ("requests", "httpx", "httpx-async", "httpx-trio")


@pytest.mark.parametrize("live", ["v4", "v6"])
@pytest.mark.parametrize("kind", KINDS)
def test_clients_connect_past_a_silent_address(kind: str, live: str) -> None:
    with dual(live) as (server, v4):
        url = f"http://{NAME}:{server.port}/echo"
        started = time.monotonic()
        outcome = _clients.ok(_clients.run(kind, "fast", [("GET", url)], options={"mptcp": False}))[
            0
        ]
        took = time.monotonic() - started
    print(f"\n{kind}, live {live}: {took * 1000:.0f} ms (connect timeout 5 s)")
    assert outcome.status == 200 and outcome.info is not None
    assert took < BOUND
    silent_host, live_host = ("::1", v4) if live == "v4" else (v4, "::1")
    assert outcome.info.peer_address is not None and outcome.info.peer_address[0] == live_host
    if live == "v6":  # IPv6 leads whatever the resolver's order (as anyio): no race
        assert _outcomes(outcome.info) == [(live_host, "connected")]
    else:
        assert _outcomes(outcome.info) == [(silent_host, "abandoned"), (live_host, "connected")]


@pytest.mark.parametrize("kind", KINDS)
def test_https_races_too(kind: str, ca: trustme.CA, ca_file: str) -> None:
    """The ClientHello is the first flight: replay-safe, it may ride in each attempt's SYN."""
    with dual("v4", tls=server_tls(ca, NAME)) as (server, v4):
        url = f"https://{NAME}:{server.port}/echo"
        calls: list[_clients.Call] = [("GET", url)]
        first = _clients.run(kind, "fast", calls, options={"mptcp": False}, verify=ca_file)
        MEMORY.forget()  # race again, now with a TFO cookie for the live address
        again = _clients.run(kind, "fast", calls, options={"mptcp": False}, verify=ca_file)
    for outcome in _clients.ok(first + again):
        assert outcome.info is not None and outcome.status == 200
        assert _outcomes(outcome.info) == [("::1", "abandoned"), (v4, "connected")]
    info = again[0].info
    assert info is not None and info.tfo is TFOStatus.SYN_DATA_ACKED and info.early_data_safe


@pytest.mark.parametrize("kind", ["requests", "httpx"])
def test_stock_sync_clients_wait_for_the_connect_timeout(kind: str) -> None:
    """What the race saves: stock sync tries the silent address for the whole timeout."""
    with dual("v4") as (server, _):
        url = f"http://{NAME}:{server.port}/echo"
        started = time.monotonic()
        _clients.ok(_clients.run(kind, "stock", [("GET", url)], connect_timeout=0.5))
        took = time.monotonic() - started
    print(f"\nstock {kind}: {took * 1000:.0f} ms (connect timeout 0.5 s)")
    assert took >= 0.5


@pytest.mark.parametrize("kind", KINDS)
def test_both_silent_raises_the_stock_connect_timeout(kind: str) -> None:
    with both_silent() as port:
        url = f"http://{NAME}:{port}/"
        before = open_fds()
        fast = _clients.run(kind, "fast", [("GET", url)], connect_timeout=0.4)[0].error
        assert open_fds() <= before
        stock = _clients.run(kind, "stock", [("GET", url)], connect_timeout=0.4)[0].error
    assert fast is not None and stock is not None
    assert type(fast) is type(stock), (fast, stock)
    assert isinstance(fast, (requests.exceptions.ConnectTimeout, httpx.ConnectTimeout))


def test_asyncio_cancellation_mid_race_leaks_nothing() -> None:
    async def main(port: int) -> None:
        async with httpx.AsyncClient(transport=AsyncFastpathTransport(mptcp=False)) as client:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.get(f"http://{NAME}:{port}/", timeout=5), 0.4)
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    with both_silent() as port:
        before = open_fds()
        asyncio.run(main(port))
        assert open_fds() <= before


def test_trio_cancellation_mid_race_leaks_nothing() -> None:
    async def main(port: int) -> None:
        async with httpx.AsyncClient(transport=AsyncFastpathTransport(mptcp=False)) as client:
            with trio.move_on_after(0.4) as scope:
                await client.get(f"http://{NAME}:{port}/", timeout=5)
            assert scope.cancelled_caught

    with both_silent() as port:
        before = open_fds()
        trio.run(main, port)
        assert open_fds() <= before


def test_connection_info_and_get_verbose_show_the_attempts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from http_fastpath._cli import main

    with dual("v4") as (server, v4):
        url = f"http://{NAME}:{server.port}/echo"
        with requests.Session() as session:
            from http_fastpath import FastpathAdapter

            session.mount("http://", FastpathAdapter(mptcp=False))
            info = connection_info(session.get(url, timeout=5))
        assert info is not None
        shown = info.as_dict()["attempts"]
        assert isinstance(shown, tuple)
        assert [a["outcome"] for a in shown] == ["abandoned", "connected"]
        MEMORY.forget()
        assert main(["get", "-v", "--no-mptcp", url]) == 0
    err = capsys.readouterr().err
    assert f"Trying [::1]:{server.port} at +0.0 ms: abandoned" in err
    assert f"Trying {v4}:{server.port} at +" in err and ": connected at +" in err


def test_a_race_without_connect_timeout_ends_when_the_kernel_gives_up(sysctl: Any) -> None:
    """``timeout=None`` and every address silent: each handshake ends with ETIMEDOUT."""
    sysctl("net.ipv4.tcp_syn_retries", "1")  # the kernel gives up after ~3 s
    with both_silent() as port:
        before = open_fds()
        sock = dial(NAME, port, options=NO_MPTCP, timeout=None)
        with pytest.raises(DialTimeout):
            sock.sendall(GET)
        assert sock.fileno() == -1
        assert open_fds() <= before
