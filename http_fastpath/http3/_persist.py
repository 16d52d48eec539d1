"""EXPERIMENTAL: the files that keep the Alt-Svc upgrade's memory across processes.

The I/O shell of ``alt_svc_file=`` / ``ticket_file=`` (and ``HTTP_FASTPATH_ALTSVC_FILE`` /
``HTTP_FASTPATH_TICKET_FILE``); the formats are pure (:mod:`.._core.altsvc_file`,
:mod:`._ticket_file`). One memory per file and process: every adapter or transport naming
the same file shares :func:`memory_for` / :func:`tickets_for` of it, so their writes never
undo each other.

* read once, when the file is first named; a missing or empty file is normal;
* written on change (at most once per :data:`WRITE_INTERVAL` seconds), then when an
  adapter or transport closes and at interpreter exit: a temporary file in the same
  directory, created 0600, ``fsync``, then ``os.replace`` (readers never see half a file).
  The writes are small and synchronous (under asyncio and trio too);
* a file that cannot be read, is too large, is not ours, or is malformed is ignored with
  one WARNING on the ``http_fastpath.http3`` logger; a file that is not ours is never
  overwritten. A failed write is one WARNING too. Nothing here raises into a request:
  wrong or missing knowledge only means TCP first.
* the ticket file must be a regular file owned by this user and readable by nobody else
  (as ssh does with keys), and is never followed through a symbolic link.
"""

from __future__ import annotations

import atexit
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Final

from .._core.altsvc_file import (
    MAGIC,
    FileRejected,
    format_alt_svc_file,
    parse_alt_svc_file,
)
from .._core.altsvc_file import MAX_FILE_BYTES as ALTSVC_MAX_BYTES
from .._core.upgrade import UpgradeMemory
from ._h3._resumption import TicketStore
from ._ticket_file import FORMAT, format_ticket_file, parse_ticket_file
from ._ticket_file import MAX_FILE_BYTES as TICKETS_MAX_BYTES

__all__ = ["WRITE_INTERVAL", "flush_all", "kept", "memory_for", "tickets_for"]

#: Seconds between two writes of one file while requests change it.
WRITE_INTERVAL: Final = 1.0

logger = logging.getLogger("http_fastpath.http3")


class KeptFile:
    """One file: read it once, write it atomically, warn once."""

    def __init__(
        self, path: str, what: str, *, secret: bool, max_bytes: int, dump: Callable[[], str]
    ) -> None:
        self.path = path
        self.what = what
        self.secret = secret
        self.max_bytes = max_bytes
        self.dump = dump
        self.writable = True
        self._dirty = False
        self._last = float("-inf")
        self._warned = False
        self._lock = threading.Lock()

    def warn(self, problem: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("%s %s: %s", self.what, self.path, problem)

    def refuse(self, problem: str) -> None:
        """Ignore the file and never write it (it may be something else)."""
        self.writable = False
        self.warn(f"{problem}; ignored and left alone (remove it to start afresh)")

    def read(self) -> str | None:
        """The file's text; None when missing, or refused with one warning."""
        flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NOFOLLOW if self.secret else 0)
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.refuse(f"cannot be read ({exc.strerror or exc})")
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self.refuse("not a regular file")
                return None
            if self.secret and (st.st_uid != os.geteuid() or st.st_mode & 0o077):
                self.refuse("owned by another user or readable by others (needs 0600)")
                return None
            if st.st_size > self.max_bytes:
                self.refuse(f"larger than {self.max_bytes} bytes")
                return None
            data = os.read(fd, self.max_bytes + 1)
        except OSError as exc:
            self.refuse(f"cannot be read ({exc.strerror or exc})")
            return None
        finally:
            os.close(fd)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.refuse("not text")
            return None

    def changed(self) -> None:
        """Something to write: now, unless the last write was under the interval ago."""
        with self._lock:
            self._dirty = True
            if time.monotonic() - self._last >= WRITE_INTERVAL:
                self._write()

    def flush(self) -> None:
        with self._lock:
            if self._dirty:
                self._write()

    def _write(self) -> None:
        self._dirty = False
        self._last = time.monotonic()
        if not self.writable:
            return
        # Defensive: called from a request; whatever goes wrong here is a warning, never
        # the request's error (wrong or missing knowledge only means TCP first).
        try:
            text = self.dump()
            directory, name = os.path.split(self.path)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
        except Exception as exc:
            self.warn(f"cannot be written ({_why(exc)})")
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                os.fchmod(out.fileno(), 0o600)
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except Exception as exc:
            self.warn(f"cannot be written ({_why(exc)})")
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _why(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or f"{type(exc).__name__}: {exc}"


_lock = threading.Lock()
_memories: dict[str, UpgradeMemory] = {}
_stores: dict[str, TicketStore] = {}
_files: list[KeptFile] = []


def _keep(kept: KeptFile) -> None:
    if not _files:
        atexit.register(flush_all)
    _files.append(kept)


def memory_for(path: str | os.PathLike[str]) -> UpgradeMemory:
    """The process's Alt-Svc memory kept in ``path`` (read now, the first time)."""
    key = os.path.realpath(os.fspath(path))  # a link is written through, not replaced
    with _lock:
        memory = _memories.get(key)
        if memory is not None:
            return memory
        memory = UpgradeMemory()
        kept = KeptFile(
            key,
            "alt-svc cache",
            secret=False,
            max_bytes=ALTSVC_MAX_BYTES,
            dump=lambda: format_alt_svc_file(memory.file_entries(time.time())),
        )
        text = kept.read()
        if text:  # empty: as missing (a crash between create and write leaves one)
            try:
                memory.load_file_entries(parse_alt_svc_file(text, time.time()), time.time())
            except FileRejected as exc:
                if text.startswith(MAGIC):
                    kept.warn(f"{exc}; ignored (rewritten on the next change)")
                else:
                    kept.refuse(str(exc))
        memory.on_change = kept.changed
        _memories[key] = memory
        _keep(kept)
        return memory


def tickets_for(path: str | os.PathLike[str]) -> TicketStore:
    """The process's session tickets kept in ``path`` (read now, the first time)."""
    key = os.path.abspath(os.fspath(path))
    with _lock:
        store = _stores.get(key)
        if store is not None:
            return store
        store = TicketStore()
        kept = KeptFile(
            key,
            "session ticket file",
            secret=True,
            max_bytes=TICKETS_MAX_BYTES,
            dump=lambda: format_ticket_file(store.snapshot()),
        )
        text = kept.read()
        if text:
            try:
                for ticket_key, ticket, left in parse_ticket_file(text, time.time()):
                    store.put(ticket_key, ticket, lifetime=left)
            except FileRejected as exc:
                if FORMAT in text[:100]:
                    kept.warn(f"{exc}; ignored (rewritten on the next change)")
                else:
                    kept.refuse(str(exc))
        store.on_change = kept.changed
        _stores[key] = store
        _keep(kept)
        return store


def flush_all() -> None:
    """Write every file with changes not written yet (at close and at exit)."""
    with _lock:
        files = list(_files)
    for kept in files:
        kept.flush()


def kept(
    alt_svc_file: str | None, ticket_file: str | None
) -> tuple[UpgradeMemory | None, TicketStore | None]:
    """The shells' ``memory`` and ``tickets`` for these files (None: the shell's own)."""
    memory = None if alt_svc_file is None else memory_for(alt_svc_file)
    return memory, None if ticket_file is None else tickets_for(ticket_file)
