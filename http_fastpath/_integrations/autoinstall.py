"""Process-wide opt-in: urllib3 (requests), httpcore (httpx) and httpcore2 (httpx2) on the dialer.

:func:`install` patches the lowest sensible layer of each client — the connection class
urllib3's pools instantiate, and the network backend httpcore's pools and proxies create
when none is given — so libraries built on top of them benefit without any change in
their public behaviour (TLS verification, proxies, retries and exceptions stay stock).
With ``hosts`` / ``exclude`` the choice is made per connection, when the host is known:
a host left out gets the stock connection (urllib3) or the stock backend's (httpcore).

Nothing is imported eagerly: a client that is not imported yet is patched the moment it
is imported, by a post-import hook on ``sys.meta_path``. The ``http_fastpath_env.pth``
file shipped in the wheel imports the tiny ``_http_fastpath_env`` module at interpreter
start-up only when an ``HTTP_FASTPATH*`` variable asks for something; that module calls
:func:`activate_from_environ` when the program imports an HTTP client (or http_fastpath).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Final

from .._core.options import FastpathOptions, resolve_options
from .autoinstall_patchers import NotYet, _patch_httpcore, _patch_httpx_tls, _patch_urllib3
from .env import HostList, HostRules, parse_hosts, read_environ, warn_env
from .hooks import PostImportFinder, Undo
from .hooks import undo_all as _undo_all

__all__ = ["activate_from_environ", "install", "status", "uninstall"]

Patcher = Callable[[ModuleType, FastpathOptions, HostRules], Undo]


def _patch_httpx(module: ModuleType, options: FastpathOptions, rules: HostRules) -> Undo:
    """httpx (or httpx2): the shared TLS contexts, and with ``http3=True`` the upgrade."""
    undo = [_patch_httpx_tls(module, options, rules)]
    if _state.http3:
        from .h3_optin import patch_httpx_transports

        undo.append(patch_httpx_transports(module, options, rules))
    return _undo_all(undo)


def _patch_requests_adapters(
    module: ModuleType, options: FastpathOptions, rules: HostRules
) -> Undo:
    from .h3_optin import patch_requests_adapters

    return patch_requests_adapters(module, options, rules)


#: module whose import triggers the patch -> patcher
_PATCHERS: dict[str, Patcher] = {
    "urllib3": _patch_urllib3,
    "httpcore": _patch_httpcore,
    "httpcore2": _patch_httpcore,
    "requests.adapters": _patch_requests_adapters,
    "httpx": _patch_httpx,
    "httpx2": _patch_httpx,
}
#: the patchers only the Alt-Svc upgrade needs: only with ``http3=True`` (``h3``)
_H3_PATCHERS: Final = frozenset({"requests.adapters"})


def _wanted(name: str) -> bool:
    return name not in _H3_PATCHERS or _state.http3


@dataclasses.dataclass
class _State:
    options: FastpathOptions | None = None
    source: str | None = None
    rules: HostRules = dataclasses.field(default_factory=HostRules)
    undo: dict[str, Undo] = dataclasses.field(default_factory=dict)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    finder: PostImportFinder | None = None
    http3: bool = False
    #: modules whose turn came while they were still being imported (see :func:`_apply`)
    unfinished: set[str] = dataclasses.field(default_factory=set)


_state = _State()
_lock = threading.RLock()


def _apply(name: str, module: ModuleType) -> None:
    with _lock:
        options = _state.options
        if options is None or name in _state.undo or not _wanted(name):
            return
        try:
            _state.undo[name] = _PATCHERS[name](module, options, _state.rules)
        except NotYet:
            # Reached from inside the module's own import (httpx <= 0.27 imports httpcore
            # at its top, which starts the opt-in): patched once what it needs is there.
            _state.unfinished.add(name)
        except Exception as exc:  # never break the program's own import
            _state.errors[name] = f"{type(exc).__name__}: {exc}"
            warn_env(f"http_fastpath: could not patch {name} ({exc}); it keeps its stock behaviour")


def finish_unfinished() -> None:
    """Patch the modules that were still being imported when their turn came (called on
    every later import, and when an httpcore pool makes its backend)."""
    if not _state.unfinished:
        return
    with _lock:
        for name in sorted(_state.unfinished):
            _state.unfinished.discard(name)
            module = sys.modules.get(name)
            if module is not None:
                _apply(name, module)  # (NotYet again: still unfinished)


def _host_list(name: str, value: str | Iterable[str] | None) -> HostList | None:
    if value is None:
        return None
    hosts, bad = parse_hosts(value)
    if bad:
        from .._core.exceptions import OptionError

        raise OptionError(
            name,
            value,
            "host names (and their subdomains), IP addresses or CIDR networks, each with an "
            "optional :port, or * (NO_PROXY syntax: a string or a list of entries)",
        )
    return hosts


def install(
    options: FastpathOptions | None = None,
    *,
    hosts: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    source: str = "install()",
    http3: bool = False,
) -> None:
    """Route every new connection of urllib3, httpcore and httpcore2 through the fastpath.

    Clients already imported are patched now; the others when they are imported.
    Calling it again replaces the options.

    ``hosts`` / ``exclude``: ``NO_PROXY``-style host lists (``"example.com,10.0.0.0/8"``
    or a list of entries). Only connections to ``hosts`` (default: every host) and not to
    ``exclude`` take the fast path; the others are stock connections. An empty ``hosts``
    list matches no host.

    ``http3=True`` (EXPERIMENTAL, extra ``http3``): also the Alt-Svc upgrade to HTTP/3 of
    ``FastpathAdapter(http3="auto")`` for every requests ``HTTPAdapter`` and every httpx /
    httpx2 ``HTTPTransport`` / ``AsyncHTTPTransport`` built from now on, with one
    process-wide memory of the origins' alternatives.
    """
    opts = resolve_options(options)
    rules = HostRules(_host_list("hosts", hosts), _host_list("exclude", exclude))
    with _lock:
        if _state.options is not None:
            uninstall()
        _state.options = opts
        _state.source = source
        _state.rules = rules
        _state.http3 = http3 is True
        _state.errors.clear()
        finder = PostImportFinder(_PATCHERS, _apply, finish_unfinished)
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
        _state.rules = HostRules()
        _state.http3 = False
        _state.finder = None
        _state.unfinished.clear()


def status() -> dict[str, object]:
    """Whether the process-wide fastpath is active, with which options, and what it patched.

    ``hosts`` / ``exclude``: the host lists in force (None: every host / no host).
    """
    with _lock:
        options = _state.options
        rules = _state.rules
        return {
            "active": options is not None,
            "source": _state.source,
            "options": None if options is None else dataclasses.asdict(options),
            "hosts": None if rules.hosts is None else list(rules.hosts.entries),
            "exclude": None if rules.exclude is None else list(rules.exclude.entries),
            "http3": _state.http3,
            "patched": sorted(_state.undo),
            "waiting_for_import": sorted(
                n for n in _PATCHERS if n not in _state.undo and _wanted(n)
            )
            if options is not None
            else [],
            "errors": dict(_state.errors),
        }


_activated = False
_activation_lock = threading.Lock()


def _log_to_stderr(level: str) -> None:
    import logging

    logger = logging.getLogger("http_fastpath")
    # Marked, so a second activation (a .pth runs twice in a 3.11 venv) adds no second one.
    if not any(getattr(h, "http_fastpath_env", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        handler.http_fastpath_env = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level.upper())


def activate_from_environ() -> None:
    """Apply the ``HTTP_FASTPATH*`` variables, once per process; never raises.

    Called by the start-up hook (``_http_fastpath_env``) when the program imports an HTTP
    client or http_fastpath. Every valid part applies; each bad one gives one
    :class:`~http_fastpath._integrations.env.FastpathEnvWarning` (printed, not raised, when warnings
    are errors).
    """
    global _activated
    with _activation_lock:
        if _activated:
            return
        _activated = True
    try:
        config = read_environ(warn=True)
        if config.log_level is not None:
            _log_to_stderr(config.log_level)
        if config.memory_size is not None:
            from .._core.memory import MEMORY

            MEMORY.max_entries = config.memory_size
        if config.options is not None:
            install(
                config.options,
                hosts=config.hosts,
                exclude=config.exclude,
                source=f"HTTP_FASTPATH={config.raw}",
                http3=config.http3,
            )
    except Exception as exc:  # the program must start whatever happens here
        warn_env(f"http_fastpath: opt-in disabled: {type(exc).__name__}: {exc}")
