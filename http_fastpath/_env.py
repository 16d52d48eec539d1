"""The environment opt-in: the only module that reads ``os.environ``.

``HTTP_FASTPATH``
    Comma-separated features: ``tfo``, ``mptcp``. ``1``, ``on``, ``all``, ``true``, ``yes``:
    every stable feature. Unset, empty, ``0``, ``off``, ``false``, ``no``, ``none``: nothing.
``HTTP_FASTPATH_TFO_POLICY``
    ``safe`` (default) or ``always`` (see :class:`FastpathOptions`).
``HTTP_FASTPATH_LOG``
    ``debug``, ``info`` or ``warning``: print ``http_fastpath`` log lines to stderr.

A bad value never crashes the program: it produces one warning naming the bad token and
the valid ones, and the valid part applies.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from typing import Final

from ._options import FastpathOptions, TFOPolicy

__all__ = ["EnvConfig", "FastpathEnvWarning", "parse_environ", "read_environ"]

VAR: Final = "HTTP_FASTPATH"
POLICY_VAR: Final = "HTTP_FASTPATH_TFO_POLICY"
LOG_VAR: Final = "HTTP_FASTPATH_LOG"

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
    options = None
    if wanted:
        options = FastpathOptions(tfo="tfo" in wanted, mptcp="mptcp" in wanted, tfo_policy=policy)
    return EnvConfig(options=options, raw=raw, log_level=log_level, problems=tuple(problems))


def read_environ(*, warn: bool = True) -> EnvConfig:
    """Parse ``os.environ``; with ``warn``, emit one :class:`FastpathEnvWarning` per problem."""
    config = parse_environ(os.environ)
    if warn:
        for problem in config.problems:
            warnings.warn(problem, FastpathEnvWarning, stacklevel=2)
    return config
