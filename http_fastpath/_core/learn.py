"""After the connect: what one attempt teaches about its destination, as a pure function.

:func:`learn` takes what the kernel reported (:class:`Observation`) and returns the
destination's next state, the reasons and what the shell does next (:class:`Learned`):
TCP Fast Open pauses on evidence of a middlebox, MPTCP answers are remembered, a reset SYN
with data is retried with a plain SYN. :func:`counted` is what most connections teach
(one more connection), which the shell may store without calling :func:`learn`. The
shell is :func:`.record._learn`; the plans before the connect are in :mod:`.decide`.
"""

from __future__ import annotations

import dataclasses
import enum

from . import linux as _linux
from .memory import Destination, MptcpAnswer, counted
from .options import FastpathOptions
from .reasons import Now, Reason, Why, _clock, describe, is_loopback, reason

__all__ = ["ConnectOutcome", "Learned", "Observation", "counted", "learn", "only_counted"]


class ConnectOutcome(enum.Enum):
    """How a connect attempt ended."""

    CONNECTED = "connected"
    REFUSED = "refused"  # ECONNREFUSED: the SYN was answered with a reset
    TIMEOUT = "timeout"
    FAILED = "failed"  # anything else (unreachable, reset after the handshake...)


@dataclasses.dataclass(frozen=True)
class Observation:
    """What the kernel reported about one connect attempt.

    Attributes:
        outcome: how the attempt ended.
        socket_proto: the protocol the socket was created with.
        syn_data_bytes: bytes of the first flight the kernel took with the SYN.
        syn_data_acked: ``TCP_INFO`` says the server acknowledged the SYN data.
        tfo_client_fail: ``tcpi_fastopen_client_fail`` (0 none, 3 SYN retransmitted).
        is_mptcp: ``TCP_IS_MPTCP`` on a connected MPTCP socket (None: not asked / unknown).
        plain_retry: the attempt was the plain-SYN retry after a reset to SYN data.
    """

    outcome: ConnectOutcome
    socket_proto: int
    syn_data_bytes: int = 0
    syn_data_acked: bool = False
    tfo_client_fail: int = 0
    is_mptcp: bool | None = None
    plain_retry: bool = False


@dataclasses.dataclass(frozen=True)
class Learned:
    """The result of :func:`learn`.

    Attributes:
        dest: the destination's next state.
        reasons: what happened, for the connection's record.
        retry_plain: try the same address once more with a plain SYN (no TFO).
        stall_risk: data rode in an MPTCP SYN to an MPTCP server off loopback, which the
            plans never allow (a safety net): the server's kernel holds its reply until the
            client's next MPTCP data segment, and nothing the client can send without
            closing or splitting the request releases it (measured: keep-alive probes,
            window updates, zero-length sends all fail). The shell drops the connection and
            sends the first flight again with a plain SYN: the server may handle it twice,
            which the replay policy accepted when it let the flight into the SYN.
    """

    dest: Destination
    reasons: tuple[Reason, ...] = ()
    retry_plain: bool = False
    stall_risk: bool = False


def learn(
    options: FastpathOptions,
    dest: Destination,
    key: tuple[int, str, int],
    now: Now,
    obs: Observation,
) -> Learned:
    """The destination's next state after the attempt ``obs`` (see :class:`Learned`).

    TCP Fast Open pauses only on evidence of a middlebox: a SYN with data lost while the
    plain retransmit got through (``TFO_SYN_RETRANSMITTED``), or a SYN with data reset
    while the plain SYN that follows is accepted. A refused plain SYN is a dead server:
    no pause, and the next attempt starts with a plain SYN, as stock's does.
    """
    if obs.outcome is ConnectOutcome.REFUSED:
        dest_text = describe(key)
        if obs.syn_data_bytes > 0 and not obs.plain_retry:
            return Learned(
                dest.replace(syn_data_reset_at=now.mono),
                (reason(Why.TFO_SYN_DATA_RESET, dest=dest_text),),
                retry_plain=True,
            )
        reasons: tuple[Reason, ...] = ()
        if obs.plain_retry:
            reasons = (reason(Why.TFO_DEAD_SERVER, dest=dest_text),)
        return Learned(dest.replace(refused_at=now.mono, syn_data_reset_at=None), reasons)
    if obs.outcome is not ConnectOutcome.CONNECTED:
        return Learned(dest)
    new = counted(dest, obs.syn_data_acked)
    if only_counted(obs.socket_proto, obs.plain_retry, obs.syn_data_bytes, obs.tfo_client_fail):
        return Learned(new)
    pause_why: Why | None = None
    if obs.plain_retry:
        pause_why = Why.TFO_PAUSE_RESET
        pause_text = "a middlebox reset a SYN with data while a plain SYN got through"
    elif obs.syn_data_bytes > 0 and obs.tfo_client_fail == _linux.TFO_SYN_RETRANSMITTED:
        pause_why = Why.TFO_PAUSE_LOST
        pause_text = "a SYN with data was lost while the plain retransmit got through"
    dest_text = describe(key)
    out: list[Reason] = []
    if pause_why is not None and options.tfo_pause > 0:
        until = now.mono + options.tfo_pause
        new = new.replace(
            tfo_paused_until=until, tfo_pause_reason=pause_text, tfo_pauses=new.tfo_pauses + 1
        )
        out.append(reason(pause_why, dest=dest_text, until=_clock(now, until)))
    stall_risk = False
    if obs.socket_proto == _linux.IPPROTO_MPTCP and obs.is_mptcp is not None:
        answer = MptcpAnswer.MPTCP if obs.is_mptcp else MptcpAnswer.PLAIN_TCP
        new = new.replace(
            mptcp=answer, mptcp_learned_at=now.mono, mptcp_until=now.mono + options.mptcp_relearn
        )
        if obs.is_mptcp and obs.syn_data_bytes > 0 and not is_loopback(key[1]):
            stall_risk = True
            out.append(reason(Why.MPTCP_SYN_DATA_STALL, dest=dest_text))
    return Learned(new, tuple(out), stall_risk=stall_risk)


def only_counted(
    socket_proto: int, plain_retry: bool, syn_data_bytes: int, client_fail: int
) -> bool:
    """True when a completed connect teaches nothing but one more connection (most do).

    A plain TCP socket (nothing to learn about MPTCP), not the plain retry after a reset
    SYN with data, and no lost SYN with data: :func:`learn` returns just
    ``Learned(counted(dest, acked))``, so the shell may store :func:`counted` directly.
    """
    return (
        socket_proto != _linux.IPPROTO_MPTCP
        and not plain_retry
        and not (syn_data_bytes > 0 and client_fail == _linux.TFO_SYN_RETRANSMITTED)
    )
