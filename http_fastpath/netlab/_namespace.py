"""The lab's network namespaces: anonymous, held by file descriptors (see :mod:`._lab`).

A :class:`Namespace` is entered by a thread (``setns``), runs code or commands inside,
reads and writes its sysctls and counters, and is deleted by the kernel when its last
file descriptor closes. Also here: the TUN devices that join the lab's two namespaces and
:func:`namespace_in_use` (tests check that a closed lab leaves nothing behind).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .._core.exceptions import FastpathError

__all__ = ["LabError", "Namespace", "counters_delta", "namespace_in_use"]

CLONE_NEWNET = 0x40000000
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000

_T = TypeVar("_T")


class LabError(FastpathError, RuntimeError):
    """The lab cannot be built here (not Linux, no privilege, no TUN device, ...)."""


_libc: ctypes.CDLL | None = None


def _syscall(name: str, *args: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if getattr(_libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _own_ns_fd() -> int:
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _in_new_thread(fn: Callable[[], _T]) -> _T:
    """Run ``fn`` in a short-lived thread (whose namespace changes do not leak) and return."""
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller
            error.append(exc)

    thread = threading.Thread(target=target, name="netlab-setup", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


class Namespace:
    """One of the lab's network namespaces, held open by a file descriptor."""

    def __init__(self, role: str, fd: int) -> None:
        self.role = role
        self.fd = fd
        self.inode = os.fstat(fd).st_ino

    @property
    def path(self) -> str:
        """A path for ``nsenter --net=PATH`` while the lab is open."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Move the *calling thread* into this namespace for the block.

        Sockets created (and threads or processes started) inside the block belong to
        the namespace for their whole life; the thread moves back afterwards.
        """
        if self.fd < 0:
            raise LabError(f"the lab's {self.role} namespace is closed")
        back = _own_ns_fd()
        try:
            _syscall("setns", self.fd, CLONE_NEWNET)
            try:
                yield
            finally:
                _syscall("setns", back, CLONE_NEWNET)
        finally:
            os.close(back)

    def run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Call ``fn`` in a fresh thread inside this namespace and return its result."""

        def inside() -> _T:
            with self.entered():
                return fn(*args, **kwargs)

        return _in_new_thread(inside)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process inside this namespace (``subprocess.Popen`` arguments)."""
        return self.run(subprocess.Popen, list(argv), **kwargs)

    def ip(self, *commands: str) -> None:
        """Run ``ip`` commands (``ip -batch``) inside this namespace."""
        proc = self.run(
            subprocess.run,
            ["ip", "-batch", "-"],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            timeout=20,
        )
        if proc.returncode != 0:
            raise LabError(f"ip failed in the {self.role} namespace: {proc.stderr.strip()}")

    def write_sysctl(self, name: str, value: str) -> None:
        def write() -> None:
            Path("/proc/sys", *name.split(".")).write_text(value)

        self.run(write)

    def netstat(self) -> dict[str, int]:
        """The namespace's ``/proc/net/netstat`` and ``snmp`` counters (``TcpExt.X`` keys)."""
        return self.run(_read_netstat)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _read_netstat() -> dict[str, int]:
    out: dict[str, int] = {}
    for name in ("netstat", "snmp"):
        lines = Path(f"/proc/thread-self/net/{name}").read_text().splitlines()
        for head, values in zip(lines[::2], lines[1::2], strict=True):
            prefix, _, keys = head.partition(":")
            for key, value in zip(keys.split(), values.partition(":")[2].split(), strict=True):
                with contextlib.suppress(ValueError):
                    out[f"{prefix}.{key}"] = int(value)
    return out


def counters_delta(
    before: dict[str, int], after: dict[str, int], keys: Sequence[str] | None = None
) -> dict[str, int]:
    """``after - before`` for ``keys`` (default: every counter that changed)."""
    names = keys if keys is not None else [k for k in after if after[k] != before.get(k, 0)]
    return {k: after.get(k, 0) - before.get(k, 0) for k in names}


def _new_namespace(role: str) -> Namespace:
    def create() -> Namespace:
        try:
            _syscall("unshare", CLONE_NEWNET)
        except OSError as exc:
            raise LabError(
                f"cannot create a network namespace ({exc.strerror}): the lab needs root, "
                "or a process that called http_fastpath.netlab.enter_private_netns() while "
                "it was still single-threaded (unprivileged user namespace)"
            ) from exc
        return Namespace(role, _own_ns_fd())

    return _in_new_thread(create)


def _open_tun(name: str) -> int:
    """Create TUN device ``name`` in the calling thread's namespace; return its fd."""
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise LabError(f"cannot open /dev/net/tun ({exc.strerror}): the lab needs TUN") from exc
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise LabError(f"cannot create TUN device {name} ({exc.strerror})") from exc
    return fd


def namespace_in_use(inode: int) -> bool:
    """Whether any process, thread or open file still refers to network namespace ``inode``."""
    target = f"net:[{inode}]"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for task in (proc / "task").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(task / "ns" / "net") == target:
                        return True
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return True
    return False
