"""``http-fastpath doctor``: what this host offers, and the command that enables each "no".

The kernel checks live in :mod:`.doctor_kernel`; this module adds the Python
packages and the environment opt-in, and renders the report. Each check has a severity
(:class:`Check`): only what a *client* needs is ``missing``; a server-side switch, a
library you did not install or the opt-in is ``optional``, so a healthy host reads healthy.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import platform
import sys
from collections.abc import Sequence
from typing import Any, Final

from http_fastpath import FastpathOptions

from .doctor_kernel import Check, http3_checks, mptcp_checks, tfo_checks
from .output import Style, one_line

__all__ = ["REQUIREMENTS", "add_parser", "collect", "parse_require", "render", "run", "summary"]

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
        return Check(  # requests without urllib3 cannot work: missing
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


#: packages whose absence is not worth a line (httpx2 is an alternative to httpx)
_OPTIONAL: Final = frozenset({"httpx2", "httpcore2"})


def _package_checks() -> list[Check]:
    import http_fastpath

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
        ("httpx2", "httpx2", "FastpathTransport"),
        ("httpcore2", "httpx2", None),
        ("h11", "httpx", None),
        ("aioquic", "http3", "HTTP3Transport"),
    ):
        version = _dist_version(dist)
        if version is None and dist in _OPTIONAL:
            continue  # the other stack's packages: not a gap when absent
        if version is None:  # a library you did not install: only needed if you use it
            checks.append(
                Check(
                    section,
                    dist,
                    "no",
                    "not installed (not needed unless you use it)",
                    f"pip install 'http_fastpath[{extra}]'",
                    severity="optional",
                )
            )
            continue
        detail = version
        if adapter is not None:
            have = adapter in http_fastpath.__all__
            detail += f" ({adapter}: {'available' if have else 'not in this build'})"
        checks.append(Check(section, dist, "ok", detail))
        if dist == "requests":
            checks.append(_urllib3_check(section))
    return checks


# -- environment opt-in -------------------------------------------------------------------


def _status_text(status: object) -> str:
    """``http_fastpath.status()`` in a few words (a dict, or anything printable)."""
    if not isinstance(status, dict):
        return f"; status(): {status}"
    if not status.get("active"):
        return "; status(): not active in this process"
    parts = []
    for key in ("patched", "waiting_for_import", "errors"):
        value = status.get(key)
        if value:
            shown = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
            parts.append(f"{key.replace('_', ' ')}: {shown}")
    return "; status(): active" + (f" ({'; '.join(parts)})" if parts else "")


def _env_checks() -> list[Check]:
    import http_fastpath

    section = "Environment"
    config = http_fastpath.read_environ(warn=False)
    raw = config.raw
    extra = ""
    try:
        extra = _status_text(http_fastpath.status())
    except Exception as exc:  # the report must survive a broken opt-in
        extra = f"; status() failed: {one_line(exc)}"
    enable = "export HTTP_FASTPATH=tfo,mptcp"
    # The opt-in is optional: code that mounts the adapter/transport needs no variable.
    if raw is None:
        detail = "not set — only code that mounts the adapter/transport uses the fastpath"
        checks = [Check(section, "HTTP_FASTPATH", "no", detail + extra, enable, "optional")]
    elif config.options is None:
        detail = f"set to {raw!r}: the opt-in is off"
        checks = [Check(section, "HTTP_FASTPATH", "no", detail + extra, enable, "optional")]
    else:
        opts = config.options
        features = ", ".join(f for f, on in (("tfo", opts.tfo), ("mptcp", opts.mptcp)) if on)
        scope = "every requests/urllib3/httpx connection"
        if config.hosts is not None:
            scope += " to " + ", ".join(config.hosts or ("no host",))
        if config.exclude:
            scope += " except to " + ", ".join(config.exclude)
        detail = f"set to {raw!r}: {features} for {scope}"
        detail += f" (tfo_policy={opts.tfo_policy!r})"
        checks = [Check(section, "HTTP_FASTPATH", "ok", detail + extra)]
    opts = config.options or FastpathOptions()
    size = config.memory_size or http_fastpath.destination_limit()
    checks.append(
        Check(
            section,
            "destination memory",
            "info",
            f"per (address, port), up to {size} destinations (about 0.4 KB each); "
            f"TFO pause {opts.tfo_pause:g} s, MPTCP answers trusted {opts.mptcp_relearn:g} s "
            "(HTTP_FASTPATH_MEMORY_SIZE, HTTP_FASTPATH_TFO_PAUSE, HTTP_FASTPATH_MPTCP_RELEARN)",
        )
    )
    delay = opts.happy_eyeballs_delay
    checks.append(
        Check(
            section,
            "happy eyeballs",
            "info",
            (
                f"a host's addresses race, the next after {delay:g} s (RFC 8305)"
                if delay is not None
                else "off: a host's addresses are tried one after another"
            )
            + " (HTTP_FASTPATH_HAPPY_EYEBALLS_DELAY)",
        )
    )
    for problem in config.problems:
        checks.append(Check(section, "problem", "warn", problem))
    return checks


# -- report ----------------------------------------------------------------------------


#: ``--require`` names -> (section, check name).
REQUIREMENTS: Final = {
    "tfo": ("TCP Fast Open", "client"),
    "tfo-server": ("TCP Fast Open", "server"),
    "mptcp": ("Multipath TCP", "enabled"),
    "tcp-is-mptcp": ("Multipath TCP", "TCP_IS_MPTCP"),
    "quic": ("HTTP/3", "kernel QUIC"),
    "requests": ("Python", "requests"),
    "httpx": ("Python", "httpx"),
    "httpx2": ("Python", "httpx2"),
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
            Check("TCP Fast Open", "server", "no", why, severity="optional"),
            Check("Multipath TCP", "enabled", "no", why),
            Check("Multipath TCP", "TCP_IS_MPTCP", "no", why),
            Check("HTTP/3", "kernel QUIC", "no", why, severity="optional"),
        ]
        return base + _package_checks() + _env_checks()
    return tfo_checks() + mptcp_checks() + http3_checks() + _package_checks() + _env_checks()


def _missing(checks: Sequence[Check], required: Sequence[str]) -> list[str]:
    by_key = {(c.section, c.name): c for c in checks}
    out = []
    for name in required:
        check = by_key.get(REQUIREMENTS[name])
        if check is None or check.status not in ("ok", "warn"):
            out.append(name)
    return out


#: severity -> (colour, mark): NO only for what a client needs, opt for what it does not.
_MARKS: Final = {
    "ok": ("ok", " ok "),
    "missing": ("no", " NO "),
    "optional": ("dim", " opt"),
    "warn": ("warn", "WARN"),
    "info": ("dim", " -- "),
}


def summary(checks: Sequence[Check]) -> tuple[bool, str]:
    """(healthy, one line): healthy when nothing a client needs is missing."""
    missing: dict[str, list[str]] = {}
    for check in checks:
        if check.severity == "missing":
            missing.setdefault(check.section, []).append(check.name)
    optional = sum(c.severity == "optional" for c in checks)
    warnings = sum(c.severity == "warn" for c in checks)
    if missing:
        shown = "; ".join(f"{section} ({', '.join(names)})" for section, names in missing.items())
        return False, f"missing for a client: {shown}"
    text = "healthy: everything a client needs is available"
    if optional:
        text += f"; {optional} optional item(s) not set up (opt: not needed for a client)"
    if warnings:
        text += f"; {warnings} warning(s)"
    return True, text


def render(checks: Sequence[Check], style: Style, header: str) -> str:
    lines = [style("bold", header)]
    section = None
    width = max(len(c.name) for c in checks)
    for check in checks:
        if check.section != section:
            section = check.section
            lines.append("")
            lines.append(style("bold", section))
        kind, mark = _MARKS[check.severity]
        lines.append(f"  {style(kind, mark)}  {check.name:<{width}}  {check.detail}")
        if check.enable:
            verb = "enable" if check.severity in ("missing", "warn") else "to add"
            lines.append(f"  {'':4}  {'':<{width}}  {verb}: {style('bold', check.enable)}")
    healthy, text = summary(checks)
    lines.append("")
    lines.append(style("ok" if healthy else "no", text))
    return "\n".join(lines)


def _capabilities_dict() -> dict[str, object]:
    """``http_fastpath.probe().as_dict()`` (the stable schema of earlier releases)."""
    from http_fastpath import probe

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
            "healthy": summary(checks)[0],
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
    doctor = sub.add_parser(
        "doctor",
        help="what this host's kernel and Python offer",
        description=(
            "What this host offers for TCP Fast Open, Multipath TCP and HTTP/3: sysctls, "
            "socket options, HTTP client libraries and the HTTP_FASTPATH opt-in, with the "
            "command that enables each missing piece. Marks: ok; NO, missing for a client; "
            "opt, not needed for a client (a server-side switch, a library you did not "
            "install, the opt-in); WARN; -- information. The last line says whether the "
            "host is healthy for a client."
        ),
        epilog="exit status: 0 done, 1 a --require feature is missing, 2 usage error",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument(
        "--require",
        type=parse_require,
        metavar="LIST",
        help=f"exit 1 unless these are available (comma list of: {', '.join(REQUIREMENTS)})",
    )
    doctor.set_defaults(func=run)
