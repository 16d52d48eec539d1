"""Lazy re-exports: a package's public names load from their private modules on first use.

``import http_fastpath`` (and ``http_fastpath.httpx2``) must do no work and import no HTTP
client; each such module keeps a ``{name: private module}`` table and gets its module
``__getattr__`` and ``__dir__`` from :func:`exports`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def exports(
    module: str, table: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``module``, loading ``table``'s names on first use."""

    def __getattr__(name: str) -> object:
        private = table.get(name)
        if private is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f"http_fastpath.{private}"), name)
        namespace[name] = value  # later lookups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
