"""The TLS context and the httpcore pool of an httpx-style transport (see :mod:`.transports`).

:func:`shared_context` is ``create_ssl_context(verify, cert, trust_env)`` from the
process-wide cache (:mod:`.._core.sslcache`), also used by the environment opt-in;
:func:`build_pool` is the pool the stock ``(Async)HTTPTransport`` builds, with our network
backend for the stack's httpcore.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._backends.common import CoreSocketOption
from .._core import sslcache as _sslcache
from .._core.exceptions import OptionError
from .._core.options import FastpathOptions

if TYPE_CHECKING:
    from .transports import ClientStack, LimitsLike

__all__ = ["build_pool", "shared_context"]


#: what httpx and httpx2 say when ``verify`` is a path (deprecated); said on a cache hit too
_VERIFY_PATH_DEPRECATED = (
    "`verify=<str>` is deprecated. "
    "Use `verify=ssl.create_default_context(cafile=...)` "
    "or `verify=ssl.create_default_context(capath=...)` instead."
)


def _verify_true_paths(stack: ClientStack) -> tuple[str, ...] | None:
    """The files and directories the stack reads for ``verify=True`` (None: unknown)."""
    if stack.name == "httpx":
        import certifi

        return (certifi.where(),)
    candidates = getattr(getattr(stack.core, "_ssl", None), "CA_FILE_CANDIDATES", None)
    if stack.name == "httpx2" and isinstance(candidates, list):
        paths = ssl.get_default_verify_paths()
        return (paths.openssl_cafile, paths.openssl_capath, *candidates)
    return None


def _alpn(stack: ClientStack, http1: bool, http2: bool) -> list[str]:
    """The ALPN list the stack's httpcore sets on its context (a guess for others)."""
    if stack.name == "httpx2":
        return (["h2", "http/1.1"] if http1 else ["h2"]) if http2 else ["http/1.1"]
    return ["http/1.1", "h2"] if http2 else ["http/1.1"]


def shared_context(
    stack: ClientStack, verify: Any, cert: Any, trust_env: bool, http1: bool, http2: bool
) -> Any:
    """``create_ssl_context(verify, cert, trust_env)`` from the process-wide cache.

    Built by the stack's own ``create_ssl_context`` on a miss, with the ALPN list httpcore
    sets on every connection, and handed to the pool as an :class:`.._core.sslcache.AlpnFixed`
    (httpcore's per-connection ``set_alpn_protocols`` must not change a shared context).
    The caller's own context (``verify=<SSLContext>``) and the deprecated ``cert=`` are
    used as stock uses them.
    """
    create = stack.client.create_ssl_context
    default_paths: tuple[str, ...] = ()
    if verify is True:
        found = _verify_true_paths(stack)
        if found is None:
            return create(verify=verify, cert=cert, trust_env=trust_env)
        default_paths = found
    if cert is not None or not isinstance(verify, bool | str):
        return create(verify=verify, cert=cert, trust_env=trust_env)
    hit = False

    def get(alpn: list[str]) -> ssl.SSLContext:
        nonlocal hit
        key = _sslcache.httpx_key(
            stack=stack.name,
            verify=verify,
            cert=None,
            trust_env=trust_env,
            alpn=alpn,
            default_paths=default_paths,
            environ=os.environ,
        )
        context = _sslcache.CACHE.lookup(key)
        if context is not None:
            hit = True
            return context

        def build() -> ssl.SSLContext:
            built: ssl.SSLContext = create(verify=verify, cert=None, trust_env=trust_env)
            built.set_alpn_protocols(alpn)
            return built

        return _sslcache.CACHE.get(key, build)

    shared = _sslcache.AlpnFixed(get, _alpn(stack, http1, http2))
    if hit and isinstance(verify, str):  # create_ssl_context, skipped, says this every time
        warnings.warn(_VERIFY_PATH_DEPRECATED, DeprecationWarning, stacklevel=4)
    if type(_sslcache.unwrap(shared)) is not ssl.SSLContext:
        return _sslcache.unwrap(shared)  # not stored (truststore...): the pool's own, as stock
    return shared


def build_pool(
    stack: ClientStack,
    asynchronous: bool,
    options: FastpathOptions,
    verify: ssl.SSLContext | str | bool,
    cert: Any,
    trust_env: bool,
    http1: bool,
    http2: bool,
    limits: LimitsLike | None,
    proxy: Any,
    uds: str | None,
    local_address: str | None,
    retries: int,
    socket_options: Iterable[CoreSocketOption] | None,
) -> Any:
    """The httpcore pool the stock ``(Async)HTTPTransport`` builds, on our network backend."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise OptionError("retries", retries, "an int >= 0")
    client, core = stack.client, stack.core
    if limits is None:
        limits = stack.default_limits()
    proxy = client.Proxy(url=proxy) if isinstance(proxy, (str, client.URL)) else proxy
    ssl_context = shared_context(stack, verify, cert, trust_env, http1, http2)
    backend_cls = stack.async_backend if asynchronous else stack.sync_backend
    common: dict[str, Any] = {
        "ssl_context": ssl_context,
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": http1,
        "http2": http2,
    }
    prefix = "Async" if asynchronous else ""
    if proxy is None:
        return getattr(core, f"{prefix}ConnectionPool")(
            **common,
            uds=uds,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
            network_backend=backend_cls(options, retries=retries),
        )
    # Stock passes no retries to proxy pools; neither do we (so none for deferred errors).
    proxy_url = core.URL(
        scheme=proxy.url.raw_scheme,
        host=proxy.url.raw_host,
        port=proxy.url.port,
        target=proxy.url.raw_path,
    )
    if proxy.url.scheme in ("http", "https"):
        return getattr(core, f"{prefix}HTTPProxy")(
            proxy_url=proxy_url,
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            proxy_ssl_context=proxy.ssl_context,
            socket_options=socket_options,
            network_backend=backend_cls(options),
            **common,
        )
    if proxy.url.scheme in ("socks5", "socks5h"):
        if importlib.util.find_spec("socksio") is None:
            raise ImportError(
                "Using SOCKS proxy, but the 'socksio' package is not installed. "
                f"Make sure to install {stack.name} using `pip install {stack.name}[socks]`."
            )
        return getattr(core, f"{prefix}SOCKSProxy")(
            proxy_url=proxy_url,
            proxy_auth=proxy.raw_auth,
            network_backend=backend_cls(options),
            **common,
        )
    raise ValueError(
        "Proxy protocol must be either 'http', 'https', 'socks5', or 'socks5h',"
        f" but got {proxy.url.scheme!r}."
    )
