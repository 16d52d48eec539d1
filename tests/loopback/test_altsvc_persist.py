"""EXPERIMENTAL: the Alt-Svc upgrade across processes, and a 421 from the alternative.

Persistence (``alt_svc_file=``, ``ticket_file=``): process 1, a real Python subprocess,
learns ``Alt-Svc`` from the TCP origin and uses HTTP/3; process 2, another one, reads the
files and sends its very first request over HTTP/3 -- resumed and in 0-RTT when the
tickets were kept too. The servers (in this process) prove it: the TCP origin never sees
process 2, the HTTP/3 server records the handshake (``session_resumed``,
``early_data_accepted``) and the packet type that carried the request.

421: the alternative answers ``421 Misdirected Request``; the request goes to the origin
over TCP (a POST too: the server did not process it), the alternative is dropped.
Runs with requests, httpx sync, asyncio and trio (httpx2 with HTTP_FASTPATH_TEST_STACK).
"""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from http_fastpath._core.altsvc_file import MAGIC

from .._altsvc_server import AltSvcOrigin
from .._h3server import H3TestServer
from .._servers import server_tls
from .test_altsvc_upgrade import KINDS, Client

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]

#: one process of a short-lived program: N GETs, then exit; prints what each one was
SCRIPT = textwrap.dedent(
    """
    import json, ssl, sys
    import anyio
    from http_fastpath import FastpathAdapter, connection_info
    from tests._stack import AsyncFastpathTransport, FastpathTransport, httpx

    args = json.loads(sys.argv[1])
    kind, url, ca = args["kind"], args["url"], args["ca"]
    files = {"alt_svc_file": args["alt_svc_file"], "ticket_file": args["ticket_file"]}

    def row(r):
        info = connection_info(r)
        return [r.status_code, r.text, info.transport, info.resumed, info.early_data]

    if kind == "requests":
        import requests
        with requests.Session() as s:
            s.mount("https://", FastpathAdapter(http3="auto", **files))
            out = [row(s.get(url, verify=ca, timeout=5)) for _ in range(args["n"])]
    elif kind == "httpx":
        ctx = ssl.create_default_context(cafile=ca)
        transport = FastpathTransport(verify=ctx, http3="auto", **files)
        with httpx.Client(transport=transport, timeout=5) as client:
            out = [row(client.get(url)) for _ in range(args["n"])]
    else:
        async def main():
            ctx = ssl.create_default_context(cafile=ca)
            transport = AsyncFastpathTransport(verify=ctx, http3="auto", **files)
            async with httpx.AsyncClient(transport=transport, timeout=5) as client:
                return [row(await client.get(url)) for _ in range(args["n"])]
        out = anyio.run(main, backend=kind)
    print(json.dumps(out))
    """
)


def run_process(kind: str, url: str, n: int, ca_file: str, tmp: Path, tickets: bool) -> Any:
    """One short-lived program in its own Python process; its rows, or the test fails."""
    args = {
        "kind": kind,
        "url": url,
        "n": n,
        "ca": ca_file,
        "alt_svc_file": str(tmp / "altsvc.txt"),
        "ticket_file": str(tmp / "tickets.json") if tickets else None,
    }
    return _run(SCRIPT, args, tmp)


def _run(script: str, args: dict[str, Any], tmp: Path) -> Any:
    """``script`` in a fresh Python process (no opt-in variables): its printed JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HTTP_FASTPATH")}
    if "HTTP_FASTPATH_TEST_STACK" in os.environ:
        env["HTTP_FASTPATH_TEST_STACK"] = os.environ["HTTP_FASTPATH_TEST_STACK"]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(autouse=True)
def _no_ca_bundle_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def h3(ca: trustme.CA) -> Iterator[H3TestServer]:
    with H3TestServer(ca, "127.0.0.1", "localhost") as server:
        yield server


def _origin(ca: trustme.CA, alt_svc: str) -> AltSvcOrigin:
    return AltSvcOrigin(server_tls(ca, "127.0.0.1", "localhost"), alt_svc)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("kind", KINDS)
def test_second_process_goes_straight_to_http3(
    kind: str, ca: trustme.CA, ca_file: str, h3: H3TestServer, tmp_path: Path
) -> None:
    with _origin(ca, f'h3=":{h3.port}"; ma=3600') as origin:
        first = run_process(kind, origin.url("/"), 2, ca_file, tmp_path, tickets=False)
        assert [row[2] for row in first] in (["tcp", "quic"], ["mptcp", "quic"])
        assert len(origin.requests) == 1
        altsvc = tmp_path / "altsvc.txt"
        assert _mode(altsvc) == 0o600
        lines = altsvc.read_text().splitlines()
        assert lines[0] == MAGIC
        assert lines[1].startswith(f"h1 127.0.0.1 {origin.port} h3 127.0.0.1 {h3.port} ")
        assert not (tmp_path / "tickets.json").exists()  # never without being asked
        [second] = run_process(kind, origin.url("/"), 1, ca_file, tmp_path, tickets=False)
    # process 2's first request: HTTP/3, and the TCP origin never saw it
    assert second[:3] == [200, "hello over h3", "quic"]
    assert len(origin.requests) == 1 and len(h3.requests) == 2
    assert h3.wait_for(lambda: len(h3.handshakes) == 2)
    assert h3.handshakes[1] == (False, False)  # no tickets kept: a full handshake
    assert sorted(p.name for p in tmp_path.iterdir()) == ["altsvc.txt"]


@pytest.mark.parametrize("kind", KINDS)
def test_second_process_resumes_in_0rtt_with_the_ticket_file(
    kind: str, ca: trustme.CA, ca_file: str, h3: H3TestServer, tmp_path: Path
) -> None:
    with _origin(ca, f'h3=":{h3.port}"; ma=3600') as origin:
        run_process(kind, origin.url("/"), 3, ca_file, tmp_path, tickets=True)
        tickets = tmp_path / "tickets.json"
        assert _mode(tickets) == 0o600 and json.loads(tickets.read_text())["tickets"]
        [second] = run_process(kind, origin.url("/"), 1, ca_file, tmp_path, tickets=True)
    assert second == [200, "hello over h3", "quic", True, "accepted"]
    assert len(origin.requests) == 1
    # the server's side: process 2's connection resumed, took early data, and the GET
    # arrived in a 0-RTT packet
    assert h3.wait_for(lambda: len(h3.handshakes) == 2)
    assert h3.handshakes == [(False, False), (True, True)]
    assert h3.epochs[-1] == "0rtt"


def test_damaged_file_degrades_to_tcp(
    ca: trustme.CA, ca_file: str, h3: H3TestServer, tmp_path: Path
) -> None:
    (tmp_path / "altsvc.txt").write_text(MAGIC + "\nh1 127.0.0.1 1 h3 \x00 not a line\n")
    with _origin(ca, f'h3=":{h3.port}"') as origin:
        rows = run_process("requests", origin.url("/"), 2, ca_file, tmp_path, tickets=False)
    assert [row[1] for row in rows] == ["hello over tcp", "hello over h3"]
    assert "127.0.0.1" in (tmp_path / "altsvc.txt").read_text()  # ours: rewritten


def test_optin_keeps_its_memory_and_tickets_in_the_named_files(
    ca: trustme.CA,
    ca_file: str,
    h3: H3TestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``HTTP_FASTPATH=…,h3`` with ``HTTP_FASTPATH_ALTSVC_FILE`` / ``_TICKET_FILE``: the
    process-wide memory is the file's (stock requests here)."""
    import requests

    from http_fastpath import FastpathOptions, connection_info
    from http_fastpath._integrations import autoinstall, h3_optin

    monkeypatch.setenv("HTTP_FASTPATH", "tfo,h3")
    monkeypatch.setenv("HTTP_FASTPATH_ALTSVC_FILE", str(tmp_path / "altsvc.txt"))
    monkeypatch.setenv("HTTP_FASTPATH_TICKET_FILE", str(tmp_path / "tickets.json"))
    h3_optin._h3_memory_made.clear()
    autoinstall.install(FastpathOptions(), http3=True)
    try:
        with _origin(ca, f'h3=":{h3.port}"') as origin, requests.Session() as session:
            infos = [
                connection_info(session.get(origin.url("/"), verify=ca_file, timeout=5))
                for _ in range(2)
            ]
    finally:
        autoinstall.uninstall()
        h3_optin._h3_memory_made.clear()
    assert infos[1] is not None and infos[1].transport == "quic"
    assert str(h3.port) in (tmp_path / "altsvc.txt").read_text()
    assert h3.wait_for(lambda: h3.tickets_issued >= 1)
    from http_fastpath.http3._persist import flush_all

    flush_all()
    assert json.loads((tmp_path / "tickets.json").read_text())["tickets"]
    assert _mode(tmp_path / "tickets.json") == 0o600


def test_file_keywords_are_checked_shared_and_pickled(tmp_path: Path) -> None:
    import pickle

    from http_fastpath import FastpathAdapter, OptionError

    from .._stack import AsyncFastpathTransport, FastpathTransport

    altsvc, tickets = tmp_path / "altsvc.txt", str(tmp_path / "tickets.json")
    for make in (FastpathAdapter, FastpathTransport, AsyncFastpathTransport):
        with pytest.raises(OptionError, match="only together with http3='auto'"):
            make(alt_svc_file=altsvc)
        with pytest.raises(OptionError, match="invalid value for ticket_file: ''"):
            make(http3="auto", ticket_file="")
    adapter = FastpathAdapter(http3="auto", alt_svc_file=altsvc, ticket_file=tickets)
    transport = AsyncFastpathTransport(http3="auto", alt_svc_file=str(altsvc))
    # one memory per file in the process, whoever names it
    ours, theirs = adapter._upgrade, transport._upgrade
    assert ours is not None and theirs is not None
    assert theirs.memory is ours.memory
    assert ours.pool.tickets is ours.tickets is not None
    copy = pickle.loads(pickle.dumps(adapter))
    assert (copy.fastpath_alt_svc_file, copy.fastpath_ticket_file) == (str(altsvc), tickets)
    assert copy._upgrade is not None and copy._upgrade.memory is ours.memory
    adapter.close()
    copy.close()
    FastpathTransport(http3="auto").close()  # no file: its own memory, nothing written
    assert list(tmp_path.iterdir()) == []


# -- 421 Misdirected Request -------------------------------------------------------------------


@pytest.fixture(params=KINDS)
def make_client(request: pytest.FixtureRequest, ca_file: str) -> Iterator[Callable[[], Client]]:
    made: list[Client] = []

    def make() -> Client:
        made.append(Client(request.param, ca_file))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_421_goes_to_the_origin_over_tcp_and_drops_the_alternative(
    make_client: Callable[[], Client], ca: trustme.CA, h3: H3TestServer, method: str
) -> None:
    body = b"once" if method == "POST" else None
    with _origin(ca, f'h3=":{h3.port}"') as origin:
        client = make_client()
        results = client.run(
            [
                ("GET", origin.url("/"), None),  # learns
                (method, origin.url("/status/421"), body),  # 421 over HTTP/3, then TCP
                ("GET", origin.url("/"), None),  # the alternative is out: TCP
            ]
        )
    assert [(s, t) for s, t, _ in results] == [(200, "hello over tcp")] * 3
    assert [info.transport in ("tcp", "mptcp") for _, _, info in results] == [True] * 3
    [note] = results[1][2].fallbacks
    assert note == (
        f"http3: h3 alternative 127.0.0.1:{h3.port} answered 421 Misdirected Request; "
        "sent over TCP, alternative not tried for 300 s"
    )
    assert results[2][2].fallbacks == ()
    # the alternative saw the request once and answered 421; the origin served it (its
    # body once), and the next request too
    assert [(m, p, b) for m, p, _, b in h3.requests] == [(method, "/status/421", body or b"")]
    assert [(m, p, b) for m, p, b in origin.requests] == [
        ("GET", "/", b""),
        (method, "/status/421", body or b""),
        ("GET", "/", b""),
    ]


#: a short-lived program on the HTTP/3 transports themselves (no Alt-Svc): N GETs
DIRECT = textwrap.dedent(
    """
    import json, sys
    import anyio
    from http_fastpath import connection_info
    from tests._stack import http3_transports, httpx

    args = json.loads(sys.argv[1])
    kind, url, ca, tickets = args["kind"], args["url"], args["ca"], args["ticket_file"]
    HTTP3Transport, AsyncHTTP3Transport = http3_transports()

    def row(r):
        info = connection_info(r)
        return [r.status_code, r.text, info.transport, info.resumed, info.early_data]

    if kind == "requests":
        import requests
        from http_fastpath.http3 import HTTP3Adapter
        with requests.Session() as s:
            s.mount("https://", HTTP3Adapter(backend="userspace", ticket_file=tickets))
            out = [row(s.get(url, verify=ca, timeout=5)) for _ in range(args["n"])]
    elif kind == "httpx":
        transport = HTTP3Transport(verify=ca, backend="userspace", ticket_file=tickets)
        with httpx.Client(transport=transport, timeout=5) as client:
            out = [row(client.get(url)) for _ in range(args["n"])]
    else:
        async def main():
            transport = AsyncHTTP3Transport(verify=ca, backend="userspace", ticket_file=tickets)
            async with httpx.AsyncClient(transport=transport, timeout=5) as client:
                return [row(await client.get(url)) for _ in range(args["n"])]
        out = anyio.run(main, backend=kind)
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("kind", KINDS)
def test_http3_transports_keep_tickets_in_the_ticket_file(
    kind: str, ca_file: str, h3: H3TestServer, tmp_path: Path
) -> None:
    """HTTP3Transport / AsyncHTTP3Transport / HTTP3Adapter(ticket_file=...): the next
    process resumes, its GET in 0-RTT (the server's side says so)."""
    tickets = tmp_path / "tickets.json"
    args = {"kind": kind, "url": f"https://localhost:{h3.port}/", "ca": ca_file, "n": 2}
    args["ticket_file"] = str(tickets)

    first = _run(DIRECT, args, tmp_path)
    assert [r[:3] for r in first] == [[200, "hello over h3", "quic"]] * 2
    assert _mode(tickets) == 0o600 and json.loads(tickets.read_text())["tickets"]
    second = _run(DIRECT, args, tmp_path)
    assert second[0] == [200, "hello over h3", "quic", True, "accepted"]
    assert h3.wait_for(lambda: len(h3.handshakes) == 2)
    assert h3.handshakes == [(False, False), (True, True)]
    assert h3.epochs[-2:] == ["0rtt", "1rtt"]  # process 2: its first GET in 0-RTT


def test_http3_transports_check_ticket_file(tmp_path: Path) -> None:
    from http_fastpath._core.exceptions import OptionError
    from http_fastpath.http3 import HTTP3Adapter

    from .._stack import http3_transports

    for make in (*http3_transports(), HTTP3Adapter):
        with pytest.raises(OptionError, match="invalid value for ticket_file: ''"):
            make(ticket_file="")
        with pytest.raises(OptionError, match="ticket_file"):
            make(ticket_file=3)  # type: ignore[arg-type]  # wrong on purpose
    adapter = HTTP3Adapter(ticket_file=tmp_path / "t.json")
    copy = pickle.loads(pickle.dumps(adapter))
    assert copy._h3_ticket_file == adapter._h3_ticket_file == str(tmp_path / "t.json")
    assert copy._h3_pool.tickets is adapter._h3_pool.tickets  # one store per file and process
    adapter.close()
    copy.close()
