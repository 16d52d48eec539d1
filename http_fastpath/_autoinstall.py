"""Process-wide opt-in: urllib3 (requests), httpcore (httpx) and httpcore2 (httpx2) on the dialer.

:func:`install` patches the lowest sensible layer of each client — the connection class
urllib3's pools instantiate, and the network backend httpcore's pools and proxies create
when none is given — so libraries built on top of them benefit without any change in
their public behaviour (TLS verification, proxies, retries and exceptions stay stock).

Nothing is imported eagerly: a client that is not imported yet is patched the moment it
is imported, by a post-import hook on ``sys.meta_path``. The ``http_fastpath_env.pth``
file shipped in the wheel calls :func:`activate_from_environ` at interpreter start-up
only when ``HTTP_FASTPATH`` asks for something; otherwise it costs one environment
lookup.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._env import FastpathEnvWarning, read_environ
from ._options import FastpathOptions

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

__all__ = ["activate_from_environ", "install", "status", "uninstall"]

Undo = Callable[[], None]
Patcher = Callable[[ModuleType, FastpathOptions], Undo]


def _set(owner: Any, name: str, value: Any, undo: list[Undo]) -> None:
    """``setattr`` that records how to put the old value back."""
    old = getattr(owner, name)
    setattr(owner, name, value)
    undo.append(lambda: setattr(owner, name, old))


def _undo_all(undo: list[Undo]) -> Undo:
    def run() -> None:
        for step in reversed(undo):
            step()

    return run


def _patch_urllib3(module: ModuleType, options: FastpathOptions) -> Undo:
    """Make every urllib3 pool instantiate fastpath connections with ``options``."""
    from ._urllib3 import FastpathHTTPConnection, FastpathHTTPSConnection, urllib3_future_problem

    problem = urllib3_future_problem(module)
    if problem is not None:
        raise RuntimeError(problem)
    pools = module.connectionpool
    undo: list[Undo] = []
    attrs = {"fastpath_options": options, "__module__": __name__}
    http_cls = type("EnvFastpathHTTPConnection", (FastpathHTTPConnection,), attrs)
    https_cls = type("EnvFastpathHTTPSConnection", (FastpathHTTPSConnection,), attrs)
    _set(pools.HTTPConnectionPool, "ConnectionCls", http_cls, undo)
    _set(pools.HTTPSConnectionPool, "ConnectionCls", https_cls, undo)
    return _undo_all(undo)


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
    "httpcore": ("_httpcore_backend", "_httpcore_async"),
    "httpcore2": ("_httpcore2_backend", "_httpcore2_async"),
}


def _patch_httpcore(module: ModuleType, options: FastpathOptions) -> Undo:
    """Make httpcore (or httpcore2) create fastpath backends wherever it would create its own.

    The stack is the module's real name, so ``httpx2.alias_httpx()`` (``import httpcore``
    giving httpcore2) gets httpcore2's backends.
    """
    import importlib

    package = module.__name__
    sync_name, async_name = _BACKENDS[package]
    sync_cls = importlib.import_module(f"http_fastpath.{sync_name}").FastpathBackend
    undo: list[Undo] = []

    def sync_backend() -> Any:
        return sync_cls(options, retries=_caller_retries())

    for name in _HTTPCORE_MODULES:
        sub = sys.modules.get(f"{package}._sync.{name}")
        if sub is not None:  # socks_proxy only exists when socksio is installed
            _set(sub, "SyncBackend", sync_backend, undo)
    try:
        async_cls = importlib.import_module(f"http_fastpath.{async_name}").AsyncFastpathBackend
    except ImportError:  # httpcore without anyio: only the sync side exists
        return _undo_all(undo)

    def async_backend() -> Any:
        return async_cls(options, retries=_caller_retries())

    for name in _HTTPCORE_MODULES:
        sub = sys.modules.get(f"{package}._async.{name}")
        if sub is not None:
            _set(sub, "AutoBackend", async_backend, undo)
    return _undo_all(undo)


#: module whose import triggers the patch -> patcher
_PATCHERS: dict[str, Patcher] = {
    "urllib3": _patch_urllib3,
    "httpcore": _patch_httpcore,
    "httpcore2": _patch_httpcore,
}


@dataclasses.dataclass
class _State:
    options: FastpathOptions | None = None
    source: str | None = None
    undo: dict[str, Undo] = dataclasses.field(default_factory=dict)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    finder: _PostImportFinder | None = None


_state = _State()
_lock = threading.RLock()


def _apply(name: str, module: ModuleType) -> None:
    with _lock:
        options = _state.options
        if options is None or name in _state.undo:
            return
        try:
            _state.undo[name] = _PATCHERS[name](module, options)
        except Exception as exc:  # never break the program's own import
            _state.errors[name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"http_fastpath: could not patch {name} ({exc}); it keeps its stock behaviour",
                FastpathEnvWarning,
                stacklevel=2,
            )


# Plain classes rather than importlib.abc ones: importlib.abc costs milliseconds at
# start-up (it imports importlib.resources, inspect, re...), and the import system only
# needs the methods.
class _PatchingLoader:
    """Wraps a real loader; patches the module right after it has executed."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _apply(self._name, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _PostImportFinder:
    """Finds nothing itself; wraps the loader of the modules we patch."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in _PATCHERS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, fullname)  # type: ignore[assignment]
                return spec
        return None


def install(options: FastpathOptions | None = None, *, source: str = "install()") -> None:
    """Route every new connection of urllib3, httpcore and httpcore2 through the fastpath.

    Clients already imported are patched now; the others when they are imported.
    Calling it again replaces the options.
    """
    if options is not None and not isinstance(options, FastpathOptions):
        from ._exceptions import OptionError

        raise OptionError("options", options, "a FastpathOptions instance or None")
    opts = FastpathOptions() if options is None else options
    with _lock:
        if _state.options is not None:
            uninstall()
        _state.options = opts
        _state.source = source
        _state.errors.clear()
        finder = _PostImportFinder()
        _state.finder = finder
        sys.meta_path.insert(0, finder)
        for name in _PATCHERS:
            module = sys.modules.get(name)
            if module is not None:
                _apply(name, module)


def uninstall() -> None:
    """Undo :func:`install`: restore the patched classes and remove the import hook."""
    with _lock:
        if _state.finder is not None and _state.finder in sys.meta_path:
            sys.meta_path.remove(_state.finder)
        for undo in reversed(list(_state.undo.values())):
            undo()
        _state.undo.clear()
        _state.options = None
        _state.source = None
        _state.finder = None


def status() -> dict[str, object]:
    """Whether the process-wide fastpath is active, with which options, and what it patched."""
    with _lock:
        options = _state.options
        return {
            "active": options is not None,
            "source": _state.source,
            "options": None if options is None else dataclasses.asdict(options),
            "patched": sorted(_state.undo),
            "waiting_for_import": sorted(n for n in _PATCHERS if n not in _state.undo)
            if options is not None
            else [],
            "errors": dict(_state.errors),
        }


def activate_from_environ() -> None:
    """Start-up entry point used by the ``.pth`` file; never raises."""
    try:
        config = read_environ(warn=True)
        if config.log_level is not None:
            logger = logging.getLogger("http_fastpath")
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(config.log_level.upper())
        if config.memory_size is not None:
            from ._memory import MEMORY

            MEMORY.max_entries = config.memory_size
        if config.options is not None:
            install(config.options, source=f"HTTP_FASTPATH={config.raw}")
    except Exception as exc:  # the program must start whatever happens here
        warnings.warn(f"http_fastpath: opt-in disabled: {exc}", FastpathEnvWarning, stacklevel=2)
