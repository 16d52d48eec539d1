"""Other platforms: no Linux option number reaches a macOS, Windows or FreeBSD kernel.

The fast paths use Linux's numbers (``TCP_FASTOPEN_CONNECT`` = 30, ``TCP_INFO`` = 11,
``IPPROTO_MPTCP`` = 262), which name other options elsewhere (Windows' option 11 is
``TCP_OFFLOAD_PREFERENCE``). The platform is an input of the decisions, so these tables
run them as ``darwin``, ``win32`` and ``freebsd`` on this Linux host; the last tests dial
for real on loopback with the dialer told it runs on macOS and check the kernel's view.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from http_fastpath import DialError, FastpathAdapter, FastpathOptions, TFOStatus, connection_info
from http_fastpath._core import capabilities as _capabilities
from http_fastpath._core import decide as _decide
from http_fastpath._core import dialer as _dialer
from http_fastpath._core import linux as _linux
from http_fastpath._core import record as _record
from http_fastpath._core.decide import (
    FlightPlan,
    connect_options,
    plan_first_flight,
    plan_socket,
)
from http_fastpath._core.memory import Destination, MptcpAnswer
from http_fastpath._core.reasons import Now, Why
from http_fastpath.netlab import Server, next_loopback

from .._kernel import MPTCP_TFO

NOW = Now(mono=1000.0, wall=1_700_000_000.0)
REMOTE = (socket.AF_INET, "192.0.2.10", 443)
LOOP = (socket.AF_INET, "127.0.0.1", 8080)
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"
ON = FastpathOptions(tfo=True, mptcp=True)

#: (sys.platform, a word the TFO reason names, a word the MPTCP reason names)
OTHERS = [
    ("darwin", "connectx()", "Network.framework"),
    ("win32", "ConnectEx()", "Windows has no Multipath TCP"),
    ("freebsd", "sendto()", "FreeBSD's kernel has no Multipath TCP"),
    (
        "freebsd14",
        "sendto()",
        "FreeBSD's kernel has no Multipath TCP",
    ),  # sys.platform has the major
    ("ios", "connectx()", "Network.framework"),
    ("openbsd7", "only Linux's TCP_FASTOPEN_CONNECT", "only Linux's IPPROTO_MPTCP"),
]
OTHER_NAMES = [p for p, _, _ in OTHERS]
#: Every Linux number the fast paths use: none may reach another kernel.
LINUX_NUMBERS = {
    _linux.TCP_FASTOPEN_CONNECT,
    _linux.TCP_INFO,
    _linux.TCP_IS_MPTCP,
    _linux.IPPROTO_MPTCP,
    _linux.SOL_MPTCP,
    _linux.IPPROTO_QUIC,
}


@pytest.mark.parametrize(
    ("platform", "linux"),
    [("linux", True), ("android", True), ("darwin", False), ("win32", False),
     ("freebsd14", False), ("cygwin", False), ("ios", False), ("sunos5", False)],
)  # fmt: skip
def test_is_linux(platform: str, linux: bool) -> None:
    assert _linux.is_linux(platform) is linux


# -- the decisions, per platform ----------------------------------------------------------


@pytest.mark.parametrize(("platform", "tfo_word", "mptcp_word"), OTHERS, ids=OTHER_NAMES)
def test_plan_socket_is_plain_tcp_off_linux(platform: str, tfo_word: str, mptcp_word: str) -> None:
    plan = plan_socket(ON, Destination(), REMOTE, NOW, platform=platform)
    assert plan.proto == socket.IPPROTO_TCP
    (why,) = plan.reasons
    assert why.why is Why.MPTCP_PLATFORM
    assert why.text.startswith(f"mptcp: Multipath TCP is not implemented on {platform}: ")
    assert mptcp_word in why.text and why.text.endswith("(plain TCP socket)")


@pytest.mark.parametrize(("platform", "tfo_word", "mptcp_word"), OTHERS, ids=OTHER_NAMES)
@pytest.mark.parametrize("key", [REMOTE, LOOP], ids=["remote", "loopback"])
def test_plan_first_flight_is_a_plain_syn_off_linux(
    platform: str, tfo_word: str, mptcp_word: str, key: tuple[int, str, int]
) -> None:
    plan = plan_first_flight(
        ON, Destination(), key, NOW, socket_proto=socket.IPPROTO_TCP, first_flight=GET,
        platform=platform,
    )  # fmt: skip
    assert (plan.tfo_connect, plan.syn_data, plan.early_data_safe) == (False, False, True)
    assert plan.tfo_unavailable
    (why,) = plan.reasons
    assert why.why is Why.TFO_PLATFORM
    assert why.text.startswith(f"tfo: TCP Fast Open is not implemented on {platform}: ")
    assert tfo_word in why.text and why.text.endswith("(plain SYN)")
    assert connect_options(plan, platform=platform) == ()


@pytest.mark.parametrize("platform", ["darwin", "win32", "freebsd14"])
def test_tfo_switched_off_says_nothing_about_the_platform(platform: str) -> None:
    """``tfo=False`` is the user's choice: DISABLED, with no platform reason."""
    off = FastpathOptions(tfo=False, mptcp=False)
    flight = plan_first_flight(
        off, Destination(), REMOTE, NOW, socket_proto=socket.IPPROTO_TCP, first_flight=GET,
        platform=platform,
    )  # fmt: skip
    assert flight == FlightPlan(False, False, True)
    assert plan_socket(off, Destination(), REMOTE, NOW, platform=platform).reasons == ()


@pytest.mark.parametrize("platform", ["linux", "android"])
def test_linux_still_gets_the_fast_paths(platform: str) -> None:
    assert plan_socket(ON, Destination(), REMOTE, NOW, platform=platform).proto == 262
    plan = plan_first_flight(
        ON, Destination(), REMOTE, NOW, socket_proto=socket.IPPROTO_TCP, first_flight=GET,
        platform=platform,
    )  # fmt: skip
    assert plan == FlightPlan(True, True, True)
    assert connect_options(plan, platform=platform) == ((socket.IPPROTO_TCP, 30, 1),)


@pytest.mark.parametrize("platform", OTHER_NAMES)
def test_connect_options_never_hold_a_linux_number_off_linux(platform: str) -> None:
    """Even a plan that asks for TFO (a bug, a hand-made plan) yields no option there."""
    for plan in (FlightPlan(True, True, True), FlightPlan(True, False, None)):
        assert connect_options(plan, platform=platform) == ()


_dests = st.builds(
    Destination,
    mptcp=st.sampled_from(list(MptcpAnswer)),
    mptcp_learned_at=st.none() | st.floats(0, 2000),
    mptcp_until=st.none() | st.floats(0, 2000),
    tfo_paused_until=st.none() | st.floats(0, 2000),
    refused_at=st.none() | st.floats(0, 2000),
)


@given(
    platform=st.sampled_from(OTHER_NAMES),
    dest=_dests,
    key=st.sampled_from([REMOTE, LOOP, (socket.AF_INET6, "2001:db8::1", 80)]),
    data=st.sampled_from([GET, POST, None]),
    policy=st.sampled_from(["safe", "always"]),
    flags=st.sampled_from([{}, {"cookie_cached": True}]),
)
def test_no_plan_off_linux_uses_a_linux_number(
    platform: str,
    dest: Destination,
    key: tuple[int, str, int],
    data: bytes | None,
    policy: Any,
    flags: dict[str, bool],
) -> None:
    options = FastpathOptions(tfo=True, mptcp=True, tfo_policy=policy)
    sock_plan = plan_socket(options, dest, key, NOW, platform=platform)
    assert sock_plan.proto == socket.IPPROTO_TCP
    flight = plan_first_flight(
        options, dest, key, NOW, socket_proto=sock_plan.proto, first_flight=data,
        platform=platform, **flags,
    )  # fmt: skip
    assert not flight.tfo_connect and not flight.syn_data and flight.tfo_unavailable
    assert connect_options(flight, platform=platform) == ()


# -- the kernel reads and the probe, per platform -----------------------------------------


class _NoSyscalls:
    """A socket stand-in that fails the test if anything asks the kernel through it."""

    proto = socket.IPPROTO_TCP

    def getsockopt(self, *args: object) -> Any:
        raise AssertionError(f"getsockopt{args} reached the kernel")

    def setsockopt(self, *args: object) -> None:
        raise AssertionError(f"setsockopt{args} reached the kernel")


@pytest.mark.parametrize("platform", OTHER_NAMES)
def test_linux_reads_are_not_made_off_linux(platform: str) -> None:
    fake: Any = _NoSyscalls()
    assert _linux.read_tcp_info(fake, platform=platform) is None
    assert _linux.read_is_mptcp(fake, platform=platform) is None
    assert _linux.read_mptcp_subflows(fake, platform=platform) is None


def test_linux_reads_are_made_on_linux() -> None:
    with pytest.raises(AssertionError, match="reached the kernel"):
        _linux.read_tcp_info(_NoSyscalls(), platform="linux")  # type: ignore[arg-type]


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The probe's sysctl reads and sockets, recorded; each refuses like a kernel would."""
    calls: list[str] = []

    def read_sysctl(name: str) -> int | None:
        calls.append(name)
        return None

    def new_socket(family: int, type: int, proto: int) -> socket.socket:
        calls.append(f"socket({proto})")
        raise OSError(93, "Protocol not supported")

    monkeypatch.setattr(_capabilities, "_read_sysctl", read_sysctl)
    monkeypatch.setattr(_capabilities, "new_socket", new_socket)
    return calls


@pytest.mark.parametrize(("platform", "tfo_word", "mptcp_word"), OTHERS, ids=OTHER_NAMES)
def test_probe_off_linux_reads_no_sysctl_and_opens_no_socket(
    no_kernel: list[str], platform: str, tfo_word: str, mptcp_word: str
) -> None:
    caps = _capabilities.probe_for(platform, "23.1.0")
    assert no_kernel == []
    assert caps.platform == platform and caps.tfo_sysctl is None
    assert not any(f.available for f in caps.features())
    assert all(platform in f.detail for f in caps.features())
    assert tfo_word in caps.tfo_client.detail
    assert mptcp_word in caps.mptcp.detail
    assert all(f.enable is None for f in caps.features())  # no Linux sysctl to suggest


def test_probe_on_linux_asks_the_kernel(no_kernel: list[str]) -> None:
    caps = _capabilities.probe_for("linux", "6.12.0")
    assert "net.ipv4.tcp_fastopen" in no_kernel and "socket(262)" in no_kernel
    assert not caps.mptcp.available


# -- real connections on loopback, with the dialer told it runs on macOS ---------------------


@pytest.fixture
def as_darwin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_record, "_PLATFORM", "darwin")
    yield


def _get(sock: socket.socket, host: str) -> bytes:
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.netns
@MPTCP_TFO.mark
def test_dial_as_darwin_sets_no_linux_option(monkeypatch: pytest.MonkeyPatch) -> None:
    with Server(mptcp=True) as server:
        # On Linux this destination gets MPTCP and, from the 2nd connection, data in the SYN.
        for _ in range(2):
            with _dialer.dial(server.host, server.port, options=ON, timeout=5) as sock:
                assert _get(sock, server.host).startswith(b"HTTP/1.1 200")
        monkeypatch.setattr(_record, "_PLATFORM", "darwin")
        with _dialer.dial(server.host, server.port, options=ON, timeout=5) as sock:
            assert sock.fastpath_record.platform == "darwin"
            reply = _get(sock, server.host)
            # The client socket, asked from the kernel's side: TCP, no TFO_CONNECT set.
            assert sock.proto == socket.IPPROTO_TCP
            assert sock.getsockopt(socket.IPPROTO_TCP, _linux.TCP_FASTOPEN_CONNECT) == 0
            info = sock.connection_info()
        records = server.records
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"hello GET")
    assert [(r.syn_data, r.is_mptcp) for r in records] == [(False, True), (True, True),
                                                            (False, False)]  # fmt: skip
    assert info.transport == "tcp" and info.mptcp is False  # asked for, not used
    assert info.tfo is TFOStatus.UNAVAILABLE and info.syn_data_bytes == 0
    assert any(
        f.startswith("tfo: TCP Fast Open is not implemented on darwin") for f in info.fallbacks
    )
    assert any(
        f.startswith("mptcp: Multipath TCP is not implemented on darwin") for f in info.fallbacks
    )


@pytest.mark.netns
def test_a_plan_asking_for_tfo_still_sets_nothing_as_darwin(
    monkeypatch: pytest.MonkeyPatch, as_darwin: None
) -> None:
    """A wrong plan (TFO on darwin) is stopped at the option list: no option, plain SYN."""
    monkeypatch.setattr(_decide, "plan_first_flight", lambda *a, **k: FlightPlan(True, True, True))
    options = FastpathOptions(tfo=True, mptcp=False)
    with Server() as server:
        for _ in range(2):
            with _dialer.dial(server.host, server.port, options=options, timeout=5) as sock:
                assert _get(sock, server.host).startswith(b"HTTP/1.1 200")
                assert sock.getsockopt(socket.IPPROTO_TCP, _linux.TCP_FASTOPEN_CONNECT) == 0
        assert not any(r.syn_data for r in server.records)


@pytest.mark.netns
def test_requests_adapter_as_darwin_is_plain_tcp_with_reasons(as_darwin: None) -> None:
    infos = []
    with Server(mptcp=True) as server:
        for _ in range(3):  # a fresh session each time: a fresh connection each time
            with requests.Session() as session:
                session.mount("http://", FastpathAdapter())
                resp = session.get(server.url + "/bytes?n=100")
                assert resp.status_code == 200 and resp.content == b"x" * 100
                info = connection_info(resp)
                assert info is not None
                infos.append(info)
        records = server.records
    assert len(records) == 3
    assert not any(r.syn_data or r.is_mptcp for r in records)
    for info in infos:
        assert info.transport == "tcp" and info.tfo is TFOStatus.UNAVAILABLE
        assert info.mptcp is False and not info.tfo_used
        assert len(info.fallbacks) == 2
        assert all("not implemented on darwin" in f for f in info.fallbacks)


# -- Windows has no select.poll ---------------------------------------------------------------


@pytest.mark.netns
def test_dial_without_poll_uses_select(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows' ``select`` module has no ``poll``: the sync dialer waits with ``select``."""
    monkeypatch.delattr(select, "poll")
    options = FastpathOptions(tfo=False, mptcp=False)
    with Server() as server:
        with _dialer.dial(server.host, server.port, options=options, timeout=5) as sock:
            assert _get(sock, server.host).endswith(b"hello GET")
    with pytest.raises(DialError, match="refused"):
        _dialer.dial(next_loopback(), 9, options=options, timeout=5)


@pytest.mark.netns
def test_httpx_pool_reuse_check_without_select_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """The idle-connection check of the sync httpx transport works where poll is missing."""
    from http_fastpath._backends import common as _backends_common

    with Server() as server:
        with _dialer.dial(server.host, server.port, options=ON, timeout=5) as sock:
            assert _get(sock, server.host).startswith(b"HTTP/1.1 200")  # the server closed it
            monkeypatch.delattr(select, "poll")
            assert _backends_common._is_readable(sock)  # EOF waiting: stale
        with socket.create_connection((server.host, server.port)) as idle:
            assert not _backends_common._is_readable(idle)  # nothing to read: reusable
