"""The post-import hook of the opt-in: patch a module right after it has been imported.

A :class:`PostImportFinder` on ``sys.meta_path`` finds nothing itself; for the module
names it watches it asks the other finders and wraps the loader they return, so the
module executes as usual and ``apply(name, module)`` runs right after. :func:`patch`
and :func:`undo_all` make every patch undoable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Container, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

__all__ = ["PatchingLoader", "PostImportFinder", "Undo", "patch", "undo_all"]

Apply = Callable[[str, ModuleType], None]
Undo = Callable[[], None]


def patch(owner: Any, name: str, value: Any, undo: list[Undo]) -> None:
    """``setattr`` that records how to put the old value back."""
    old = getattr(owner, name)
    setattr(owner, name, value)
    undo.append(lambda: setattr(owner, name, old))


def undo_all(undo: list[Undo]) -> Undo:
    """One undo that runs ``undo`` last to first."""

    def run() -> None:
        for step in reversed(undo):
            step()

    return run


# Plain classes rather than importlib.abc ones: importlib.abc costs milliseconds at
# start-up (it imports importlib.resources, inspect, re...), and the import system only
# needs the methods.
class PatchingLoader:
    """Wraps a real loader; calls ``apply`` right after the module has executed."""

    def __init__(self, loader: Any, name: str, apply: Apply) -> None:
        self._loader = loader
        self._name = name
        self._apply = apply

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its real loader (importlib.resources and co. look at it).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._apply(self._name, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class PostImportFinder:
    """Finds nothing itself; wraps the loader of the modules named in ``names``."""

    #: marks the import hooks of http_fastpath (this one, and the start-up one of
    #: ``_http_fastpath_env``): they never ask each other, so they cannot recurse
    _http_fastpath_hook = True

    def __init__(
        self, names: Container[str], apply: Apply, on_import: Callable[[], None] | None = None
    ) -> None:
        self._names = names
        self._apply = apply
        #: called at every import the finder sees (cheap: for what is left to do)
        self._on_import = on_import

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if self._on_import is not None:
            self._on_import()
        if fullname not in self._names:
            return None
        for finder in sys.meta_path:
            if getattr(finder, "_http_fastpath_hook", False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = PatchingLoader(spec.loader, fullname, self._apply)  # type: ignore[assignment]
                return spec
        return None
