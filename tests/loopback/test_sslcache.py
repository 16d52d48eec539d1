"""The shared SSLContext cache: keys, sharing, invalidation, verification as stock.

The key functions are pure (table tests with a made-up stamp); the rest runs real TLS
connections against trustme certificates in the private namespace.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import trustme
import urllib3

from http_fastpath import FastpathAdapter, FastpathPoolManager
from http_fastpath._core import sslcache as _sslcache
from http_fastpath._core.sslcache import AlpnFixed, SSLContextCache, httpx_key, unwrap, urllib3_key
from http_fastpath.netlab import Server, next_loopback

from .._servers import https, server_tls
from .._stack import AsyncFastpathTransport, FastpathTransport, httpx

# -- the key functions: pure ------------------------------------------------------------------


def _stamp(path: str) -> _sslcache.Stamp:
    return (path, 1, len(path), 7)  # a stable, made-up stamp


U3: dict[str, Any] = {
    "cert_reqs": ssl.CERT_REQUIRED,
    "ssl_minimum_version": None,
    "ssl_maximum_version": None,
    "ca_certs": "/ca.pem",
    "ca_cert_dir": None,
    "ca_cert_data": None,
    "cert_file": None,
    "key_file": None,
    "key_password": None,
    "check_hostname_off": False,
    "alpn": ["http/1.1"],
    "default_paths": ("/default.pem", "/default-dir"),
    "environ": {},
}

U3_CHANGES: list[tuple[str, Any]] = [
    ("cert_reqs", ssl.CERT_NONE),
    ("ssl_minimum_version", ssl.TLSVersion.TLSv1_3),
    ("ssl_maximum_version", ssl.TLSVersion.TLSv1_2),
    ("ca_certs", "/other.pem"),
    ("ca_cert_dir", "/certs"),
    ("ca_cert_data", "-----BEGIN CERTIFICATE-----"),
    ("cert_file", "/client.pem"),
    ("key_file", "/client.key"),
    ("key_password", "secret"),
    ("check_hostname_off", True),
    ("alpn", ["h2", "http/1.1"]),
    ("environ", {"SSLKEYLOGFILE": "/keys.log"}),
    ("environ", {"SSL_CERT_FILE": "/env.pem"}),
    ("environ", {"SSL_CERT_DIR": "/env-dir"}),
]


def test_urllib3_key_is_the_same_for_the_same_settings() -> None:
    assert urllib3_key(**U3, stamp=_stamp) == urllib3_key(**dict(U3), stamp=_stamp)


@pytest.mark.parametrize(("name", "value"), U3_CHANGES)
def test_urllib3_key_differs_for_every_setting(name: str, value: Any) -> None:
    assert urllib3_key(**{**U3, name: value}, stamp=_stamp) != urllib3_key(**U3, stamp=_stamp)


def test_urllib3_key_stamps_the_files() -> None:
    def newer(path: str) -> _sslcache.Stamp:
        return (path, 1, len(path), 8 if path == "/ca.pem" else 7)  # the CA file changed

    assert urllib3_key(**U3, stamp=newer) != urllib3_key(**U3, stamp=_stamp)
    # no CA given: the default paths count (load_default_certs reads them)
    no_ca = {**U3, "ca_certs": None}

    def newer_default(path: str) -> _sslcache.Stamp:
        return (path, 1, len(path), 8 if path == "/default.pem" else 7)

    assert urllib3_key(**no_ca, stamp=newer_default) != urllib3_key(**no_ca, stamp=_stamp)
    assert urllib3_key(**U3, stamp=newer_default) == urllib3_key(**U3, stamp=_stamp)


HX: dict[str, Any] = {
    "stack": "httpx",
    "verify": True,
    "cert": None,
    "trust_env": True,
    "alpn": ["http/1.1"],
    "default_paths": ("/certifi.pem",),
    "environ": {},
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("stack", "httpx2"),
        ("verify", False),
        ("verify", "/ca.pem"),
        ("cert", "/client.pem"),
        ("cert", ("/client.pem", "/client.key")),
        ("trust_env", False),
        ("alpn", ["http/1.1", "h2"]),
        ("environ", {"SSL_CERT_FILE": "/env.pem"}),
        ("default_paths", ("/other.pem",)),
    ],
)
def test_httpx_key_differs_for_every_setting(name: str, value: Any) -> None:
    assert httpx_key(**{**HX, name: value}, stamp=_stamp) != httpx_key(**HX, stamp=_stamp)


def test_httpx_key_passwords_and_files() -> None:
    a = httpx_key(**{**HX, "cert": ("/c.pem", "/c.key", "one")}, stamp=_stamp)
    b = httpx_key(**{**HX, "cert": ("/c.pem", "/c.key", "two")}, stamp=_stamp)
    assert a is not None and b is not None and a != b
    assert httpx_key(**HX, stamp=_stamp) == httpx_key(**dict(HX), stamp=_stamp)


def test_the_callers_own_context_is_never_keyed() -> None:
    assert httpx_key(**{**HX, "verify": ssl.create_default_context()}, stamp=_stamp) is None
    assert httpx_key(**{**HX, "cert": object()}, stamp=_stamp) is None


def test_file_stamp_changes_when_the_file_does(tmp_path: Any) -> None:
    path = tmp_path / "ca.pem"
    assert _sslcache.file_stamp(str(path)) == (str(path), None)
    path.write_bytes(b"one")
    first = _sslcache.file_stamp(str(path))
    os.utime(path, ns=(1, 1))
    assert _sslcache.file_stamp(str(path)) != first
    path.write_bytes(b"three")
    stamp = _sslcache.file_stamp(str(path))
    assert len(stamp) == 4 and stamp[2] == 5  # the size


# -- the cache --------------------------------------------------------------------------------


def test_cache_is_bounded_and_returns_the_stored_context() -> None:
    cache = SSLContextCache(max_entries=3)
    made = [cache.get(i, ssl.create_default_context) for i in range(5)]
    assert len(cache) == 3 and cache.built == 5
    assert cache.get(4, ssl.create_default_context) is made[4]  # a hit
    assert cache.get(0, ssl.create_default_context) is not made[0]  # dropped, built again


def test_concurrent_builds_of_one_key_share_the_first_stored() -> None:
    cache = SSLContextCache()
    barrier = threading.Barrier(4)
    got: list[ssl.SSLContext] = []

    def build() -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        barrier.wait(timeout=10)  # every thread has missed before any stores
        return ctx

    def worker() -> None:
        got.append(cache.get("k", build))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 4 and all(c is got[0] for c in got) and cache.built == 1


def test_a_failed_build_stores_nothing() -> None:
    cache = SSLContextCache()

    def broken() -> ssl.SSLContext:
        raise ssl.SSLError("no")

    with pytest.raises(ssl.SSLError):
        cache.get("k", broken)
    assert len(cache) == 0


def test_alpn_fixed_switches_contexts_and_never_sets_alpn() -> None:
    contexts: dict[tuple[str, ...], ssl.SSLContext] = {}

    def get(alpn: list[str]) -> ssl.SSLContext:
        return contexts.setdefault(tuple(alpn), ssl.create_default_context())

    fixed = AlpnFixed(get, ["http/1.1"])
    first = unwrap(fixed)
    fixed.set_alpn_protocols(["http/1.1"])  # what httpcore does per connection: a lookup
    assert unwrap(fixed) is first
    fixed.set_alpn_protocols(["h2", "http/1.1"])  # another list: another context
    assert unwrap(fixed) is contexts[("h2", "http/1.1")] is not first
    assert unwrap(first) is first
    assert fixed.verify_mode is ssl.CERT_REQUIRED  # everything else is the context's


# -- real connections -------------------------------------------------------------------------


class Mutations:
    """Records every change made to any ``ssl.SSLContext`` (methods and attributes)."""

    METHODS = (
        "load_verify_locations",
        "load_cert_chain",
        "load_default_certs",
        "set_default_verify_paths",
        "set_ciphers",
        "set_alpn_protocols",
    )

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[int, str]] = []
        for name in self.METHODS:
            real = getattr(ssl.SSLContext, name)
            monkeypatch.setattr(ssl.SSLContext, name, self._spy(name, real))
        real_setattr = ssl.SSLContext.__setattr__

        def setattr_(ctx: ssl.SSLContext, name: str, value: Any) -> None:
            self.calls.append((id(ctx), name))
            real_setattr(ctx, name, value)

        monkeypatch.setattr(ssl.SSLContext, "__setattr__", setattr_)

    def _spy(self, name: str, real: Any) -> Any:
        def spy(ctx: ssl.SSLContext, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((id(ctx), name))
            return real(ctx, *args, **kwargs)

        return spy

    def on(self, ctx: ssl.SSLContext) -> list[str]:
        return [name for ident, name in self.calls if ident == id(ctx)]


def _shared() -> list[ssl.SSLContext]:
    return list(_sslcache.CACHE._entries.values())


def _get(url: str, verify: Any) -> requests.Response:
    """A GET on a new connection (a new session: no race with the server's close)."""
    with requests.Session() as session:
        session.mount("https://", FastpathAdapter())
        return session.get(url, verify=verify)


def test_requests_share_one_context_per_settings_never_changed(
    https_server: Server, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _get(https_server.url, ca_file).ok
    (ctx,) = _shared()
    seen = Mutations(monkeypatch)
    for _ in range(3):  # new connections: the same context, untouched
        assert _get(https_server.url, ca_file).ok
    assert _shared() == [ctx] and _sslcache.CACHE.built == 1
    assert seen.on(ctx) == []


def test_stock_verification_behaviour_with_shared_contexts(
    ca: trustme.CA, ca_file: str, tmp_path: Any
) -> None:
    other_ca = trustme.CA()
    other_file = tmp_path / "other.pem"
    other_ca.cert_pem.write_to_path(str(other_file))
    with https(ca) as good:
        for _ in range(2):  # the second time from the cache (and the ClientHello in the SYN)
            assert _get(good.url, ca_file).ok
            with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
                _get(good.url, str(other_file))  # the wrong CA
            with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
                assert _get(good.url, False).ok
    with https(ca, "wrong.example", host=good.host) as wrong:
        for _ in range(2):
            with pytest.raises(requests.exceptions.SSLError, match="mismatch"):
                _get(wrong.url, ca_file)
    assert _sslcache.CACHE.built == 3 and _sslcache.CACHE.hits >= 3


def test_a_rewritten_ca_file_is_picked_up(ca: trustme.CA, tmp_path: Any) -> None:
    other_ca = trustme.CA()
    bundle = tmp_path / "bundle.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with https(ca) as server:
        assert _get(server.url, str(bundle)).ok
        assert _get(server.url, str(bundle)).ok  # from the cache
        before = _sslcache.CACHE.built
        other_ca.cert_pem.write_to_path(str(bundle))  # the same path, another CA
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            _get(server.url, str(bundle))
        assert _sslcache.CACHE.built == before + 1
        ca.cert_pem.write_to_path(str(bundle))  # and back
        assert _get(server.url, str(bundle)).ok


def _hashed(directory: Any, ca: trustme.CA, name: str | None = None) -> Any:
    """``ca``'s certificate in ``directory`` under the name OpenSSL looks up (``<hash>.0``)."""
    import subprocess

    pem = ca.cert_pem.bytes()
    if name is None:
        name = (
            subprocess.run(
                ["openssl", "x509", "-hash", "-noout"], input=pem, capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
            + ".0"
        )
    path = directory / name
    path.write_bytes(pem)
    return path


def test_directory_stamp_sees_added_and_rewritten_certificates(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "a.pem").write_bytes(b"one")
    first = _sslcache.file_stamp(str(directory))
    assert _sslcache.file_stamp(str(directory)) == first  # nothing changed
    (directory / "b.pem").write_bytes(b"two")  # added: the directory's mtime moves
    os.utime(directory, ns=(1, 1))  # (even where mtime has a coarse clock)
    second = _sslcache.file_stamp(str(directory))
    assert second != first
    (directory / "a.pem").write_bytes(b"rewritten")  # in place: the directory is unchanged
    os.utime(directory, ns=(1, 1))
    assert _sslcache.file_stamp(str(directory)) == second  # read again after DIR_RESCAN only
    monkeypatch.setattr(_sslcache, "DIR_RESCAN", 0.0)
    assert _sslcache.file_stamp(str(directory)) != second


@pytest.mark.skipif(
    not any(os.access(os.path.join(d, "openssl"), os.X_OK) for d in os.get_exec_path()),
    reason="needs the openssl command to name certificates by their subject hash",
)
def test_a_ca_directory_rewritten_in_place_is_picked_up(
    ca: trustme.CA, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify=<directory> (urllib3's ca_cert_dir): a certificate rewritten in place is
    seen within DIR_RESCAN, as stock (a new context per connection) sees it at once."""
    monkeypatch.setattr(_sslcache, "DIR_RESCAN", 0.0)
    directory = tmp_path / "certs"
    directory.mkdir()
    good = _hashed(directory, ca)
    with https(ca) as server:
        assert _get(server.url, str(directory)).ok
        assert _get(server.url, str(directory)).ok
        hits = _sslcache.CACHE.hits
        _hashed(directory, trustme.CA(), name=good.name)  # same name, another CA
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            _get(server.url, str(directory))
        assert _sslcache.CACHE.hits == hits  # a new context, not the cached one
        _hashed(directory, ca, name=good.name)
        assert _get(server.url, str(directory)).ok


def test_client_certificates_are_different_keys(ca: trustme.CA, tmp_path: Any) -> None:
    host = next_loopback()
    server_ctx = server_tls(ca, host)
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # the server asks for a client certificate
    ca.configure_trust(server_ctx)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    certs = []
    for who in ("alice", "bob"):
        path = tmp_path / f"{who}.pem"
        ca.issue_cert(f"{who}@example.test").private_key_and_cert_chain_pem.write_to_path(str(path))
        certs.append(str(path))
    with Server(host=host, tls=server_ctx) as server:
        for cert in certs:
            for _ in range(2):  # a new manager: a new connection (no race with the close)
                pm = FastpathPoolManager(ca_certs=str(ca_path), cert_file=cert, retries=False)
                assert pm.request("GET", server.url, headers={"Connection": "close"}).status == 200
                pm.clear()
        # no client certificate: refused (TLS 1.3: the alert comes after the handshake)
        errors = (urllib3.exceptions.SSLError, urllib3.exceptions.ProtocolError)
        with pytest.raises(errors):
            FastpathPoolManager(ca_certs=str(ca_path), retries=False).request("GET", server.url)
    assert len(_shared()) == _sslcache.CACHE.built == 3  # alice, bob, none: each its own


def test_the_callers_own_context_is_used_as_given(https_server: Server, ca_file: str) -> None:
    mine = ssl.create_default_context(cafile=ca_file)
    transport = FastpathTransport(verify=mine)
    assert transport._core._ssl_context is mine
    with httpx.Client(transport=transport) as client:
        assert client.get(https_server.url).status_code == 200
    pm = FastpathPoolManager(ssl_context=ssl.create_default_context(cafile=ca_file))
    assert pm.request("GET", https_server.url).status == 200
    assert len(_sslcache.CACHE) == 0


def test_httpx_transports_share_contexts_per_settings(
    https_server: Server, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # verify=<str>
        a = FastpathTransport(verify=ca_file)
        b = FastpathTransport(verify=ca_file)
        h2 = FastpathTransport(verify=ca_file, http2=True)
        off = FastpathTransport(verify=False)
        default = FastpathTransport()
    ctx = unwrap(a._core._ssl_context)
    assert type(ctx) is ssl.SSLContext and unwrap(b._core._ssl_context) is ctx
    others = [unwrap(t._core._ssl_context) for t in (h2, off, default)]
    assert len({id(c) for c in [ctx, *others]}) == 4  # never shared across settings
    assert ctx.verify_mode is ssl.CERT_REQUIRED and others[1].verify_mode is ssl.CERT_NONE
    seen = Mutations(monkeypatch)
    for transport in (a, b, h2):
        with httpx.Client(transport=transport) as client:
            for _ in range(2):
                assert client.get(https_server.url, headers={"Connection": "close"}).is_success

    async def main() -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            async_transport = AsyncFastpathTransport(verify=ca_file)
        assert unwrap(async_transport._core._ssl_context) is ctx
        async with httpx.AsyncClient(transport=async_transport) as client:
            return (await client.get(https_server.url)).status_code

    assert asyncio.run(main()) == 200
    for shared in [ctx, others[0]]:
        assert seen.on(shared) == []  # httpcore's set_alpn_protocols never reached it


def test_httpx_path_warns_as_stock_on_every_transport(ca_file: str) -> None:
    for _ in range(2):  # the second from the cache: the same warning
        with pytest.warns(DeprecationWarning, match=r"`verify=<str>` is deprecated"):
            FastpathTransport(verify=ca_file)
    with pytest.warns(DeprecationWarning) as stock:
        httpx.create_ssl_context(verify=ca_file)
    assert str(stock[0].message) == _transports_message()


def _transports_message() -> str:
    from http_fastpath._integrations import transports_pool

    return transports_pool._VERIFY_PATH_DEPRECATED


def test_httpx_verification_with_shared_contexts(
    ca: trustme.CA, ca_file: str, tmp_path: Any
) -> None:
    other_file = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other_file))

    def get(url: str, verify: Any) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # verify=<str>
            transport = FastpathTransport(verify=verify)
        with httpx.Client(transport=transport) as client:
            return int(client.get(url).status_code)

    with https(ca) as good:
        for _ in range(2):  # the second time from the cache
            assert get(good.url, ca_file) == 200
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                get(good.url, str(other_file))
            assert get(good.url, False) == 200
    with https(ca, "wrong.example", host=good.host) as wrong:
        with pytest.raises(httpx.ConnectError, match="mismatch"):
            get(wrong.url, ca_file)
    assert _sslcache.CACHE.built == 3


# -- the opt-in: httpx.Client() of an unmodified program -------------------------------------


@pytest.fixture
def opted_in() -> Iterator[None]:
    import http_fastpath

    http_fastpath.install()
    try:
        yield
    finally:
        http_fastpath.uninstall()


def _defaults() -> Any:
    import importlib

    return importlib.import_module(f"{httpx.__name__}._transports.default")


def test_opt_in_clients_share_contexts_and_verify_as_stock(
    ca: trustme.CA, ca_file: str, tmp_path: Any, opted_in: None
) -> None:
    """httpx.Client() under install(): one context per settings across clients, the
    same verification results as stock, HTTP/2's ALPN list on its own context."""
    other_file = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other_file))

    def get(url: str, verify: Any, http2: bool = False) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # verify=<str>
            client = httpx.Client(verify=verify, http2=http2)
        with client:
            return str(client.get(url).http_version)

    assert _defaults().create_ssl_context is not httpx.create_ssl_context  # patched
    with https(ca) as good:
        for _ in range(3):
            assert get(good.url, ca_file) == "HTTP/1.1"
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                get(good.url, str(other_file))
            assert get(good.url, False) == "HTTP/1.1"
        assert _sslcache.CACHE.built == 3  # one per settings, not one per client
        assert get(good.url, ca_file, http2=True) == "HTTP/1.1"  # the server has no h2
        assert _sslcache.CACHE.built == 4  # ["http/1.1", "h2"] is another context
    with https(ca, "wrong.example", host=good.host) as wrong:
        with pytest.raises(httpx.ConnectError, match="mismatch"):
            get(wrong.url, ca_file)


def test_opt_in_leaves_the_callers_context_and_undoes(
    https_server: Server, ca: trustme.CA, opted_in: None
) -> None:
    import http_fastpath

    mine = ssl.create_default_context()
    ca.configure_trust(mine)
    with httpx.Client(verify=mine) as client:
        assert client.get(https_server.url).status_code == 200
    assert _sslcache.CACHE.built == 0  # the caller's own context: used as given
    assert httpx.__name__ in http_fastpath.status()["patched"]  # type: ignore[operator]
    http_fastpath.uninstall()
    assert _defaults().create_ssl_context is httpx.create_ssl_context


def test_opt_in_with_host_rules_keeps_stock_contexts(https_server: Server) -> None:
    """With hosts=/exclude= the hosts left out get stock backends: stock contexts too."""
    import http_fastpath

    http_fastpath.install(exclude="example.test")
    try:
        assert _defaults().create_ssl_context is httpx.create_ssl_context
    finally:
        http_fastpath.uninstall()
