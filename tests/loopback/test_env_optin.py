"""HTTP_FASTPATH: unmodified programs get the fast path, checked by the servers' kernel.

The scripts run under a fresh venv where the *wheel* is installed (its ``.pth`` start-up
hook included), never the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trustme

from http_fastpath.netlab import Server, next_loopback

from .._kernel import MPTCP_TFO
from .._servers import https, server_tls
from .._wheel import build_wheel, fresh_venv

pytestmark = pytest.mark.netns

SCRIPTS = {
    "requests": """
        import sys, requests
        for url in sys.argv[1:]:
            r = requests.get(url, timeout=10)
            assert r.status_code == 200, r.status_code
    """,
    "urllib3": """
        import sys, urllib3
        for url in sys.argv[1:]:
            pm = urllib3.PoolManager()
            r = pm.request("GET", url, timeout=10)
            assert r.status == 200, r.status
            pm.clear()
    """,
    "httpx": """
        import sys, httpx
        for url in sys.argv[1:]:
            r = httpx.get(url, timeout=10)
            assert r.status_code == 200, r.status_code
    """,
    "httpx_async": """
        import asyncio, sys, httpx
        async def main():
            for url in sys.argv[1:]:
                async with httpx.AsyncClient(timeout=10) as client:
                    r = await client.get(url)
                    assert r.status_code == 200, r.status_code
        asyncio.run(main())
    """,
    "httpx2": """
        import sys, httpx2
        for url in sys.argv[1:]:
            r = httpx2.get(url, timeout=10)
            assert r.status_code == 200, r.status_code
    """,
    "httpx2_async": """
        import asyncio, sys, httpx2
        async def main():
            for url in sys.argv[1:]:
                async with httpx2.AsyncClient(timeout=10) as client:
                    r = await client.get(url)
                    assert r.status_code == 200, r.status_code
        asyncio.run(main())
    """,
    # An application moving to httpx2 makes `import httpx` give httpx2 (httpcore: httpcore2).
    "httpx2_alias": """
        import sys, httpx2
        httpx2.alias_httpx()
        import httpx
        assert httpx is httpx2
        for url in sys.argv[1:]:
            r = httpx.get(url, timeout=10)
            assert r.status_code == 200, r.status_code
    """,
}


@pytest.fixture(scope="module")
def wheel_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheel = build_wheel(tmp_path_factory.mktemp("dist"))
    return fresh_venv(tmp_path_factory.mktemp("optin") / "env", wheel)


def _run(
    python: Path,
    script: str,
    urls: list[str],
    env: dict[str, str],
    cwd: Path,
    *,
    measured: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in ``python``; ``measured=False``: without coverage even under --cov."""
    path = cwd / "app.py"
    path.write_text(textwrap.dedent(script))
    drop = ("HTTP_FASTPATH",) if measured else ("HTTP_FASTPATH", "COVERAGE_")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    full_env.update(env)
    return subprocess.run(
        [str(python), str(path), *urls],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=60,
    )


@pytest.mark.parametrize("client", sorted(SCRIPTS))
@pytest.mark.parametrize("variable", ["tfo,mptcp", "tfo", None])
def test_unmodified_script(
    client: str,
    variable: str | None,
    wheel_python: Path,
    tmp_path: Path,
    ca: trustme.CA,
    ca_file: str,
) -> None:
    if client.startswith("httpx2"):
        pytest.importorskip("httpx2", reason="httpx2 is not installed (it needs Python >= 3.11)")
    if variable == "tfo,mptcp":
        MPTCP_TFO.require()  # data in MPTCP SYNs
    env = {"SSL_CERT_FILE": ca_file, "REQUESTS_CA_BUNDLE": ca_file}
    if variable is not None:
        env["HTTP_FASTPATH"] = variable
    with (
        Server(tfo=True, mptcp=True) as plain,
        https(ca, tfo=True, mptcp=True) as tls,
    ):
        urls = [plain.url + "/"] * 3 + [tls.url + "/"] * 3
        done = _run(wheel_python, SCRIPTS[client], urls, env, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr, done.stderr
        records = plain.records + tls.records
    assert len(records) == 6
    if variable is None:
        assert not any(r.syn_data for r in records)
        assert not any(r.is_mptcp for r in records)
    elif variable == "tfo":
        assert [r.syn_data for r in plain.records] == [False, True, True]
        assert [r.syn_data for r in tls.records] == [False, True, True]
        assert not any(r.is_mptcp for r in records)
    else:  # MPTCP at both ends, loopback: exempt from the MPTCP SYN-data guard
        assert [r.syn_data for r in plain.records] == [False, True, True]
        assert [r.syn_data for r in tls.records] == [False, True, True]
        assert all(r.is_mptcp for r in records)


def test_bad_value_warns_and_the_valid_part_applies(wheel_python: Path, tmp_path: Path) -> None:
    with Server(tfo=True, mptcp=True) as server:
        done = _run(
            wheel_python,
            SCRIPTS["requests"],
            [server.url + "/"] * 2,
            {"HTTP_FASTPATH": "tfo,bogus"},
            tmp_path,
        )
        records = server.records
    assert done.returncode == 0, done.stderr
    assert "HTTP_FASTPATH: unknown token 'bogus' ignored" in done.stderr
    assert "valid: tfo, mptcp" in done.stderr
    assert [r.syn_data for r in records] == [False, True]  # tfo applied
    assert not any(r.is_mptcp for r in records)  # mptcp was not asked for
    # Once (the .pth runs twice in a Python 3.11 venv), pointing at the environment rather
    # than at the line of library code that happened to emit it.
    assert done.stderr.count("unknown token") == 1, done.stderr
    assert done.stderr.startswith("<environment>:0: FastpathEnvWarning: HTTP_FASTPATH:")
    assert "http_fastpath" + os.sep not in done.stderr, done.stderr


def test_warnings_as_errors_never_break_start_up(wheel_python: Path, tmp_path: Path) -> None:
    """``PYTHONWARNINGS=error``: one line per bad value, no traceback, the valid part applies."""
    env = {
        "HTTP_FASTPATH": "tfo,bogus",
        "HTTP_FASTPATH_LOG": "loud",
        "PYTHONWARNINGS": "error",
    }
    with Server(tfo=True, mptcp=True) as server:
        done = _run(wheel_python, SCRIPTS["requests"], [server.url + "/"] * 2, env, tmp_path)
        records = server.records
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Error processing line" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert "HTTP_FASTPATH: unknown token 'bogus' ignored" in lines[0]
    assert "HTTP_FASTPATH_LOG: unknown value 'loud' ignored" in lines[1]
    assert [r.syn_data for r in records] == [False, True]  # tfo applied all the same
    # A program that never imports an HTTP client is not even told (nothing to apply).
    quiet = _run(wheel_python, "print('ok')", [], env, tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == "ok\n" and quiet.stderr == ""


_MODULES = "import sys; print(' '.join(sorted(sys.modules)))"


@pytest.mark.parametrize(
    "env",
    [
        {"HTTP_FASTPATH": "tfo,mptcp"},
        {"HTTP_FASTPATH": "tfo", "HTTP_FASTPATH_LOG": "debug", "HTTP_FASTPATH_HOSTS": "x.test"},
        {"HTTP_FASTPATH_LOG": "info"},
        {"HTTP_FASTPATH": "tfo,bogus", "PYTHONWARNINGS": "error"},
    ],
)
def test_start_up_adds_only_the_hook(
    env: dict[str, str], wheel_python: Path, tmp_path: Path
) -> None:
    """With the opt-in set, start-up imports one small module; the rest waits for a client."""
    others = {k: v for k, v in env.items() if not k.startswith("HTTP_FASTPATH")}
    # Unmeasured: coverage itself would import the modules this test looks for.
    base = _run(wheel_python, _MODULES, [], others, tmp_path, measured=False)
    with_env = _run(wheel_python, _MODULES, [], env, tmp_path, measured=False)
    assert base.returncode == 0 and with_env.returncode == 0, with_env.stderr
    assert with_env.stderr == ""
    added = set(with_env.stdout.split()) - set(base.stdout.split())
    assert added == {"_http_fastpath_env"}
    for heavy in ("dataclasses", "inspect", "logging", "typing", "threading", "http_fastpath"):
        assert heavy not in with_env.stdout.split()


LOG_SCRIPT = """
    import socket, sys, requests
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there: the connect is refused
    session = requests.Session()
    if "--adapter" in sys.argv:
        import http_fastpath
        session.mount("http://", http_fastpath.FastpathAdapter())
    try:
        session.get(f"http://127.0.0.1:{port}/", timeout=10)
    except requests.ConnectionError:
        print("refused")
"""


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({"HTTP_FASTPATH": "tfo", "HTTP_FASTPATH_LOG": "debug"}, []),
        ({"HTTP_FASTPATH_LOG": "DEBUG"}, ["--adapter"]),  # the log without the opt-in
    ],
)
def test_log_lines_are_printed_once(
    env: dict[str, str], args: list[str], wheel_python: Path, tmp_path: Path
) -> None:
    done = _run(wheel_python, LOG_SCRIPT, args, env, tmp_path)
    assert done.returncode == 0 and done.stdout == "refused\n", done.stderr
    lines = [line for line in done.stderr.splitlines() if "failed: [Errno" in line]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("http_fastpath.dial: connect to ('127.0.0.1', ")


@pytest.mark.parametrize("level", ["error", "critical"])
def test_log_level_error_is_accepted(level: str, wheel_python: Path, tmp_path: Path) -> None:
    done = _run(
        wheel_python, LOG_SCRIPT, [], {"HTTP_FASTPATH": "tfo", "HTTP_FASTPATH_LOG": level}, tmp_path
    )
    assert done.returncode == 0 and done.stdout == "refused\n"
    assert done.stderr == ""  # accepted (no warning), and a DEBUG line is below the level


def test_unset_variable_imports_nothing(wheel_python: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HTTP_FASTPATH")}
    done = subprocess.run(
        [str(wheel_python), "-X", "importtime", "-c", "pass"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not {
        m
        for m in imported
        if m.split(".")[0] in {"http_fastpath", "_http_fastpath_env", "requests", "httpx", "httpx2"}
    }
    on = subprocess.run(
        [str(wheel_python), "-X", "importtime", "-c", "pass"],
        capture_output=True,
        text=True,
        env={**env, "HTTP_FASTPATH": "tfo"},
        cwd=tmp_path,
    )
    modules = {line.rsplit("|", 1)[-1].strip() for line in on.stderr.splitlines()}
    assert "_http_fastpath_env" in modules  # the start-up hook is active...
    waiting = {"http_fastpath", "requests", "urllib3", "httpx", "httpcore", "httpx2", "httpcore2"}
    assert not {m for m in modules if m.split(".")[0] in waiting}  # ...for the first client
    # Set but off: the hook stops at once; the program's HTTP clients stay untouched.
    script = (
        "import sys, requests, httpx; "
        "print(any(hasattr(f, '_http_fastpath_hook') for f in sys.meta_path), "
        "sorted(m for m in sys.modules if 'fastpath' in m))"
    )
    off = _run(wheel_python, script, [], {"HTTP_FASTPATH": "off"}, tmp_path)
    assert off.returncode == 0 and off.stdout == "False ['_http_fastpath_env']\n", off.stderr


@pytest.mark.parametrize(
    ("client_name", "core_name"), [("httpx", "httpcore"), ("httpx2", "httpcore2")]
)
def test_install_status_uninstall_in_process(client_name: str, core_name: str) -> None:
    import requests

    import http_fastpath
    from http_fastpath import FastpathOptions

    client = pytest.importorskip(client_name, reason=f"{client_name} is not installed")
    assert http_fastpath.status()["active"] is False
    with Server(tfo=True, mptcp=True) as server:
        http_fastpath.install(FastpathOptions(tfo=True, mptcp=True))
        try:
            state = http_fastpath.status()
            assert state["active"] is True
            patched = state["patched"]
            assert isinstance(patched, list)
            assert "urllib3" in patched  # imported already: patched at once
            # httpx imports httpcore lazily: patched by the post-import hook when it is.
            assert (core_name in sys.modules) == (core_name in patched)
            for _ in range(2):
                assert requests.get(server.url + "/", timeout=5).status_code == 200
            for _ in range(2):
                assert client.get(server.url + "/", timeout=5).status_code == 200
            patched = http_fastpath.status()["patched"]
            assert patched == sorted(
                n
                for n in ("httpcore", "httpcore2", "httpx", "httpx2", "urllib3")
                if n in sys.modules
            )
            assert core_name in patched
        finally:
            http_fastpath.uninstall()
        assert http_fastpath.status()["active"] is False
        requests.get(server.url + "/", timeout=5)
        client.get(server.url + "/", timeout=5)
        records = server.records
    assert [r.syn_data for r in records] == [False, True, True, True, False, False]
    assert [r.is_mptcp for r in records] == [True] * 4 + [False] * 2
    assert sys.modules["urllib3"].connectionpool.HTTPConnectionPool.ConnectionCls.__name__ == (
        "HTTPConnection"
    )
    pool_module = sys.modules[f"{core_name}._sync.connection_pool"]
    assert pool_module.SyncBackend is sys.modules[core_name].SyncBackend  # restored


REPLAY_SCRIPT = """
    import sys, requests, httpx
    url = sys.argv[1]
    for method in ("GET", "POST", "PATCH", "GET", "POST"):
        with requests.Session() as s:  # a new connection each time
            assert s.request(method, url + "/echo", data=b"x", timeout=10).status_code == 200
    for method in ("POST", "PATCH", "GET"):
        assert httpx.request(method, url + "/echo", content=b"x", timeout=10).status_code == 200
"""


@pytest.mark.parametrize("policy", [None, "safe", "always"])
def test_replay_safety_under_the_opt_in(
    policy: str | None, wheel_python: Path, tmp_path: Path
) -> None:
    env = {"HTTP_FASTPATH": "tfo"}
    if policy is not None:
        env["HTTP_FASTPATH_TFO_POLICY"] = policy
    with Server(tfo=True) as server:
        done = _run(wheel_python, REPLAY_SCRIPT, [server.url], env, tmp_path)
        assert done.returncode == 0, done.stderr
        records = server.records
    seen = [(r.requests[0], r.syn_data) for r in records]
    always = policy == "always"
    assert seen == [
        ("GET", False),  # no cookie yet
        ("POST", always),
        ("PATCH", always),
        ("GET", True),
        ("POST", always),
        ("POST", always),
        ("PATCH", always),
        ("GET", True),
    ]


PROXY_SCRIPT = """
    import sys, requests, httpx
    for url in sys.argv[1:]:
        assert requests.get(url, timeout=10).status_code == 200
        assert httpx.get(url, timeout=10).status_code == 200
"""


@pytest.mark.parametrize("opt_in", [None, "tfo,mptcp"])
def test_env_proxies_under_the_opt_in_route_as_without(
    opt_in: str | None, wheel_python: Path, tmp_path: Path
) -> None:
    from http_fastpath.netlab import Proxy

    with Server() as direct, Server() as proxied, Proxy() as proxy:
        env = {"HTTP_PROXY": proxy.url, "NO_PROXY": direct.host}
        if opt_in is not None:
            env["HTTP_FASTPATH"] = opt_in
        done = _run(
            wheel_python, PROXY_SCRIPT, [direct.url + "/", proxied.url + "/"], env, tmp_path
        )
        assert done.returncode == 0, done.stderr
        through = sorted(req for r in proxy.records for req in r.requests)
        direct_hits = len(direct.records)
    # requests and httpx each: the NO_PROXY host directly, the other through the proxy.
    assert through == [f"GET {proxied.url}/"] * 2
    assert direct_hits == 2


@pytest.mark.parametrize("bad", [{"tfo": False}, "tfo", 1, True])
def test_install_refuses_what_is_not_options(bad: object) -> None:
    """``install({'tfo': False})`` was accepted and crashed later; now a clear OptionError."""
    import http_fastpath
    from http_fastpath import OptionError

    with pytest.raises(OptionError, match="invalid value for options: .*FastpathOptions"):
        http_fastpath.install(bad)  # type: ignore[arg-type]
    assert http_fastpath.status()["active"] is False


@pytest.mark.parametrize("client", sorted(SCRIPTS))
@pytest.mark.parametrize("variable", ["HTTP_FASTPATH_EXCLUDE", "HTTP_FASTPATH_HOSTS"])
def test_hosts_left_out_get_stock_connections(
    variable: str,
    client: str,
    wheel_python: Path,
    tmp_path: Path,
    ca: trustme.CA,
    ca_file: str,
) -> None:
    """A host left out by HTTP_FASTPATH_EXCLUDE / _HOSTS gets no SYN data and no MPTCP."""
    MPTCP_TFO.require()  # the others get data in MPTCP SYNs
    if client.startswith("httpx2"):
        pytest.importorskip("httpx2", reason="httpx2 is not installed (it needs Python >= 3.11)")
    left_out, fast = next_loopback(), next_loopback()
    env = {
        "SSL_CERT_FILE": ca_file,
        "REQUESTS_CA_BUNDLE": ca_file,
        "HTTP_FASTPATH": "tfo,mptcp",
        # by address, as NO_PROXY matches it (the other one only in a network around it)
        variable: left_out if variable == "HTTP_FASTPATH_EXCLUDE" else f"{fast}/32, x.test",
    }
    with (
        Server(tfo=True, mptcp=True, host=left_out) as out_plain,
        https(ca, host=left_out, tfo=True, mptcp=True) as out_tls,
        Server(tfo=True, mptcp=True, host=fast) as fast_plain,
        https(ca, host=fast, tfo=True, mptcp=True) as fast_tls,
    ):
        servers = (out_plain, out_tls, fast_plain, fast_tls)
        urls = [s.url + "/" for s in servers for _ in range(3)]
        done = _run(wheel_python, SCRIPTS[client], urls, env, tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        records = [list(s.records) for s in servers]
    for left in records[:2]:  # stock: no data in the SYN, plain TCP
        assert [(r.syn_data, r.is_mptcp) for r in left] == [(False, False)] * 3
    # The kernel keeps TCP Fast Open cookies per server address: the TLS server (same
    # address, another port) gets data in its very first SYN.
    assert [(r.syn_data, r.is_mptcp) for r in records[2]] == [(False, True)] + [(True, True)] * 2
    assert [(r.syn_data, r.is_mptcp) for r in records[3]] == [(True, True)] * 3


@pytest.mark.parametrize("client_name", ["httpx", "httpx2"])
def test_install_with_exclude_in_process(client_name: str) -> None:
    """The excluded host's connections are the clients' own (no proof attached)."""
    import asyncio

    import requests
    import urllib3

    import http_fastpath
    from http_fastpath import FastpathOptions, OptionError

    client = pytest.importorskip(client_name, reason=f"{client_name} is not installed")
    with pytest.raises(OptionError, match="invalid value for exclude: 'a:b'"):
        http_fastpath.install(exclude="a:b")
    assert http_fastpath.status()["active"] is False

    async def async_proof(url: str) -> bool:
        async with client.AsyncClient() as c:
            return http_fastpath.connection_info(await c.get(url)) is not None

    left_out = next_loopback()
    with Server(tfo=True, host=left_out) as out, Server(tfo=True) as fast:
        http_fastpath.install(FastpathOptions(mptcp=False), exclude=[left_out, ".internal.test"])
        try:
            state = http_fastpath.status()
            assert state["exclude"] == [left_out, ".internal.test"] and state["hosts"] is None
            proofs = []
            for server in (out, fast):
                url = server.url + "/"
                with requests.Session() as session:
                    proofs.append(http_fastpath.connection_info(session.get(url)) is not None)
                with client.Client() as c:
                    proofs.append(http_fastpath.connection_info(c.get(url)) is not None)
                proofs.append(asyncio.run(async_proof(url)))
                pool = urllib3.PoolManager().connection_from_url(url)
                conn = pool.ConnectionCls(host=server.host, port=server.port)
                proofs.append(type(conn) is not urllib3.connection.HTTPConnection)
        finally:
            http_fastpath.uninstall()
        assert http_fastpath.status()["exclude"] is None
        records = (list(out.records), list(fast.records))
    assert proofs == [False] * 4 + [True] * 4
    assert [r.syn_data for r in records[0]] == [False] * 3
    assert [r.syn_data for r in records[1]] == [False, True, True]


H3_SCRIPTS = {
    "requests": """
        import sys, requests
        from http_fastpath import connection_info
        for url in sys.argv[1:]:
            r = requests.get(url, timeout=10)
            print(r.text, connection_info(r).transport)
    """,
    "httpx": """
        import sys, httpx
        from http_fastpath import connection_info
        for url in sys.argv[1:]:
            r = httpx.get(url, timeout=10)
            print(r.text, connection_info(r).transport)
    """,
    "httpx_async": """
        import asyncio, sys, httpx
        from http_fastpath import connection_info
        async def main():
            for url in sys.argv[1:]:
                async with httpx.AsyncClient(timeout=10) as client:
                    r = await client.get(url)
                    print(r.text, connection_info(r).transport)
        asyncio.run(main())
    """,
}


@pytest.mark.parametrize("client", sorted(H3_SCRIPTS))
def test_h3_upgrades_an_unmodified_script(
    client: str, wheel_python: Path, tmp_path: Path, ca: trustme.CA, ca_file: str
) -> None:
    """``HTTP_FASTPATH=tfo,h3``: the 1st request over TCP, the next ones over HTTP/3 (every
    request builds a new client: the memory is the process's)."""
    pytest.importorskip("aioquic", reason="HTTP/3 needs the http3 extra (aioquic)")
    from .._altsvc_server import AltSvcOrigin
    from .._h3server import H3TestServer

    env = {"SSL_CERT_FILE": ca_file, "REQUESTS_CA_BUNDLE": ca_file, "HTTP_FASTPATH": "tfo,h3"}
    with (
        H3TestServer(ca, "127.0.0.1", "localhost") as h3,
        AltSvcOrigin(server_tls(ca, "127.0.0.1"), f'h3=":{h3.port}"') as origin,
    ):
        done = _run(wheel_python, H3_SCRIPTS[client], [origin.url("/")] * 3, env, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr, done.stderr
    assert done.stdout.splitlines() == [
        "hello over tcp tcp",
        "hello over h3 quic",
        "hello over h3 quic",
    ]
    assert len(origin.requests) == 1 and len(h3.requests) == 2
