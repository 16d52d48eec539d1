"""Helpers for the httpx transport tests: run one coroutine under asyncio or trio."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")

ASYNC_LIBS = ("asyncio", "trio")


def run_async(lib: str, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``func(*args)`` to completion under ``lib`` ("asyncio" or "trio")."""
    if lib == "asyncio":
        return asyncio.run(func(*args))  # type: ignore[arg-type]
    return trio.run(func, *args)
