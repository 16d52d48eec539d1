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

The request/response and exception mapping is in :mod:`.transports_mapping`, the TLS
context and the pool are built in :mod:`.transports_pool`; the clients that keep the
environment's proxies are in :mod:`.transports_clients`.
"""

from __future__ import annotations

import inspect
import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from types import ModuleType, TracebackType
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeAlias, TypeVar

from .._backends.common import CoreSocketOption
from .._core.options import FastpathOptions, TFOPolicy, resolve_options
from .._core.upgrade import check_http3
from .transports_mapping import (
    _EXC_NAMES,
    _AsyncResponseStream,
    _core_request,
    _ExceptionMap,
    _extensions,
    _ResponseStream,
)
from .transports_pool import build_pool

__all__ = [
    "AsyncTransportImpl",
    "ClientStack",
    "LimitsLike",
    "SyncTransportImpl",
    "derive",
]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_T = TypeVar("_T", bound="SyncTransportImpl[Any, Any]")
_A = TypeVar("_A", bound="AsyncTransportImpl[Any, Any]")
#: ``__exit__``'s arguments
_ExcType: TypeAlias = type[BaseException] | None
_Exc: TypeAlias = BaseException | None
_Tb: TypeAlias = TracebackType | None

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
        self._core = build_pool(
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
        self, exc_type: _ExcType = None, exc_value: _Exc = None, traceback: _Tb = None
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
        self, exc_type: _ExcType = None, exc_value: _Exc = None, traceback: _Tb = None
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
