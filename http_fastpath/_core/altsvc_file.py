"""The Alt-Svc cache file (``alt_svc_file=``, ``HTTP_FASTPATH_ALTSVC_FILE``): its format.

Pure: text in, entries out, and back; the wall-clock time is passed in. The file I/O
(read once, atomic writes, 0600) is :mod:`http_fastpath.http3._persist`.

One line per alternative, curl's nine fields (https://curl.se/docs/alt-svc.html)::

    h1 example.com 443 h3 alt.example.com 8443 "20261127 06:18:37" 0 0

source ALPN (written ``h1``: the upgrade does not track it; ignored when read), origin
host and port, destination ALPN (``h3``: other lines are skipped), destination host and
port, expiry in GMT, ``persist`` (0 or 1), priority (unused). IPv6 hosts are in brackets.
The first line is :data:`MAGIC`: a file without it is not ours and is neither read nor
written (it may be something else the user pointed at by mistake).

What is read is checked as the ``Alt-Svc`` parser checks a header: hosts and ports, at
most :data:`.altsvc.MAX_ALTERNATIVES` per origin, expiry at most
:data:`.altsvc.MAX_MAX_AGE` ahead, expired lines dropped. One malformed line makes the
whole file ignored (:class:`FileRejected`): a damaged file teaches nothing.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable
from typing import Final, NamedTuple

from .altsvc import MAX_ALTERNATIVES, MAX_MAX_AGE, Alternative, Origin, parse_authority

__all__ = [
    "MAGIC",
    "MAX_FILE_BYTES",
    "FileEntry",
    "FileRejected",
    "format_alt_svc_file",
    "parse_alt_svc_file",
]

#: The first line of every file we write.
MAGIC: Final = "# http_fastpath alt-svc cache v1 (curl's format: https://curl.se/docs/alt-svc.html)"
#: A larger file is not read (512 origins x 4 alternatives is about 160 kB).
MAX_FILE_BYTES: Final = 256 * 1024

_LINE: Final = re.compile(
    r"(?P<src_alpn>[a-z0-9-]{1,16}) (?P<host>\S{1,257}) (?P<port>[0-9]{1,5}) "
    r"(?P<alpn>[a-z0-9-]{1,16}) (?P<alt_host>\S{1,257}) (?P<alt_port>[0-9]{1,5}) "
    r'"(?P<date>[0-9]{8} [0-9]{2}:[0-9]{2}:[0-9]{2})" (?P<persist>[01]) (?P<prio>[0-9]{1,10})'
)
_DATE: Final = "%Y%m%d %H:%M:%S"


class FileRejected(ValueError):
    """The file is not a valid Alt-Svc cache of ours; the message says why."""


class FileEntry(NamedTuple):
    """One line: ``expires`` is wall-clock time (seconds since the epoch)."""

    origin: Origin
    alternative: Alternative
    expires: float
    persist: bool


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def format_alt_svc_file(entries: Iterable[FileEntry]) -> str:
    """The file's text: :data:`MAGIC`, then one line per entry."""
    lines = [MAGIC]
    for entry in entries:
        origin = entry.origin
        alt_host, alt_port = entry.alternative.destination(origin)
        stamp = time.strftime(_DATE, time.gmtime(int(entry.expires)))
        lines.append(
            f"h1 {_host_text(origin.host)} {origin.port} h3 {_host_text(alt_host)} {alt_port} "
            f'"{stamp}" {int(entry.persist)} 0'
        )
    return "\n".join(lines) + "\n"


def _entry(line: str, now: float) -> FileEntry | None:
    match = _LINE.fullmatch(line)
    if match is None:
        raise FileRejected(f"malformed line {line[:80]!r}")
    origin_alt = parse_authority(f"{match['host']}:{match['port']}")
    alternative = parse_authority(f"{match['alt_host']}:{match['alt_port']}")
    if origin_alt is None or origin_alt.host is None or alternative is None:
        raise FileRejected(f"bad host or port in {line[:80]!r}")
    try:
        expires = float(calendar.timegm(time.strptime(match["date"], _DATE)))
    except ValueError:
        raise FileRejected(f"bad date in {line[:80]!r}") from None
    if match["alpn"] != "h3" or expires <= now:
        return None
    origin = Origin(origin_alt.host, origin_alt.port)
    if alternative.host == origin.host:
        alternative = Alternative(None, alternative.port)
    return FileEntry(origin, alternative, min(expires, now + MAX_MAX_AGE), match["persist"] == "1")


def parse_alt_svc_file(text: str, now: float, *, max_origins: int = 512) -> list[FileEntry]:
    """The unexpired ``h3`` entries of a file, in its order (at most ``max_origins``
    origins, :data:`.altsvc.MAX_ALTERNATIVES` each, duplicates dropped).

    Raises :class:`FileRejected` when the text is not ours (no :data:`MAGIC` first line),
    too long, or has a malformed line.
    """
    if len(text) > MAX_FILE_BYTES:
        raise FileRejected(f"larger than {MAX_FILE_BYTES} bytes")
    lines = text.split("\n")
    if lines[0].rstrip("\r") != MAGIC:
        raise FileRejected("not an http_fastpath alt-svc cache (first line)")
    found: dict[Origin, list[FileEntry]] = {}
    for raw in lines[1:]:
        line = raw.rstrip("\r").strip(" \t")
        if not line or line.startswith("#"):
            continue
        entry = _entry(line, now)
        if entry is None:
            continue
        kept = found.setdefault(entry.origin, [])
        if len(kept) < MAX_ALTERNATIVES and all(e.alternative != entry.alternative for e in kept):
            kept.append(entry)
    origins = list(found)[-max_origins:]
    return [entry for origin in origins for entry in found[origin]]
