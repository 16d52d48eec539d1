"""The environment opt-in's Alt-Svc upgrade to HTTP/3 (``HTTP_FASTPATH=…,h3``, EXPERIMENTAL).

With ``install(http3=True)``, :mod:`.autoinstall` calls these when requests' adapters and
httpx's (or httpx2's) transports are imported: every ``HTTPAdapter`` and every
``HTTPTransport`` / ``AsyncHTTPTransport`` built from then on upgrades as
``FastpathAdapter(http3="auto")`` does, with one process-wide memory of the origins'
alternatives (:func:`h3_memory`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._core.options import FastpathOptions
from .env import HostRules
from .hooks import Undo
from .hooks import patch as _patch
from .hooks import undo_all as _undo_all

if TYPE_CHECKING:
    from .._core.upgrade import UpgradeMemory

__all__ = ["h3_memory", "patch_httpx_transports", "patch_requests_adapters"]


_h3_memory_lock = threading.Lock()
_h3_memory_made: list[UpgradeMemory] = []


def h3_memory() -> UpgradeMemory:
    """The process-wide Alt-Svc memory of the opt-in (shared by requests, httpx, httpx2)."""
    with _h3_memory_lock:
        if not _h3_memory_made:
            from .._core.upgrade import UpgradeMemory

            _h3_memory_made.append(UpgradeMemory())
        return _h3_memory_made[0]


def patch_requests_adapters(module: ModuleType, options: FastpathOptions, rules: HostRules) -> Undo:
    """``HTTPAdapter.send`` with the upgrade (a ``FastpathAdapter`` with its own keeps it)."""
    from urllib.parse import urlsplit

    from ..http3._upgrade import RequestsUpgrade

    adapter_cls = module.HTTPAdapter
    original = adapter_cls.send
    upgrade = RequestsUpgrade(memory=h3_memory())

    def send(
        self: Any,
        request: Any,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> Any:
        if getattr(self, "_upgrade", None) is not None or not _h3_allowed(rules, request.url):
            return original(self, request, stream, timeout, verify, cert, proxies)
        tcp = functools.partial(original, self)
        return upgrade.send(self, request, tcp, stream, timeout, verify, cert, proxies)

    def _h3_allowed(rules: HostRules, url: str | None) -> bool:
        if not rules.restricts:
            return True
        parts = urlsplit(url or "")
        return rules.allows(parts.hostname or "", parts.port or 443)

    undo: list[Undo] = [upgrade.close]
    _patch(adapter_cls, "send", send, undo)
    return _undo_all(undo)


def patch_httpx_transports(module: ModuleType, options: FastpathOptions, rules: HostRules) -> Undo:
    """httpx's (or httpx2's) ``HTTPTransport`` / ``AsyncHTTPTransport`` with the upgrade.

    Each transport built while the opt-in is active gets its own HTTP/3 pool, with the
    process-wide memory; transports built before keep TCP only. Proxy and Unix-socket
    transports never upgrade.
    """
    import inspect

    from ..http3._upgrade import HttpxUpgrade

    memory = h3_memory()
    undo: list[Undo] = []

    def allowed(request: Any) -> bool:
        url = request.url
        return not rules.restricts or rules.allows(url.host, url.port or 443)

    for cls, asynchronous in ((module.HTTPTransport, False), (module.AsyncHTTPTransport, True)):
        init = cls.__init__
        signature = inspect.signature(init)

        def __init__(
            self: Any,
            *args: Any,
            _init: Any = init,
            _sig: inspect.Signature = signature,
            _async: bool = asynchronous,
            **kwargs: Any,
        ) -> None:
            _init(self, *args, **kwargs)
            given = _sig.bind(self, *args, **kwargs)
            given.apply_defaults()
            arg = given.arguments
            if arg.get("proxy") is None and arg.get("uds") is None:
                self._fastpath_upgrade = HttpxUpgrade(
                    module,
                    asynchronous=_async,
                    verify=arg.get("verify", True),
                    cert=arg.get("cert"),
                    trust_env=arg.get("trust_env", True),
                    proxied=False,
                    memory=memory,
                )

        _patch(cls, "__init__", functools.wraps(init)(__init__), undo)
        if asynchronous:
            _patch_async_transport(cls, allowed, undo)
        else:
            _patch_sync_transport(cls, allowed, undo)
    return _undo_all(undo)


def _patch_sync_transport(cls: Any, allowed: Callable[[Any], bool], undo: list[Undo]) -> None:
    handle, close, exit_ = cls.handle_request, cls.close, cls.__exit__

    def handle_request(self: Any, request: Any) -> Any:
        upgrade = self.__dict__.get("_fastpath_upgrade")
        if upgrade is None or not allowed(request):
            return handle(self, request)
        return upgrade.handle(request, functools.partial(handle, self))

    def close_(self: Any) -> None:
        upgrade = self.__dict__.get("_fastpath_upgrade")
        if upgrade is not None:
            upgrade.close()
        close(self)

    def __exit__(self: Any, *exc: Any) -> None:
        upgrade = self.__dict__.get("_fastpath_upgrade")
        if upgrade is not None:
            upgrade.close()
        exit_(self, *exc)

    _patch(cls, "handle_request", handle_request, undo)
    _patch(cls, "close", close_, undo)
    _patch(cls, "__exit__", __exit__, undo)


def _patch_async_transport(cls: Any, allowed: Callable[[Any], bool], undo: list[Undo]) -> None:
    handle, aclose, aexit = cls.handle_async_request, cls.aclose, cls.__aexit__

    async def handle_async_request(self: Any, request: Any) -> Any:
        upgrade = self.__dict__.get("_fastpath_upgrade")
        if upgrade is None or not allowed(request):
            return await handle(self, request)
        return await upgrade.ahandle(request, functools.partial(handle, self))

    async def aclose_(self: Any) -> None:
        upgrade = self.__dict__.get("_fastpath_upgrade")
        if upgrade is not None:
            await upgrade.aclose()
        await aclose(self)

    async def __aexit__(self: Any, *exc: Any) -> None:
        upgrade = self.__dict__.get("_fastpath_upgrade")
        if upgrade is not None:
            await upgrade.aclose()
        await aexit(self, *exc)

    _patch(cls, "handle_async_request", handle_async_request, undo)
    _patch(cls, "aclose", aclose_, undo)
    _patch(cls, "__aexit__", __aexit__, undo)
