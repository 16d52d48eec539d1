"""Connection proof: what the kernel says happened on one connection."""

from __future__ import annotations

import dataclasses
import enum
import socket
from collections.abc import Callable
from typing import Any

from . import linux as _linux

__all__ = ["ConnectAttempt", "ConnectionInfo", "TFOStatus", "deferred_info"]


class TFOStatus(str, enum.Enum):
    """What TCP Fast Open did on a connection, from the client's ``TCP_INFO``."""

    #: TFO was switched off in the options.
    DISABLED = "disabled"
    #: The kernel refused ``TCP_FASTOPEN_CONNECT`` (client bit of ``net.ipv4.tcp_fastopen`` off),
    #: or the platform has no TCP Fast Open this package implements (not Linux).
    UNAVAILABLE = "unavailable"
    #: The first flight was not replay-safe under the policy, or there was none: plain SYN.
    NOT_ATTEMPTED = "not_attempted"
    #: No cookie was cached for this server: the SYN asked for one (the next connection can use it).
    COOKIE_REQUESTED = "cookie_requested"
    #: Data rode in the SYN and the server acknowledged it: one round trip saved.
    SYN_DATA_ACKED = "syn_data_acked"
    #: Data rode in the SYN but the server acknowledged only the SYN (data was sent again).
    DATA_NOT_ACKED = "data_not_acked"
    #: The SYN with data was lost and retransmitted without data (middlebox or blackhole).
    SYN_RETRANSMITTED = "syn_retransmitted"
    #: The SYN carried data but the kernel reports no outcome (yet).
    UNKNOWN = "unknown"
    #: Not a TCP connection (the EXPERIMENTAL HTTP/3 transport runs over QUIC).
    NOT_APPLICABLE = "not_applicable"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


# tcpi_fastopen_client_fail values (enum tcp_fastopen_client_fail in uapi/linux/tcp.h).
_CLIENT_FAIL = {
    1: TFOStatus.COOKIE_REQUESTED,
    2: TFOStatus.DATA_NOT_ACKED,
    3: TFOStatus.SYN_RETRANSMITTED,
}


@dataclasses.dataclass(frozen=True)
class ConnectAttempt:
    """One connect attempt of a dial to a host with several addresses (Happy Eyeballs).

    Attributes:
        address: the ``(address, port)`` tried.
        outcome: ``"connected"`` (this attempt won), ``"abandoned"`` (still connecting
            when another address connected first: closed, nothing was read from it),
            ``"refused"``, ``"timeout"`` or ``"failed"`` (unreachable, reset...: see
            ``error``).
        started_ms / ended_ms: when it started and ended, in milliseconds since the first
            attempt started (like the times of ``curl -v``).
        syn_data_bytes: bytes of the first flight that rode in its SYN (TCP Fast Open).
        error: the kernel's error for a failed attempt (``"[Errno 111] Connection
            refused"``), else None.
    """

    address: tuple[str, int]
    outcome: str
    started_ms: float
    ended_ms: float
    syn_data_bytes: int = 0
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class ConnectionInfo:
    """The kernel's view of one connection made by the fastpath dialer.

    Attributes:
        transport: what runs on the wire: ``"mptcp"`` when both ends speak Multipath TCP
            (``TCP_IS_MPTCP``), ``"quic"`` for the EXPERIMENTAL HTTP/3 transport, else
            ``"tcp"``.
        tfo: what TCP Fast Open did (see :class:`TFOStatus`).
        socket_protocol: the socket that was opened: ``"mptcp"`` (``IPPROTO_MPTCP``) or
            ``"tcp"``; for HTTP/3, ``"quic"`` (kernel ``IPPROTO_QUIC``) or ``"udp"``.
        syn_data_bytes: bytes of the first flight handed to the kernel with the SYN.
        mptcp: True when MPTCP is in use end to end; False when MPTCP was asked for and the
            connection is plain TCP (the server or the path does not speak it, it is known
            not to, or the kernel refused the socket); None when MPTCP was not asked for.
        mptcp_subflows: number of MPTCP subflows (the initial one included), or None.
        fallbacks: one short reason per thing that did not go as asked (the kernel refused
            an option, TFO paused for a destination, a first flight kept out of the SYN). A
            server that does not speak MPTCP is not a fallback: ``mptcp`` says it.
        rtt_ms: the kernel's smoothed round-trip time.
        local_address / peer_address: socket addresses (``None`` if unknown).
        early_data_safe: whether the first flight was judged replay-safe by the policy.
        quic_backend: for the EXPERIMENTAL HTTP/3 transport (``transport="quic"``), which
            QUIC implementation carried the connection: ``"kernel"`` (Linux ``IPPROTO_QUIC``)
            or ``"userspace"`` (aioquic over UDP); None for TCP connections.
        resumed: HTTP/3 only: True when the QUIC connection's TLS handshake resumed an
            earlier session with a session ticket, False for a full handshake; None for TCP.
        early_data: HTTP/3 only, for the request of this response: ``"accepted"`` when it
            rode in 0-RTT and the server took it, ``"rejected"`` when it was sent in 0-RTT,
            the server refused early data and it was sent again at 1-RTT, ``"sent"`` while
            the server's answer is not known; None when it was not sent early.
        attempts: the connect attempts, in the order they started, when the host had
            several addresses (Happy Eyeballs, RFC 8305): each address tried, its outcome
            and its times (see :class:`ConnectAttempt`); empty for a single address.
    """

    transport: str
    tfo: TFOStatus
    socket_protocol: str = "tcp"
    syn_data_bytes: int = 0
    mptcp: bool | None = None
    mptcp_subflows: int | None = None
    fallbacks: tuple[str, ...] = ()
    rtt_ms: float | None = None
    local_address: tuple[str, int] | None = None
    peer_address: tuple[str, int] | None = None
    early_data_safe: bool | None = None
    quic_backend: str | None = None
    resumed: bool | None = None
    early_data: str | None = None
    attempts: tuple[ConnectAttempt, ...] = ()

    @property
    def tfo_used(self) -> bool:
        """True when data rode in the SYN and the server acknowledged it."""
        return self.tfo is TFOStatus.SYN_DATA_ACKED

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly dict of every field."""
        out = dataclasses.asdict(self)
        out["tfo"] = self.tfo.value
        out["tfo_used"] = self.tfo_used
        return out


class _DeferredInfo(ConnectionInfo):
    """A :class:`ConnectionInfo` whose fields are read the first time one is looked at.

    Every attribute (fields, methods, ``__class__``, ``__dict__``) comes from the
    :class:`ConnectionInfo` that ``read()`` returns, made once: equality, hashing,
    ``repr``, ``dataclasses.asdict``, ``copy`` and ``pickle`` see a plain
    ``ConnectionInfo`` (copies and pickles are one). Only ``type()`` tells them apart.
    """

    def __getattribute__(self, name: str) -> Any:
        state = object.__getattribute__(self, "__dict__")
        real = state.get("_real")
        if real is None:
            real = state.setdefault("_real", state["_read"]())
        return getattr(real, name)


def deferred_info(read: Callable[[], ConnectionInfo]) -> ConnectionInfo:
    """A :class:`ConnectionInfo` made by ``read()`` when first looked at (at most once)."""
    info = object.__new__(_DeferredInfo)
    object.__setattr__(info, "_read", read)
    return info


def is_read(info: ConnectionInfo) -> bool:
    """False for a :func:`deferred_info` nobody has looked at yet."""
    if not issubclass(type(info), _DeferredInfo):
        return True
    return "_real" in object.__getattribute__(info, "__dict__")


def _address(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None


def tfo_status(
    sock: socket.socket | None,
    *,
    requested: bool,
    refused: bool,
    syn_data_bytes: int,
    info: _linux.TCPInfo | None = None,
) -> TFOStatus:
    """Classify TCP Fast Open on a connected socket (see :class:`TFOStatus`).

    ``info``: the ``TCP_INFO`` read when the handshake completed (the outcome does not
    change afterwards); without it, ``sock`` is asked.
    """
    if refused:
        return TFOStatus.UNAVAILABLE
    if not requested:
        return TFOStatus.NOT_ATTEMPTED
    if info is None and sock is not None:
        info = _linux.read_tcp_info(sock)
    if info is None:
        return TFOStatus.UNKNOWN
    if info.syn_data_acked:
        return TFOStatus.SYN_DATA_ACKED
    failed = _CLIENT_FAIL.get(info.fastopen_client_fail)
    if failed is not None:
        return failed
    if syn_data_bytes == 0:
        return TFOStatus.COOKIE_REQUESTED
    return TFOStatus.UNKNOWN


def read_connection_info(
    sock: socket.socket,
    *,
    mptcp_requested: bool,
    tfo: TFOStatus,
    syn_data_bytes: int,
    fallbacks: tuple[str, ...],
    early_data_safe: bool | None,
    peer: tuple[str, int] | None,
    attempts: tuple[ConnectAttempt, ...] = (),
    is_mptcp: bool | None = None,
) -> ConnectionInfo:
    """Read a :class:`ConnectionInfo` off a live socket.

    ``is_mptcp``: ``TCP_IS_MPTCP`` as read when the handshake completed (None: ask).
    """
    is_mptcp_socket = sock.proto == _linux.IPPROTO_MPTCP
    mptcp: bool | None = False if mptcp_requested else None
    subflows: int | None = None
    if is_mptcp_socket:
        mptcp = is_mptcp if is_mptcp is not None else _linux.read_is_mptcp(sock)
        if mptcp:
            subflows = _linux.read_mptcp_subflows(sock)
    info = _linux.read_tcp_info(sock)
    try:
        local = _address(sock.getsockname())
    except OSError:
        local = None
    try:
        peer = _address(sock.getpeername())
    except OSError:
        pass
    return ConnectionInfo(
        # the wire's protocol; the socket's when the kernel cannot tell (Linux < 5.16)
        transport="mptcp" if mptcp or (is_mptcp_socket and mptcp is None) else "tcp",
        tfo=tfo,
        socket_protocol="mptcp" if is_mptcp_socket else "tcp",
        syn_data_bytes=syn_data_bytes,
        mptcp=mptcp,
        mptcp_subflows=subflows,
        fallbacks=fallbacks,
        rtt_ms=None if info is None else info.rtt_us / 1000.0,
        local_address=local,
        peer_address=peer,
        early_data_safe=early_data_safe,
        attempts=attempts,
    )
