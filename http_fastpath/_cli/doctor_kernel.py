"""The kernel half of ``http-fastpath doctor``: TCP Fast Open, Multipath TCP and QUIC checks.

Reads sysctls and ``/proc/net/netstat`` of the current network namespace, probes sockets
through :func:`http_fastpath.probe` and asks ``ip mptcp`` for the path manager's limits and
endpoints. Every check that says "no" carries the command that enables it, and a
severity: ``missing`` only for what a client needs, ``optional`` for the rest.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

__all__ = ["SEVERITIES", "Check", "http3_checks", "mptcp_checks", "ok", "tfo_checks"]

_PROC_SYS: Final = Path("/proc/sys")
_NETSTAT: Final = Path("/proc/net/netstat")
_TFO_BITS: Final = (
    (0x1, "client: data may ride in the SYN of outgoing connections"),
    (0x2, "server: listeners that set TCP_FASTOPEN accept data in the SYN"),
    (0x4, "client without cookie: data is sent in the SYN even with no cookie cached"),
    (0x200, "server without cookie: data in the SYN is accepted with no cookie"),
    (0x400, "server default: every listener does TFO without setting TCP_FASTOPEN"),
)
_TFO_COUNTERS: Final = (
    "TCPFastOpenActive",
    "TCPFastOpenActiveFail",
    "TCPFastOpenPassive",
    "TCPFastOpenPassiveFail",
    "TCPFastOpenCookieReqd",
    "TCPFastOpenBlackhole",
)


#: ``status`` -> the default ``severity`` (a "no" is missing unless a check says otherwise)
SEVERITIES: Final = {"ok": "ok", "no": "missing", "warn": "warn", "info": "info"}


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of the report.

    ``status``: ok, no, warn or info (is the thing there?). ``severity``: does it matter
    for a client on this host? ok, ``missing`` (a client needs it), ``optional`` (not
    needed for a client: a server-side switch, a library you did not install, an
    opt-in), warn or info. By default it follows ``status``.
    """

    section: str
    name: str
    status: str
    detail: str
    enable: str | None = None
    severity: str = ""

    def __post_init__(self) -> None:
        if not self.severity:
            object.__setattr__(self, "severity", SEVERITIES[self.status])

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _sysctl(name: str) -> str | None:
    try:
        return (_PROC_SYS / name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def _sysctl_int(name: str) -> int | None:
    raw = _sysctl(name)
    try:
        return None if raw is None else int(raw.split()[0])
    except (ValueError, IndexError):
        return None


def _netstat_counters(prefix: str = "TcpExt") -> dict[str, int]:
    """``/proc/net/netstat`` counters of one group (``nstat -a`` shows the same)."""
    try:
        lines = _NETSTAT.read_text().splitlines()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        head, _, rest = names.partition(":")
        if head != prefix:
            continue
        for key, value in zip(rest.split(), values.partition(":")[2].split(), strict=False):
            try:
                out[key] = int(value)
            except ValueError:
                continue
    return out


# -- TCP Fast Open ---------------------------------------------------------------------


def tfo_checks() -> list[Check]:
    from http_fastpath import probe

    caps = probe(refresh=True)
    section = "TCP Fast Open"
    value = _sysctl_int("net.ipv4.tcp_fastopen")
    checks: list[Check] = []
    if value is None:
        checks.append(
            Check(
                section,
                "client",
                ok(caps.tfo_client.available),
                caps.tfo_client.detail,
                caps.tfo_client.enable,
            )
        )
        checks.append(
            Check(
                section,
                "server",
                "no",
                caps.tfo_server.detail,
                caps.tfo_server.enable,
                severity="optional",
            )
        )
        return checks
    prefix = f"net.ipv4.tcp_fastopen={value} (0x{value:x})"
    client_on = bool(value & 0x1) and caps.tfo_client.available
    checks.append(
        Check(
            section,
            "client",
            ok(client_on),
            f"{prefix}: bit 0x1 {'on' if value & 0x1 else 'off'} — "
            + (
                "data can ride in the SYN of outgoing connections"
                if client_on
                else "the kernel refuses TCP_FASTOPEN_CONNECT; connections use a plain SYN"
            ),
            None if client_on else f"sysctl -w net.ipv4.tcp_fastopen={value | 0x1}",
        )
    )
    server_on = bool(value & 0x2)
    checks.append(
        Check(
            section,
            "server",
            ok(server_on),
            f"bit 0x2 {'on' if server_on else 'off'} — "
            + (
                "local listeners that set TCP_FASTOPEN accept data in the SYN"
                if server_on
                else "local servers ignore data in the SYN (not needed for a client: only "
                "servers on this host use it)"
            ),
            None if server_on else f"sysctl -w net.ipv4.tcp_fastopen={value | 0x2}",
            severity="ok" if server_on else "optional",
        )
    )
    extra = [text for bit, text in _TFO_BITS[2:] if value & bit]
    if extra:
        checks.append(Check(section, "flags", "info", "; ".join(extra)))
    checks.append(_blackhole_check(section))
    counters = _netstat_counters()
    if counters:
        shown = " ".join(
            f"{k.removeprefix('TCPFastOpen')}={counters[k]}" for k in _TFO_COUNTERS if k in counters
        )
        checks.append(Check(section, "counters", "info", f"TcpExt TCPFastOpen*: {shown}"))
    return checks


def _blackhole_check(section: str) -> Check:
    timeout = _sysctl_int("net.ipv4.tcp_fastopen_blackhole_timeout_sec")
    hits = _netstat_counters().get("TCPFastOpenBlackhole", 0)
    if timeout is None:
        return Check(
            section, "blackhole", "info", "tcp_fastopen_blackhole_timeout_sec not readable"
        )
    if timeout == 0:
        detail = (
            "net.ipv4.tcp_fastopen_blackhole_timeout_sec=0: detection off, the kernel never "
            "pauses TFO on its own"
        )
    else:
        detail = (
            f"net.ipv4.tcp_fastopen_blackhole_timeout_sec={timeout}: after a suspected "
            f"middlebox drop of SYN data, active TFO pauses for {timeout}s (doubling on repeats)"
        )
    if hits:
        return Check(
            section,
            "blackhole",
            "warn",
            f"{detail}; {hits} blackhole(s) detected so far, TFO may be paused now",
            "sysctl -w net.ipv4.tcp_fastopen_blackhole_timeout_sec=0",
        )
    return Check(section, "blackhole", "info", detail)


# -- Multipath TCP ----------------------------------------------------------------------


def mptcp_checks(caps: Any = None) -> list[Check]:
    """``caps``: a :class:`http_fastpath.Capabilities` (default: this host's)."""
    if caps is None:
        from http_fastpath import probe

        caps = probe()
    section = "Multipath TCP"
    # Either socket option proves MPTCP in use (read_is_mptcp): with MPTCP on, one alone is
    # enough for a client and the other is optional; with neither, MPTCP works unproven.
    is_mptcp, info = caps.tcp_is_mptcp.available, caps.mptcp_info.available
    either = caps.mptcp.available and (is_mptcp or info)
    unproven = "warn" if caps.mptcp.available and not either else ""
    checks = [
        Check(section, "enabled", ok(caps.mptcp.available), caps.mptcp.detail, caps.mptcp.enable),
        Check(
            section,
            "TCP_IS_MPTCP",
            ok(is_mptcp),
            caps.tcp_is_mptcp.detail
            + " — tells whether a connection really uses MPTCP"
            + ("" if is_mptcp or not either else " (MPTCP_INFO tells it here)"),
            caps.tcp_is_mptcp.enable or (None if is_mptcp else caps.mptcp.enable),
            severity="optional" if not is_mptcp and either else unproven,
        ),
        Check(
            section,
            "MPTCP_INFO",
            ok(info),
            caps.mptcp_info.detail
            + ("" if info or not either else " (TCP_IS_MPTCP tells whether MPTCP is in use)"),
            caps.mptcp_info.enable or (None if info else caps.mptcp.enable),
            severity="optional" if not info and either else unproven,
        ),
    ]
    manager = _sysctl("net.mptcp.path_manager")
    if manager is None:
        pm_type = _sysctl_int("net.mptcp.pm_type")
        if pm_type is not None:
            manager = {0: "kernel", 1: "userspace"}.get(pm_type, str(pm_type))
    if manager is not None:
        note = (
            "in-kernel path manager: limits and endpoints below decide extra subflows"
            if manager in ("kernel", "in-kernel")
            else "a userspace daemon (e.g. mptcpd) manages subflows"
        )
        checks.append(Check(section, "path manager", "info", f"{manager} — {note}"))
    checks.extend(_ip_mptcp_checks(section))
    return checks


def _run_ip(*args: str) -> tuple[Any, str | None]:
    """``ip -j ARGS`` parsed as JSON, or (None, why not)."""
    ip = shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.access(p, os.X_OK)), None
    )
    if ip is None:
        return None, "`ip` not found: install iproute2 to see MPTCP limits and endpoints"
    try:
        done = subprocess.run(
            [ip, "-j", *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`ip {' '.join(args)}` failed: {exc}"
    if done.returncode != 0:
        err = " ".join(done.stderr.split())
        if "unknown" in err.lower() or "usage" in err.lower():
            return None, (f"this `ip` has no MPTCP support ({err[:80]}): install iproute2 >= 5.7")
        return None, f"`ip {' '.join(args)}` failed: {err or done.returncode}"
    try:
        return json.loads(done.stdout or "null"), None
    except ValueError:
        pass
    # Older iproute2 ignores -j for some objects: "add_addr_accepted 0 subflows 2".
    tokens = done.stdout.split()
    if tokens and len(tokens) % 2 == 0:
        return dict(zip(tokens[::2], tokens[1::2], strict=False)), None
    return None, f"cannot parse `ip {' '.join(args)}` output: {done.stdout.strip()[:80]!r}"


def _ip_mptcp_checks(section: str) -> list[Check]:
    limits, why = _run_ip("mptcp", "limits", "show")
    if why is not None:
        return [Check(section, "limits", "info", why)]
    checks: list[Check] = []
    if isinstance(limits, list):
        limits = limits[0] if limits else {}
    if isinstance(limits, dict):
        subflows = int(limits.get("subflows", 0))
        accepted = int(limits.get("add_addr_accepted", 0))
        detail = f"subflows={subflows} add_addr_accepted={accepted} (ip mptcp limits show)"
        if subflows == 0:
            checks.append(
                Check(
                    section,
                    "limits",
                    "warn",
                    detail + " — no extra subflow may be opened: one path only",
                    "ip mptcp limits set subflows 2 add_addr_accepted 2",
                )
            )
        else:
            checks.append(Check(section, "limits", "info", detail))
    endpoints, why = _run_ip("mptcp", "endpoint", "show")
    if why is not None:
        checks.append(Check(section, "endpoints", "info", why))
    elif not endpoints:
        checks.append(
            Check(
                section,
                "endpoints",
                "info",
                "none configured — this host opens no extra subflows of its own (fine with one "
                "interface; the server may still add paths)",
                "ip mptcp endpoint add ADDRESS dev IFACE subflow",
            )
        )
    else:
        shown = []
        for ep in endpoints if isinstance(endpoints, list) else []:
            known = ("signal", "subflow", "backup", "fullmesh", "implicit", "laminar")
            flags = ",".join([*ep.get("flags", []), *(f for f in known if ep.get(f) is True)])
            flags = flags or "-"
            dev = f" dev {ep['dev']}" if ep.get("dev") else ""
            shown.append(f"{ep.get('address', '?')}{dev} id {ep.get('id', '?')} [{flags}]")
        checks.append(Check(section, "endpoints", "info", "; ".join(shown)))
    return checks


# -- HTTP/3 -----------------------------------------------------------------------------


def http3_checks() -> list[Check]:
    import http_fastpath

    quic = http_fastpath.probe().kernel_quic
    detail = quic.detail
    if Path("/sys/module/quic").exists():
        detail += " (module 'quic' is loaded)"
    # HTTP/3 is experimental and its userspace backend needs no module: optional.
    checks = [
        Check(
            "HTTP/3",
            "kernel QUIC",
            ok(quic.available),
            detail,
            quic.enable,
            severity="ok" if quic.available else "optional",
        )
    ]
    if quic.available:
        checks.append(uapi_check(_uapi_mismatch()))
    names = sorted(n for n in http_fastpath.__all__ if "HTTP3" in n)
    if names:
        checks.append(Check("HTTP/3", "transport", "info", "experimental: " + ", ".join(names)))
    else:
        checks.append(Check("HTTP/3", "transport", "info", "no HTTP/3 transport in this build"))
    return checks


def _uapi_mismatch() -> str | None:
    try:
        from http_fastpath.http3 import uapi_mismatch
    except ImportError as exc:  # the kernel backend needs aioquic (the http3 extra)
        return f"cannot check: {exc}"
    return uapi_mismatch()


def uapi_check(mismatch: str | None) -> Check:
    """Whether the loaded quic module speaks the uapi revision the backend was built for."""
    if mismatch is None:
        return Check("HTTP/3", "kernel QUIC uapi", "ok", "matches the revision the backend pins")
    fix = "build the quic module at the revision docs/http3.md names (HTTP/3 uses userspace)"
    return Check("HTTP/3", "kernel QUIC uapi", "no", mismatch, fix, severity="warn")


def ok(flag: bool) -> str:
    """The status word for a yes/no check."""
    return "ok" if flag else "no"
