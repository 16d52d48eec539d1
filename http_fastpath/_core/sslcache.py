"""Client ``SSLContext``\\ s shared process-wide: one per set of TLS settings, built once.

Loading a CA bundle costs milliseconds of CPU (about 28 ms for a system-size bundle on a
small VM), and stock clients pay it again and again: urllib3 builds a context for every
new HTTPS connection (with requests, ``verify=True`` means certifi's bundle and
``verify=<path>`` that file), httpx one per client. Here a context is built the first
time a set of settings is seen and handed out again for the same settings.

- **The key is every input.** :func:`urllib3_key` and :func:`httpx_key` are pure: they
  turn the settings into a tuple, and files into ``(path, inode, size, mtime_ns)``
  stamps (:func:`file_stamp`), so a CA file, client certificate or key that changes on
  disk gives a new key, hence a new context. A CA *directory* is stamped by its own
  inode and mtime (certificates added, removed or re-linked are seen at once) and by the
  stamps of its entries, re-read at most every :data:`DIR_RESCAN` seconds (a certificate
  rewritten in place is seen within that time, without a ``stat`` per entry for every
  connection). The environment variables the libraries read
  (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, ``SSLKEYLOGFILE``) are part of the key too.
- **Built by the libraries' own code**, with the same calls in the same order (httpx's
  ``create_ssl_context``; urllib3's ``create_urllib3_context`` and the loading steps of
  its ``ssl_wrap_socket``), so verification is the stock one.
- **Never shared across differing settings, never changed once shared.** A context is
  complete (ALPN included: it is part of the key) before it is stored, and no fastpath
  code changes it afterwards; httpcore, which sets ALPN on its context for every
  connection, gets an :class:`AlpnFixed` wrapper, so that call is a no-op. It stays a
  plain ``ssl.SSLContext`` (anyio and others test for exactly that type).
- **Never the caller's own.** A context passed in (``verify=<SSLContext>``,
  ``ssl_context=``) is used as given; settings a key cannot describe (a
  ``truststore``/pyOpenSSL context class, urllib3's deprecated ``ssl_version``) are not
  cached either.
- **Bounded**: the :data:`MAX_ENTRIES` most recently used contexts are kept.
"""

from __future__ import annotations

import os
import ssl
import stat as _stat
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Final

__all__ = [
    "CACHE",
    "MAX_ENTRIES",
    "AlpnFixed",
    "SSLContextCache",
    "file_stamp",
    "httpx_key",
    "unwrap",
    "urllib3_key",
]

#: Contexts kept at most (least recently used dropped first).
MAX_ENTRIES: Final = 32

#: Seconds between two reads of a CA directory's entries (see :func:`file_stamp`).
DIR_RESCAN: Final = 1.0

#: Entries of a CA directory stamped at most (past this, the directory's own stamp only).
DIR_MAX_ENTRIES: Final = 4096

Stamp = tuple[str, int, int, int] | tuple[str, int, int, tuple[Any, ...]] | tuple[str, None]
StampFn = Callable[[str], Stamp]

#: Environment variables that change what a client context loads.
ENV_KEYS: Final = ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE")


def file_stamp(path: str) -> Stamp:
    """``(path, inode, size, mtime_ns)`` of ``path`` (``(path, None)`` when it is missing).

    A directory: ``(path, inode, mtime_ns, entries)``, ``entries`` being the names and
    stamps of the files in it (symbolic links followed, as OpenSSL does), as read at most
    :data:`DIR_RESCAN` seconds ago.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return (path, None)
    if _stat.S_ISDIR(st.st_mode):
        return (path, st.st_ino, st.st_mtime_ns, _DIRS.entries(path, st, time.monotonic()))
    return (path, st.st_ino, st.st_size, st.st_mtime_ns)


def _entries(path: str) -> tuple[Any, ...]:
    """The ``(name, inode, size, mtime_ns)`` of the files in directory ``path``, sorted."""
    out: list[Any] = []
    try:
        with os.scandir(path) as scan:
            for entry in scan:
                if len(out) >= DIR_MAX_ENTRIES:
                    break
                try:
                    st = entry.stat()  # follows links: c_rehash's <hash>.0 -> cert.pem
                except OSError:
                    out.append((entry.name, None))
                    continue
                out.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(out, key=lambda e: e[0]))


class _DirScans:
    """The last read of each CA directory's entries, re-read when older than DIR_RESCAN
    or when the directory itself changed (bounded: a few directories in practice)."""

    def __init__(self, max_dirs: int = 64) -> None:
        self._scans: OrderedDict[str, tuple[int, int, float, tuple[Any, ...]]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_dirs

    def entries(self, path: str, st: os.stat_result, now: float) -> tuple[Any, ...]:
        with self._lock:
            found = self._scans.get(path)
        if (
            found is not None
            and found[0] == st.st_ino
            and found[1] == st.st_mtime_ns
            and now - found[2] < DIR_RESCAN
        ):
            return found[3]
        entries = _entries(path)
        with self._lock:
            self._scans[path] = (st.st_ino, st.st_mtime_ns, now, entries)
            self._scans.move_to_end(path)
            while len(self._scans) > self._max:
                self._scans.popitem(last=False)
        return entries

    def clear(self) -> None:
        with self._lock:
            self._scans.clear()


_DIRS = _DirScans()


def _stamped(path: Any, stamp: StampFn) -> Any:
    if path is None or not isinstance(path, str | os.PathLike):
        return path
    return stamp(os.fspath(path))


def _environment(environ: Mapping[str, str], stamp: StampFn) -> tuple[Any, ...]:
    """The variables of :data:`ENV_KEYS`, and the files and directories they name."""
    if sys.flags.ignore_environment:
        return ()
    out: list[Any] = []
    for name in ENV_KEYS:
        value = environ.get(name)
        out.append((name, value, stamp(value) if value and name != "SSLKEYLOGFILE" else None))
    return tuple(out)


def urllib3_key(
    *,
    cert_reqs: int,
    ssl_minimum_version: Any,
    ssl_maximum_version: Any,
    ca_certs: str | None,
    ca_cert_dir: str | None,
    ca_cert_data: str | bytes | None,
    cert_file: str | None,
    key_file: str | None,
    key_password: str | None,
    check_hostname_off: bool,
    alpn: Sequence[str],
    default_paths: Sequence[str],
    environ: Mapping[str, str],
    stamp: StampFn = file_stamp,
) -> Hashable:
    """The key of the context urllib3 builds for these connection settings.

    ``check_hostname_off``: urllib3 turns ``check_hostname`` off (a fingerprint or a
    hostname to assert). ``default_paths``: the files and directories
    ``load_default_certs`` may read (stamped only when no CA is given).
    """
    no_ca = not ca_certs and not ca_cert_dir and not ca_cert_data
    return (
        "urllib3",
        int(cert_reqs),
        ssl_minimum_version,
        ssl_maximum_version,
        _stamped(ca_certs, stamp),
        _stamped(ca_cert_dir, stamp),
        ca_cert_data,
        _stamped(cert_file, stamp),
        _stamped(key_file, stamp),
        key_password,
        bool(check_hostname_off),
        tuple(alpn),
        tuple(stamp(p) for p in default_paths) if no_ca else (),
        _environment(environ, stamp),
    )


def httpx_key(
    *,
    stack: str,
    verify: Any,
    cert: Any,
    trust_env: bool,
    alpn: Sequence[str],
    default_paths: Sequence[str],
    environ: Mapping[str, str],
    stamp: StampFn = file_stamp,
) -> Hashable | None:
    """The key of the context ``create_ssl_context(verify, cert, trust_env)`` builds.

    None when it must not be cached: the caller's own context (``verify=<SSLContext>``)
    or a value the key cannot describe. ``default_paths``: the files and directories the
    stack reads for ``verify=True`` (stamped only then).
    """
    if verify is True:
        verify_key: Any = ("default", tuple(stamp(p) for p in default_paths), bool(trust_env))
    elif verify is False:
        verify_key = False
    elif isinstance(verify, str):
        verify_key = ("path", stamp(verify))
    else:
        return None  # the caller's SSLContext (or something else): used as given
    if cert is None or cert == "" or cert == ():
        cert_key: Any = None
    elif isinstance(cert, str):
        cert_key = (stamp(cert),)
    elif isinstance(cert, tuple) and all(isinstance(c, str | None) for c in cert):
        # (certfile, keyfile[, password]): files stamped, the password as given
        cert_key = tuple(
            stamp(c) if i < 2 and isinstance(c, str) else c for i, c in enumerate(cert)
        )
    else:
        return None
    return (
        "httpx",
        stack,
        verify_key,
        cert_key,
        tuple(alpn),
        _environment(environ, stamp),
    )


class AlpnFixed:
    """What httpcore gets instead of a shared context: ALPN never set on it again.

    httpcore calls ``set_alpn_protocols`` on its context for every connection (which
    frees and re-allocates OpenSSL's copy: a race with another thread's handshake
    reading it). Here that call picks the shared context built with that list (ALPN is
    part of the key), so the same list again is a dictionary lookup and no context is
    ever changed. Every other attribute is the current context's; the fastpath network
    backends unwrap it (:func:`unwrap`) so TLS runs on the ``ssl.SSLContext`` itself.
    """

    __slots__ = ("_fastpath_alpn", "_fastpath_context", "_fastpath_get")

    def __init__(self, get: Callable[[list[str]], ssl.SSLContext], alpn: Sequence[str]) -> None:
        self._fastpath_get = get
        self._fastpath_alpn = list(alpn)
        self._fastpath_context = get(self._fastpath_alpn)

    def set_alpn_protocols(self, alpn_protocols: Any) -> None:
        alpn = list(alpn_protocols)
        if alpn != self._fastpath_alpn:  # (the first connection, if the guess was wrong)
            self._fastpath_context = self._fastpath_get(alpn)
            self._fastpath_alpn = alpn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fastpath_context, name)


def unwrap(context: Any) -> Any:
    """The ``ssl.SSLContext`` behind an :class:`AlpnFixed` (anything else as it is)."""
    return context._fastpath_context if type(context) is AlpnFixed else context


class SSLContextCache:
    """A bounded, thread-safe LRU of fully built client contexts by key."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, ssl.SSLContext] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        #: contexts built (a miss) and handed out again (a hit), for tests and benchmarks
        self.built = 0
        self.hits = 0

    def get(self, key: Hashable, build: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        """The context for ``key``, built by ``build()`` on a miss.

        ``build()`` runs outside the lock (loading a bundle takes milliseconds) and must
        return a context that nothing will change any more; when two threads build the
        same key at once, both get the one stored first. A ``build()`` that raises
        stores nothing. A context that is not a plain ``ssl.SSLContext`` (truststore,
        pyOpenSSL) is returned as built and not stored.
        """
        found = self.lookup(key)
        if found is not None:
            return found
        context = build()
        if type(context) is not ssl.SSLContext:
            return context
        entries = self._entries
        with self._lock:
            stored = entries.setdefault(key, context)
            entries.move_to_end(key)
            if stored is context:
                self.built += 1
            while len(entries) > self.max_entries:
                entries.popitem(last=False)
        return stored

    def lookup(self, key: Hashable) -> ssl.SSLContext | None:
        """The context stored for ``key`` (a hit), or None."""
        entries = self._entries
        with self._lock:
            found = entries.get(key)
            if found is not None:
                entries.move_to_end(key)
                self.hits += 1
            return found

    def clear(self) -> None:
        """Forget every context and zero the counters (tests use it)."""
        with self._lock:
            self._entries.clear()
            self.built = self.hits = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


#: The process-wide cache every fastpath connection and transport uses.
CACHE: Final = SSLContextCache()
