"""HTTP_FASTPATH_HOSTS / HTTP_FASTPATH_EXCLUDE: which connections take the fast path.

The decision is a pure function of the dialed host and port (:class:`HostRules`), with
the matching rules of ``NO_PROXY`` in requests (``should_bypass_proxies``): a name
matches itself and its subdomains, a leading dot is ignored, IP addresses and CIDR
networks match addresses, ``:port`` narrows an entry to one port, ``*`` matches all.
The shell (the opt-in's patches) is checked with real servers in tests/loopback/test_env_optin.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from http_fastpath._integrations.env import HostRules, parse_hosts

MATCHES = [
    # (entries, host, port, matches)
    ("example.com", "example.com", 443, True),
    ("example.com", "EXAMPLE.com", 443, True),
    ("example.com", "api.example.com", 443, True),
    ("example.com", "a.b.example.com", 80, True),
    ("example.com", "example.com.", 443, True),  # fully qualified
    ("example.com", "badexample.com", 443, False),  # a dot boundary, not a plain suffix
    ("example.com", "example.com.evil.test", 443, False),
    ("example.com", "com", 443, False),
    (".example.com", "example.com", 443, True),  # the leading dot is ignored, as in requests
    (".example.com", "www.example.com", 443, True),
    ("*.example.com", "www.example.com", 443, True),
    ("example.com:8443", "example.com", 8443, True),
    ("example.com:8443", "api.example.com", 8443, True),
    ("example.com:8443", "example.com", 443, False),
    ("*", "anything.test", 1, True),
    ("*", "10.1.2.3", 1, True),
    ("other.test, *", "x.test", 80, True),  # * anywhere in the list, as in httpx
    ("10.1.2.3", "10.1.2.3", 80, True),
    ("10.1.2.3", "10.1.2.4", 80, False),
    ("10.0.0.0/8", "10.200.0.1", 80, True),
    ("10.0.0.0/8", "11.0.0.1", 80, False),
    ("10.0.0.1/8", "10.9.9.9", 80, True),  # host bits set: the network still applies
    ("127.0.0.0/8:8080", "127.0.0.2", 8080, True),
    ("127.0.0.0/8:8080", "127.0.0.2", 80, False),
    ("1.2.3.4", "4.1.2.3.4", 80, False),  # no suffix matching for addresses
    ("2.3.4", "1.2.3.4", 80, False),
    ("::1", "::1", 443, True),
    ("::1", "[::1]", 443, True),  # urllib3 keeps the brackets in pool hosts
    ("[::1]:8443", "::1", 8443, True),
    ("[::1]:8443", "::1", 443, False),
    ("fd00::/8", "fd12:3456::1", 443, True),
    ("fd00::/8", "fe80::1", 443, False),
    ("0.0.0.0/0", "::1", 443, False),  # address families never mix
    ("::/0", "127.0.0.1", 443, False),
    ("localhost", "127.0.0.1", 80, False),  # names are never resolved
    ("127.0.0.1", "localhost", 80, False),
    ("localhost", "localhost", 80, True),
    ("", "example.com", 80, False),
]


@pytest.mark.parametrize(("entries", "host", "port", "expected"), MATCHES)
def test_matching_table(entries: str, host: str, port: int, expected: bool) -> None:
    hosts, bad = parse_hosts(entries)
    assert not bad
    assert hosts.matches(host, port) is expected


@pytest.mark.parametrize(
    "bad",
    ["10.0.0.0/33", "example.com/8", "a:b", "a:0", "a:65536", "[example.com]", "[::1", "ex ample"],
)
def test_invalid_entries(bad: str) -> None:
    hosts, rejected = parse_hosts([bad])  # a list entry is never split ("ex ample")
    assert rejected == (bad,)
    assert hosts.entries == ()


def test_string_form_splits_on_commas_and_spaces() -> None:
    hosts, bad = parse_hosts(" a.test,b.test  c.test,,")
    assert hosts.entries == ("a.test", "b.test", "c.test") and not bad


DECISIONS = [
    # (hosts, exclude, host, port, allowed)
    (None, None, "any.test", 443, True),
    ("api.test", None, "api.test", 443, True),
    ("api.test", None, "www.api.test", 443, True),
    ("api.test", None, "other.test", 443, False),
    (None, "internal.test", "internal.test", 443, False),
    (None, "internal.test", "db.internal.test", 5432, False),
    (None, "internal.test", "public.test", 443, True),
    ("example.com", "legacy.example.com", "www.example.com", 443, True),
    ("example.com", "legacy.example.com", "legacy.example.com", 443, False),  # exclude wins
    ("example.com", "example.com:80", "example.com", 80, False),
    ("example.com", "example.com:80", "example.com", 443, True),
    ("", None, "any.test", 443, False),  # an empty allow-list allows no host
    (None, "", "any.test", 443, True),  # an empty exclude-list excludes no host
    ("*", "*", "any.test", 443, False),
]


@pytest.mark.parametrize(("hosts", "exclude", "host", "port", "allowed"), DECISIONS)
def test_decision_table(
    hosts: str | None, exclude: str | None, host: str, port: int, allowed: bool
) -> None:
    rules = HostRules(
        None if hosts is None else parse_hosts(hosts)[0],
        None if exclude is None else parse_hosts(exclude)[0],
    )
    assert rules.allows(host, port) is allowed
    assert rules.restricts is (hosts is not None or exclude is not None)


@given(entries=st.text(max_size=60), host=st.text(max_size=40), port=st.integers(0, 70000))
def test_fuzzed_lists_and_hosts_never_raise(entries: str, host: str, port: int) -> None:
    hosts, bad = parse_hosts(entries)
    assert len(hosts.entries) + len(bad) <= len(entries.replace(",", " ").split())
    assert isinstance(hosts.matches(host, port), bool)
    assert HostRules(hosts, hosts).allows(host, port) is False or not hosts.matches(host, port)
