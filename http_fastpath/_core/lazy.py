"""Lazy re-exports: a package's public names load from their private modules on first use.

``import http_fastpath`` (and ``http_fastpath.httpx2``) must do no work and import no HTTP
client; each such module keeps a ``{name: private module}`` table and gets its module
``__getattr__`` and ``__dir__`` from :func:`exports`. A module is named by its
dotted path under ``http_fastpath`` (``"_core.capabilities"``, ``"http3._httpx"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: the extra that installs each third-party module a public name may need
_EXTRA_OF = {
    "requests": "requests",
    "urllib3": "requests",
    "httpx": "httpx",
    "httpcore": "httpx",
    "anyio": "httpx",
    "sniffio": "httpx",
    "httpx2": "httpx2",
    "httpcore2": "httpx2",
    "aioquic": "http3",
    "pylsqpack": "http3",
    "h2": "http2",
    "trio": "trio",
}


def missing_extra(module: str, name: str, exc: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error for ``module.name`` when a module it needs is not installed.

    Names the extra to install (``pip install "http_fastpath[requests]"``); still a
    ``ModuleNotFoundError`` (an ``ImportError``) with the missing module's ``name``.
    """
    top = (exc.name or "").partition(".")[0]
    extra = _EXTRA_OF.get(top)
    if module == "http_fastpath.httpx2" and top in ("httpx", "httpcore", "anyio"):
        extra = "httpx2"
    hint = f'pip install "http_fastpath[{extra}]"' if extra else f"install {top}"
    return ModuleNotFoundError(
        f"{module}.{name} needs {top!r}, which is not installed: {hint}", name=top
    )


def exports(
    module: str, table: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``module``, loading ``table``'s names on first use."""

    def __getattr__(name: str) -> object:
        private = table.get(name)
        if private is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        import importlib

        try:
            value = getattr(importlib.import_module(f"http_fastpath.{private}"), name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("http_fastpath"):
                raise
            raise missing_extra(module, name, exc) from exc
        namespace[name] = value  # later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
