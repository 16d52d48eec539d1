"""The Alt-Svc cache file (curl's line format) and the memory's file entries, without I/O."""

from __future__ import annotations

import calendar
import os
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from http_fastpath._core.altsvc import MAX_ALTERNATIVES, MAX_MAX_AGE, Alternative, Origin
from http_fastpath._core.altsvc_file import (
    MAGIC,
    MAX_FILE_BYTES,
    FileEntry,
    FileRejected,
    format_alt_svc_file,
    parse_alt_svc_file,
)
from http_fastpath._core.exceptions import OptionError
from http_fastpath._core.upgrade import (
    UpgradeMemory,
    check_files,
    fallback_note,
    is_misdirected,
)

NOW = float(calendar.timegm((2026, 11, 26, 6, 0, 0, 0, 0, 0)))
LATER = '"20261126 07:00:00"'  # NOW + 3600
ORIGIN = Origin("example.test", 443)


def text(*lines: str) -> str:
    return "\n".join([MAGIC, *lines]) + "\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # the origin's own host: the alternative names only a port
        (
            f"h1 example.test 443 h3 example.test 8443 {LATER} 0 0",
            FileEntry(ORIGIN, Alternative(None, 8443), NOW + 3600, False),
        ),
        (
            f"h2 Example.TEST 443 h3 alt.example.test 443 {LATER} 1 0",
            FileEntry(ORIGIN, Alternative("alt.example.test", 443), NOW + 3600, True),
        ),
        (
            f"h1 [::1] 4443 h3 [::1] 4433 {LATER} 0 0",
            FileEntry(Origin("::1", 4443), Alternative(None, 4433), NOW + 3600, False),
        ),
        # not h3 (a file curl wrote may hold them): skipped
        (f"h1 example.test 443 h2 example.test 443 {LATER} 0 0", None),
        # expired: dropped
        ('h1 example.test 443 h3 example.test 443 "20261126 05:59:59" 0 0', None),
        # far in the future: no longer than ma may be
        (
            'h1 example.test 443 h3 example.test 443 "20991231 00:00:00" 0 0',
            FileEntry(ORIGIN, Alternative(None, 443), NOW + MAX_MAX_AGE, False),
        ),
    ],
)
def test_lines(line: str, expected: FileEntry | None) -> None:
    assert parse_alt_svc_file(text("# a comment", "", line), NOW) == (
        [] if expected is None else [expected]
    )


@pytest.mark.parametrize(
    "content",
    [
        "",  # empty: no magic line
        'h1 example.test 443 h3 example.test 443 "20261126 07:00:00" 0 0\n',  # curl's own file
        "root:x:0:0:root:/root:/bin/bash\n",  # something else
        text(f"h1 example.test 443 h3 example.test 443 {LATER} 0"),  # 8 fields
        text(f"h1 example.test 443 h3 example.test 70000 {LATER} 0 0"),  # port
        text(f"h1 example.test 0 h3 example.test 443 {LATER} 0 0"),  # port 0
        text(f"h1 exa%mple.test 443 h3 example.test 443 {LATER} 0 0"),  # host
        text(f"h1 [zz] 443 h3 example.test 443 {LATER} 0 0"),  # not an IPv6 address
        text('h1 example.test 443 h3 example.test 443 "20261399 07:00:00" 0 0'),  # date
        text(f"h1 example.test 443 h3 example.test 443 {LATER} 2 0"),  # persist
        text(f"h1  example.test 443 h3 example.test 443 {LATER} 0 0"),  # two spaces
        MAGIC + "\n" + "#" * MAX_FILE_BYTES,  # too large
    ],
)
def test_rejected_whole(content: str) -> None:
    with pytest.raises(FileRejected):
        parse_alt_svc_file(content, NOW)


def test_bounds_per_origin_and_origins() -> None:
    lines = [f"h1 a.test 443 h3 a.test {1000 + i} {LATER} 0 0" for i in range(10)]
    lines += [f"h1 a.test 443 h3 a.test 1000 {LATER} 0 0"]  # a duplicate
    lines += [f"h1 o{i}.test 443 h3 o{i}.test 443 {LATER} 0 0" for i in range(5)]
    entries = parse_alt_svc_file(text(*lines), NOW, max_origins=3)
    assert [e.origin.host for e in entries] == ["o2.test", "o3.test", "o4.test"]
    entries = parse_alt_svc_file(text(*lines), NOW)
    assert [e.alternative.port for e in entries if e.origin.host == "a.test"] == [
        1000 + i for i in range(MAX_ALTERNATIVES)
    ]


def test_round_trip() -> None:
    entries = [
        FileEntry(ORIGIN, Alternative(None, 8443), NOW + 60, False),
        FileEntry(ORIGIN, Alternative("alt.test", 443), NOW + 7200, True),
        FileEntry(Origin("::1", 4443), Alternative("::2", 4433), NOW + 10, False),
    ]
    written = format_alt_svc_file(entries)
    assert written.splitlines() == [
        MAGIC,
        'h1 example.test 443 h3 example.test 8443 "20261126 06:01:00" 0 0',
        'h1 example.test 443 h3 alt.test 443 "20261126 08:00:00" 1 0',
        'h1 [::1] 4443 h3 [::2] 4433 "20261126 06:00:10" 0 0',
    ]
    assert parse_alt_svc_file(written, NOW) == entries
    assert parse_alt_svc_file(written, NOW + 61) == [entries[1]]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_memory_writes_and_reads_back_across_clocks() -> None:
    """Process 1 (monotonic clock 100) learns; process 2 (monotonic clock 5000) reads the
    file 10 s later: the same alternatives, with 10 s less to live."""
    first = UpgradeMemory(clock=Clock(100.0))
    changes: list[int] = []
    first.on_change = lambda: changes.append(1)
    first.learn(ORIGIN, ['h3=":8443"; ma=3600, h3="alt.test:443"; persist=1'])
    first.learn(Origin("b.test", 443), ["clear"])
    first.learn(Origin("c.test", 443), ["garbage ;;"])  # ignored: no change
    assert len(changes) == 2
    written = format_alt_svc_file(first.file_entries(NOW))
    second = UpgradeMemory(clock=Clock(5000.0))
    second.learn(Origin("new.test", 443), ['h3=":443"'])  # learnt before the file is read
    second.load_file_entries(parse_alt_svc_file(written, NOW + 10), NOW + 10)
    # what the process learnt itself stays the most recent
    snapshot = second.altsvc.snapshot(5000.0)
    assert [o.host for o, _ in snapshot] == ["example.test", "new.test"]
    assert snapshot[0][1][0].expires == pytest.approx(5000.0 + 3590.0)
    assert second.usable(ORIGIN) == (Alternative(None, 8443), Alternative("alt.test", 443))
    # an origin known already keeps what this process learnt
    second.learn(ORIGIN, ['h3=":9999"'])
    second.load_file_entries(parse_alt_svc_file(written, NOW + 10), NOW + 10)
    assert second.usable(ORIGIN) == (Alternative(None, 9999),)


def test_misdirected_removes_the_entry_and_keeps_it_out() -> None:
    clock = Clock(100.0)
    memory = UpgradeMemory(clock=clock)
    changes: list[int] = []
    memory.on_change = lambda: changes.append(1)
    memory.learn(ORIGIN, ['h3=":8443", h3=":9443"'])
    assert memory.misdirected(ORIGIN, Alternative(None, 8443)) == pytest.approx(300.0)
    assert memory.usable(ORIGIN) == (Alternative(None, 9443),)
    assert len(changes) == 2  # the file forgets it too
    # the retry's Alt-Svc names it again: still kept out during the back-off
    memory.learn(ORIGIN, ['h3=":8443"'])
    assert memory.usable(ORIGIN) == ()
    clock.now += 301
    assert memory.usable(ORIGIN) == (Alternative(None, 8443),)


@pytest.mark.parametrize(("status", "misdirected"), [(421, True), (200, False), (None, False)])
def test_is_misdirected(status: int | None, misdirected: bool) -> None:
    assert is_misdirected(status) is misdirected


def test_fallback_note_for_421() -> None:
    note = fallback_note(Alternative(None, 8443), ORIGIN, Exception("421"), 300.0, misdirected=True)
    assert note == (
        "http3: h3 alternative example.test:8443 answered 421 Misdirected Request; "
        "sent over TCP, alternative not tried for 300 s"
    )


@pytest.mark.parametrize(
    ("http3", "alt", "tickets", "expected"),
    [
        (True, None, None, (None, None)),
        (False, None, None, (None, None)),
        (True, "/tmp/a", None, ("/tmp/a", None)),
        (True, None, "t", (None, "t")),
        (True, os.path.join("d", "a"), "t", (os.path.join("d", "a"), "t")),
    ],
)
def test_check_files(http3: bool, alt: str | None, tickets: str | None, expected: object) -> None:
    assert check_files(http3, alt, tickets) == expected


@pytest.mark.parametrize(
    ("http3", "alt", "tickets", "message"),
    [
        (False, "/tmp/a", None, "alt_svc_file: '/tmp/a' (allowed: a file path only together"),
        (False, None, "/tmp/t", "ticket_file: '/tmp/t' (allowed: a file path only together"),
        (True, "", None, "alt_svc_file: '' (allowed: None (the default) or a file path)"),
        (True, None, 3, "ticket_file: 3 (allowed: None"),
        (True, "a\0b", None, "alt_svc_file: 'a\\x00b'"),
        (True, b"/tmp/a", None, "alt_svc_file: b'/tmp/a'"),
    ],
)
def test_check_files_errors(http3: bool, alt: object, tickets: object, message: str) -> None:
    with pytest.raises(OptionError, match="invalid value for " + _escape(message)):
        check_files(http3, alt, tickets)


def _escape(text: str) -> str:
    return re.escape(text)


def test_expiry_is_gmt() -> None:
    written = format_alt_svc_file([FileEntry(ORIGIN, Alternative(None, 1), 0.0, False)])
    assert written.splitlines()[1].endswith('"19700101 00:00:00" 0 0')


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=8), st.booleans())
def test_fuzzed_files_are_parsed_or_rejected(lines: list[str], magic: bool) -> None:
    """Whatever is in the file: entries, or :class:`FileRejected`; nothing else."""
    content = "\n".join(([MAGIC] if magic else []) + lines)
    try:
        entries = parse_alt_svc_file(content, NOW)
    except FileRejected:
        return
    assert all(NOW < e.expires <= NOW + MAX_MAX_AGE for e in entries)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["h1", "h2", "h3", "x"]),
            st.sampled_from(["a.test", "[::1]", "A.TEST", "1.2.3.4", "b_c.test"]),
            st.integers(0, 70000),
            st.sampled_from(["h3", "h2"]),
            st.integers(0, 70000),
            st.integers(0, 2**34),
            st.sampled_from(["0", "1"]),
        ),
        max_size=10,
    )
)
def test_fuzzed_lines(rows: list[tuple[str, str, int, str, int, int, str]]) -> None:
    lines = [
        f"{a} {h} {p} {b} {h} {q} "
        f'"{time.strftime("%Y%m%d %H:%M:%S", time.gmtime(min(t, 253402300799)))}" {z} 0'
        for a, h, p, b, q, t, z in rows
    ]
    try:
        entries = parse_alt_svc_file(text(*lines), NOW)
    except FileRejected:
        return
    assert len(entries) <= len(rows)
    assert parse_alt_svc_file(format_alt_svc_file(entries), NOW) == [
        e._replace(expires=float(int(e.expires))) for e in entries
    ]
