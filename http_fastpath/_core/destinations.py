"""The public, read-only view of the destination memory (see :mod:`.memory`)."""

from __future__ import annotations

import dataclasses
import socket
import time

from .eyeballs import PREFERENCE_TTL
from .memory import MEMORY, Destination, DestinationKey
from .reasons import describe

__all__ = [
    "DestinationInfo",
    "destination_limit",
    "destinations",
    "reset_destinations",
    "set_destination_limit",
]


@dataclasses.dataclass(frozen=True)
class DestinationInfo:
    """What this process has learned about one destination (address, port).

    Attributes:
        address / port / family: the destination (``family`` is ``"ipv4"`` or ``"ipv6"``).
        mptcp: its last answer to an MPTCP SYN: ``"mptcp"``, ``"plain_tcp"`` (it then gets
            plain TCP sockets, with TCP Fast Open) or ``"unknown"``.
        mptcp_expires_in: seconds until that answer is asked again (None: nothing known).
        tfo_paused_for: seconds TCP Fast Open stays paused there (None: not paused).
        tfo_pause_reason: why it was paused.
        refused: the last connection attempt was refused (the next SYN carries no data).
        connections / syn_data_acked / tfo_pauses: counters since it was first seen.
        race_first_for: seconds this address stays first when its host's addresses race
            (Happy Eyeballs): it won a race against an address tried before it (None: no).
    """

    address: str
    port: int
    family: str
    mptcp: str
    mptcp_expires_in: float | None
    tfo_paused_for: float | None
    tfo_pause_reason: str | None
    refused: bool
    connections: int
    syn_data_acked: int
    tfo_pauses: int
    race_first_for: float | None = None

    def __str__(self) -> str:
        key = (
            socket.AF_INET6 if self.family == "ipv6" else socket.AF_INET,
            self.address,
            self.port,
        )
        parts = [f"{describe(key)}: mptcp={self.mptcp}"]
        if self.mptcp_expires_in is not None:
            parts.append(f"(asked again in {self.mptcp_expires_in:.0f} s)")
        if self.tfo_paused_for is not None:
            parts.append(f"tfo paused {self.tfo_paused_for:.0f} s more: {self.tfo_pause_reason}")
        if self.refused:
            parts.append("last attempt refused")
        if self.race_first_for is not None:
            parts.append(f"first in races for {self.race_first_for:.0f} s more (it won the last)")
        parts.append(
            f"connections={self.connections} syn_data_acked={self.syn_data_acked} "
            f"tfo_pauses={self.tfo_pauses}"
        )
        return " ".join(parts)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly dict of every field."""
        return dataclasses.asdict(self)


def _left(until: float | None, now: float) -> float | None:
    return None if until is None or until <= now else round(until - now, 3)


def _info(key: DestinationKey, dest: Destination, now: float) -> DestinationInfo:
    mptcp_left = _left(dest.mptcp_until, now)
    paused_left = _left(dest.tfo_paused_until, now)
    return DestinationInfo(
        address=key[1],
        port=key[2],
        family="ipv6" if key[0] == socket.AF_INET6 else "ipv4",
        mptcp=dest.mptcp.value if mptcp_left is not None else "unknown",
        mptcp_expires_in=mptcp_left,
        tfo_paused_for=paused_left,
        tfo_pause_reason=dest.tfo_pause_reason if paused_left is not None else None,
        refused=dest.refused_at is not None,
        connections=dest.connections,
        syn_data_acked=dest.syn_data_acked,
        tfo_pauses=dest.tfo_pauses,
        race_first_for=_left(
            None if dest.won_race_at is None else dest.won_race_at + PREFERENCE_TTL, now
        ),
    )


def destinations(address: str | None = None, port: int | None = None) -> list[DestinationInfo]:
    """What the process has learned, per destination, most recently used last.

    ``address`` and ``port`` narrow the list (an IPv6 address without brackets).
    """
    now = time.monotonic()
    return [
        _info(key, dest, now)
        for key, dest in MEMORY.items()
        if (address is None or key[1] == address.strip("[]")) and (port is None or key[2] == port)
    ]


def reset_destinations(address: str | None = None, port: int | None = None) -> int:
    """Forget what was learned about matching destinations (all when both are None).

    The next connection there starts afresh: an MPTCP socket (when MPTCP is on) and TCP
    Fast Open unpaused. Returns how many destinations were forgotten.
    """
    return MEMORY.forget(None if address is None else address.strip("[]"), port)


def destination_limit() -> int:
    """How many destinations the process remembers at most (see :func:`set_destination_limit`)."""
    return MEMORY.max_entries


def set_destination_limit(max_entries: int) -> None:
    """Remember at most ``max_entries`` destinations (default 4096, about 0.4 KB each).

    The least recently used are forgotten first; also ``HTTP_FASTPATH_MEMORY_SIZE``.
    """
    MEMORY.max_entries = max_entries
