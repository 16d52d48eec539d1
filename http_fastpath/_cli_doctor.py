"""``http-fastpath doctor``: what this host offers, and the command that enables each "no"."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from ._cli_output import Style, one_line

__all__ = ["add_parser", "collect", "run"]

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


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of the report. ``status``: ok, no (missing), warn, or info."""

    section: str
    name: str
    status: str
    detail: str
    enable: str | None = None

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


def _tfo_checks() -> list[Check]:
    from ._capabilities import probe

    caps = probe(refresh=True)
    section = "TCP Fast Open"
    value = _sysctl_int("net.ipv4.tcp_fastopen")
    checks: list[Check] = []
    if value is None:
        checks.append(
            Check(
                section,
                "client",
                _ok(caps.tfo_client.available),
                caps.tfo_client.detail,
                caps.tfo_client.enable,
            )
        )
        checks.append(
            Check(section, "server", "no", caps.tfo_server.detail, caps.tfo_server.enable)
        )
        return checks
    prefix = f"net.ipv4.tcp_fastopen={value} (0x{value:x})"
    client_on = bool(value & 0x1) and caps.tfo_client.available
    checks.append(
        Check(
            section,
            "client",
            _ok(client_on),
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
            _ok(server_on),
            f"bit 0x2 {'on' if server_on else 'off'} — "
            + (
                "local listeners that set TCP_FASTOPEN accept data in the SYN"
                if server_on
                else "local servers ignore data in the SYN (only matters for servers on this host)"
            ),
            None if server_on else f"sysctl -w net.ipv4.tcp_fastopen={value | 0x2}",
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


def _mptcp_checks() -> list[Check]:
    from ._capabilities import probe

    caps = probe()
    section = "Multipath TCP"
    checks = [
        Check(section, "enabled", _ok(caps.mptcp.available), caps.mptcp.detail, caps.mptcp.enable),
        Check(
            section,
            "TCP_IS_MPTCP",
            _ok(caps.tcp_is_mptcp.available),
            caps.tcp_is_mptcp.detail + " — tells whether a connection really uses MPTCP",
            caps.tcp_is_mptcp.enable
            or (None if caps.tcp_is_mptcp.available else caps.mptcp.enable),
        ),
        Check(
            section,
            "MPTCP_INFO",
            _ok(caps.mptcp_info.available),
            caps.mptcp_info.detail,
            caps.mptcp_info.enable or (None if caps.mptcp_info.available else caps.mptcp.enable),
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


def _http3_checks() -> list[Check]:
    from . import _LAZY
    from ._capabilities import probe

    quic = probe().kernel_quic
    detail = quic.detail
    if Path("/sys/module/quic").exists():
        detail += " (module 'quic' is loaded)"
    checks = [Check("HTTP/3", "kernel QUIC", _ok(quic.available), detail, quic.enable)]
    names = sorted(n for n in _LAZY if "3" in n)
    if names:
        checks.append(Check("HTTP/3", "transport", "info", "experimental: " + ", ".join(names)))
    else:
        checks.append(Check("HTTP/3", "transport", "info", "no HTTP/3 transport in this build"))
    return checks


# -- Python packages --------------------------------------------------------------------


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _is_urllib3_future(version: str) -> bool:
    """urllib3-future (installed by niquests over ``urllib3``): 2.x.9NN versions, a resolver."""
    parts = version.split(".")
    if len(parts) >= 3 and parts[2].isdigit() and int(parts[2]) >= 900:
        return True
    try:
        return importlib.util.find_spec("urllib3.contrib.resolver") is not None
    except (ImportError, ValueError):
        return False


def _urllib3_check(section: str) -> Check:
    try:
        urllib3 = importlib.import_module("urllib3")
    except ImportError:
        return Check(
            section, "urllib3", "no", "not installed", "pip install 'http_fastpath[requests]'"
        )
    version = str(getattr(urllib3, "__version__", "?"))
    if _is_urllib3_future(version):
        return Check(
            section,
            "urllib3",
            "warn",
            f"{version} — this is urllib3-future (installed by niquests over urllib3): its "
            "sockets are made elsewhere, so requests' adapter may not see them",
            "pip uninstall -y urllib3-future niquests && pip install --force-reinstall urllib3",
        )
    return Check(section, "urllib3", "ok", version)


def _package_checks() -> list[Check]:
    from . import _LAZY

    section = "Python"
    impl = platform.python_implementation()
    checks = [
        Check(section, "python", "info", f"{impl} {platform.python_version()} ({sys.executable})")
    ]
    for dist, extra, adapter in (
        ("requests", "requests", "FastpathAdapter"),
        ("httpx", "httpx", "FastpathTransport"),
        ("httpcore", "httpx", None),
        ("h2", "http2", None),
        ("h11", "httpx", None),
        ("aioquic", "http3", "HTTP3Transport"),
    ):
        version = _dist_version(dist)
        if version is None:
            checks.append(
                Check(section, dist, "no", "not installed", f"pip install 'http_fastpath[{extra}]'")
            )
            continue
        detail = version
        if adapter is not None:
            have = adapter in _LAZY
            detail += f" ({adapter}: {'available' if have else 'not in this build'})"
        checks.append(Check(section, dist, "ok", detail))
        if dist == "requests":
            checks.append(_urllib3_check(section))
    return checks


# -- environment opt-in -------------------------------------------------------------------


def _env_checks() -> list[Check]:
    import http_fastpath

    from ._env import read_environ

    section = "Environment"
    config = read_environ(warn=False)
    raw = config.raw
    extra = ""
    if "status" in getattr(http_fastpath, "_LAZY", {}):
        try:
            status_fn: Any = getattr(http_fastpath, "status")  # noqa: B009 (added lazily)
            extra = f"; status(): {status_fn()}"
        except Exception as exc:  # the report must survive a broken opt-in
            extra = f"; status() failed: {one_line(exc)}"
    enable = "export HTTP_FASTPATH=tfo,mptcp"
    if raw is None:
        detail = "not set — only code that mounts the adapter/transport uses the fastpath"
        checks = [Check(section, "HTTP_FASTPATH", "no", detail + extra, enable)]
    elif config.options is None:
        detail = f"set to {raw!r}: the opt-in is off"
        checks = [Check(section, "HTTP_FASTPATH", "no", detail + extra, enable)]
    else:
        opts = config.options
        features = ", ".join(f for f, on in (("tfo", opts.tfo), ("mptcp", opts.mptcp)) if on)
        detail = f"set to {raw!r}: {features} for every requests/urllib3/httpx connection"
        detail += f" (tfo_policy={opts.tfo_policy!r})"
        checks = [Check(section, "HTTP_FASTPATH", "ok", detail + extra)]
    for problem in config.problems:
        checks.append(Check(section, "problem", "warn", problem))
    return checks


# -- report ----------------------------------------------------------------------------


def _ok(flag: bool) -> str:
    return "ok" if flag else "no"


#: ``--require`` names -> (section, check name).
REQUIREMENTS: Final = {
    "tfo": ("TCP Fast Open", "client"),
    "tfo-server": ("TCP Fast Open", "server"),
    "mptcp": ("Multipath TCP", "enabled"),
    "tcp-is-mptcp": ("Multipath TCP", "TCP_IS_MPTCP"),
    "quic": ("HTTP/3", "kernel QUIC"),
    "requests": ("Python", "requests"),
    "httpx": ("Python", "httpx"),
    "http2": ("Python", "h2"),
    "env": ("Environment", "HTTP_FASTPATH"),
}


def parse_require(text: str) -> list[str]:
    names = [n.strip().lower().replace("_", "-") for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in REQUIREMENTS]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown feature {bad[0]!r} (allowed: {', '.join(REQUIREMENTS)})"
        )
    return names


def collect() -> list[Check]:
    """Every check of the report, in display order."""
    if not sys.platform.startswith("linux"):
        why = "only Linux offers TCP_FASTOPEN_CONNECT and IPPROTO_MPTCP"
        base = [
            Check("TCP Fast Open", "client", "no", why),
            Check("TCP Fast Open", "server", "no", why),
            Check("Multipath TCP", "enabled", "no", why),
            Check("Multipath TCP", "TCP_IS_MPTCP", "no", why),
            Check("HTTP/3", "kernel QUIC", "no", why),
        ]
        return base + _package_checks() + _env_checks()
    return _tfo_checks() + _mptcp_checks() + _http3_checks() + _package_checks() + _env_checks()


def _missing(checks: Sequence[Check], required: Sequence[str]) -> list[str]:
    by_key = {(c.section, c.name): c for c in checks}
    out = []
    for name in required:
        check = by_key.get(REQUIREMENTS[name])
        if check is None or check.status not in ("ok", "warn"):
            out.append(name)
    return out


_MARKS: Final = {
    "ok": ("ok", " ok "),
    "no": ("no", " NO "),
    "warn": ("warn", "WARN"),
    "info": ("dim", " -- "),
}


def render(checks: Sequence[Check], style: Style, header: str) -> str:
    lines = [style("bold", header)]
    section = None
    width = max(len(c.name) for c in checks)
    for check in checks:
        if check.section != section:
            section = check.section
            lines.append("")
            lines.append(style("bold", section))
        kind, mark = _MARKS[check.status]
        lines.append(f"  {style(kind, mark)}  {check.name:<{width}}  {check.detail}")
        if check.enable:
            verb = "enable" if check.status in ("no", "warn") else "to add"
            lines.append(f"  {'':4}  {'':<{width}}  {verb}: {style('bold', check.enable)}")
    return "\n".join(lines)


def _capabilities_dict() -> dict[str, object]:
    """``http_fastpath.probe().as_dict()`` (the stable schema of earlier releases)."""
    from ._capabilities import probe

    return probe().as_dict()


def run(args: argparse.Namespace) -> int:
    checks = collect()
    required: list[str] = args.require or []
    missing = _missing(checks, required)
    header = f"http-fastpath doctor — {platform.system()} {platform.release()}"
    if args.json:
        payload = {
            "platform": sys.platform,
            "kernel": platform.release(),
            "python": platform.python_version(),
            "checks": [c.as_dict() for c in checks],
            "capabilities": _capabilities_dict(),
            "required": required,
            "missing": missing,
            "ok": not missing,
        }
        print(json.dumps(payload, indent=2))
    else:
        style = Style(sys.stdout)
        print(render(checks, style, header))
        if required:
            print()
            if missing:
                print(style("no", f"missing required: {', '.join(missing)}"))
            else:
                print(style("ok", f"all required features available: {', '.join(required)}"))
    return 1 if missing else 0


def add_parser(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="what this host's kernel and Python offer")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument(
        "--require",
        type=parse_require,
        metavar="LIST",
        help=f"exit 1 unless these are available (comma list of: {', '.join(REQUIREMENTS)})",
    )
    doctor.set_defaults(func=run)
