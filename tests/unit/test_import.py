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


def test_all_is_complete_and_without_duplicates() -> None:
    public = {
        n
        for n in dir(http_fastpath)
        if not n.startswith("_") and not isinstance(getattr(http_fastpath, n), types.ModuleType)
    } | {"__version__"}
    lazy = set(http_fastpath._LAZY)
    assert set(http_fastpath.__all__) == (public | lazy) - {"annotations"}
    assert len(set(http_fastpath.__all__)) == len(http_fastpath.__all__)


def test_httpx2_stack_needs_nothing_of_httpx() -> None:
    """``[httpx2]`` installs no httpx: every httpx2 name works with httpx/httpcore absent."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["httpx"] = sys.modules["httpcore"] = None  # as if not installed
        import http_fastpath.httpx2 as fast
        assert not {"httpx2", "httpcore2"} & set(sys.modules)  # nothing loads on import
        import httpx2, httpcore2
        for name in fast.__all__:
            getattr(fast, name)
        transport = fast.FastpathTransport()
        assert isinstance(transport, httpx2.BaseTransport)
        assert isinstance(fast.AsyncFastpathTransport(), httpx2.AsyncBaseTransport)
        assert isinstance(fast.FastpathBackend(), httpcore2.NetworkBackend)
        client = fast.fastpath_client()
        assert isinstance(client, httpx2.Client)
        client.close()
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_httpx2_module_lists_what_it_exports() -> None:
    from http_fastpath import httpx2

    assert set(httpx2.__all__) == set(httpx2._LAZY)
    assert set(httpx2.__all__) <= set(dir(httpx2))


def test_a_missing_extra_names_the_extra_to_install() -> None:
    """A public name whose library is missing says which extra installs it."""
    code = textwrap.dedent(
        """
        import sys
        for mod in ("requests", "urllib3", "aioquic", "httpx2", "httpcore2"):
            sys.modules[mod] = None  # as if not installed
        import http_fastpath, http_fastpath.httpx2
        for module, name in ((http_fastpath, "FastpathAdapter"),
                             (http_fastpath, "FastpathPoolManager"),
                             (http_fastpath.httpx2, "FastpathTransport")):
            try:
                getattr(module, name)
            except ModuleNotFoundError as exc:  # still an ImportError, with the module's name
                print(exc.name, "|", exc)
            else:
                raise AssertionError(name)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "requests | http_fastpath.FastpathAdapter needs 'requests', which is not installed: "
        'pip install "http_fastpath[requests]"',
        "urllib3 | http_fastpath.FastpathPoolManager needs 'urllib3', which is not installed: "
        'pip install "http_fastpath[requests]"',
        "httpcore2 | http_fastpath.httpx2.FastpathTransport needs 'httpcore2', which is not "
        'installed: pip install "http_fastpath[httpx2]"',
    ]


def test_the_runtime_path_never_imports_the_lab() -> None:
    """``http_fastpath.netlab`` is for tests and benchmarks: no runtime module imports it."""
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import http_fastpath
        def walk(path, prefix):  # every module of every sub-package, the lab's excepted
            for m in pkgutil.iter_modules(path, prefix):
                if m.name.endswith(("netlab", "__main__", "_quic_kernel")):
                    continue
                module = importlib.import_module(m.name)
                if m.ispkg:
                    walk(module.__path__, m.name + ".")
        walk(http_fastpath.__path__, "http_fastpath.")
        for name in http_fastpath.__all__:
            getattr(http_fastpath, name)
        assert "http_fastpath.netlab" not in sys.modules, "the lab was imported"
        assert "trustme" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
