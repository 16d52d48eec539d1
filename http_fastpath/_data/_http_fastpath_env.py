"""Start-up hook of http_fastpath's environment opt-in (``HTTP_FASTPATH``).

The wheel installs this module at the top of site-packages, next to
``http_fastpath_env.pth``, whose single line imports it only when ``HTTP_FASTPATH`` or
``HTTP_FASTPATH_LOG`` is set (that line is compiled at every start-up, twice in a Python
3.11 venv: it is kept as short as it can be, so the "off" values are checked here). It
then runs in every interpreter of the environment (pip's included), so it imports
nothing and does nothing but put a small finder in front of ``sys.meta_path``. The opt-in itself
(:func:`http_fastpath._integrations.autoinstall.activate_from_environ`: parse the variables, warn
about bad values, patch the clients) runs once, right after the program imports urllib3,
httpcore or httpcore2 (only when ``HTTP_FASTPATH`` asks for a fast path), or
http_fastpath itself — never at start-up.

It never raises: a failure is one line on stderr, and the program runs unpatched.
Annotations are strings, and typing is imported for type checkers only: at start-up even
``typing`` or ``__future__`` would cost more than everything else here.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: values of HTTP_FASTPATH that ask for nothing (http_fastpath._integrations.env._NONE)
OFF = ("", "0", "off", "false", "no", "none")
#: the modules whose import starts the opt-in when HTTP_FASTPATH asks for a fast path
CLIENTS = ("urllib3", "httpcore", "httpcore2")
#: with ``h3`` (the Alt-Svc upgrade): httpx imports httpcore only when its first
#: transport is built, too late to patch that transport
H3_CLIENTS = ("httpx", "httpx2")

_started = False
_finder: "_Finder | None" = None


def activate() -> None:
    """Called by the ``.pth`` line (it can run twice: the second call does nothing)."""
    global _started, _finder
    if _started:
        return
    _started = True
    try:
        value = os.environ.get("HTTP_FASTPATH", "").strip().lower()
        fast = value not in OFF
        if not fast and not os.environ.get("HTTP_FASTPATH_LOG", "").strip():
            return  # e.g. HTTP_FASTPATH=off: nothing to do
        watched = {"http_fastpath"}
        if fast:
            watched.update(CLIENTS)
        if "h3" in value:  # the upgrade patches httpx before its first transport
            watched.update(H3_CLIENTS)
        if any(name in sys.modules for name in watched):  # imported by an earlier .pth
            _activate(None, None)
            return
        _finder = _Finder(frozenset(watched))
        sys.meta_path.insert(0, _finder)
    except Exception as exc:
        _report(exc)


def _activate(name: str | None, module: "Any") -> None:
    """Remove the finder and run the opt-in, after ``module`` (``name``) was executed."""
    global _finder
    finder, _finder = _finder, None
    try:
        if finder is not None and finder in sys.meta_path:
            sys.meta_path.remove(finder)
        from http_fastpath._integrations import autoinstall as _autoinstall

        _autoinstall.activate_from_environ()  # once per process
        if name in _autoinstall._PATCHERS:  # another thread's activation may have missed it
            _autoinstall._apply(name, module)
    except Exception as exc:
        _report(exc)


def _report(exc: BaseException) -> None:
    try:
        sys.stderr.write(
            f"http_fastpath: the HTTP_FASTPATH opt-in is off in this process "
            f"({type(exc).__name__}: {exc})\n"
        )
    except Exception:  # pragma: no cover - no usable stderr
        pass


class _Loader:
    """Runs the real loader, then the opt-in; the module keeps its real loader."""

    def __init__(self, loader: "Any", name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: "Any") -> "Any":
        return self._loader.create_module(spec)

    def exec_module(self, module: "Any") -> None:
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _activate(self._name, module)

    def __getattr__(self, name: str) -> "Any":
        return getattr(self._loader, name)


class _Finder:
    """Finds nothing itself: wraps the loader of the watched modules (see the docstring)."""

    _http_fastpath_hook = True  # see http_fastpath._integrations.hooks.PostImportFinder

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: "Any", target: "Any" = None) -> "Any":
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None or getattr(finder, "_http_fastpath_hook", False):
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, fullname)
                return spec
        return None
