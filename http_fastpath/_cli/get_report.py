"""What ``http-fastpath get`` writes about each response: the ``-v`` proof and timings,
the ``--repeat`` summary line, the ``-i`` head. Only the public API
(:class:`http_fastpath.ConnectionInfo`, :func:`http_fastpath.destinations`).
"""

from __future__ import annotations

from typing import IO, Final

from http_fastpath import ConnectAttempt, ConnectionInfo, TFOStatus

from .clients import Result
from .output import Style, endpoint

__all__ = ["summary", "verbose", "write_head"]

_TIMING_ORDER: Final = ("dns", "connect", "tls", "first_byte", "total")
#: ConnectionInfo fields -v prints by name; any other (newer) field is listed as is.
_SHOWN_FIELDS: Final = frozenset(
    {
        "transport",
        "socket_protocol",
        "tfo",
        "tfo_used",
        "syn_data_bytes",
        "mptcp",
        "mptcp_subflows",
        "fallbacks",
        "rtt_ms",
        "local_address",
        "peer_address",
        "early_data_safe",
        "attempts",
    }
)

# -- the lines ------------------------------------------------------------------------


def _tfo_text(info: ConnectionInfo) -> str:
    if info.tfo is TFOStatus.SYN_DATA_ACKED:
        return f"{info.tfo.value} ({info.syn_data_bytes} bytes rode in the SYN, acked)"
    if info.tfo is TFOStatus.COOKIE_REQUESTED:
        return f"{info.tfo.value} (no cookie yet: the next connection can use it)"
    return str(info.tfo.value)


def _mptcp_text(info: ConnectionInfo) -> str:
    if info.socket_protocol != "mptcp":
        return "not used (plain TCP socket)"
    if info.mptcp:
        return f"yes ({info.mptcp_subflows or 1} subflow(s))"
    if info.mptcp is False:
        return "no (the server did not answer MP_CAPABLE: fell back to TCP)"
    return "unknown (the kernel cannot tell)"


def _attempt_text(attempt: ConnectAttempt) -> str:
    """``Trying [::1]:8080 at +0.0 ms: abandoned at +250.4 ms ...`` (one connect attempt)."""
    text = (
        f"Trying {endpoint(attempt.address)} at +{attempt.started_ms:.1f} ms: "
        f"{attempt.outcome} at +{attempt.ended_ms:.1f} ms"
    )
    if attempt.outcome == "abandoned":
        text += " (another address connected first)"
    if attempt.syn_data_bytes:
        text += f" ({attempt.syn_data_bytes} bytes rode in its SYN)"
    if attempt.error:
        text += f" ({attempt.error})"
    return text


def verbose(result: Result, client: str, out: IO[str], style: Style) -> None:
    """``-v``: the timings, the connect attempts and the kernel's proof, on ``out``."""
    star = style("dim", "*")
    out.write(f"{star} client: {client}\n")
    out.write(f"{star} timings (seconds since the request started, like curl -w):\n")
    for key in _TIMING_ORDER:
        value = result.timings.get(key)
        shown = f"{value:.6f}" if value is not None else "n/a"
        out.write(f"{star}   {key.replace('_', ' '):<11} {shown}\n")
    info = result.info
    if info is None:
        out.write(
            f"{star} connection: no ConnectionInfo (the response did not come through the fastpath)\n"
        )
        return
    for attempt in info.attempts:  # Happy Eyeballs, like curl's "Trying" lines
        out.write(f"{star} {_attempt_text(attempt)}\n")
    local, peer = endpoint(info.local_address), endpoint(info.peer_address)
    sock = info.socket_protocol
    on = f" (on an {sock.upper()} socket)" if sock != info.transport else ""
    out.write(f"{star} connection: {info.transport}{on} {local} -> {peer}\n")
    if info.transport in ("tcp", "mptcp"):
        out.write(f"{star}   TFO       {_tfo_text(info)}\n")
        out.write(f"{star}   MPTCP     {_mptcp_text(info)}\n")
    else:
        out.write(f"{star}   TFO/MPTCP n/a over {info.transport}\n")
    rtt = f"{info.rtt_ms:.3f} ms" if info.rtt_ms is not None else "n/a"
    out.write(f"{star}   RTT       {rtt}\n")
    for reason in info.fallbacks or ("none",):
        out.write(f"{star}   fallback  {reason}\n")
    if info.peer_address is not None and info.transport in ("tcp", "mptcp"):
        from http_fastpath import destinations

        for dest in destinations(*info.peer_address):
            out.write(f"{star}   memory    {dest}\n")
    for key, field in info.as_dict().items():
        if key not in _SHOWN_FIELDS and field is not None:
            out.write(f"{star}   {key:<9} {field}\n")


def summary(index: int, result: Result) -> str:
    """``--repeat``: one line per response (``#2  200  tfo=syn_data_acked ...``)."""
    info = result.info
    parts = [f"#{index}", str(result.status)]
    if info is not None and info.transport not in ("tcp", "mptcp"):
        parts.append(f"transport={info.transport}")
    elif info is not None:
        syn = f" ({info.syn_data_bytes} B in SYN)" if info.syn_data_bytes else ""
        mptcp = (
            "-"
            if info.socket_protocol != "mptcp"
            else {True: "yes", False: "no", None: "?"}[info.mptcp]
        )
        parts += [f"tfo={info.tfo.value}{syn}", f"mptcp={mptcp}"]
        if info.rtt_ms is not None:
            parts.append(f"rtt={info.rtt_ms:.3f}ms")
    for key in ("connect", "tls", "first_byte", "total"):
        if key in result.timings:
            parts.append(f"{key.replace('_', '-')}={result.timings[key] * 1000:.2f}ms")
    return "  ".join(parts)


def write_head(result: Result, out: IO[bytes]) -> None:
    """``-i``: the status line and the headers, before the body."""
    lines = [f"{result.http_version} {result.status} {result.reason}".rstrip()]
    lines += [f"{k}: {v}" for k, v in result.headers]
    out.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
