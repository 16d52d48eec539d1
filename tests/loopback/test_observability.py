"""What operators see: ``stats()``, the DEBUG line per connection, ``ConnectionInfo`` fields.

Counted by the dialer against real servers in the private namespace; every count is
checked against what the server's kernel saw (``records[i].syn_data``).
"""

from __future__ import annotations

import json
import logging
import socket

import pytest

import http_fastpath
from http_fastpath import FastpathOptions, FastpathStats, TFOStatus, stats
from http_fastpath._core import linux as _linux
from http_fastpath._core.dialer import dial
from http_fastpath.netlab import Server

from .test_dialer import _exchange

pytestmark = pytest.mark.netns


def _delta(before: FastpathStats, after: FastpathStats) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in after.as_dict().items():
        if name == "fallbacks":
            assert isinstance(value, dict)
            old = before.fallbacks
            grown = {k: n - old.get(k, 0) for k, n in value.items() if n != old.get(k, 0)}
            if grown:
                out[name] = grown
        elif value != getattr(before, name):
            out[name] = value - getattr(before, name)
    return out


def test_stats_count_what_the_servers_kernel_saw() -> None:
    options = FastpathOptions(tfo=True, mptcp=False)
    before = stats()
    with Server() as server:
        for method in ("GET", "GET", "GET", "POST"):
            with dial(server.host, server.port, options=options, timeout=5) as sock:
                _exchange(sock, server.host, method, b"x")
        records = server.records
        refused_port = server.port
    with pytest.raises(OSError):  # the server is gone: a refused dial is an error, counted
        with dial(server.host, refused_port, options=options, timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert [r.syn_data for r in records] == [False, True, True, False]
    assert _delta(before, stats()) == {
        "connections": 4,
        "connect_errors": 1,
        "syn_data_sent": 2,
        "syn_data_acked": 2,
        "tfo_cookie_requests": 1,
        # the refused SYN carried data (a cookie was cached): tried again plain, refused
        # again, so the server is down, not a middlebox: TCP Fast Open is not paused
        "fallbacks": {"tfo_not_replay_safe": 1, "tfo_syn_data_reset": 1, "tfo_dead_server": 1},
    }


def test_stats_count_mptcp_sockets_and_mptcp_on_the_wire() -> None:
    options = FastpathOptions(tfo=False, mptcp=True)
    before = stats()
    with Server(mptcp=True) as mp_server, Server(mptcp=False) as tcp_server:
        for server in (mp_server, tcp_server, tcp_server):
            with dial(server.host, server.port, options=options, timeout=5) as sock:
                _exchange(sock, server.host)
        assert [r.is_mptcp for r in mp_server.records] == [True]
    # the plain server is remembered: its second connection uses a plain TCP socket
    assert _delta(before, stats()) == {"connections": 3, "mptcp_sockets": 2, "mptcp_connections": 1}


def test_stats_are_a_json_friendly_snapshot() -> None:
    snap = http_fastpath.stats()
    assert json.loads(json.dumps(snap.as_dict())) == snap.as_dict()
    with pytest.raises(TypeError):
        snap.fallbacks["x"] = 1  # type: ignore[index]


def test_one_debug_line_per_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="http_fastpath.dial")
    options = FastpathOptions(tfo=True, mptcp=True)
    with Server(mptcp=False) as server:
        for _ in range(3):
            with dial(server.host, server.port, options=options, timeout=5) as sock:
                _exchange(sock, server.host)
        syn_data = [r.syn_data for r in server.records]
        where = f"{server.host}:{server.port}"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("connected to")]
    assert syn_data == [False, True, True]
    assert len(lines) == 3
    assert lines[0].startswith(f"connected to {where}: transport=tcp socket=mptcp ")
    assert "tfo=cookie_requested syn_data=0B mptcp=False" in lines[0]
    for line in lines[1:]:  # remembered as plain TCP: said why, but not as a fallback
        assert "transport=tcp socket=tcp tfo=syn_data_acked" in line
        assert "mptcp=False (mptcp: plain TCP socket:" in line


def test_no_debug_work_unless_debug_is_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="http_fastpath.dial")
    with Server() as server:
        with dial(server.host, server.port, options=FastpathOptions(), timeout=5) as sock:
            _exchange(sock, server.host)
    assert not any(r.getMessage().startswith("connected to") for r in caplog.records)


def test_tfo_status_prints_its_value() -> None:
    assert str(TFOStatus.SYN_DATA_ACKED) == "syn_data_acked"
    assert f"{TFOStatus.COOKIE_REQUESTED}" == "cookie_requested"
    assert f"{TFOStatus.DISABLED:>10}" == "  disabled"
    assert TFOStatus("not_applicable") is TFOStatus.NOT_APPLICABLE


def test_a_server_without_mptcp_is_not_a_fallback() -> None:
    """``transport`` is the wire; ``socket_protocol`` the socket; fallbacks only what failed."""
    with Server(mptcp=False) as server:
        with dial(server.host, server.port, options=FastpathOptions(tfo=False), timeout=5) as sock:
            _exchange(sock, server.host)
            info = sock.connection_info()
            assert sock.proto == _linux.IPPROTO_MPTCP
        assert server.records[0].is_mptcp is False
    assert (info.transport, info.socket_protocol, info.mptcp) == ("tcp", "mptcp", False)
    assert info.fallbacks == ()
    assert info.as_dict()["socket_protocol"] == "mptcp"


def test_mptcp_not_asked_for_is_none() -> None:
    with Server() as server:
        options = FastpathOptions(tfo=False, mptcp=False)
        with dial(server.host, server.port, options=options, timeout=5) as sock:
            _exchange(sock, server.host)
            info = sock.connection_info()
            assert sock.proto == socket.IPPROTO_TCP
    assert (info.transport, info.socket_protocol, info.mptcp) == ("tcp", "tcp", None)
