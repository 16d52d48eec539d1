"""httpx transports on the fastpath dialer, and clients that keep environment proxies.

:class:`FastpathTransport` / :class:`AsyncFastpathTransport` take every argument of
``httpx.HTTPTransport`` plus the fastpath options, and build a public httpcore pool
(``ConnectionPool``, ``HTTPProxy`` or ``SOCKSProxy``) with our network backend. The
request/response and exception mapping is the same as httpx's own transport. Each
response carries the :class:`ConnectionInfo` of its connection in
``response.extensions[INFO_EXTENSION]`` (read it with ``http_fastpath.connection_info``).

``httpx.Client(transport=...)`` switches environment proxies off; :func:`fastpath_client`
and :func:`async_fastpath_client` build clients that route exactly like a stock client
(``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) through fastpath transports.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.request import getproxies

import httpcore
import httpx

from ._exceptions import OptionError
from ._httpcore_async import AsyncFastpathBackend
from ._httpcore_backend import CoreSocketOption, FastpathBackend
from ._options import FastpathOptions, TFOPolicy
from ._proof import INFO_EXTENSION

__all__ = [
    "AsyncFastpathTransport",
    "FastpathTransport",
    "async_fastpath_client",
    "environment_proxies",
    "fastpath_client",
]

_T = TypeVar("_T", bound="FastpathTransport")
_A = TypeVar("_A", bound="AsyncFastpathTransport")

# httpcore -> httpx, the table httpx's own transport uses (most specific class wins).
_EXC_MAP: dict[type[Exception], type[httpx.HTTPError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextlib.contextmanager
def _map_httpcore_exceptions() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped: type[httpx.HTTPError] | None = None
        for from_exc, to_exc in _EXC_MAP.items():
            if isinstance(exc, from_exc) and (mapped is None or issubclass(to_exc, mapped)):
                mapped = to_exc
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


def _resolve_options(
    options: FastpathOptions | None,
    tfo: bool | None,
    mptcp: bool | None,
    tfo_policy: TFOPolicy | None,
) -> FastpathOptions:
    if options is None:
        return FastpathOptions().replace(tfo=tfo, mptcp=mptcp, tfo_policy=tfo_policy)
    if not isinstance(options, FastpathOptions):
        raise OptionError("options", options, "a FastpathOptions instance or None")
    for name, value in (("tfo", tfo), ("mptcp", mptcp), ("tfo_policy", tfo_policy)):
        if value is not None:
            raise OptionError(name, value, "None when options= is given (set it in options)")
    return options


def _build_pool(
    asynchronous: bool,
    options: FastpathOptions,
    verify: ssl.SSLContext | str | bool,
    cert: Any,
    trust_env: bool,
    http1: bool,
    http2: bool,
    limits: httpx.Limits,
    proxy: Any,
    uds: str | None,
    local_address: str | None,
    retries: int,
    socket_options: Iterable[CoreSocketOption] | None,
) -> Any:
    """The httpcore pool ``httpx.(Async)HTTPTransport`` builds, on our network backend."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise OptionError("retries", retries, "an int >= 0")
    proxy = httpx.Proxy(url=proxy) if isinstance(proxy, (str, httpx.URL)) else proxy
    ssl_context = httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
    backend_cls = AsyncFastpathBackend if asynchronous else FastpathBackend
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
        pool_cls = getattr(httpcore, f"{prefix}ConnectionPool")
        return pool_cls(
            **common,
            uds=uds,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
            network_backend=backend_cls(options, retries=retries),
        )
    # Stock passes no retries to proxy pools; neither do we (so none for deferred errors).
    proxy_url = httpcore.URL(
        scheme=proxy.url.raw_scheme,
        host=proxy.url.raw_host,
        port=proxy.url.port,
        target=proxy.url.raw_path,
    )
    if proxy.url.scheme in ("http", "https"):
        return getattr(httpcore, f"{prefix}HTTPProxy")(
            proxy_url=proxy_url,
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            proxy_ssl_context=proxy.ssl_context,
            socket_options=socket_options,
            network_backend=backend_cls(options),
            **common,
        )
    if proxy.url.scheme in ("socks5", "socks5h"):
        import importlib.util

        if importlib.util.find_spec("socksio") is None:
            raise ImportError(
                "Using SOCKS proxy, but the 'socksio' package is not installed. "
                "Make sure to install httpx using `pip install httpx[socks]`."
            )
        return getattr(httpcore, f"{prefix}SOCKSProxy")(
            proxy_url=proxy_url,
            proxy_auth=proxy.raw_auth,
            network_backend=backend_cls(options),
            **common,
        )
    raise ValueError(
        "Proxy protocol must be either 'http', 'https', 'socks5', or 'socks5h',"
        f" but got {proxy.url.scheme!r}."
    )


def _core_request(request: httpx.Request) -> httpcore.Request:
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


def _extensions(resp: httpcore.Response) -> dict[str, Any]:
    """The response extensions plus our :class:`ConnectionInfo` (when the stream has one)."""
    extensions = dict(resp.extensions)
    stream = extensions.get("network_stream")
    if stream is not None:
        info = stream.get_extra_info(INFO_EXTENSION)
        if info is not None:
            extensions[INFO_EXTENSION] = info
    return extensions


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, core_stream: Iterable[bytes]) -> None:
        self._core_stream = core_stream

    def __iter__(self) -> Iterator[bytes]:
        with _map_httpcore_exceptions():
            yield from self._core_stream

    def close(self) -> None:
        close = getattr(self._core_stream, "close", None)
        if close is not None:
            close()


class _AsyncResponseStream(httpx.AsyncByteStream):
    def __init__(self, core_stream: Any) -> None:
        self._core_stream = core_stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _map_httpcore_exceptions():
            async for part in self._core_stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._core_stream, "aclose", None)
        if aclose is not None:
            await aclose()


class FastpathTransport(httpx.BaseTransport):
    """``httpx.HTTPTransport`` whose connections use TCP Fast Open and MPTCP when possible.

    Takes every ``httpx.HTTPTransport`` argument (same meaning, same defaults) plus
    ``tfo``, ``mptcp`` and ``tfo_policy`` (see :class:`http_fastpath.FastpathOptions`;
    defaults ``True``, ``True``, ``"safe"``) or a ready ``options=FastpathOptions(...)``.
    Exceptions are httpx's, exactly as with ``httpx.HTTPTransport``. Every response
    carries its connection's proof: ``http_fastpath.connection_info(response)``.

    ``httpx.Client(transport=...)`` ignores proxy environment variables; use
    :func:`http_fastpath.fastpath_client` to keep them.
    """

    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),  # noqa: B008
        proxy: Any = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[CoreSocketOption] | None = None,
        *,
        tfo: bool | None = None,
        mptcp: bool | None = None,
        tfo_policy: TFOPolicy | None = None,
        options: FastpathOptions | None = None,
    ) -> None:
        self.options = _resolve_options(options, tfo, mptcp, tfo_policy)
        self._core = _build_pool(
            False, self.options, verify, cert, trust_env, http1, http2, limits,
            proxy, uds, local_address, retries, socket_options,
        )  # fmt: skip

    def __enter__(self: _T) -> _T:
        self._core.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        with _map_httpcore_exceptions():
            self._core.__exit__(exc_type, exc_value, traceback)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with _map_httpcore_exceptions():
            resp = self._core.handle_request(_core_request(request))
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_ResponseStream(resp.stream),
            extensions=_extensions(resp),
        )

    def close(self) -> None:
        self._core.close()


class AsyncFastpathTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncHTTPTransport`` on the fastpath dialer; runs under asyncio and trio.

    Same arguments and behaviour as :class:`FastpathTransport`.
    """

    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),  # noqa: B008
        proxy: Any = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[CoreSocketOption] | None = None,
        *,
        tfo: bool | None = None,
        mptcp: bool | None = None,
        tfo_policy: TFOPolicy | None = None,
        options: FastpathOptions | None = None,
    ) -> None:
        self.options = _resolve_options(options, tfo, mptcp, tfo_policy)
        self._core = _build_pool(
            True, self.options, verify, cert, trust_env, http1, http2, limits,
            proxy, uds, local_address, retries, socket_options,
        )  # fmt: skip

    async def __aenter__(self: _A) -> _A:
        await self._core.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        with _map_httpcore_exceptions():
            await self._core.__aexit__(exc_type, exc_value, traceback)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _map_httpcore_exceptions():
            resp = await self._core.handle_async_request(_core_request(request))
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_AsyncResponseStream(resp.stream),
            extensions=_extensions(resp),
        )

    async def aclose(self) -> None:
        await self._core.aclose()


# -- clients that keep environment proxies ---------------------------------------------------

_TRANSPORT_KEYS = frozenset(
    {"verify", "cert", "trust_env", "http1", "http2", "limits", "uds", "local_address",
     "retries", "socket_options", "tfo", "mptcp", "tfo_policy", "options"}
)  # fmt: skip


def _is_ipv4(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv4Address(host.split("/")[0])
    except ValueError:
        return False
    return True


def _is_ipv6(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv6Address(host.split("/")[0])
    except ValueError:
        return False
    return True


def environment_proxies() -> dict[str, str | None]:
    """The proxy routes a stock httpx client reads from the environment.

    ``{"http://": url, "https://": url, "all://": url, "all://*example.com": None, ...}``:
    the same table httpx builds from ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and
    ``NO_PROXY`` (``None`` means "connect directly"; ``NO_PROXY=*`` disables proxies).
    """
    info = getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if info.get(scheme):
            url = info[scheme]
            mounts[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    for host in (h.strip() for h in info.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
        elif _is_ipv4(host):
            mounts[f"all://{host}"] = None
        elif _is_ipv6(host):
            mounts[f"all://[{host}]"] = None
        elif host.lower() == "localhost":
            mounts[f"all://{host}"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


def _client_parts(
    transport_cls: type[Any], kwargs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    transport_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _TRANSPORT_KEYS}
    for shared in ("verify", "cert", "trust_env", "http1", "http2", "limits"):
        if shared in transport_kwargs:
            kwargs[shared] = transport_kwargs[shared]
    if "transport" in kwargs:
        raise OptionError("transport", kwargs["transport"], "not given (the helper builds it)")
    proxy = kwargs.pop("proxy", None)
    user_mounts: Mapping[str, Any] = kwargs.pop("mounts", None) or {}
    if proxy is not None:
        routes: dict[str, Any] = {"all://": proxy}
    elif kwargs.get("trust_env", True):
        routes = dict(environment_proxies())
    else:
        routes = {}
    mounts: dict[str, Any] = {
        pattern: None if url is None else transport_cls(proxy=url, **transport_kwargs)
        for pattern, url in routes.items()
    }
    mounts.update(user_mounts)
    kwargs["transport"] = transport_cls(**transport_kwargs)
    kwargs["mounts"] = mounts
    return kwargs, transport_kwargs


def fastpath_client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` whose every route (direct and proxied) uses :class:`FastpathTransport`.

    Takes ``httpx.Client`` arguments plus the transport-only ones (``uds``,
    ``local_address``, ``retries``, ``socket_options``, ``tfo``, ``mptcp``, ``tfo_policy``,
    ``options``). Proxies are chosen like a stock client: ``proxy=`` if given, else (with
    ``trust_env=True``) ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` minus ``NO_PROXY``;
    user ``mounts=`` come on top.
    """
    client_kwargs, _ = _client_parts(FastpathTransport, dict(kwargs))
    return httpx.Client(**client_kwargs)


def async_fastpath_client(**kwargs: Any) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` counterpart of :func:`fastpath_client`."""
    client_kwargs, _ = _client_parts(AsyncFastpathTransport, dict(kwargs))
    return httpx.AsyncClient(**client_kwargs)
