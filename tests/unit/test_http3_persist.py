"""The session ticket file's format and the files' I/O shell (a temporary directory, no
network): 0600, atomic writes, refusals with one warning, never an exception."""

from __future__ import annotations

import datetime
import json
import logging
import os
import stat
from pathlib import Path

import pytest
from aioquic import tls
from hypothesis import given, settings
from hypothesis import strategies as st

from http_fastpath._core.altsvc import Alternative, Origin
from http_fastpath._core.altsvc_file import MAGIC, FileRejected
from http_fastpath.http3 import _persist
from http_fastpath.http3._h3._resumption import TicketKey, TicketStore
from http_fastpath.http3._ticket_file import FORMAT, format_ticket_file, parse_ticket_file

KEY = TicketKey("example.test", 443, "127.0.0.1", 4433, "trust")
ORIGIN = Origin("example.test", 443)


def ticket(label: bytes = b"t", lifetime: float = 3600.0, ago: float = 0.0) -> tls.SessionTicket:
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=ago)
    return tls.SessionTicket(
        age_add=12345,
        cipher_suite=tls.CipherSuite.AES_128_GCM_SHA256,
        not_valid_after=start + datetime.timedelta(seconds=lifetime),
        not_valid_before=start,
        resumption_secret=b"s" * 32,
        server_name="example.test",
        ticket=label,
        max_early_data_size=0xFFFFFFFF,
        other_extensions=[(42, b"\x00\x01")],
    )


def _now() -> float:
    return datetime.datetime.now(datetime.timezone.utc).timestamp()


# -- the ticket file's format ------------------------------------------------------------------


def test_tickets_round_trip() -> None:
    tickets = [(KEY, ticket(b"a")), (KEY._replace(trust="other"), ticket(b"b", 600.0))]
    parsed = parse_ticket_file(format_ticket_file(tickets), _now())
    assert [(k, t) for k, t, _ in parsed] == tickets
    assert parsed[0][2] == pytest.approx(3600.0, abs=5) and parsed[1][2] == pytest.approx(
        600, abs=5
    )


def test_expired_tickets_are_dropped() -> None:
    written = format_ticket_file([(KEY, ticket(b"old", 60.0, ago=120.0)), (KEY, ticket(b"new"))])
    assert [t.ticket for _, t, _ in parse_ticket_file(written, _now())] == [b"new"]


def _mangled(**change: object) -> str:
    body = json.loads(format_ticket_file([(KEY, ticket())]))
    body["tickets"][0].update(change)
    return json.dumps(body)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        "[]",
        json.dumps({"format": "something else", "tickets": []}),
        json.dumps({"format": FORMAT}),
        json.dumps({"format": FORMAT, "tickets": [1]}),
        _mangled(key=["example.test", 443]),
        _mangled(key=["example.test", 0, "a", 1, "t"]),
        _mangled(ticket="not base64!"),
        _mangled(cipher_suite=1),  # no such suite
        _mangled(age_add=True),
        _mangled(age_add=-1),
        _mangled(not_valid_after="tomorrow"),
        _mangled(other_extensions=[[1]]),
        _mangled(server_name=["x"]),
        json.dumps({"format": FORMAT, "tickets": [{}]}),
        "x" * (3 * 1024 * 1024),
    ],
)
def test_ticket_file_rejected_whole(content: str) -> None:
    with pytest.raises(FileRejected):
        parse_ticket_file(content, _now())


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
_FIELDS = ["key", "age_add", "cipher_suite", "not_valid_after", "ticket", "other_extensions"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_FIELDS), _JSON)
def test_fuzzed_ticket_fields_are_parsed_or_rejected(field: str, value: object) -> None:
    """A ticket with any field replaced by any JSON value: parsed, or FileRejected."""
    try:
        parse_ticket_file(_mangled(**{field: value}), _now())
    except FileRejected:
        pass


def test_store_snapshot_order_and_notice() -> None:
    store = TicketStore()
    changes: list[int] = []
    store.on_change = lambda: changes.append(1)
    store.put(KEY, ticket(b"1"))
    store.put(KEY, ticket(b"2"))
    store.put(KEY._replace(port=8443), ticket(b"3"))
    assert [t.ticket for _, t in store.snapshot()] == [b"1", b"2", b"3"]
    rebuilt = TicketStore()
    for key, t in store.snapshot():
        rebuilt.put(key, t, lifetime=100.0)
    assert rebuilt.take(KEY).ticket == b"2"  # type: ignore[union-attr]
    assert store.take(KEY).ticket == b"2"  # type: ignore[union-attr]
    assert store.take(KEY._replace(port=1)) is None
    assert len(changes) == 4  # three stored, one taken (a miss is no change)
    rebuilt.put(KEY, ticket(b"x"), lifetime=0.0)  # nothing left of it: dropped
    assert rebuilt.count(KEY) == 1


# -- the I/O shell -----------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_alt_svc_file_written_0600_atomically_and_read_by_the_next_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "altsvc.txt"
    memory = _persist.memory_for(path)
    assert _persist.memory_for(str(path)) is memory  # one memory per file
    assert not path.exists()  # nothing learnt, nothing written
    umask = os.umask(0)  # whatever the umask, the file is 0600
    try:
        memory.learn(ORIGIN, ['h3=":4433"'])
    finally:
        os.umask(umask)
    assert _mode(path) == 0o600
    lines = path.read_text().splitlines()
    assert lines[0] == MAGIC and lines[1].startswith("h1 example.test 443 h3 example.test 4433 ")
    assert [p.name for p in tmp_path.iterdir()] == ["altsvc.txt"]  # no temporary file left
    # the next change within the interval waits for the flush (close, exit)
    memory.learn(Origin("b.test", 443), ['h3=":443"'])
    assert "b.test" not in path.read_text()
    _persist.flush_all()
    assert "b.test" in path.read_text()
    # "another process": a fresh registry reads what was written
    _persist._memories.clear()
    again = _persist.memory_for(path)
    assert again is not memory and again.usable(ORIGIN) == (Alternative(None, 4433),)


@pytest.mark.parametrize(
    ("content", "overwritten"),
    [
        (MAGIC + "\nh1 broken line\n", True),  # ours but damaged: rewritten on the next change
        ("#!/bin/sh\nimportant user data\n", False),  # not ours: left alone
        (MAGIC + "\n" + "#" * (300 * 1024), False),  # too large: left alone
        (b"\xff\xfe not text", False),
    ],
)
def test_bad_alt_svc_file_is_ignored_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str | bytes, overwritten: bool
) -> None:
    path = tmp_path / "altsvc.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="http_fastpath.http3"):
        memory = _persist.memory_for(path)
        memory.learn(ORIGIN, ['h3=":4433"'])
        memory.learn(Origin("b.test", 443), ['h3=":443"'])
        _persist.flush_all()
    assert len(caplog.records) == 1 and str(path) in caplog.records[0].getMessage()
    assert memory.usable(ORIGIN) == (Alternative(None, 4433),)  # learning goes on in memory
    assert (path.read_bytes() != before) is overwritten


@pytest.mark.parametrize("name", ["altsvc.txt", "tickets.json"])
def test_empty_file_is_as_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    path = tmp_path / name
    path.touch(mode=0o600)
    with caplog.at_level(logging.WARNING, logger="http_fastpath.http3"):
        if name == "altsvc.txt":
            _persist.memory_for(path).learn(ORIGIN, ['h3=":4433"'])
            assert path.read_text().startswith(MAGIC)
        else:
            _persist.tickets_for(path).put(KEY, ticket())
            assert json.loads(path.read_text())["format"] == FORMAT
    assert caplog.records == []


def test_symlinked_alt_svc_file_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    _persist.memory_for(link).learn(ORIGIN, ['h3=":4433"'])
    assert link.is_symlink() and real.read_text().startswith(MAGIC)


def test_unwritable_directory_is_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "missing-dir" / "altsvc.txt"
    with caplog.at_level(logging.WARNING, logger="http_fastpath.http3"):
        memory = _persist.memory_for(path)
        memory.learn(ORIGIN, ['h3=":4433"'])
        memory.learn(ORIGIN, ['h3=":4434"'])
        _persist.flush_all()
    assert len(caplog.records) == 1 and "cannot be written" in caplog.records[0].getMessage()


def test_ticket_file_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "tickets.json"
    store = _persist.tickets_for(path)
    store.put(KEY, ticket(b"secret"))
    assert _mode(path) == 0o600
    _persist._stores.clear()
    again = _persist.tickets_for(path)
    assert again.take(KEY).ticket == b"secret"  # type: ignore[union-attr]
    _persist.flush_all()  # taken: single use, gone from the file too
    assert json.loads(path.read_text())["tickets"] == []


@pytest.mark.parametrize("how", ["group-readable", "symlink"])
def test_exposed_ticket_file_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    real = tmp_path / "real.json"
    real.write_text(format_ticket_file([(KEY, ticket())]))
    real.chmod(0o640 if how == "group-readable" else 0o600)
    path = real
    if how == "symlink":
        path = tmp_path / "link.json"
        path.symlink_to(real)
    before = real.read_bytes()
    with caplog.at_level(logging.WARNING, logger="http_fastpath.http3"):
        store = _persist.tickets_for(path)
        store.put(KEY._replace(port=1), ticket(b"new"))
        _persist.flush_all()
    assert len(store) == 1 and store.count(KEY) == 0  # nothing read
    assert real.read_bytes() == before  # nor written
    assert len(caplog.records) == 1 and "left alone" in caplog.records[0].getMessage()


@pytest.fixture(autouse=True)
def _fresh_registry() -> None:
    _persist._memories.clear()
    _persist._stores.clear()
    _persist._files.clear()
