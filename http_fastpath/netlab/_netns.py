"""Move this process into a private network namespace before any thread starts.

Root: ``unshare(CLONE_NEWNET)``. Otherwise: a user namespace plus a network namespace.
Inside it loopback is brought up and the TFO/MPTCP sysctls are set; the host's settings
are never touched (every sysctl write is refused unless the namespace really changed).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000

_state: dict[str, str | None] = {"reason": "namespace setup not attempted", "host_ns": None}


def _ns_id() -> str:
    return os.readlink("/proc/thread-self/ns/net")


def _unshare(flags: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        return ctypes.get_errno()
    return 0


def enter() -> str | None:
    """Enter a fresh netns; return None on success or the reason it is not possible.

    Call it from the main thread before any other thread exists: only the calling thread
    (and the threads and processes it starts afterwards) move to the new namespace.
    """
    if _state["reason"] is None:
        return None
    if not Path("/proc/thread-self/ns/net").exists():
        _state["reason"] = "no /proc/thread-self/ns/net: not Linux"
        return _state["reason"]
    before = _ns_id()
    uid, gid = os.getuid(), os.getgid()
    err = _unshare(CLONE_NEWNET)
    if err and uid != 0:
        err = _unshare(CLONE_NEWUSER | CLONE_NEWNET)
        if not err:
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
            Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    if err:
        _state["reason"] = f"cannot create a network namespace: {os.strerror(err)}"
        return _state["reason"]
    if _ns_id() == before:
        _state["reason"] = "unshare() returned but the network namespace did not change"
        return _state["reason"]
    _state["host_ns"] = before
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    set_sysctl("net.ipv4.tcp_fastopen", "3")
    if Path("/proc/sys/net/mptcp/enabled").exists():
        set_sysctl("net.mptcp.enabled", "1")
    _state["reason"] = None
    return None


def skip_reason() -> str | None:
    """None when the run is inside its own netns, else why not."""
    return _state["reason"]


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def get_sysctl(name: str) -> str:
    return _sysctl_path(name).read_text().strip()


def set_sysctl(name: str, value: str) -> None:
    """Write a sysctl of the private namespace (refused outside it)."""
    if _state["host_ns"] is None or _ns_id() == _state["host_ns"]:
        raise RuntimeError(f"refusing to write {name}: not inside the test's own namespace")
    _sysctl_path(name).write_text(value)


@contextlib.contextmanager
def sysctl(name: str, value: str) -> Iterator[None]:
    """Set a namespace sysctl for the duration of the block."""
    old = get_sysctl(name)
    set_sysctl(name, value)
    try:
        yield
    finally:
        set_sysctl(name, old)
