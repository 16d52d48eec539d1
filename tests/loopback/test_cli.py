"""The ``http-fastpath`` command line against real servers in the private namespace.

Every fact the CLI reports about a server is checked against what the server's kernel
saw (``Server.records``): SYN data accepted, MPTCP in use.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.metadata
import json
import platform
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from http_fastpath._cli import main
from http_fastpath._core import capabilities as _capabilities
from http_fastpath.netlab import Server, full_backlog, next_loopback, silent_listener

from .._kernel import MPTCP_INFO, TCP_IS_MPTCP
from .._servers import https, server_tls

pytestmark = pytest.mark.netns


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def run_subprocess(
    *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "http_fastpath", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def assert_one_line_error(err: str, *needles: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(autouse=True)
def _fresh_probe() -> Iterator[None]:
    """doctor re-probes the kernel; drop the cached probe so other tests see current sysctls."""
    yield
    _capabilities._probe_cached.cache_clear()


# -- doctor ---------------------------------------------------------------------------------


@TCP_IS_MPTCP.mark
def test_doctor_all_on_require_passes(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "doctor", "--require", "tfo,mptcp,tcp_is_mptcp")
    assert status == 0, out
    assert "net.ipv4.tcp_fastopen=3 (0x3)" in out
    assert "net.mptcp.enabled=1" in out
    assert "tcp_fastopen_blackhole_timeout_sec=" in out
    assert "all required features available: tfo, mptcp, tcp-is-mptcp" in out
    assert "\x1b[" not in out  # no colour when stdout is not a terminal
    assert err == ""


def test_doctor_reports_tfo_and_mptcp_off_with_commands(
    capsys: pytest.CaptureFixture[str], sysctl: Any
) -> None:
    sysctl("net.ipv4.tcp_fastopen", "0")
    sysctl("net.mptcp.enabled", "0")
    status, out, _ = run_cli(capsys, "doctor")
    assert status == 0  # nothing required
    lines = out.splitlines()
    client = next(i for i, line in enumerate(lines) if " client " in line)
    assert lines[client].split()[0] == "NO"
    assert "net.ipv4.tcp_fastopen=0" in lines[client]
    assert "enable: sysctl -w net.ipv4.tcp_fastopen=1" in lines[client + 1]
    enabled = next(i for i, line in enumerate(lines) if " enabled " in line)
    assert lines[enabled].split()[0] == "NO"
    assert "net.mptcp.enabled=0" in lines[enabled]
    assert "enable: sysctl -w net.mptcp.enabled=1" in lines[enabled + 1]

    status, out, _ = run_cli(capsys, "doctor", "--require", "tfo")
    assert status == 1
    assert "missing required: tfo" in out
    status, out, _ = run_cli(capsys, "doctor", "--json", "--require", "tfo,mptcp")
    assert status == 1
    report = json.loads(out)
    assert report["missing"] == ["tfo", "mptcp"] and report["ok"] is False
    checks = {(c["section"], c["name"]): c for c in report["checks"]}
    assert checks[("TCP Fast Open", "client")]["status"] == "no"
    assert checks[("Multipath TCP", "enabled")]["enable"] == "sysctl -w net.mptcp.enabled=1"


def test_doctor_subprocess_json_matches_namespace_sysctls(sysctl: Any) -> None:
    sysctl("net.ipv4.tcp_fastopen", "1")
    done = run_subprocess("doctor", "--json", "--require", "tfo-server")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    checks = {(c["section"], c["name"]): c for c in report["checks"]}
    assert checks[("TCP Fast Open", "client")]["status"] == "ok"
    server = checks[("TCP Fast Open", "server")]
    assert server["status"] == "no"
    assert server["enable"] == "sysctl -w net.ipv4.tcp_fastopen=3"
    assert report["missing"] == ["tfo-server"]
    assert checks[("Multipath TCP", "limits")]["detail"].startswith("subflows=")


def test_doctor_mptcp_limits_and_endpoints_from_ip() -> None:
    shown = subprocess.run(
        ["ip", "mptcp", "limits", "show"], capture_output=True, text=True, check=True
    ).stdout.split()
    before = dict(zip(shown[::2], shown[1::2], strict=True))
    subprocess.run(["ip", "mptcp", "limits", "set", "subflows", "0"], check=True)
    try:
        done = run_subprocess("doctor", "--json")
    finally:
        subprocess.run(
            ["ip", "mptcp", "limits", "set", "subflows", before.get("subflows", "2")], check=True
        )
    checks = {(c["section"], c["name"]): c for c in json.loads(done.stdout)["checks"]}
    limits = checks[("Multipath TCP", "limits")]
    assert limits["status"] == "warn" and "subflows=0" in limits["detail"]
    assert limits["enable"].startswith("ip mptcp limits set subflows")
    subprocess.run(["ip", "addr", "add", "10.99.0.1/24", "dev", "lo"], check=True)
    subprocess.run(
        ["ip", "mptcp", "endpoint", "add", "10.99.0.1", "dev", "lo", "subflow"], check=True
    )
    try:
        done = run_subprocess("doctor", "--json")
    finally:
        subprocess.run(["ip", "mptcp", "endpoint", "flush"], check=True)
        subprocess.run(["ip", "addr", "del", "10.99.0.1/24", "dev", "lo"], check=True)
    checks = {(c["section"], c["name"]): c for c in json.loads(done.stdout)["checks"]}
    endpoints = checks[("Multipath TCP", "endpoints")]["detail"]
    assert "10.99.0.1 dev lo" in endpoints and "subflow" in endpoints


def test_doctor_reports_env_opt_in_raw_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, _ = run_cli(capsys, "doctor", "--require", "env")
    assert status == 1
    assert "export HTTP_FASTPATH=tfo,mptcp" in out
    monkeypatch.setenv("HTTP_FASTPATH", "tfo,bogus")
    status, out, _ = run_cli(capsys, "doctor", "--json", "--require", "env")
    assert status == 0
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert "'tfo,bogus'" in checks["HTTP_FASTPATH"]["detail"]
    assert "set to 'tfo,bogus': tfo for every" in checks["HTTP_FASTPATH"]["detail"]
    assert checks["problem"]["status"] == "warn" and "'bogus'" in checks["problem"]["detail"]
    urllib3_version = importlib.metadata.version("urllib3")
    assert (checks["urllib3"]["status"], checks["urllib3"]["detail"]) == ("ok", urllib3_version)
    assert checks["python"]["detail"].endswith(f"{platform.python_version()} ({sys.executable})")
    monkeypatch.setenv("HTTP_FASTPATH_HOSTS", ".internal.test,10.0.0.0/8")
    monkeypatch.setenv("HTTP_FASTPATH_EXCLUDE", "legacy.internal.test")
    status, out, _ = run_cli(capsys, "doctor", "--json")
    detail = {c["name"]: c for c in json.loads(out)["checks"]}["HTTP_FASTPATH"]["detail"]
    assert "connection to .internal.test, 10.0.0.0/8 except to legacy.internal.test" in detail


def test_doctor_bad_require(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(capsys, "doctor", "--require", "tfo,warp")
    assert status == 2
    assert_one_line_error(err, "'warp'", "allowed: tfo")


# -- probe ----------------------------------------------------------------------------------


def findings(out: str) -> dict[str, dict[str, Any]]:
    return {f["feature"]: f for f in json.loads(out)["findings"]}


def test_probe_tfo_and_mptcp_server(capsys: pytest.CaptureFixture[str]) -> None:
    with Server(tfo=True, mptcp=True) as server:
        status, out, err = run_cli(capsys, "probe", server.url + "/", "--json")
        records = server.records
    assert status == 0, err
    found = findings(out)
    assert found["TFO"]["verdict"] == "yes"
    assert found["MPTCP"]["verdict"] == "yes"
    assert found["HTTP/2"]["verdict"] == "n/a"
    assert found["HTTP/3"]["verdict"] == "no"
    # The server's kernel agrees: connection 2 carried SYN data, connection 3 was MPTCP.
    assert [r.syn_data for r in records] == [False, True, False]
    assert [r.is_mptcp for r in records] == [False, False, True]
    connections = json.loads(out)["connections"]
    assert connections[1]["tfo"] == "syn_data_acked" and connections[1]["syn_data_bytes"] > 0
    assert connections[2]["mptcp"] is True


def test_probe_plain_listener_says_no(capsys: pytest.CaptureFixture[str]) -> None:
    with Server(tfo=False, mptcp=False) as server:
        status, out, _ = run_cli(capsys, "probe", server.url)
        records = server.records
    assert status == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert lines["TFO"].split()[1] == "no"
    assert "never sent a cookie" in lines["TFO"]
    assert lines["MPTCP"].split()[1] == "no"
    assert "TCP_IS_MPTCP=0" in lines["MPTCP"]
    assert not any(r.syn_data for r in records)
    assert not any(r.is_mptcp for r in records)


def test_probe_tls_with_cacert_alpn_h2(
    capsys: pytest.CaptureFixture[str], ca: trustme.CA, ca_file: str
) -> None:
    host = next_loopback()
    ctx = server_tls(ca, host)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with Server(tls=ctx, host=host, mptcp=True) as server:
        status, out, err = run_cli(capsys, "probe", server.url, "--cacert", ca_file, "--json")
        records = server.records
    assert status == 0, err
    found = findings(out)
    assert (found["TFO"]["verdict"], found["MPTCP"]["verdict"]) == ("yes", "yes")
    assert found["HTTP/2"]["verdict"] == "yes"
    assert "selected h2" in found["HTTP/2"]["evidence"]
    assert records[1].syn_data and records[2].is_mptcp
    assert json.loads(out)["response"]["status"] == 200


def test_probe_tls_http11_only_server_says_no_h2(
    capsys: pytest.CaptureFixture[str], ca: trustme.CA, ca_file: str
) -> None:
    with https(ca, tfo=False) as server:
        status, out, _ = run_cli(capsys, "probe", server.url, "--cacert", ca_file, "--json")
        records = server.records
    assert status == 0
    found = findings(out)
    assert found["HTTP/2"]["verdict"] == "no"
    assert found["TFO"]["verdict"] == "no"
    assert not any(r.syn_data for r in records)


class _AltSvcHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Alt-Svc", 'h3=":4433"; ma=3600, h2=":443"')
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_probe_alt_svc_h3(capsys: pytest.CaptureFixture[str]) -> None:
    httpd = http.server.ThreadingHTTPServer((next_loopback(), 0), _AltSvcHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = httpd.socket.getsockname()[:2]
        status, out, _ = run_cli(capsys, "probe", f"http://{host}:{port}/", "--json")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    assert status == 0
    h3 = findings(out)["HTTP/3"]
    assert h3["verdict"] == "yes"
    assert 'h3=":4433"' in h3["evidence"]


def test_probe_with_tfo_client_off_says_unknown(
    capsys: pytest.CaptureFixture[str], sysctl: Any
) -> None:
    sysctl("net.ipv4.tcp_fastopen", "2")
    with Server() as server:
        status, out, _ = run_cli(capsys, "probe", server.url, "--json")
    assert status == 0
    tfo = findings(out)["TFO"]
    assert tfo["verdict"] == "unknown"
    assert tfo["enable"] == "sysctl -w net.ipv4.tcp_fastopen=1"


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "status", "needles"),
    [
        (["get", "not-a-url"], 2, ["invalid URL 'not-a-url'", "http://"]),
        (["probe", "ftp://example.test/"], 2, ["invalid URL", "https://"]),
        (["get", "http://127.0.0.1:99999/"], 2, ["invalid URL"]),
        (["probe", "--bogus", "http://127.0.0.1/"], 2, ["unrecognized arguments: --bogus"]),
        (["frobnicate"], 2, ["invalid choice: 'frobnicate'"]),
        (["get", "http://127.0.0.1/", "-H", "no colon"], 2, ["invalid header 'no colon'"]),
        (["get", "http://127.0.0.1/", "--repeat", "x"], 2, ["--repeat"]),
        (["probe", "http://127.0.0.1/", "--timeout", "-1"], 2, ["invalid timeout '-1'"]),
        (["probe", "https://127.0.0.1/", "--cacert", "/nonexistent.pem"], 2, ["--cacert"]),
        (["get", "http://127.0.0.1/", "-d", "@/nonexistent.txt"], 2, ["cannot read"]),
    ],
)
def test_bad_input_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, needles: list[str]
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == status
    assert out == ""
    assert_one_line_error(err, *needles)


def test_probe_unreachable_host_subprocess() -> None:
    with Server() as server:
        host, port = server.host, server.port
    done = run_subprocess("probe", f"http://{host}:{port}/", "--timeout", "2")
    assert done.returncode == 1
    assert_one_line_error(done.stderr, f"{host}:{port}", "Connection refused")


def test_probe_unresolvable_host() -> None:
    done = run_subprocess("probe", "http://no-such-host.invalid/", "--timeout", "2")
    assert done.returncode == 1
    assert_one_line_error(done.stderr, "no-such-host.invalid", "cannot resolve host")


def test_probe_bad_certificate(ca: trustme.CA, ca_file: str) -> None:
    other = trustme.CA()  # the server's certificate comes from a CA we do not trust
    with https(other) as server:
        done = run_subprocess("probe", server.url, "--cacert", ca_file)
    assert done.returncode == 1
    assert_one_line_error(done.stderr, "certificate verif")


def test_probe_wrong_hostname(ca: trustme.CA, ca_file: str) -> None:
    with https(ca, "other.example") as server:
        done = run_subprocess("probe", server.url, "--cacert", ca_file)
        insecure = run_subprocess("probe", server.url, "--insecure")
    assert done.returncode == 1
    assert_one_line_error(done.stderr, "certificate verif")
    assert insecure.returncode == 0, insecure.stderr
    assert "TFO" in insecure.stdout


def test_get_without_any_client_library(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("httpx", "requests", "httpx2"):
        monkeypatch.setitem(sys.modules, name, None)
    with Server() as server:
        code, out, err = run_cli(capsys, "get", server.url)
        records = server.records
    assert code == 1 and out == ""
    assert_one_line_error(
        err,
        "no HTTP client available",
        "pip install 'http_fastpath[httpx]'",
        "[requests]",
        "[httpx2]",
    )
    assert records == []  # nothing was sent


def test_main_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("doctor", "probe", "get", "demo"):
        assert command in out


# -- get (end to end through the adapters) ------------------------------------------------


def _client_or_skip(name: str) -> None:
    from http_fastpath._cli.clients import choose_client
    from http_fastpath._cli.output import CLIError

    try:
        choose_client(name)
    except CLIError as exc:
        pytest.skip(str(exc))


CLIENTS = ["httpx", "requests", "httpx2"]


@pytest.mark.parametrize("client", CLIENTS)
def test_get_repeat_shows_cookie_paying_off(
    capsys: pytest.CaptureFixture[str], client: str
) -> None:
    _client_or_skip(client)
    with Server(tfo=True, mptcp=True) as server:
        code, out, err = run_cli(
            capsys, "get", server.url + "/bytes?n=100", f"--{client}", "--repeat", "3", "--json"
        )
        records = server.records
    assert code == 0, err
    report = json.loads(out)
    assert report["client"] == client
    responses = report["responses"]
    assert [r["status"] for r in responses] == [200, 200, 200]
    assert all(r["body_bytes"] == 100 for r in responses)
    infos = [r["connection"] for r in responses]
    assert [i["tfo"] for i in infos] == ["cookie_requested", "syn_data_acked", "syn_data_acked"]
    assert all(i["mptcp"] is True and i["transport"] == "mptcp" for i in infos)
    # What the CLI reported is what the server's kernel saw, connection by connection.
    assert len(records) == 3
    assert [r.syn_data for r in records] == [i["tfo"] == "syn_data_acked" for i in infos]
    assert all(r.is_mptcp for r in records)
    assert all("total" in r["timings"] and "first_byte" in r["timings"] for r in responses)


@pytest.mark.parametrize("client", CLIENTS)
def test_get_repeat_text_lines(capsys: pytest.CaptureFixture[str], client: str) -> None:
    _client_or_skip(client)
    with Server(tfo=True) as server:
        code, out, err = run_cli(capsys, "get", server.url + "/", f"--{client}", "--repeat", "2")
    assert code == 0, err
    assert out == "hello GET"
    lines = err.splitlines()
    assert lines[0].startswith("#1  200  tfo=cookie_requested")
    assert lines[1].startswith("#2  200  tfo=syn_data_acked (")
    assert "B in SYN" in lines[1]


@pytest.mark.parametrize("client", CLIENTS)
def test_get_no_tfo_no_mptcp(capsys: pytest.CaptureFixture[str], client: str) -> None:
    _client_or_skip(client)
    with Server(tfo=True, mptcp=True) as server:
        code, out, err = run_cli(
            capsys,
            "get",
            server.url + "/",
            f"--{client}",
            "--no-tfo",
            "--no-mptcp",
            "--repeat",
            "2",
            "--json",
        )
        records = server.records
    assert code == 0, err
    infos = [r["connection"] for r in json.loads(out)["responses"]]
    assert [i["tfo"] for i in infos] == ["disabled", "disabled"]
    assert all(i["transport"] == "tcp" for i in infos)
    assert not any(r.syn_data or r.is_mptcp for r in records)


@pytest.mark.parametrize("client", CLIENTS)
def test_get_https_verbose_with_cacert(
    capsys: pytest.CaptureFixture[str], client: str, ca: trustme.CA, ca_file: str
) -> None:
    _client_or_skip(client)
    with https(ca, mptcp=True) as server:
        code, out, err = run_cli(
            capsys,
            "get",
            server.url + "/",
            f"--{client}",
            "--cacert",
            ca_file,
            "-v",
            "--repeat",
            "2",
        )
        records = server.records
    assert code == 0, err
    assert out == "hello GET"
    assert "timings (seconds since the request started" in err
    for key in ("dns", "connect", "tls", "first byte", "total"):
        line = next(line for line in err.splitlines() if line.startswith(f"*   {key} "))
        assert line.split()[-1] != "n/a", line
    assert f"-> {server.host}:{server.port}" in err
    assert "TFO       syn_data_acked" in err  # the second connection: ClientHello in the SYN
    assert "MPTCP     yes" in err
    assert [r.syn_data for r in records] == [False, True]
    # The destination memory's entry for this address:port, after each connection.
    memory = [line for line in err.splitlines() if line.startswith("*   memory ")]
    assert len(memory) == 2
    assert f"{server.host}:{server.port}: mptcp=mptcp" in memory[1] and "connections=2" in memory[1]


@pytest.mark.parametrize("client", CLIENTS)
def test_get_method_headers_data_file_include_output(
    capsys: pytest.CaptureFixture[str], client: str, tmp_path: Any
) -> None:
    _client_or_skip(client)
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"from a file \x00\x01")
    target = tmp_path / "out.bin"
    with Server() as server:
        code, out, err = run_cli(
            capsys,
            "get",
            server.url + "/echo",
            f"--{client}",
            "-X",
            "PUT",
            "-H",
            "X-Test: one",
            "-H",
            "Content-Type: application/octet-stream",
            "-d",
            f"@{payload}",
            "-i",
            "-o",
            str(target),
        )
        records = server.records
    assert code == 0, err
    assert target.read_bytes() == b"from a file \x00\x01"
    assert out.startswith("HTTP/1.1 200 OK\r\n")
    assert "x-method: put" in out.lower()
    assert records[0].requests == ["PUT"]


@pytest.mark.parametrize("client", CLIENTS)
def test_get_post_is_not_sent_in_the_syn(capsys: pytest.CaptureFixture[str], client: str) -> None:
    _client_or_skip(client)
    with Server() as server:
        code, out, err = run_cli(
            capsys,
            "get",
            server.url + "/echo",
            f"--{client}",
            "-d",
            "a=1",
            "--repeat",
            "2",
            "--json",
        )
        records = server.records
    assert code == 0, err
    infos = [r["connection"] for r in json.loads(out)["responses"]]
    assert not any(r.syn_data for r in records)  # replay policy: POST never rides in the SYN
    assert all(i["early_data_safe"] is False for i in infos)


@pytest.mark.parametrize("client", CLIENTS)
def test_get_bad_certificate_and_refused(
    capsys: pytest.CaptureFixture[str], client: str, ca_file: str
) -> None:
    _client_or_skip(client)
    with https(trustme.CA()) as server:
        code, out, err = run_cli(capsys, "get", server.url, f"--{client}", "--cacert", ca_file)
        assert code == 1 and out == ""
        assert_one_line_error(err, "certificate verif")
        code, out, err = run_cli(capsys, "get", server.url, f"--{client}", "-k")
        assert code == 0 and out == "hello GET", err
        url = f"http://{server.host}:{server.port}/"
    code, out, err = run_cli(capsys, "get", url, f"--{client}", "--timeout", "3")
    assert code == 1
    assert_one_line_error(err, "Connection refused")


def test_get_subprocess_no_traceback_on_refused() -> None:
    try:
        from http_fastpath._cli.clients import choose_client

        choose_client(None)
    except Exception as exc:
        pytest.skip(str(exc))
    done = run_subprocess("get", "http://127.0.0.1:1/")
    assert done.returncode == 1
    assert_one_line_error(done.stderr, "127.0.0.1:1")


# -- terminal behaviour ---------------------------------------------------------------------


def _run_on_pty(*argv: str) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return (status, output)."""
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http_fastpath", *argv],
        stdout=slave,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_colour_and_progress_only_on_a_terminal() -> None:
    status, output = _run_on_pty("doctor")
    assert status == 0
    assert "\x1b[32m ok \x1b[0m" in output  # green "ok" on a terminal
    with Server(mptcp=True) as server:
        status, output = _run_on_pty("probe", server.url)
        piped = run_subprocess("probe", server.url)
    assert status == 0
    assert "probing " in output and "TFO connection 1/3 ..." in output  # progress on stderr
    assert "\r\x1b[K" in output  # ... erased before the report
    assert "\x1b[" not in piped.stdout and piped.stderr == ""


def test_doctor_when_ip_lacks_mptcp(tmp_path: Any) -> None:
    import os

    fake = tmp_path / "ip"
    fake.write_text('#!/bin/sh\necho \'Object "mptcp" is unknown, try "ip help".\' >&2\nexit 255\n')
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ.get('PATH', '')}")
    done = run_subprocess("doctor", "--json", env=env)
    assert done.returncode == 0, done.stderr
    checks = {(c["section"], c["name"]): c for c in json.loads(done.stdout)["checks"]}
    detail = checks[("Multipath TCP", "limits")]["detail"]
    assert "no MPTCP support" in detail and "iproute2 >= 5.7" in detail


@pytest.mark.parametrize("client", CLIENTS)
def test_get_fail_and_follow_redirects(capsys: pytest.CaptureFixture[str], client: str) -> None:
    _client_or_skip(client)
    with Server() as server:
        code, _, err = run_cli(capsys, "get", server.url + "/status/404", f"--{client}", "-f")
        assert code == 22
        assert_one_line_error(err, "404", "--fail")
        code, _, err = run_cli(capsys, "get", server.url + "/status/404", f"--{client}")
        assert code == 0 and err == ""
        target = server.url + "/echo"
        url = f"{server.url}/redirect?to={target}"
        code, out, _ = run_cli(capsys, "get", url, f"--{client}", "-i")
        assert code == 0 and out.startswith("HTTP/1.1 302")
        code, out, err = run_cli(capsys, "get", url, f"--{client}", "-L", "-i")
        records = server.records
    assert code == 0, err
    assert out.startswith("HTTP/1.1 200") and "x-method: get" in out.lower()
    assert [m for r in records for m in r.requests][-2:] == ["GET", "GET"]


def test_lab_server_sets_tcp_nodelay() -> None:
    """The lab's server answers without Nagle delays (timings in `get -v` stay honest)."""
    import socket

    with Server(mptcp=True) as server:
        from http_fastpath._core.dialer import dial
        from http_fastpath._core.options import FastpathOptions

        with dial(server.host, server.port, options=FastpathOptions(), timeout=5) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            with server.httpd.lock:
                conns = list(server.httpd.open_conns)
            assert conns
            assert all(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in conns)


def test_get_http3_end_to_end(
    capsys: pytest.CaptureFixture[str], ca: trustme.CA, ca_file: str
) -> None:
    """``get --http3`` through the experimental transport (userspace QUIC where no kernel QUIC)."""
    pytest.importorskip("aioquic")
    from .._h3server import H3TestServer  # type: ignore[import-not-found,unused-ignore]

    with H3TestServer(ca, "127.0.0.1", "localhost") as server:
        code, out, err = run_cli(
            capsys, "get", server.url("/"), "--http3", "--cacert", ca_file, "--json"
        )
        bad, _, bad_err = run_cli(capsys, "get", server.url("/"), "--http3")
    assert code == 0, err
    response = json.loads(out)["responses"][0]
    assert response["status"] == 200
    assert response["http_version"] == "HTTP/3"
    assert bad == 1
    assert_one_line_error(bad_err, "certificate")


def test_probe_needs_only_the_base_package(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("h11", "h2", "httpx", "httpcore", "requests", "urllib3", "anyio"):
        monkeypatch.setitem(sys.modules, name, None)  # "import name" now fails
    with Server(mptcp=True) as server:
        status, out, err = run_cli(capsys, "probe", server.url, "--json")
    assert status == 0, err
    found = findings(out)
    assert (found["TFO"]["verdict"], found["MPTCP"]["verdict"]) == ("yes", "yes")


def test_probe_ipv6_literal(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with Server(family=socket.AF_INET6, mptcp=True) as server:
        assert server.url.startswith("http://[::1]:")
        status, out, err = run_cli(capsys, "probe", server.url + "/", "--json")
        records = server.records
    assert status == 0, err
    report = json.loads(out)
    assert report["peer"] == ["::1", server.port]
    found = findings(out)
    assert (found["TFO"]["verdict"], found["MPTCP"]["verdict"]) == ("yes", "yes")
    assert any(r.syn_data for r in records[:2]) and records[2].is_mptcp


def test_doctor_blackhole_timer_and_extra_tfo_bits(
    capsys: pytest.CaptureFixture[str], sysctl: Any
) -> None:
    sysctl("net.ipv4.tcp_fastopen_blackhole_timeout_sec", "3600")
    sysctl("net.ipv4.tcp_fastopen", str(0x1 | 0x2 | 0x400))
    status, out, _ = run_cli(capsys, "doctor", "--json", "--require", "tfo,tfo-server")
    assert status == 0
    checks = {(c["section"], c["name"]): c for c in json.loads(out)["checks"]}
    blackhole = checks[("TCP Fast Open", "blackhole")]["detail"]
    assert (
        "tcp_fastopen_blackhole_timeout_sec=3600" in blackhole and "pauses for 3600s" in blackhole
    )
    assert "every listener does TFO" in checks[("TCP Fast Open", "flags")]["detail"]
    assert "(0x403)" in checks[("TCP Fast Open", "client")]["detail"]


def test_doctor_reports_the_active_opt_in_subprocess() -> None:
    import os
    import site
    from pathlib import Path

    if not any(Path(p, "http_fastpath_env.pth").exists() for p in site.getsitepackages()):
        pytest.skip("the HTTP_FASTPATH start-up hook is not installed in this environment")
    env = dict(os.environ, HTTP_FASTPATH="tfo,mptcp")
    done = run_subprocess("doctor", "--json", "--require", "env", env=env)
    assert done.returncode == 0, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    detail = checks["HTTP_FASTPATH"]["detail"]
    assert "set to 'tfo,mptcp': tfo, mptcp" in detail
    assert "status(): active" in detail


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import http_fastpath

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out.strip() == f"http-fastpath {http_fastpath.__version__}"


# -- #18 item 8: timeouts, --json errors, -f, methods, IPv6, --http3, --tfo-policy, doctor ----


@pytest.mark.parametrize("client", CLIENTS)
def test_get_connect_and_read_timeouts_differ_exit_28(
    capsys: pytest.CaptureFixture[str], client: str
) -> None:
    _client_or_skip(client)
    host = next_loopback()
    with full_backlog(host) as port:
        code, out, err = run_cli(
            capsys, "get", f"http://{host}:{port}/", "--client", client, "--timeout", "0.4"
        )
    assert code == 28 and out == ""
    assert_one_line_error(err, f"{host}:{port}", "connect timed out after 0.4 s")
    with silent_listener(host) as port:
        code, out, err = run_cli(
            capsys, "get", f"http://{host}:{port}/", "--client", client, "--timeout", "0.4"
        )
    assert code == 28 and out == ""
    assert_one_line_error(err, f"{host}:{port}", "read timed out after 0.4 s")
    assert "timed out: timed out" not in err


def test_probe_connect_and_read_timeouts_differ_exit_28() -> None:
    host = next_loopback()
    with full_backlog(host) as port:
        done = run_subprocess("probe", f"http://{host}:{port}/", "--timeout", "0.4")
    assert done.returncode == 28, done.stderr
    assert_one_line_error(done.stderr, f"{host}:{port}", "connect timed out after 0.4 s")
    with silent_listener(host) as port:
        done = run_subprocess("probe", f"http://{host}:{port}/", "--timeout", "0.4")
    assert done.returncode == 28, done.stderr
    assert_one_line_error(done.stderr, f"{host}:{port}", "read timed out after 0.4 s")


@pytest.mark.parametrize("client", CLIENTS)
def test_get_json_error_is_a_json_object(capsys: pytest.CaptureFixture[str], client: str) -> None:
    _client_or_skip(client)
    with Server() as server:
        host, port = server.host, server.port
    code, out, err = run_cli(
        capsys, "get", f"http://{host}:{port}/", "--client", client, "--json", "--timeout", "3"
    )
    assert code == 1
    assert_one_line_error(err, "Connection refused")
    report = json.loads(out)
    assert report["responses"] == [] and report["client"] == client
    assert report["error"]["exit_status"] == 1
    assert "Connection refused" in report["error"]["message"]
    host = next_loopback()
    with silent_listener(host) as port:
        code, out, _ = run_cli(
            capsys,
            "get",
            f"http://{host}:{port}/",
            "--client",
            client,
            "--json",
            "--timeout",
            "0.3",
        )
    assert code == 28
    assert json.loads(out)["error"]["kind"] == "read_timeout"


def test_probe_and_usage_json_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with Server() as server:
        host, port = server.host, server.port
    code, out, err = run_cli(capsys, "probe", f"http://{host}:{port}/", "--json")
    assert code == 1
    assert_one_line_error(err, "Connection refused")
    report = json.loads(out)
    assert report["url"] == f"http://{host}:{port}/"
    assert report["error"]["exit_status"] == 1 and report["error"]["kind"] == "error"
    code, out, _ = run_cli(capsys, "get", "not-a-url", "--json")
    assert code == 2
    assert json.loads(out)["error"] == {
        "kind": "usage",
        "exit_status": 2,
        "message": json.loads(out)["error"]["message"],
    }
    assert "invalid URL" in json.loads(out)["error"]["message"]


class _OneThenSilent:
    """Answers the first connection, then accepts one more and never answers it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((next_loopback(), 0))
        self.sock.listen(8)
        self.sock.settimeout(30)
        self.host, self.port = self.sock.getsockname()[:2]
        self.waiting = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for index in range(2):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            conn.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            if index == 0:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            else:
                self.waiting.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()
        self.thread.join(5)


@pytest.mark.parametrize("client", CLIENTS)
def test_get_repeat_json_interrupted_keeps_completed_results(client: str) -> None:
    import signal

    _client_or_skip(client)
    server = _OneThenSilent()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "http_fastpath", "get", f"http://{server.host}:{server.port}/",
             "--client", client, "--repeat", "3", "--json", "--timeout", "30"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert server.waiting.wait(30), "the second request never arrived"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    finally:
        server.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["http-fastpath get: interrupted"]
    report = json.loads(out)
    assert [r["status"] for r in report["responses"]] == [200]
    assert report["error"]["kind"] == "interrupted" and report["error"]["exit_status"] == 130


class _MethodHandler(http.server.BaseHTTPRequestHandler):
    """Records each method; ``/missing`` answers 404 with a body, anything else 200."""

    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        self.server.methods.append(self.command)
        status = 404 if self.path.startswith("/missing") else 200
        body = f"{status} body for {self.command}".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _any


setattr(_MethodHandler, "do_M-SEARCH", _MethodHandler._any)  # noqa: B010 (not an identifier)


@contextlib.contextmanager
def method_server(family: int = socket.AF_INET) -> Iterator[tuple[str, list[str]]]:
    class _Server(http.server.ThreadingHTTPServer):
        address_family = family
        daemon_threads = True

    host = "::1" if family == socket.AF_INET6 else next_loopback()
    httpd = _Server((host, 0), _MethodHandler)
    httpd.methods = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{port}", httpd.methods  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.mark.parametrize("client", CLIENTS)
def test_get_fail_prints_no_error_body(capsys: pytest.CaptureFixture[str], client: str) -> None:
    _client_or_skip(client)
    with method_server() as (url, _):
        code, out, err = run_cli(capsys, "get", url + "/missing", "--client", client, "-f")
        assert code == 22 and out == ""
        assert_one_line_error(err, "404", "--fail")
        code, out, err = run_cli(capsys, "get", url + "/missing", "--client", client, "-f", "-i")
        assert code == 22 and out == ""
        code, out, _ = run_cli(capsys, "get", url + "/missing", "--client", client, "-f", "--json")
        report = json.loads(out)  # --json: the report, with the error
        assert code == 22 and [r["status"] for r in report["responses"]] == [404]
        assert report["error"]["kind"] == "http_error" and report["error"]["exit_status"] == 22
        code, out, _ = run_cli(capsys, "get", url + "/missing", "--client", client)
        assert code == 0 and out == "404 body for GET"  # without -f the body is the output
        code, out, _ = run_cli(capsys, "get", url + "/", "--client", client, "-f")
        assert code == 0 and out == "200 body for GET"


@pytest.mark.parametrize("client", CLIENTS)
def test_get_method_is_any_rfc9110_token(capsys: pytest.CaptureFixture[str], client: str) -> None:
    _client_or_skip(client)
    with method_server() as (url, methods):
        code, out, err = run_cli(capsys, "get", url + "/", "--client", client, "-X", "M-SEARCH")
    assert code == 0, err
    assert out == "200 body for M-SEARCH"
    assert methods == ["M-SEARCH"]


@pytest.mark.parametrize("method", ["GE T", "GET/1", "GET:", "", "G\u00c9T"])
def test_get_method_not_a_token_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], method: str
) -> None:
    code, out, err = run_cli(capsys, "get", "http://127.0.0.1:1/", "-X", method)
    assert code == 2 and out == ""
    assert_one_line_error(err, "-X", "token")


@pytest.mark.parametrize("client", CLIENTS)
def test_get_verbose_brackets_ipv6_endpoints(
    capsys: pytest.CaptureFixture[str], client: str
) -> None:
    _client_or_skip(client)
    with Server(family=socket.AF_INET6) as server:
        code, out, err = run_cli(capsys, "get", server.url + "/", "--client", client, "-v")
    assert code == 0, err
    assert out == "hello GET"
    line = next(line for line in err.splitlines() if line.startswith("* connection: "))
    assert line.endswith(f" -> [::1]:{server.port}"), line
    assert " [::1]:" in line.split(" -> ")[0], line


def test_get_http3_with_an_http_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with Server() as server:
        code, out, err = run_cli(capsys, "get", server.url + "/", "--http3")
        records = server.records
    assert code == 2 and out == ""
    assert_one_line_error(err, "--http3", "https://")
    assert records == []  # nothing went out over TCP


@pytest.mark.parametrize("client", CLIENTS)
def test_get_tfo_policy(capsys: pytest.CaptureFixture[str], client: str) -> None:
    _client_or_skip(client)
    for policy, expected in (("safe", [False, False]), ("always", [False, True])):
        with Server(tfo=True) as server:
            code, out, err = run_cli(
                capsys, "get", server.url + "/echo", "--client", client, "-d", "a=1",
                "--repeat", "2", "--tfo-policy", policy, "--json",
            )  # fmt: skip
            records = server.records
        assert code == 0, err
        # The server's kernel saw the POST in the SYN only when the policy allowed it.
        assert [r.syn_data for r in records] == expected, policy
        infos = [r["connection"] for r in json.loads(out)["responses"]]
        assert [i["tfo"] == "syn_data_acked" for i in infos] == expected


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--tfo-policy", "sometimes"], ["invalid TFO policy 'sometimes'", "'safe'", "'always'"]),
        (["--tfo-policy", "always", "--http3"], ["--tfo-policy", "--http3"]),
        (["--client", "curl"], ["--client", "'curl'"]),
    ],
)
def test_get_bad_client_and_policy_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    code, out, err = run_cli(capsys, "get", "https://127.0.0.1:1/", *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, *needles)


def test_get_client_httpx2(capsys: pytest.CaptureFixture[str]) -> None:
    _client_or_skip("httpx2")
    with Server(tfo=True, mptcp=True) as server:
        code, out, err = run_cli(
            capsys, "get", server.url + "/", "--client", "httpx2", "--repeat", "2", "--json"
        )
        records = server.records
    assert code == 0, err
    report = json.loads(out)
    assert report["client"] == "httpx2"
    assert [r["connection"]["tfo"] for r in report["responses"]] == [
        "cookie_requested",
        "syn_data_acked",
    ]
    assert [r.syn_data for r in records] == [False, True]
    assert all(r.is_mptcp for r in records)


def test_doctor_healthy_client_host_looks_healthy(
    capsys: pytest.CaptureFixture[str], sysctl: Any
) -> None:
    sysctl("net.ipv4.tcp_fastopen", "1")  # the client bit only: all a client needs
    status, out, _ = run_cli(capsys, "doctor", "--json")
    assert status == 0
    report = json.loads(out)
    checks = {(c["section"], c["name"]): c for c in report["checks"]}
    assert all(c["severity"] in ("ok", "optional", "warn", "info") for c in report["checks"])
    server = checks[("TCP Fast Open", "server")]
    assert (server["status"], server["severity"]) == ("no", "optional")  # status: unchanged
    assert checks[("TCP Fast Open", "client")]["severity"] == "ok"
    assert checks[("Multipath TCP", "enabled")]["severity"] == "ok"
    assert checks[("Environment", "HTTP_FASTPATH")]["severity"] == "optional"
    quic = checks[("HTTP/3", "kernel QUIC")]
    assert quic["severity"] == ("ok" if quic["status"] == "ok" else "optional")
    assert report["healthy"] is True
    status, out, _ = run_cli(capsys, "doctor")
    assert status == 0
    lines = out.splitlines()
    assert not [line for line in lines if line.split()[:1] == ["NO"]], out
    assert next(line for line in lines if " server " in line).split()[0] == "opt"
    assert lines[-1].startswith("healthy: everything a client needs is available"), lines[-1]


def test_doctor_missing_client_feature_is_missing(
    capsys: pytest.CaptureFixture[str], sysctl: Any
) -> None:
    sysctl("net.ipv4.tcp_fastopen", "2")
    status, out, _ = run_cli(capsys, "doctor", "--json")
    assert status == 0  # nothing required
    report = json.loads(out)
    checks = {(c["section"], c["name"]): c for c in report["checks"]}
    assert checks[("TCP Fast Open", "client")]["severity"] == "missing"
    assert checks[("TCP Fast Open", "server")]["severity"] == "ok"
    assert report["healthy"] is False
    _, out, _ = run_cli(capsys, "doctor")
    assert out.splitlines()[-1].startswith("missing for a client: TCP Fast Open (client)")


def test_doctor_libraries_not_installed_are_not_needed() -> None:
    """``python -S``: no site-packages, so no HTTP client library at all."""
    import os
    from pathlib import Path

    import http_fastpath

    tree = str(Path(http_fastpath.__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-S", "-m", "http_fastpath", "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=tree),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    checks = {(c["section"], c["name"]): c for c in json.loads(done.stdout)["checks"]}
    for name in ("requests", "httpx", "h2", "aioquic"):
        check = checks[("Python", name)]
        assert (check["status"], check["severity"]) == ("no", "optional"), check
        assert check["enable"].startswith("pip install")


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("doctor", "enables each missing"),
        ("demo", "stock and fastpath"),
        ("probe", "Three fresh connections"),
        ("get", "curl"),
    ],
)
def test_every_command_help_has_a_description(
    capsys: pytest.CaptureFixture[str], command: str, needle: str
) -> None:
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    description = out.split("\n\n")[1]
    assert not description.startswith(("positional arguments", "options")), out
    assert needle in " ".join(description.split()), description


@MPTCP_INFO.mark
def test_doctor_one_mptcp_proof_option_is_enough() -> None:
    """A kernel older than 6.10 (no TCP_IS_MPTCP) still proves MPTCP with MPTCP_INFO."""
    import dataclasses

    from http_fastpath._cli.doctor_kernel import mptcp_checks
    from http_fastpath._core.capabilities import Feature, probe

    here = probe(refresh=True)
    assert here.mptcp.available and here.mptcp_info.available
    older = dataclasses.replace(
        here,
        tcp_is_mptcp=Feature(
            "tcp_is_mptcp", False, "TCP_IS_MPTCP not supported (Operation not supported)"
        ),
    )
    checks = {c.name: c for c in mptcp_checks(older)}
    assert (checks["TCP_IS_MPTCP"].status, checks["TCP_IS_MPTCP"].severity) == ("no", "optional")
    assert "MPTCP_INFO tells it here" in checks["TCP_IS_MPTCP"].detail
    assert checks["MPTCP_INFO"].severity == "ok"
    neither = dataclasses.replace(
        older, mptcp_info=Feature("mptcp_info", False, "MPTCP_INFO: Operation not supported")
    )
    checks = {c.name: c for c in mptcp_checks(neither)}  # MPTCP works, unproven
    assert checks["TCP_IS_MPTCP"].severity == "warn" and checks["MPTCP_INFO"].severity == "warn"
    off = dataclasses.replace(neither, mptcp=Feature("mptcp", False, "MPTCP is disabled"))
    assert {c.name: c.severity for c in mptcp_checks(off)}["TCP_IS_MPTCP"] == "missing"
