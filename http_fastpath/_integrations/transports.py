"""httpx-style transports on the fastpath dialer: one implementation for httpx and httpx2.

httpx2 (with httpcore2) keeps httpx 0.28's and httpcore 1.0's public API, so the code is
written once against a :class:`ClientStack` -- the client module, its httpcore, and our
network backends for that httpcore. The public classes (:mod:`.httpx`, :mod:`.httpx2`)
only add the stack's base classes, which is what type checkers and ``isinstance`` see.

A transport takes every argument of the stack's ``HTTPTransport`` plus the fastpath
options, and builds the public httpcore pool (``ConnectionPool``, ``HTTPProxy`` or
``SOCKSProxy``) the stock transport builds, with our network backend. The
request/response and exception mapping is the stock transport's. Each response carries
the :class:`ConnectionInfo` of its connection in ``response.extensions[INFO_EXTENSION]``.

``Client(transport=..., proxy=URL)`` mounts the stack's stock transport for the proxy
route, so the fastpath would be silently off; a fastpath transport makes such a client
build its proxy route from the same fastpath transport class and options instead
(:meth:`ClientStack.keep_fastpath_on_proxies`).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import ssl
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from types import ModuleType, TracebackType
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar
from urllib.request import getproxies

from .._backends.sync import CoreSocketOption
from .._core import sslcache as _sslcache
from .._core.exceptions import OptionError
from .._core.options import FastpathOptions, TFOPolicy, resolve_options
from .._core.proof import INFO_EXTENSION
from .._core.upgrade import check_http3

__all__ = [
    "AsyncTransportImpl",
    "ClientStack",
    "LimitsLike",
    "SyncTransportImpl",
    "derive",
    "environment_proxies",
    "make_client",
]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_T = TypeVar("_T", bound="SyncTransportImpl[Any, Any]")
_A = TypeVar("_A", bound="AsyncTransportImpl[Any, Any]")

#: the exception classes of httpx's own transport table (httpcore name -> httpx name)
_EXC_NAMES = (
    "TimeoutException", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout",
    "NetworkError", "ConnectError", "ReadError", "WriteError", "ProxyError",
    "UnsupportedProtocol", "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
)  # fmt: skip
#: arguments of ``Client._init_proxy_transport`` our transports take as they are
_PROXY_TRANSPORT_KEYS = ("verify", "cert", "trust_env", "http1", "http2", "limits")

logger = logging.getLogger("http_fastpath")


class LimitsLike(Protocol):
    """What a transport reads of ``limits`` (``httpx.Limits`` and ``httpx2.Limits`` fit)."""

    @property
    def max_connections(self) -> int | None: ...
    @property
    def max_keepalive_connections(self) -> int | None: ...
    @property
    def keepalive_expiry(self) -> float | None: ...


_DERIVED: dict[tuple[type, type], Any] = {}


def derive(impl: type, base: type) -> Any:
    """``impl`` with the client's stream ``base`` added (the client checks ``isinstance``)."""
    cls = _DERIVED.get((impl, base))
    if cls is None:
        cls = _DERIVED[(impl, base)] = type(impl.__name__, (impl, base), {})
    return cls


class _ExceptionMap:
    """``with``: re-raise an httpcore exception as the client's (most specific class wins).

    What the stock transport's ``map_httpcore_exceptions`` does, as a plain class: no
    generator per use, and one instance serves every request (it keeps no state).
    """

    __slots__ = ("_map",)

    def __init__(self, exc_map: dict[type[Exception], type[Exception]]) -> None:
        self._map = exc_map

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not isinstance(exc, Exception):
            return  # (None: the exception, if any, goes on)
        mapped: type[Exception] | None = None
        for from_exc, to_exc in self._map.items():
            if isinstance(exc, from_exc) and (mapped is None or issubclass(to_exc, mapped)):
                mapped = to_exc
        if mapped is not None:
            raise mapped(str(exc)) from exc


class ClientStack:
    """One client stack: ``httpx`` + ``httpcore``, or ``httpx2`` + ``httpcore2``.

    ``sync_backend`` / ``async_backend`` are our network backend classes for its httpcore.
    """

    def __init__(
        self, client: ModuleType, core: ModuleType, sync_backend: type, async_backend: type
    ) -> None:
        self.client = client
        self.core = core
        self.name = client.__name__
        self.sync_backend = sync_backend
        self.async_backend = async_backend
        # httpcore -> client, the table the stock transport uses (most specific class wins)
        self.exc_map: dict[type[Exception], type[Exception]] = {
            getattr(core, name): getattr(client, name) for name in _EXC_NAMES
        }
        self._mapper = _ExceptionMap(self.exc_map)
        self._proxies_kept = False
        self._lock = threading.Lock()

    def default_limits(self) -> LimitsLike:
        limits: LimitsLike = self.client.Limits(max_connections=100, max_keepalive_connections=20)
        return limits

    def mapped_exceptions(self) -> _ExceptionMap:
        """Re-raise httpcore exceptions as the client's, like the stock transport."""
        return self._mapper

    def keep_fastpath_on_proxies(self) -> None:
        """Make ``Client(transport=<fastpath>, proxy=URL)`` route the proxy on the fastpath.

        Stock builds that route with ``Client._init_proxy_transport`` (a stock transport);
        for a client whose transport is one of ours it builds ours instead, with the same
        options and the same client arguments stock passes. Clients with any other
        transport are untouched. Installed once per stack, when a transport is created.
        """
        if self._proxies_kept:
            return
        with self._lock:
            if self._proxies_kept:
                return
            for client_cls in (self.client.Client, self.client.AsyncClient):
                original = client_cls.__dict__.get("_init_proxy_transport")
                if original is None:  # pragma: no cover - every supported version has it
                    logger.debug("%s.%s: no _init_proxy_transport", self.name, client_cls)
                    continue
                client_cls._init_proxy_transport = _proxy_route(original)
            self._proxies_kept = True


def _proxy_route(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def _init_proxy_transport(client: Any, proxy: Any, *args: Any, **kwargs: Any) -> Any:
        ours = client.__dict__.get("_transport")  # set before the mounts are built
        if isinstance(ours, _TransportBase):
            bound = signature.bind(client, proxy, *args, **kwargs)
            bound.apply_defaults()
            given = {k: v for k, v in bound.arguments.items() if k in _PROXY_TRANSPORT_KEYS}
            try:
                return type(ours)(proxy=proxy, options=ours.options, **given)
            except TypeError:  # a subclass with another signature: stock's route
                logger.debug("proxy route: %s takes other arguments", type(ours).__name__)
        return original(client, proxy, *args, **kwargs)

    _init_proxy_transport.__wrapped__ = original  # type: ignore[attr-defined]
    return _init_proxy_transport


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


def _build_pool(
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


def _core_request(core: ModuleType, request: Any) -> Any:
    url = request.url
    return core.Request(
        method=request.method,
        url=core.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


def _extensions(resp: Any) -> dict[str, Any]:
    """The response extensions plus our :class:`ConnectionInfo` (when the stream has one).

    httpcore makes a new dict per response: the key is added to it (no copy). The proof
    is a deferred :class:`ConnectionInfo`, read from the kernel when first looked at.
    """
    extensions: dict[str, Any] = resp.extensions
    stream = extensions.get("network_stream")
    if stream is not None:
        info = stream.get_extra_info(INFO_EXTENSION)
        if info is not None:
            extensions[INFO_EXTENSION] = info
    return extensions


class _ResponseStream:
    __slots__ = ("_core_stream", "_stack")

    def __init__(self, stack: ClientStack, core_stream: Iterable[bytes]) -> None:
        self._stack = stack
        self._core_stream = core_stream

    def __iter__(self) -> Iterator[bytes]:
        with self._stack.mapped_exceptions():
            yield from self._core_stream

    def close(self) -> None:
        close = getattr(self._core_stream, "close", None)
        if close is not None:
            close()


class _AsyncResponseStream:
    __slots__ = ("_core_stream", "_stack")

    def __init__(self, stack: ClientStack, core_stream: Any) -> None:
        self._stack = stack
        self._core_stream = core_stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with self._stack.mapped_exceptions():
            async for part in self._core_stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._core_stream, "aclose", None)
        if aclose is not None:
            await aclose()


class _TransportBase:
    """What the sync and async transports share: arguments, options and the pool."""

    _stack: ClassVar[ClientStack]
    _asynchronous: ClassVar[bool]
    _stream_impl: ClassVar[type]

    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: LimitsLike | None = None,
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
        http3: Literal[False, "auto"] = False,
    ) -> None:
        self.options = resolve_options(options, tfo, mptcp, tfo_policy)
        upgrade = check_http3(http3)
        stack, asynchronous = self._stack, self._asynchronous
        self._core = _build_pool(
            stack, asynchronous, self.options, verify, cert, trust_env, http1, http2, limits,
            proxy, uds, local_address, retries, socket_options,
        )  # fmt: skip
        #: the Alt-Svc upgrade (``http3="auto"``); never through a proxy or a Unix socket
        self._upgrade: Any = None
        if upgrade and proxy is None and uds is None:
            from ..http3._upgrade import HttpxUpgrade

            self._upgrade = HttpxUpgrade(
                stack.client,
                asynchronous=asynchronous,
                verify=verify,
                cert=cert,
                trust_env=trust_env,
                proxied=False,
            )
        client = stack.client
        base = client.AsyncByteStream if asynchronous else client.SyncByteStream
        self._response_stream = derive(self._stream_impl, base)
        stack.keep_fastpath_on_proxies()

    def _response(self, resp: Any) -> Any:
        """The client's ``Response`` for an httpcore response, as the stock transport makes it."""
        stack = self._stack
        return stack.client.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=self._response_stream(stack, resp.stream),
            extensions=_extensions(resp),
        )


class SyncTransportImpl(_TransportBase, Generic[_Req, _Resp]):
    """The stack's ``HTTPTransport`` whose connections use TCP Fast Open and MPTCP.

    Takes every ``HTTPTransport`` argument (same meaning, same defaults) plus ``tfo``,
    ``mptcp`` and ``tfo_policy`` (see :class:`http_fastpath.FastpathOptions`; defaults
    ``True``, ``True``, ``"safe"``) or a ready ``options=FastpathOptions(...)``.
    Exceptions are the client's, exactly as with its ``HTTPTransport``. Every response
    carries its connection's proof: ``http_fastpath.connection_info(response)``.

    ``Client(transport=...)`` ignores proxy environment variables (as with any transport);
    ``fastpath_client()`` keeps them.

    ``http3="auto"`` (EXPERIMENTAL, extra ``http3``; default False): an ``Alt-Svc: h3``
    advertised by a verified ``https://`` origin is remembered, and later requests to it
    go over HTTP/3; when QUIC does not complete within a short bound they go over TCP
    (see docs/http3.md, "Alt-Svc upgrade").
    """

    _asynchronous = False
    _stream_impl = _ResponseStream

    def __enter__(self: _T) -> _T:
        self._core.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        if self._upgrade is not None:
            self._upgrade.close()
        with self._stack.mapped_exceptions():
            self._core.__exit__(exc_type, exc_value, traceback)

    def handle_request(self, request: _Req) -> _Resp:
        if self._upgrade is not None:
            upgraded: _Resp = self._upgrade.handle(request, self._handle_tcp)
            return upgraded
        return self._handle_tcp(request)

    def _handle_tcp(self, request: _Req) -> _Resp:
        stack = self._stack
        with stack.mapped_exceptions():
            resp = self._core.handle_request(_core_request(stack.core, request))
        response: _Resp = self._response(resp)
        return response

    def close(self) -> None:
        if self._upgrade is not None:
            self._upgrade.close()
        self._core.close()


class AsyncTransportImpl(_TransportBase, Generic[_Req, _Resp]):
    """The stack's ``AsyncHTTPTransport`` on the fastpath dialer; asyncio and trio.

    Same arguments and behaviour as the sync transport.
    """

    _asynchronous = True
    _stream_impl = _AsyncResponseStream

    async def __aenter__(self: _A) -> _A:
        await self._core.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        if self._upgrade is not None:
            await self._upgrade.aclose()
        with self._stack.mapped_exceptions():
            await self._core.__aexit__(exc_type, exc_value, traceback)

    async def handle_async_request(self, request: _Req) -> _Resp:
        if self._upgrade is not None:
            upgraded: _Resp = await self._upgrade.ahandle(request, self._handle_tcp)
            return upgraded
        return await self._handle_tcp(request)

    async def _handle_tcp(self, request: _Req) -> _Resp:
        stack = self._stack
        with stack.mapped_exceptions():
            resp = await self._core.handle_async_request(_core_request(stack.core, request))
        response: _Resp = self._response(resp)
        return response

    async def aclose(self) -> None:
        if self._upgrade is not None:
            await self._upgrade.aclose()
        await self._core.aclose()


# -- clients that keep environment proxies ---------------------------------------------------

_TRANSPORT_KEYS = frozenset(
    {"verify", "cert", "trust_env", "http1", "http2", "limits", "uds", "local_address",
     "retries", "socket_options", "tfo", "mptcp", "tfo_policy", "options", "http3"}
)  # fmt: skip


def _is_ip(host: str, version: int) -> bool:
    import ipaddress

    try:
        address = ipaddress.ip_address(host.split("/")[0])
    except ValueError:
        return False
    return address.version == version


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
        elif _is_ip(host, 4):
            mounts[f"all://{host}"] = None
        elif _is_ip(host, 6):
            mounts[f"all://[{host}]"] = None
        elif host.lower() == "localhost":
            mounts[f"all://{host}"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


def make_client(client_cls: Callable[..., Any], transport_cls: type, kwargs: dict[str, Any]) -> Any:
    """``client_cls(**kwargs)`` whose every route (direct and proxied) uses ``transport_cls``.

    Proxies are chosen like a stock client: ``proxy=`` if given, else (with
    ``trust_env=True``) ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` minus ``NO_PROXY``;
    user ``mounts=`` come on top.
    """
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
    return client_cls(**kwargs)
