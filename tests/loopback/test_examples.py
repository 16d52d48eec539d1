"""Every example runs against the local servers, so none of them can rot."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from http_fastpath.netlab import Server

from .._kernel import MPTCP_TFO

pytestmark = pytest.mark.netns

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=120, env=env, cwd=EXAMPLES
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_every_example_is_run_by_a_test() -> None:
    """Each file in examples/ is named (quoted, as a test runs it) by a test outside this one."""
    sources = (
        Path(__file__)
        .read_text()
        .replace(inspect.getsource(test_every_example_is_run_by_a_test), "")
    )
    untested = [p.name for p in EXAMPLES.iterdir() if p.is_file() and f'"{p.name}"' not in sources]
    assert not untested, f"examples no test runs: {untested}"


@MPTCP_TFO.mark
def test_requests_mount_lab_mode() -> None:
    # No URL: the example makes its own namespace and server (nested in the test's).
    out = _run(sys.executable, "requests_mount.py")
    assert "tfo=cookie_requested" in out and "tfo=syn_data_acked" in out
    assert "(True, True)" in out  # the server's kernel saw SYN data and MPTCP


def test_connection_info_example(mptcp_server: Server, ca_file: str) -> None:
    out = _run(sys.executable, "connection_info.py", mptcp_server.url + "/", "--cafile", ca_file)
    lines = out.splitlines()
    assert len(lines) == 6
    assert all("mptcp=True" in line for line in lines)
    # The cookie is per destination: the very first connection asks for it, all later ones
    # (whatever the client) carry their ClientHello in the SYN.
    assert "tfo=cookie_requested" in lines[0]
    assert all("tfo=syn_data_acked" in line for line in lines[1:])
    assert [r.syn_data for r in mptcp_server.records] == [False] + [True] * 5


@pytest.mark.parametrize("name", ["httpx_sync.py", "httpx_async.py"])
def test_httpx_example_runs(name: str) -> None:
    out = _run(sys.executable, name)
    assert "tfo=cookie_requested" in out
    assert "tfo=syn_data_acked" in out
    assert "https://" in out


def test_env_optin_example() -> None:
    with Server(mptcp=True) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HTTP_FASTPATH")}
        out = _run("bash", "env_optin.sh", server.url + "/", env={**env, "PYTHON": sys.executable})
        records = server.records
    assert "opt-in: True ['urllib3']" in out
    assert "tfo=<TFOStatus.SYN_DATA_ACKED" in out
    assert [r.syn_data for r in records] == [False, True, True]
    assert all(r.is_mptcp for r in records)


def test_http3_example(ca: trustme.CA, ca_file: str) -> None:
    pytest.importorskip("aioquic")
    from .._h3server import H3TestServer

    with H3TestServer(ca, "127.0.0.1") as server:
        out = _run(
            sys.executable,
            "http3_get.py",
            server.url("/"),
            "--backend",
            "userspace",
            "--cafile",
            ca_file,
        )
    assert "200" in out and "userspace" in out


def test_openai_sdk_example() -> None:
    """A real SDK (openai v3, on httpx2) handed a fastpath client: SYN data from the 2nd."""
    pytest.importorskip("openai", reason="the example's SDK is not installed")
    out = _run(sys.executable, "openai_sdk.py")
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["#0", "#1", "#2"]
    assert all("models=['lab-model']" in line for line in lines[:3])
    assert "tfo=cookie_requested" in lines[0]
    assert "tfo=syn_data_acked" in lines[1] and "tfo=syn_data_acked" in lines[2]
    assert lines[3] == "server kernel saw SYN data: [False, True, True]"
