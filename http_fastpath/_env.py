"""The environment opt-in: the only module that reads ``os.environ``.

``HTTP_FASTPATH``
    Comma-separated features: ``tfo``, ``mptcp``. ``1``, ``on``, ``all``, ``true``, ``yes``:
    every stable feature. Unset, empty, ``0``, ``off``, ``false``, ``no``, ``none``: nothing.
``HTTP_FASTPATH_TFO_POLICY``
    ``safe`` (default) or ``always`` (see :class:`FastpathOptions`).
``HTTP_FASTPATH_LOG``
    ``debug``, ``info`` or ``warning``: print ``http_fastpath`` log lines to stderr.
``HTTP_FASTPATH_TFO_PAUSE`` / ``HTTP_FASTPATH_MPTCP_RELEARN``
    Seconds (0 to 604800): :class:`FastpathOptions` ``tfo_pause`` / ``mptcp_relearn``.
``HTTP_FASTPATH_MEMORY_SIZE``
    How many destinations the process remembers (a whole number >= 1, default 4096).

A bad value never crashes the program: it produces one warning naming the bad token and
the valid ones, and the valid part applies.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from typing import Final

from ._exceptions import OptionError
from ._options import MAX_SECONDS, FastpathOptions, TFOPolicy

__all__ = ["EnvConfig", "FastpathEnvWarning", "parse_environ", "read_environ"]

VAR: Final = "HTTP_FASTPATH"
POLICY_VAR: Final = "HTTP_FASTPATH_TFO_POLICY"
LOG_VAR: Final = "HTTP_FASTPATH_LOG"
PAUSE_VAR: Final = "HTTP_FASTPATH_TFO_PAUSE"
RELEARN_VAR: Final = "HTTP_FASTPATH_MPTCP_RELEARN"
MEMORY_VAR: Final = "HTTP_FASTPATH_MEMORY_SIZE"

FEATURES: Final = ("tfo", "mptcp")
_ALL: Final = frozenset({"1", "on", "all", "true", "yes"})
_NONE: Final = frozenset({"", "0", "off", "false", "no", "none"})
_POLICIES: Final = ("safe", "always")
_LOG_LEVELS: Final = ("debug", "info", "warning")


class FastpathEnvWarning(UserWarning):
    """An ``HTTP_FASTPATH*`` environment variable holds a value that is not allowed."""


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """What the environment asks for."""

    options: FastpathOptions | None
    raw: str | None
    log_level: str | None = None
    problems: tuple[str, ...] = ()
    memory_size: int | None = None

    @property
    def active(self) -> bool:
        """True when at least one fast path is requested."""
        return self.options is not None


def _valid_values() -> str:
    return "tfo, mptcp (comma-separated), or 1/on/all, or 0/off"


def parse_environ(environ: Mapping[str, str]) -> EnvConfig:
    """Parse the ``HTTP_FASTPATH*`` variables of ``environ``; never raises."""
    raw = environ.get(VAR)
    problems: list[str] = []
    wanted: set[str] = set()
    value = (raw or "").strip().lower()
    if value in _ALL:
        wanted.update(FEATURES)
    elif value not in _NONE:
        for token in (t.strip() for t in value.split(",")):
            if token in FEATURES:
                wanted.add(token)
            elif token in _ALL:
                wanted.update(FEATURES)
            elif token:
                problems.append(
                    f"{VAR}: unknown token {token!r} ignored (valid: {_valid_values()})"
                )
    policy_raw = environ.get(POLICY_VAR)
    policy: TFOPolicy = "safe"
    if policy_raw is not None:
        candidate = policy_raw.strip().lower()
        if candidate == "always":
            policy = "always"
        elif candidate not in ("safe", ""):
            problems.append(
                f"{POLICY_VAR}: unknown value {policy_raw!r}, using 'safe' (valid: safe, always)"
            )
    log_raw = environ.get(LOG_VAR)
    log_level: str | None = None
    if log_raw is not None and log_raw.strip():
        candidate = log_raw.strip().lower()
        if candidate in _LOG_LEVELS:
            log_level = candidate
        else:
            problems.append(
                f"{LOG_VAR}: unknown value {log_raw!r} ignored (valid: {', '.join(_LOG_LEVELS)})"
            )
    seconds: dict[str, float] = {}
    for var, field in ((PAUSE_VAR, "tfo_pause"), (RELEARN_VAR, "mptcp_relearn")):
        value_raw = environ.get(var)
        if value_raw is None or not value_raw.strip():
            continue
        try:
            seconds[field] = float(value_raw)
            FastpathOptions(**{field: seconds[field]})  # type: ignore[arg-type]
        except (ValueError, OptionError):
            seconds.pop(field, None)
            problems.append(
                f"{var}: {value_raw!r} ignored (valid: seconds from 0 to {MAX_SECONDS:g})"
            )
    memory_size = None
    memory_raw = environ.get(MEMORY_VAR)
    if memory_raw is not None and memory_raw.strip():
        if memory_raw.strip().isdigit() and int(memory_raw) >= 1:
            memory_size = int(memory_raw)
        else:
            problems.append(f"{MEMORY_VAR}: {memory_raw!r} ignored (valid: a whole number >= 1)")
    options = None
    if wanted:
        options = FastpathOptions(
            tfo="tfo" in wanted, mptcp="mptcp" in wanted, tfo_policy=policy, **seconds
        )
    return EnvConfig(
        options=options,
        raw=raw,
        log_level=log_level,
        problems=tuple(problems),
        memory_size=memory_size,
    )


def read_environ(*, warn: bool = True) -> EnvConfig:
    """Parse ``os.environ``; with ``warn``, emit one :class:`FastpathEnvWarning` per problem."""
    config = parse_environ(os.environ)
    if warn:
        for problem in config.problems:
            warnings.warn(problem, FastpathEnvWarning, stacklevel=2)
    return config
