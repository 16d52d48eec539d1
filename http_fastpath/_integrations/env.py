"""The environment opt-in: the only module that reads ``os.environ``.

``HTTP_FASTPATH``
    Comma-separated features: ``tfo``, ``mptcp``, and the EXPERIMENTAL ``h3`` (the Alt-Svc
    upgrade to HTTP/3, ``http3="auto"``). ``1``, ``on``, ``all``, ``true``, ``yes``: every
    stable feature (not ``h3``). Unset, empty, ``0``, ``off``, ``false``, ``no``, ``none``:
    nothing.
``HTTP_FASTPATH_TFO_POLICY``
    ``safe`` (default) or ``always`` (see :class:`FastpathOptions`).
``HTTP_FASTPATH_LOG``
    A logging level name (``debug``, ``info``, ``warning``, ``error``, ``critical``): print
    ``http_fastpath`` log lines to stderr. Works with or without ``HTTP_FASTPATH``.
``HTTP_FASTPATH_HOSTS`` / ``HTTP_FASTPATH_EXCLUDE``
    ``NO_PROXY``-style host lists: only these hosts get the fast path / these never do.
``HTTP_FASTPATH_TFO_PAUSE`` / ``HTTP_FASTPATH_MPTCP_RELEARN``
    Seconds (0 to 604800): :class:`FastpathOptions` ``tfo_pause`` / ``mptcp_relearn``.
``HTTP_FASTPATH_HAPPY_EYEBALLS_DELAY``
    Seconds (0.01 to 2) between the connect attempts of a host with several addresses, or
    ``off``: :class:`FastpathOptions` ``happy_eyeballs_delay``.
``HTTP_FASTPATH_MEMORY_SIZE``
    How many destinations the process remembers (a whole number >= 1, default 4096).

A bad value never crashes the program: it produces one warning naming the bad token and
the valid ones, and the valid part applies.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias

from .._core.exceptions import OptionError
from .._core.options import MAX_SECONDS, FastpathOptions, TFOPolicy

__all__ = [
    "EnvConfig",
    "FastpathEnvWarning",
    "HostList",
    "HostRules",
    "parse_environ",
    "parse_hosts",
    "read_environ",
    "warn_env",
]

VAR: Final = "HTTP_FASTPATH"
POLICY_VAR: Final = "HTTP_FASTPATH_TFO_POLICY"
LOG_VAR: Final = "HTTP_FASTPATH_LOG"
HOSTS_VAR: Final = "HTTP_FASTPATH_HOSTS"
EXCLUDE_VAR: Final = "HTTP_FASTPATH_EXCLUDE"
PAUSE_VAR: Final = "HTTP_FASTPATH_TFO_PAUSE"
RELEARN_VAR: Final = "HTTP_FASTPATH_MPTCP_RELEARN"
MEMORY_VAR: Final = "HTTP_FASTPATH_MEMORY_SIZE"
DELAY_VAR: Final = "HTTP_FASTPATH_HAPPY_EYEBALLS_DELAY"

FEATURES: Final = ("tfo", "mptcp")
#: EXPERIMENTAL features: only by name, never in ``all``
EXPERIMENTAL: Final = ("h3",)
_ALL: Final = frozenset({"1", "on", "all", "true", "yes"})
_NONE: Final = frozenset({"", "0", "off", "false", "no", "none"})
_POLICIES: Final = ("safe", "always")
#: level names of the logging module (lower case) -> the level set on the logger
_LOG_LEVELS: Final = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "critical": "critical",
    "fatal": "critical",
}
_HOSTS_VALID: Final = (
    "comma-separated host names (also matching their subdomains; a leading '.' is "
    "ignored), IP addresses, CIDR networks, each with an optional :port, or *"
)
#: where the environment's warnings point (not at the line of library code that emits them)
WARNING_SOURCE: Final = "<environment>"


class FastpathEnvWarning(UserWarning):
    """An ``HTTP_FASTPATH*`` environment variable holds a value that is not allowed."""


def warn_env(message: str) -> None:
    """Emit a :class:`FastpathEnvWarning` located in the environment; never raises.

    The warning names ``<environment>`` as its source: the line of library code that
    happens to emit it is of no use to whoever set the variable. Warnings turned into
    errors (``-W error``, ``PYTHONWARNINGS=error``) cannot stop the program here (this
    runs inside an import, or at interpreter start-up): the line is printed instead.
    """
    try:
        warnings.warn_explicit(
            message, FastpathEnvWarning, WARNING_SOURCE, 0, module="http_fastpath"
        )
    except Exception:  # warnings are errors: say it once on stderr, and carry on
        try:
            sys.stderr.write(f"{WARNING_SOURCE}:0: {FastpathEnvWarning.__name__}: {message}\n")
        except Exception:  # pragma: no cover - no usable stderr
            pass


# -- host lists (NO_PROXY rules) --------------------------------------------------------

_Network: TypeAlias = "ipaddress.IPv4Network | ipaddress.IPv6Network"


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port`` / ``[v6]:port`` / ``host`` -> (host, port or None); ValueError if bad."""
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")) or ":" not in host:
            raise ValueError(entry)  # brackets hold an IPv6 address
        port_text = rest[1:] if rest else None
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    else:  # a name, an IPv4 address, or a bare IPv6 address / network
        host, port_text = entry, None
    if port_text is None:
        return host, None
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ValueError(entry)
    return host, int(port_text)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _valid_name(name: str) -> bool:
    labels = name.split(".")
    return all(
        label and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)
        for label in labels
    )


@dataclasses.dataclass(frozen=True)
class HostList:
    """A ``NO_PROXY``-style host list, matched the way requests matches ``NO_PROXY``.

    Entries (case does not matter):

    - ``*``: every host;
    - a host name: that host and its subdomains (``example.com`` matches
      ``example.com`` and ``api.example.com``, not ``badexample.com``); a leading ``.``
      (or ``*.``) is ignored;
    - an IP address, or a CIDR network (``10.0.0.0/8``, ``fd00::/8``): hosts given as an
      address in it (names are not resolved: ``localhost`` does not match ``127.0.0.1``);
    - any of these with ``:port`` (``[v6]:port`` for IPv6): only connections to that port.
    """

    entries: tuple[str, ...]
    any_host: bool = False
    names: tuple[tuple[str, int | None], ...] = ()
    networks: tuple[tuple[_Network, int | None], ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> tuple[HostList, tuple[str, ...]]:
        """(the list of the valid entries, the invalid entries); never raises."""
        valid: list[str] = []
        bad: list[str] = []
        any_host = False
        names: list[tuple[str, int | None]] = []
        networks: list[tuple[_Network, int | None]] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                any_host = True
                valid.append(entry)
                continue
            try:
                host, port = _split_port(entry)
                if "/" in host or _ip(host) is not None:
                    networks.append((ipaddress.ip_network(host, strict=False), port))
                else:
                    name = (host[2:] if host.startswith("*.") else host.lstrip(".")).rstrip(".")
                    if not name or not _valid_name(name):
                        raise ValueError(entry)
                    names.append((name, port))
            except ValueError:
                bad.append(raw.strip())
                continue
            valid.append(entry)
        return cls(tuple(valid), any_host, tuple(names), tuple(networks)), tuple(bad)

    def matches(self, host: str, port: int | None = None) -> bool:
        """Does a connection to ``host`` (a name or an address, as dialed) and ``port`` match?"""
        if self.any_host:
            return True
        host = host.strip().lower()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        address = _ip(host.split("%", 1)[0])
        if address is not None:
            return any(
                address.version == net.version and address in net and (want is None or want == port)
                for net, want in self.networks
            )
        host = host.rstrip(".")
        return any(
            (host == name or host.endswith("." + name)) and (want is None or want == port)
            for name, want in self.names
        )


def parse_hosts(value: str | Iterable[str]) -> tuple[HostList, tuple[str, ...]]:
    """A host list from a ``NO_PROXY``-style string (commas or spaces) or an iterable."""
    entries = value.replace(",", " ").split() if isinstance(value, str) else value
    return HostList.parse(entries)


@dataclasses.dataclass(frozen=True)
class HostRules:
    """Which hosts get the fast path: ``hosts`` (None: every host) minus ``exclude``."""

    hosts: HostList | None = None
    exclude: HostList | None = None

    @property
    def restricts(self) -> bool:
        """False when every host gets the fast path (nothing to decide per connection)."""
        return self.hosts is not None or self.exclude is not None

    def allows(self, host: str, port: int | None = None) -> bool:
        """True when a connection to ``host``:``port`` may take the fast path.

        ``exclude`` wins over ``hosts``.
        """
        if self.exclude is not None and self.exclude.matches(host, port):
            return False
        return self.hosts is None or self.hosts.matches(host, port)


# -- the variables ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """What the environment asks for."""

    options: FastpathOptions | None
    raw: str | None
    log_level: str | None = None
    problems: tuple[str, ...] = ()
    memory_size: int | None = None
    #: the valid entries of HTTP_FASTPATH_HOSTS (None: unset or empty, every host)
    hosts: tuple[str, ...] | None = None
    #: the valid entries of HTTP_FASTPATH_EXCLUDE (None: unset or empty, no host)
    exclude: tuple[str, ...] | None = None
    #: ``h3`` in HTTP_FASTPATH: the Alt-Svc upgrade to HTTP/3 (EXPERIMENTAL)
    http3: bool = False

    @property
    def active(self) -> bool:
        """True when at least one fast path is requested."""
        return self.options is not None


def _valid_values() -> str:
    return "tfo, mptcp, h3 (comma-separated), or 1/on/all (tfo,mptcp), or 0/off"


def _host_list(environ: Mapping[str, str], var: str, problems: list[str]) -> tuple[str, ...] | None:
    raw = environ.get(var)
    if raw is None or not raw.replace(",", " ").split():
        return None
    hosts, bad = parse_hosts(raw)
    for entry in bad:
        problems.append(f"{var}: {entry!r} ignored (valid: {_HOSTS_VALID})")
    return hosts.entries


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
            if token in FEATURES or token in EXPERIMENTAL:
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
            log_level = _LOG_LEVELS[candidate]
        else:
            valid_levels = ", ".join(dict.fromkeys(_LOG_LEVELS.values()))
            problems.append(f"{LOG_VAR}: unknown value {log_raw!r} ignored (valid: {valid_levels})")
    hosts = _host_list(environ, HOSTS_VAR, problems)
    exclude = _host_list(environ, EXCLUDE_VAR, problems)
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
    delay = FastpathOptions.happy_eyeballs_delay
    delay_raw = environ.get(DELAY_VAR)
    if delay_raw is not None and delay_raw.strip():
        text = delay_raw.strip().lower()
        try:
            parsed = None if text in _NONE else float(text)
            FastpathOptions(happy_eyeballs_delay=parsed)
            delay = parsed
        except (ValueError, OptionError):
            problems.append(
                f"{DELAY_VAR}: {delay_raw!r} ignored (valid: seconds from 0.01 to 2, or off)"
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
            tfo="tfo" in wanted,
            mptcp="mptcp" in wanted,
            tfo_policy=policy,
            happy_eyeballs_delay=delay,
            **seconds,
        )
    return EnvConfig(
        options=options,
        http3="h3" in wanted,
        raw=raw,
        log_level=log_level,
        problems=tuple(problems),
        memory_size=memory_size,
        hosts=hosts,
        exclude=exclude,
    )


def read_environ(*, warn: bool = True) -> EnvConfig:
    """Parse ``os.environ``; with ``warn``, one :class:`FastpathEnvWarning` per problem.

    The warnings never raise (see :func:`warn`).
    """
    config = parse_environ(os.environ)
    if warn:
        for problem in config.problems:
            warn_env(problem)
    return config
