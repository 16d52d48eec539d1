"""Alt-Svc (RFC 7838): the parser (table-driven and fuzzed) and the two caches (time injected)."""

from __future__ import annotations

import ipaddress
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from http_fastpath._core.altsvc import (
    DEFAULT_MAX_AGE,
    MAX_ALTERNATIVES,
    MAX_FIELD_LENGTH,
    MAX_MAX_AGE,
    MAX_VALUES,
    Alternative,
    AltSvc,
    Origin,
    ParsedAltSvc,
    parse_alt_svc,
)
from http_fastpath._core.altsvc_cache import AltSvcCache, BrokenAlternatives

ORIGIN = Origin.of("Example.TEST", 443)


def alts(parsed: ParsedAltSvc | None) -> list[tuple[str | None, int, int, bool]]:
    assert parsed is not None and not parsed.clear
    return [
        (a.alternative.host, a.alternative.port, a.max_age, a.persist) for a in parsed.alternatives
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('h3=":443"', [(None, 443, DEFAULT_MAX_AGE, False)]),
        ('h3=":443"; ma=3600', [(None, 443, 3600, False)]),
        ('h3=":443";ma=3600;persist=1', [(None, 443, 3600, True)]),
        ('h3 = ":443"', None),  # no whitespace around "=" (RFC 7838 grammar)
        ('h3=":8443" ; ma=60 ; persist=1', [(None, 8443, 60, True)]),
        ('h3="alt.example.test:443"', [("alt.example.test", 443, DEFAULT_MAX_AGE, False)]),
        ('h3="ALT.Example.test:443"', [("alt.example.test", 443, DEFAULT_MAX_AGE, False)]),
        ('h3="192.0.2.7:4433"', [("192.0.2.7", 4433, DEFAULT_MAX_AGE, False)]),
        ('h3="[2001:db8::1]:443"', [("2001:db8::1", 443, DEFAULT_MAX_AGE, False)]),
        ('h3="[2001:DB8:0::1]:443"', [("2001:db8::1", 443, DEFAULT_MAX_AGE, False)]),
        # only h3 is kept; drafts, h2 and unknown protocols are skipped
        ('h3-29=":443", h2=":443", quic=":443"', []),
        ('h3-29=":443"; ma=10, h3=":443"; ma=20', [(None, 443, 20, False)]),
        ('h%33=":443"', [(None, 443, DEFAULT_MAX_AGE, False)]),  # percent-encoded ALPN
        ('H3=":443"', []),  # ALPN ids are case-sensitive
        # order of preference kept, duplicates dropped
        (
            'h3="a.test:443", h3=":443", h3="a.test:443"; ma=5',
            [("a.test", 443, DEFAULT_MAX_AGE, False), (None, 443, DEFAULT_MAX_AGE, False)],
        ),
        # parameters: unknown ignored, the first of a duplicate counts, quoted values
        ('h3=":443"; foo=bar; ma=5; ma=9', [(None, 443, 5, False)]),
        ('h3=":443"; ma="30"; persist="1"', [(None, 443, 30, True)]),
        ('h3=":443"; persist=2', [(None, 443, DEFAULT_MAX_AGE, False)]),
        ('h3=":443"; MA=7', [(None, 443, 7, False)]),
        ('h3=":443"; ma=0', [(None, 443, 0, False)]),
        ('h3=":443"; ma=00000000000000000000012', [(None, 443, 12, False)]),
        ('h3=":443"; ma=99999999999999999999999999', [(None, 443, MAX_MAX_AGE, False)]),
        ('h3=":443"; ma=2592000', [(None, 443, MAX_MAX_AGE, False)]),  # 30 days, capped
        # quoted-pair in the authority
        ('h3="\\:443"', [(None, 443, DEFAULT_MAX_AGE, False)]),
        # empty list elements
        (' , h3=":443",, ', [(None, 443, DEFAULT_MAX_AGE, False)]),
        ("", []),
        # malformed: the whole field is ignored
        ('h3=":0"', None),
        ('h3=":65536"', None),
        ('h3=":-1"', None),
        ('h3=":443x"', None),
        ('h3="host"', None),
        ('h3=":"', None),
        ("h3=:443", None),
        ('h3=":443', None),
        ('h3=":443"; ma=-1', None),
        ('h3=":443"; ma=1.5', None),
        ('h3=":443"; ma', None),
        ('h3=":443" h2=":443"', None),
        ('h3="[2001:db8::1:443"', None),
        ('h3="[not-an-address]:443"', None),
        ('h3="a b:443"', None),
        ('h3="a/b:443"', None),
        ('h3="%61.test:443"', None),
        ('h3=":443", h2=":x"', None),  # a malformed non-h3 entry spoils the field too
        ('h3=":443", clear', None),
        ('h%3=":443"', None),
        ('h3="\u0100:443"', None),
    ],
)
def test_parse(value: str, expected: list[tuple[str | None, int, int, bool]] | None) -> None:
    parsed = parse_alt_svc(value)
    if expected is None:
        assert parsed is None
    else:
        assert alts(parsed) == expected


def test_clear_and_several_fields() -> None:
    assert parse_alt_svc("clear") == ParsedAltSvc(True, ())
    assert parse_alt_svc(" clear ") == ParsedAltSvc(True, ())
    assert parse_alt_svc("Clear") is None  # case-sensitive
    assert alts(parse_alt_svc(['h2=":443"', 'h3=":8443"'])) == [
        (None, 8443, DEFAULT_MAX_AGE, False)
    ]


def test_bounds() -> None:
    one = 'h3="a%d.test:443"'
    many = ", ".join(one % i for i in range(MAX_VALUES))
    assert len(many) <= MAX_FIELD_LENGTH
    parsed = parse_alt_svc(many)
    assert parsed is not None and len(parsed.alternatives) == MAX_ALTERNATIVES
    assert parse_alt_svc(many + ', h3=":443"') is None  # too many alt-values
    long_value = 'h3=":443"; x="' + "y" * MAX_FIELD_LENGTH + '"'
    assert parse_alt_svc(long_value) is None
    assert parse_alt_svc(['h3=":443"'] * 600) is None  # the fields together count
    assert parse_alt_svc('h3="' + "a" * 256 + ':443"') is None


def test_adversarial_input_is_linear() -> None:
    for value in ('h3=":443";' * 200, '"' * MAX_FIELD_LENGTH, "\\" * MAX_FIELD_LENGTH, ";" * 2048):
        start = time.perf_counter()
        parse_alt_svc(value[:MAX_FIELD_LENGTH])
        assert time.perf_counter() - start < 0.05


# -- fuzzing ---------------------------------------------------------------------------------

_alphabet = st.sampled_from(list('h3=":;,\\ \t[]ma0123456789persistclear.-%\x00\x7f\xff\u0100'))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=300), st.text(_alphabet, max_size=300)))
def test_fuzzed_values_never_raise_and_stay_bounded(value: str) -> None:
    parsed = parse_alt_svc(value)
    if parsed is None:
        return
    assert len(value) <= MAX_FIELD_LENGTH
    assert len(parsed.alternatives) <= MAX_ALTERNATIVES
    assert not (parsed.clear and parsed.alternatives)
    for entry in parsed.alternatives:
        assert 1 <= entry.alternative.port <= 65535
        assert 0 <= entry.max_age <= MAX_MAX_AGE
        host = entry.alternative.host
        assert host is None or (0 < len(host) <= 255 and host.isascii() and " " not in host)
    assert len(set(parsed.alternatives)) == len(parsed.alternatives)


_hosts = st.one_of(
    st.just(""),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_entries = st.lists(
    st.tuples(
        st.sampled_from(["h3", "h2", "h3-29"]),
        _hosts,
        st.integers(1, 65535),
        st.one_of(st.none(), st.integers(0, 10**12)),
        st.booleans(),
        st.sampled_from([" ", "", "\t"]),
    ),
    max_size=MAX_VALUES,
)


@settings(max_examples=300, deadline=None)
@given(_entries)
def test_generated_valid_values_round_trip(
    entries: list[tuple[str, str, int, int | None, bool, str]],
) -> None:
    parts = []
    expected: list[AltSvc] = []
    for proto, host, port, ma, persist, ows in entries:
        part = f'{proto}="{host}:{port}"'
        if ma is not None:
            part += f"{ows};{ows}ma={ma}"
        if persist:
            part += f"{ows};persist=1"
        parts.append(part)
        if proto == "h3":
            bare = host[1:-1] if host.startswith("[") else host
            if ":" in bare:
                bare = str(ipaddress.IPv6Address(bare))
            alt = Alternative(bare or None, port)
            if all(e.alternative != alt for e in expected):
                age = DEFAULT_MAX_AGE if ma is None else min(ma, MAX_MAX_AGE)
                expected.append(AltSvc(alt, age, persist))
    value = ", ".join(parts)
    parsed = parse_alt_svc(value)
    if len(value) > MAX_FIELD_LENGTH:
        assert parsed is None
        return
    assert parsed == ParsedAltSvc(False, tuple(expected[:MAX_ALTERNATIVES]))


# -- the positive cache ----------------------------------------------------------------------


def test_cache_remembers_until_ma_runs_out() -> None:
    cache = AltSvcCache()
    cache.update(ORIGIN, parse_alt_svc('h3=":8443"; ma=60, h3="alt.test:443"; ma=10'), now=100.0)
    assert cache.lookup(ORIGIN, 105.0) == (Alternative(None, 8443), Alternative("alt.test", 443))
    assert cache.lookup(ORIGIN, 111.0) == (Alternative(None, 8443),)
    assert cache.lookup(ORIGIN, 161.0) == () and len(cache) == 0
    assert Alternative(None, 8443).destination(ORIGIN) == ("example.test", 8443)
    assert Alternative("alt.test", 443).destination(ORIGIN) == ("alt.test", 443)


def test_cache_age_header_counts_against_ma() -> None:
    cache = AltSvcCache()
    cache.update(ORIGIN, parse_alt_svc('h3=":443"; ma=100'), now=0.0, age=90.0)
    assert cache.lookup(ORIGIN, 9.0) and not cache.lookup(ORIGIN, 10.0)
    cache.update(ORIGIN, parse_alt_svc('h3=":443"; ma=100'), now=0.0, age=100.0)
    assert cache.lookup(ORIGIN, 0.0) == ()


def test_a_new_value_replaces_everything_clear_empties_malformed_is_ignored() -> None:
    cache = AltSvcCache()
    cache.update(ORIGIN, parse_alt_svc('h3=":443", h3=":8443"'), now=0.0)
    cache.update(ORIGIN, parse_alt_svc('h3=":9443"'), now=1.0)
    assert cache.lookup(ORIGIN, 2.0) == (Alternative(None, 9443),)
    cache.update(ORIGIN, parse_alt_svc('h3=":x"'), now=3.0)  # malformed: ignored
    assert cache.lookup(ORIGIN, 4.0) == (Alternative(None, 9443),)
    cache.update(ORIGIN, parse_alt_svc('h2=":443"'), now=5.0)  # no h3 left
    assert cache.lookup(ORIGIN, 6.0) == ()
    cache.update(ORIGIN, parse_alt_svc('h3=":443"'), now=7.0)
    cache.update(ORIGIN, parse_alt_svc("clear"), now=8.0)
    assert cache.lookup(ORIGIN, 9.0) == ()
    cache.update(ORIGIN, parse_alt_svc('h3=":443"; ma=0'), now=10.0)
    assert cache.lookup(ORIGIN, 10.0) == ()


def test_origins_are_separate_and_normalised() -> None:
    cache = AltSvcCache()
    cache.update(Origin.of("EXAMPLE.test", 443), parse_alt_svc('h3=":443"'), now=0.0)
    assert cache.lookup(Origin.of("example.test", 443), 1.0)
    assert not cache.lookup(Origin.of("example.test", 8443), 1.0)
    assert not cache.lookup(Origin.of("other.test", 443), 1.0)
    assert Origin.of("[::1]", 443) == Origin("::1", 443)


def test_cache_is_bounded_lru() -> None:
    cache = AltSvcCache(max_origins=3)
    origins = [Origin.of(f"o{i}.test", 443) for i in range(4)]
    for i, origin in enumerate(origins[:3]):
        cache.update(origin, parse_alt_svc('h3=":443"'), now=float(i))
    assert cache.lookup(origins[0], 5.0)  # used: now the most recent
    cache.update(origins[3], parse_alt_svc('h3=":443"'), now=6.0)
    assert len(cache) == 3 and not cache.lookup(origins[1], 7.0)
    assert cache.lookup(origins[0], 7.0) and cache.lookup(origins[3], 7.0)
    with pytest.raises(ValueError):
        AltSvcCache(max_origins=0)


def test_network_change_keeps_only_persist() -> None:
    cache = AltSvcCache()
    other = Origin.of("other.test", 443)
    cache.update(ORIGIN, parse_alt_svc('h3=":443"; persist=1, h3=":8443"'), now=0.0)
    cache.update(other, parse_alt_svc('h3=":443"'), now=0.0)
    cache.network_changed()
    assert cache.lookup(ORIGIN, 1.0) == (Alternative(None, 443),)
    assert cache.lookup(other, 1.0) == ()
    cache.forget(ORIGIN)
    assert cache.lookup(ORIGIN, 1.0) == ()


# -- the negative cache ----------------------------------------------------------------------


def test_back_off_doubles_up_to_the_cap_and_success_resets() -> None:
    broken = BrokenAlternatives(base=10.0, cap=50.0)
    alt = Alternative(None, 443)
    now = 0.0
    expected_delays = [10.0, 20.0, 40.0, 50.0, 50.0]
    for delay in expected_delays:
        until = broken.mark_broken(ORIGIN, alt, now)
        assert until == now + delay
        assert broken.is_broken(ORIGIN, alt, now + delay - 0.001)
        assert not broken.is_broken(ORIGIN, alt, now + delay)
        now += delay  # tried again after the back-off, failed again
    assert broken.failures(ORIGIN, alt) == 5
    broken.mark_working(ORIGIN, alt)
    assert broken.failures(ORIGIN, alt) == 0
    assert broken.mark_broken(ORIGIN, alt, now) == now + 10.0


def test_negative_cache_is_per_origin_and_alternative() -> None:
    broken = BrokenAlternatives(base=10.0)
    a, b = Alternative(None, 443), Alternative("alt.test", 443)
    broken.mark_broken(ORIGIN, a, 0.0)
    assert broken.usable(ORIGIN, [a, b], 1.0) == (b,)
    assert broken.usable(Origin.of("other.test", 443), [a, b], 1.0) == (a, b)
    assert broken.usable(ORIGIN, [a, b], 10.0) == (a, b)


def test_negative_cache_is_bounded() -> None:
    broken = BrokenAlternatives(max_entries=2)
    for port in (1, 2, 3):
        broken.mark_broken(ORIGIN, Alternative(None, port), 0.0)
    assert len(broken) == 2 and not broken.is_broken(ORIGIN, Alternative(None, 1), 1.0)
    for _ in range(200):  # the exponent is bounded too
        broken.mark_broken(ORIGIN, Alternative(None, 3), 0.0)
    assert broken.is_broken(ORIGIN, Alternative(None, 3), broken.cap - 1)
    with pytest.raises(ValueError):
        BrokenAlternatives(base=0.0)
