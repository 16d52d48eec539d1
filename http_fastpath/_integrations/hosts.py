"""Host lists of the environment opt-in (``HTTP_FASTPATH_HOSTS`` / ``HTTP_FASTPATH_EXCLUDE``).

``NO_PROXY``-style rules: host names (matching their subdomains), IP addresses and CIDR
networks, each with an optional port, or ``*``. Pure; :mod:`.env` parses the variables
with them and re-exports the names.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from typing import Final, TypeAlias

__all__ = ["HOSTS_VALID", "HostList", "HostRules", "parse_hosts"]

#: what HTTP_FASTPATH_HOSTS / HTTP_FASTPATH_EXCLUDE accept (for the warnings)
HOSTS_VALID: Final = (
    "comma-separated host names (also matching their subdomains; a leading '.' is "
    "ignored), IP addresses, CIDR networks, each with an optional :port, or *"
)

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
