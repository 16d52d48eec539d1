"""The fastpath options: one frozen, validated object shared by every adapter."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Final, Literal

from .exceptions import OptionError
from .eyeballs import DEFAULT_DELAY, MAX_DELAY, MIN_DELAY

__all__ = ["FastpathOptions", "TFOPolicy", "resolve_options"]

TFOPolicy = Literal["safe", "always"]
_TFO_POLICIES = ("safe", "always")
#: The longest pause or memory an option may ask for (one week).
MAX_SECONDS = 7 * 24 * 3600.0


class _Keep(enum.Enum):
    """``replace()``'s "leave unchanged" for a field where None is a value."""

    KEEP = "keep"


_KEEP: Final = _Keep.KEEP


@dataclasses.dataclass(frozen=True)
class FastpathOptions:
    """What the dialer may try on each new connection.

    Attributes:
        tfo: use TCP Fast Open (``TCP_FASTOPEN_CONNECT``) so the first flight rides in the SYN.
        mptcp: open Multipath TCP sockets (``IPPROTO_MPTCP``); the kernel falls back to TCP
            by itself when the server does not speak MPTCP.
        tfo_policy: ``"safe"`` (default) sends early data only when a replay is harmless:
            a TLS ClientHello, or a cleartext request whose method is idempotent
            (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or a proxy CONNECT.
            ``"always"`` sends any first flight in the SYN (RFC 7413 section 6: only for
            applications that tolerate a duplicated request).
        tfo_pause: seconds TCP Fast Open stays off for a destination (address, port) after
            a middlebox was seen dropping or resetting SYNs with data there (0: never pause).
        mptcp_relearn: seconds a destination's answer to an MPTCP SYN is trusted; a
            destination that answered in plain TCP gets plain TCP sockets (with TCP Fast
            Open) until then, and is asked again afterwards (0: ask on every connection).
        happy_eyeballs_delay: Happy Eyeballs (RFC 8305) for a host with several addresses:
            seconds to wait for one connect attempt before starting the next in parallel
            (the Connection Attempt Delay, 0.25 by default; the RFC forbids less than 0.01
            and advises at least 0.1; at most 2). The first to connect wins, the others are
            closed; the connect timeout bounds the whole race. ``None``: one address after
            another in the resolver's order, each with the full timeout (as
            ``socket.create_connection``).
    """

    tfo: bool = True
    mptcp: bool = True
    tfo_policy: TFOPolicy = "safe"
    tfo_pause: float = 600.0
    mptcp_relearn: float = 600.0
    happy_eyeballs_delay: float | None = DEFAULT_DELAY

    def __post_init__(self) -> None:
        for name in ("tfo", "mptcp"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise OptionError(name, value, "True or False")
        if self.tfo_policy not in _TFO_POLICIES:
            raise OptionError("tfo_policy", self.tfo_policy, " or ".join(map(repr, _TFO_POLICIES)))
        for name in ("tfo_pause", "mptcp_relearn"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not 0 <= value <= MAX_SECONDS
            ):
                raise OptionError(name, value, f"seconds from 0 to {MAX_SECONDS:g}")
        delay = self.happy_eyeballs_delay
        if delay is not None and (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not MIN_DELAY <= delay <= MAX_DELAY  # False for NaN
        ):
            raise OptionError(
                "happy_eyeballs_delay",
                delay,
                f"None (no race) or seconds from {MIN_DELAY:g} to {MAX_DELAY:g} "
                f"(RFC 8305: {DEFAULT_DELAY:g} recommended, not less than 0.1 advised)",
            )

    @property
    def enabled(self) -> bool:
        """True when at least one fast path is switched on."""
        return self.tfo or self.mptcp

    def replace(
        self,
        *,
        tfo: bool | None = None,
        mptcp: bool | None = None,
        tfo_policy: TFOPolicy | None = None,
        tfo_pause: float | None = None,
        mptcp_relearn: float | None = None,
        happy_eyeballs_delay: float | None | _Keep = _KEEP,
    ) -> FastpathOptions:
        """Return a copy with the given fields changed (validated again).

        ``happy_eyeballs_delay=None`` switches the race off (left out: unchanged).
        """
        if isinstance(happy_eyeballs_delay, _Keep):
            happy_eyeballs_delay = self.happy_eyeballs_delay
        return FastpathOptions(
            tfo=self.tfo if tfo is None else tfo,
            mptcp=self.mptcp if mptcp is None else mptcp,
            tfo_policy=self.tfo_policy if tfo_policy is None else tfo_policy,
            tfo_pause=self.tfo_pause if tfo_pause is None else tfo_pause,
            mptcp_relearn=self.mptcp_relearn if mptcp_relearn is None else mptcp_relearn,
            happy_eyeballs_delay=happy_eyeballs_delay,
        )


def resolve_options(
    options: object = None,
    tfo: bool | None = None,
    mptcp: bool | None = None,
    tfo_policy: TFOPolicy | None = None,
) -> FastpathOptions:
    """The options of a constructor that takes ``options=`` or the ``tfo`` / ``mptcp`` /
    ``tfo_policy`` keywords -- every constructor's one resolver, so the same mistake
    gets the same error everywhere.

    Not both: a keyword given with ``options=`` is an :class:`OptionError` naming it (it
    would otherwise be silently ignored, or silently win). The keywords are validated as
    :class:`FastpathOptions` validates its fields.
    """
    if options is None:
        return FastpathOptions().replace(tfo=tfo, mptcp=mptcp, tfo_policy=tfo_policy)
    if not isinstance(options, FastpathOptions):
        raise OptionError("options", options, "a FastpathOptions instance or None")
    for name, value in (("tfo", tfo), ("mptcp", mptcp), ("tfo_policy", tfo_policy)):
        if value is not None:
            raise OptionError(
                name,
                value,
                "None when options= is given: either options=FastpathOptions(...) or the "
                "tfo/mptcp/tfo_policy keywords, not both",
            )
    return options
