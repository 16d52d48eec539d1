"""``import http_fastpath`` does no work: no socket, no sysctl read, no HTTP client import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import http_fastpath


def test_import_opens_no_socket_and_reads_no_sysctl() -> None:
    code = textwrap.dedent(
        """
        import builtins, io, os, socket, sys
        opened = []
        real_open, real_io_open, real_os_open = builtins.open, io.open, os.open
        def spy(path, *a, **k):
            opened.append(str(path))
            return real_open(path, *a, **k)
        def spy_os(path, *a, **k):
            opened.append(str(path))
            return real_os_open(path, *a, **k)
        builtins.open = io.open = spy
        os.open = spy_os
        class Spy(socket.socket):
            def __init__(self, *a, **k):
                raise AssertionError("socket created at import time")
        socket.socket = Spy
        import http_fastpath
        assert not [p for p in opened if p.startswith("/proc")], opened
        heavy = {"requests", "urllib3", "httpx", "httpcore", "anyio", "trio", "ssl"}
        assert not heavy & set(sys.modules), heavy & set(sys.modules)
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_all_is_sorted_by_role_and_complete() -> None:
    public = {
        n
        for n in dir(http_fastpath)
        if not n.startswith("_") and not isinstance(getattr(http_fastpath, n), types.ModuleType)
    } | {"__version__"}
    lazy = set(http_fastpath._LAZY)
    assert set(http_fastpath.__all__) == (public | lazy) - {"annotations"}
    for name in http_fastpath.__all__:
        assert getattr(http_fastpath, name) is not None
