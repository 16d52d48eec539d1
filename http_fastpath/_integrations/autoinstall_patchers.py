"""The opt-in's patchers for urllib3, httpcore/httpcore2 and httpx's TLS contexts.

What :func:`.autoinstall.install` applies when each library is imported (its
``_PATCHERS`` table): urllib3's pools get the fastpath connection classes, httpcore's
pools and proxies the fastpath network backends (for the hosts ``hosts``/``exclude``
leave in), httpx's transports the process-wide TLS contexts. Each patcher returns the
:data:`~.hooks.Undo` that restores the stock code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._core.options import FastpathOptions
from .env import HostRules
from .hooks import Undo
from .hooks import patch as _patch
from .hooks import undo_all as _undo_all

__all__ = ["NotYet"]


def _choosing_new(stock: type[Any], rules: HostRules) -> Callable[..., Any]:
    """A ``__new__`` giving a *stock* connection (of class ``stock``) to a host left out."""

    def __new__(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        host = kwargs["host"] if "host" in kwargs else (args[0] if args else "")
        port = kwargs["port"] if "port" in kwargs else (args[1] if len(args) > 1 else None)
        if not rules.allows(str(host), stock.default_port if port is None else port):
            return stock(*args, **kwargs)  # not an instance of cls: __init__ is not rerun
        return object.__new__(cls)

    return __new__


def _patch_urllib3(module: ModuleType, options: FastpathOptions, rules: HostRules) -> Undo:
    """Make every urllib3 pool instantiate fastpath connections with ``options``."""
    from .urllib3 import FastpathHTTPConnection, FastpathHTTPSConnection, urllib3_future_problem

    problem = urllib3_future_problem(module)
    if problem is not None:
        raise RuntimeError(problem)
    pools = module.connectionpool
    undo: list[Undo] = []
    for pool, name, base in (
        (pools.HTTPConnectionPool, "EnvFastpathHTTPConnection", FastpathHTTPConnection),
        (pools.HTTPSConnectionPool, "EnvFastpathHTTPSConnection", FastpathHTTPSConnection),
    ):
        attrs: dict[str, Any] = {"fastpath_options": options, "__module__": __name__}
        if rules.restricts:
            attrs["__new__"] = _choosing_new(pool.ConnectionCls, rules)
        _patch(pool, "ConnectionCls", type(name, (base,), attrs), undo)
    return _undo_all(undo)


class NotYet(Exception):
    """The module is still being imported: patch it later (see ``autoinstall``)."""


def _caller_retries() -> int:
    # httpcore evaluates ``SyncBackend()`` / ``AutoBackend()`` inside the pool's
    # ``__init__``, whose ``retries`` argument our backend needs to retry a connect that
    # failed on a TCP Fast Open first write exactly as httpcore retries any connect.
    retries = sys._getframe(2).f_locals.get("retries", 0)
    return retries if isinstance(retries, int) else 0


#: httpcore modules that create a default backend when none is given.
_HTTPCORE_MODULES = ("connection_pool", "connection", "socks_proxy")
#: httpcore stack -> our modules with its sync and async backends
_BACKENDS = {
    "httpcore": ("_backends.httpcore_sync", "_backends.httpcore_anyio"),
    "httpcore2": ("_backends.httpcore2_sync", "_backends.httpcore2_anyio"),
}


def _choosing_backend(base: type[Any], rules: HostRules) -> type[Any]:
    """``base`` (a fastpath backend) handing the hosts left out to the stock backend.

    The same ``connect_tcp`` serves the sync and the async backends: it returns what the
    chosen backend's ``connect_tcp`` returns (a stream, or a coroutine to await).
    """

    def connect_tcp(
        self: Any,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        target: Any = super(cls, self) if rules.allows(host, port) else self.fastpath_stock
        return target.connect_tcp(
            host=host,
            port=port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    cls: type[Any] = type(
        f"Env{base.__name__}", (base,), {"connect_tcp": connect_tcp, "__module__": __name__}
    )
    return cls


def _patch_httpcore(module: ModuleType, options: FastpathOptions, rules: HostRules) -> Undo:
    """Make httpcore (or httpcore2) create fastpath backends wherever it would create its own.

    The stack is the module's real name, so ``httpx2.alias_httpx()`` (``import httpcore``
    giving httpcore2) gets httpcore2's backends.
    """
    import importlib

    package = module.__name__
    sync_name, async_name = _BACKENDS[package]
    sync_cls = importlib.import_module(f"http_fastpath.{sync_name}").FastpathBackend
    undo: list[Undo] = []
    try:
        async_cls = importlib.import_module(f"http_fastpath.{async_name}").AsyncFastpathBackend
    except ImportError:  # httpcore without anyio: only the sync side exists
        async_cls = None
    for side, attr, cls in (
        ("_sync", "SyncBackend", sync_cls),
        ("_async", "AutoBackend", async_cls),
    ):
        if cls is None:
            continue
        if rules.restricts:
            cls = _choosing_backend(cls, rules)
        for name in _HTTPCORE_MODULES:
            sub = sys.modules.get(f"{package}.{side}.{name}")
            if sub is not None:  # socks_proxy only exists when socksio is installed
                _patch(sub, attr, _backend_factory(cls, options, getattr(sub, attr), rules), undo)
    return _undo_all(undo)


def _backend_factory(
    cls: type[Any], options: FastpathOptions, stock: Callable[[], Any], rules: HostRules
) -> Callable[[], Any]:
    """What the pool calls instead of ``SyncBackend()`` / ``AutoBackend()``."""

    def backend() -> Any:
        from .autoinstall import finish_unfinished

        finish_unfinished()  # httpx <= 0.27: its TLS patch waits for the first pool
        made = cls(options, retries=_caller_retries())
        if rules.restricts:
            made.fastpath_stock = stock()  # one stock backend per pool, as stock has
        return made

    return backend


def _patch_httpx_tls(module: ModuleType, options: FastpathOptions, rules: HostRules) -> Undo:
    """Give ``httpx.Client()`` (httpx2's too) the process-wide TLS contexts.

    httpx builds an ``SSLContext`` for every client, loading the CA bundle again (tens of
    milliseconds of CPU; ``httpx.get()`` builds a client per call). The name its
    transports call is replaced by one that hands out the shared context for the same
    settings, built by httpx's own ``create_ssl_context`` (see :mod:`.._core.sslcache`);
    the caller's own context and the deprecated ``cert=`` go to httpx's as they are. Not
    with ``hosts``/``exclude``: connections left out get stock backends, which are given
    exactly what stock gives them.
    """
    if rules.restricts:
        return lambda: None
    defaults = sys.modules.get(f"{module.__name__}._transports.default")
    stock = getattr(defaults, "create_ssl_context", None)
    if defaults is None or stock is None:
        if getattr(getattr(module, "__spec__", None), "_initializing", False):
            raise NotYet(module.__name__)  # its transports are not defined yet
        raise RuntimeError(f"{module.__name__}: no _transports.default.create_ssl_context")
    stack_module = "httpx2" if module.__name__ == "httpx2" else "httpx"

    def create_ssl_context(
        verify: Any = True, cert: Any = None, trust_env: bool = True, *args: Any, **kwargs: Any
    ) -> Any:
        if args or kwargs:  # a signature we do not know: httpx's own
            return stock(verify, cert, trust_env, *args, **kwargs)
        import importlib

        from .transports_pool import shared_context

        stack = importlib.import_module(f"http_fastpath._integrations.{stack_module}").STACK
        # The ALPN list is part of the key: read http1/http2 where the transport's
        # __init__ has them (otherwise httpx's defaults; the first connection then
        # switches to the right context, once, as AlpnFixed does).
        caller = sys._getframe(1).f_locals
        http1, http2 = caller.get("http1", True), caller.get("http2", False)
        if not isinstance(http1, bool) or not isinstance(http2, bool):
            http1, http2 = True, False
        return shared_context(stack, verify, cert, trust_env, http1=http1, http2=http2)

    undo: list[Undo] = []
    _patch(defaults, "create_ssl_context", create_ssl_context, undo)
    return _undo_all(undo)
