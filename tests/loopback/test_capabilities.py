from __future__ import annotations

import json

import pytest

from http_fastpath import probe

from .._kernel import TCP_IS_MPTCP

pytestmark = pytest.mark.netns


def test_probe_in_the_test_namespace() -> None:
    caps = probe(refresh=True)
    assert caps.tfo_sysctl == 3
    assert caps.tfo_client.available and caps.tfo_server.available
    assert caps.mptcp.available
    json.dumps(caps.as_dict())
    assert probe() is caps  # cached


@TCP_IS_MPTCP.mark
def test_probe_finds_tcp_is_mptcp() -> None:
    assert probe(refresh=True).tcp_is_mptcp.available


def test_probe_reports_why_and_how_to_enable(sysctl: object) -> None:
    sysctl("net.ipv4.tcp_fastopen", "0")  # type: ignore[operator]
    sysctl("net.mptcp.enabled", "0")  # type: ignore[operator]
    caps = probe(refresh=True)
    assert not caps.tfo_client.available
    assert caps.tfo_client.enable == "sysctl -w net.ipv4.tcp_fastopen=3"
    assert not caps.mptcp.available
    assert "net.mptcp.enabled=0" in caps.mptcp.detail
    assert caps.mptcp.enable == "sysctl -w net.mptcp.enabled=1"
    assert not caps.kernel_quic.available and caps.kernel_quic.enable
    probe(refresh=True)
