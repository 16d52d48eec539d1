"""What a typed user sees: mypy --strict on user code, and the names dir() lists."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import http_fastpath

USER_CODE = """
import httpx
import requests

import http_fastpath
from http_fastpath import (
    AsyncFastpathTransport, ConnectionInfo, FastpathAdapter, FastpathOptions,
    FastpathTransport, connection_info, destinations, fastpath_client,
)

session = requests.Session()
session.mount("https://", FastpathAdapter(mptcp=False))
info: ConnectionInfo | None = connection_info(session.get("https://example.test/"))
reveal_type(connection_info)
client = httpx.Client(transport=FastpathTransport(http2=True))
aclient = httpx.AsyncClient(transport=AsyncFastpathTransport(tfo_policy="safe"))
default_client: httpx.Client = fastpath_client()
options = FastpathOptions(tfo_pause=30.0)
ports = [d.port + 1 for d in destinations()]
reveal_type(http_fastpath.probe())
"""

USER_CODE_HTTPX2 = """
import httpcore2
import httpx2

from http_fastpath import connection_info
from http_fastpath.httpx2 import (
    AsyncFastpathTransport, FastpathBackend, FastpathTransport, HTTP3Transport,
    async_fastpath_client, fastpath_client,
)

transport = FastpathTransport(http2=True, limits=httpx2.Limits(max_connections=5))
client = httpx2.Client(transport=transport)
aclient = httpx2.AsyncClient(transport=AsyncFastpathTransport(tfo_policy="safe"))
h3 = httpx2.Client(transport=HTTP3Transport())
default_client: httpx2.Client = fastpath_client()
default_aclient: httpx2.AsyncClient = async_fastpath_client()
pool = httpcore2.ConnectionPool(network_backend=FastpathBackend())
reveal_type(transport.handle_request(httpx2.Request("GET", "http://example.test/")))
connection_info(client.get("http://example.test/"))
"""

MISTAKES = """
from http_fastpath import FastpathAdapter, FastpathTransport
FastpathAdapter(mptcp="no")
FastpathTransport(tfo_policy="sometimes")
"""


def _mypy(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "user.py").write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_public_api_is_typed_for_users(tmp_path: Path) -> None:
    result = _mypy(tmp_path, USER_CODE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "-> http_fastpath._core.info.ConnectionInfo | None" in result.stdout, result.stdout
    assert "http_fastpath._core.capabilities.Capabilities" in result.stdout


def test_httpx2_api_is_typed_for_users(tmp_path: Path) -> None:
    result = _mypy(tmp_path, USER_CODE_HTTPX2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Revealed type is "httpx2._models.Response"' in result.stdout, result.stdout


def test_type_checkers_catch_wrong_arguments(tmp_path: Path) -> None:
    result = _mypy(tmp_path, MISTAKES)
    assert result.returncode == 1
    assert 'Argument "mptcp" to "FastpathAdapter" has incompatible type "str"' in result.stdout
    assert '"tfo_policy"' in result.stdout


def test_dir_lists_every_public_name() -> None:
    public = {name for name in dir(http_fastpath) if not name.startswith("_")}
    assert set(http_fastpath.__all__) - {"__version__"} <= public
    lazy = set(http_fastpath._LAZY)
    assert lazy <= public and lazy <= set(http_fastpath.__all__)
