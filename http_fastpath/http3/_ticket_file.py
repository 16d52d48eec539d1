"""The session ticket file (``ticket_file=``, ``HTTP_FASTPATH_TICKET_FILE``): its format.

Pure: text in, tickets out, and back; the wall-clock time is passed in. The file I/O is
:mod:`._persist` (0600, atomic writes; a file others can read is refused).

A ticket is a secret: with it, anyone can resume the TLS session and send 0-RTT data as
this client. So tickets are only ever written when the user names a file for them.

JSON, one object: ``{"format": FORMAT, "tickets": [...]}``; each ticket holds its key
(origin, alternative, trust settings: :class:`._h3._resumption.TicketKey`) and aioquic's
``SessionTicket`` fields, bytes in base64, times in seconds since the epoch. Expired
tickets are dropped; anything malformed makes the whole file ignored
(:class:`~http_fastpath._core.altsvc_file.FileRejected`).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Iterable
from typing import Any, Final

from aioquic.tls import CipherSuite, SessionTicket

from .._core.altsvc_file import FileRejected
from ._h3._resumption import MAX_KEYS, MAX_LIFETIME, PER_KEY, TicketKey

__all__ = ["FORMAT", "MAX_FILE_BYTES", "format_ticket_file", "parse_ticket_file"]

FORMAT: Final = "http_fastpath session tickets v1"
#: A larger file is not read (a ticket is a few hundred bytes; 1024 of them fit).
MAX_FILE_BYTES: Final = 2 * 1024 * 1024
_MAX_TICKETS: Final = MAX_KEYS * PER_KEY
_UTC = datetime.timezone.utc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ticket_json(key: TicketKey, ticket: SessionTicket) -> dict[str, Any]:
    return {
        "key": list(key),
        "age_add": ticket.age_add,
        "cipher_suite": int(ticket.cipher_suite),
        "not_valid_after": ticket.not_valid_after.timestamp(),
        "not_valid_before": ticket.not_valid_before.timestamp(),
        "resumption_secret": _b64(ticket.resumption_secret),
        "server_name": ticket.server_name,
        "ticket": _b64(ticket.ticket),
        "max_early_data_size": ticket.max_early_data_size,
        "other_extensions": [[kind, _b64(data)] for kind, data in ticket.other_extensions],
    }


def format_ticket_file(tickets: Iterable[tuple[TicketKey, SessionTicket]]) -> str:
    """The file's text for ``tickets`` (oldest first, as the store's snapshot gives them)."""
    body = {"format": FORMAT, "tickets": [_ticket_json(k, t) for k, t in tickets]}
    return json.dumps(body, separators=(",", ":")) + "\n"


def _int(value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FileRejected(f"bad number {value!r}")
    return value


def _str(value: object, limit: int = 255) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise FileRejected("bad text")
    return value


def _bytes(value: object) -> bytes:
    try:
        return base64.b64decode(_str(value, 8192), validate=True)
    except (binascii.Error, ValueError):
        raise FileRejected("bad base64") from None


def _time(value: object) -> datetime.datetime:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 2**33:
        raise FileRejected(f"bad time {value!r}")
    return datetime.datetime.fromtimestamp(value, _UTC)


def _key(value: object) -> TicketKey:
    if not isinstance(value, list) or len(value) != 5:
        raise FileRejected("bad key")
    host, port, alt_host, alt_port, trust = value
    return TicketKey(
        _str(host), _int(port, 1, 65535), _str(alt_host), _int(alt_port, 1, 65535), _str(trust)
    )


def _ticket(item: object) -> tuple[TicketKey, SessionTicket]:
    if not isinstance(item, dict):
        raise FileRejected("a ticket is not an object")
    try:
        suite = CipherSuite(_int(item["cipher_suite"], 0, 0xFFFF))
        early = item["max_early_data_size"]
        extensions = item["other_extensions"]
        if not isinstance(extensions, list) or len(extensions) > 16:
            raise FileRejected("bad extensions")
        ticket = SessionTicket(
            age_add=_int(item["age_add"], 0, 2**32 - 1),
            cipher_suite=suite,
            not_valid_after=_time(item["not_valid_after"]),
            not_valid_before=_time(item["not_valid_before"]),
            resumption_secret=_bytes(item["resumption_secret"]),
            server_name=_str(item["server_name"]),
            ticket=_bytes(item["ticket"]),
            max_early_data_size=None if early is None else _int(early, 0, 2**32 - 1),
            other_extensions=[(_int(k, 0, 0xFFFF), _bytes(d)) for k, d in extensions],
        )
        return _key(item["key"]), ticket
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FileRejected):
            raise
        raise FileRejected(f"bad ticket ({type(exc).__name__})") from None


def parse_ticket_file(text: str, now: float) -> list[tuple[TicketKey, SessionTicket, float]]:
    """The unexpired tickets of a file with what is left of each (seconds), oldest first.

    Raises :class:`FileRejected` when the text is not ours, too long or malformed.
    """
    if len(text) > MAX_FILE_BYTES:
        raise FileRejected(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        body = json.loads(text)
    except ValueError:
        raise FileRejected("not JSON") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise FileRejected("not an http_fastpath session ticket file")
    items = body.get("tickets")
    if not isinstance(items, list):
        raise FileRejected("no ticket list")
    out = []
    for item in items[-_MAX_TICKETS:]:
        key, ticket = _ticket(item)
        left = min(ticket.not_valid_after.timestamp() - now, MAX_LIFETIME)
        if left > 0:
            out.append((key, ticket, left))
    return out
