"""TLS set-up CPU with a system-size CA bundle: the shared SSLContext cache vs stock.

Not a test: prints numbers (and ``measure()`` feeds ``scripts/bench``). Stock clients
load the CA bundle again for every context they build: urllib3 for every new HTTPS
connection, httpx for every client. http_fastpath builds one context per set of TLS
settings and hands it out again (``http_fastpath._core.sslcache``). Rows:

- *requests, new connection*: one Session, every request on a new connection (the
  server answers ``Connection: close``);
- *httpx / httpx async, new client*: a new client per request (build, GET, close);
- *httpx / httpx2, client construction*: build and close a client, no request;
- *httpx opt-in construction*: ``httpx.Client()`` of an unmodified program, stock vs
  under ``http_fastpath.install()`` (what ``HTTP_FASTPATH=…`` does).

For each of ``verify=True``, ``verify=<path>`` and ``verify=False``, without the
environment (``trust_env=False``: no ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``). The bundles are
system-size: certifi's (what ``verify=True`` loads in requests and httpx) and the
system's, each with the test CA appended so the server's certificate verifies; for
``verify=True`` the clients' certifi path points at the first one for the run (stock and
fastpath alike). CPU is the client process's ``process_time``; stock and fastpath
interleaved, medians over the rounds.

    sudo python -m benchmarks.bench_tls_context [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import ssl
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trustme

from http_fastpath.netlab import enter_private_netns, next_loopback
from http_fastpath.netlab._kinds import _stack

from .bench_fresh_cpu import _BODY, Made, _serve, interleaved

Runner = Callable[[int], None]


def _system_bundle() -> str:
    """The system's CA bundle (OpenSSL's default file), else certifi's."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and os.path.isfile(candidate):
            return candidate
    import certifi

    return certifi.where()


@contextmanager
def _bundles(ca: trustme.CA) -> Iterator[tuple[str, str]]:
    """(certifi + test CA, system bundle + test CA) files, and ``verify=True`` pointed at
    the first for requests and httpx (``certifi.where``) during the run."""
    import certifi

    with tempfile.TemporaryDirectory(prefix="fastpath-tls-") as tmp:
        test_ca = ca.cert_pem.bytes()
        paths = []
        for name, source in (("certifi", certifi.where()), ("system", _system_bundle())):
            path = os.path.join(tmp, f"{name}-plus-test-ca.pem")
            with open(source, "rb") as src, open(path, "wb") as out:
                out.write(src.read().rstrip(b"\n") + b"\n" + test_ca)
            paths.append(path)
        real_where = certifi.where
        patched: list[tuple[Any, str, Any]] = [(certifi, "where", lambda: paths[0])]
        if importlib.util.find_spec("requests") is not None:
            import requests.adapters

            patched.append((requests.adapters, "DEFAULT_CA_BUNDLE_PATH", paths[0]))
        saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patched]
        for obj, name, value in patched:
            setattr(obj, name, value)
        try:
            yield paths[0], paths[1]
        finally:
            for obj, name, value in saved:
                setattr(obj, name, value)
            assert certifi.where is real_where


def _requests(fast: bool, url: str, verify: bool | str) -> tuple[Runner, Callable[[], None]]:
    import requests

    from http_fastpath import FastpathAdapter

    session = requests.Session()
    session.trust_env = False
    if fast:
        session.mount("https://", FastpathAdapter())

    def run(n: int) -> None:
        for _ in range(n):
            assert session.get(url, verify=verify).content == _BODY

    return run, session.close


def _httpx_new_client(
    fast: bool, url: str, verify: bool | str, stack: str = "httpx"
) -> tuple[Runner, Callable[[], None]]:
    httpx, ours = _stack(stack)

    def run(n: int) -> None:
        for _ in range(n):
            if fast:
                client = httpx.Client(
                    transport=ours.FastpathTransport(verify=verify, trust_env=False)
                )
            else:
                client = httpx.Client(verify=verify, trust_env=False)
            with client:
                assert client.get(url).content == _BODY

    return run, lambda: None


def _httpx_async_new_client(
    fast: bool, url: str, verify: bool | str, stack: str = "httpx"
) -> tuple[Runner, Callable[[], None]]:
    httpx, ours = _stack(stack)
    loop = asyncio.new_event_loop()

    async def many(n: int) -> None:
        for _ in range(n):
            if fast:
                client = httpx.AsyncClient(
                    transport=ours.AsyncFastpathTransport(verify=verify, trust_env=False)
                )
            else:
                client = httpx.AsyncClient(verify=verify, trust_env=False)
            async with client:
                assert (await client.get(url)).content == _BODY

    def run(n: int) -> None:
        loop.run_until_complete(many(n))

    return run, loop.close


def _construction(
    fast: bool, url: str, verify: bool | str, stack: str = "httpx"
) -> tuple[Runner, Callable[[], None]]:
    httpx, ours = _stack(stack)

    def run(n: int) -> None:
        for _ in range(n):
            if fast:
                client = httpx.Client(
                    transport=ours.FastpathTransport(verify=verify, trust_env=False)
                )
            else:
                client = httpx.Client(verify=verify, trust_env=False)
            client.close()

    return run, lambda: None


def _opt_in_construction(
    fast: bool, url: str, verify: bool | str, stack: str = "httpx"
) -> tuple[Runner, Callable[[], None]]:
    """``httpx.Client()`` of an unmodified program, with and without ``install()``."""
    import http_fastpath

    httpx, _ = _stack(stack)

    def run(n: int) -> None:
        if fast:
            http_fastpath.install()
        try:
            for _ in range(n):
                httpx.Client(verify=verify, trust_env=False).close()
        finally:
            if fast:
                http_fastpath.uninstall()

    return run, lambda: None


ROWS: dict[str, tuple[str, Callable[..., tuple[Runner, Callable[[], None]]], int]] = {
    # name: (what one "request" is, runner factory, requests per round)
    "requests": ("new connection", _requests, 20),
    "httpx": ("new client + GET", _httpx_new_client, 20),
    "httpx async": ("new client + GET", _httpx_async_new_client, 20),
    "httpx construction": (
        "client construction",
        lambda fast, url, verify: _construction(fast, url, verify, "httpx"),
        20,
    ),
    "httpx2 construction": (
        "client construction",
        lambda fast, url, verify: _construction(fast, url, verify, "httpx2"),
        20,
    ),
    "httpx opt-in construction": (
        "client construction",
        lambda fast, url, verify: _opt_in_construction(fast, url, verify, "httpx"),
        20,
    ),
}


def measure(rounds: int = 6, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Rows of client CPU µs per request (or per client), stock vs fastpath; in a netns."""
    try:
        from http_fastpath._core import sslcache as _sslcache
    except ImportError:  # a version without the shared contexts (to compare with)
        _sslcache = None  # type: ignore[assignment]

    ca = trustme.CA()
    host = next_loopback()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(server_tls)
    rows: list[dict[str, Any]] = []
    url, child = _serve(host, server_tls, close=True)
    try:
        with _bundles(ca) as (certifi_plus, system_plus), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # httpx: verify=<str>; urllib3: verify=False
            for name, (unit, factory, per_round) in ROWS.items():
                if importlib.util.find_spec(name.split()[0]) is None:
                    continue
                for label, verify in (
                    ("verify=True", True),
                    ("verify=<path>", system_plus),
                    ("verify=False", False),
                ):
                    if _sslcache is not None:
                        _sslcache.CACHE.clear()
                    made: Made = {fast: factory(fast, url, verify) for fast in (False, True)}
                    for run, _ in made.values():
                        run(2)  # warm-up (and the fastpath's first context)
                    built = _sslcache.CACHE.built if _sslcache is not None else 0
                    got = interleaved(made, per_round, rounds)
                    for _, close in made.values():
                        close()
                    stock, fast = got[False], got[True]
                    row = {
                        "client": name,
                        "unit": unit,
                        "verify": label,
                        "stock_cpu_us": round(stock["cpu_us"], 1),
                        "fast_cpu_us": round(fast["cpu_us"], 1),
                        "ratio": round(fast["cpu_us"] / stock["cpu_us"], 3),
                        "contexts_built": (
                            None if _sslcache is None else _sslcache.CACHE.built - built
                        ),
                        "requests": per_round * rounds,
                    }
                    rows.append(row)
                    log(
                        f"  {name:<20} {label:<14} stock {row['stock_cpu_us']:9.1f} µs  "
                        f"fastpath {row['fast_cpu_us']:8.1f} µs  ratio {row['ratio']:.3f}"
                    )
    finally:
        child.terminate()
        child.join(5)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    args = parser.parse_args(argv)
    reason = enter_private_netns()
    if reason is not None:
        sys.exit(f"needs a private network namespace (root or user namespaces): {reason}")
    print("TLS set-up CPU, system-size CA bundle (loopback)")
    measure(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
