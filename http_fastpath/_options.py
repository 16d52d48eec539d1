"""The fastpath options: one frozen, validated object shared by every adapter."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from ._exceptions import OptionError

__all__ = ["FastpathOptions", "TFOPolicy"]

TFOPolicy = Literal["safe", "always"]
_TFO_POLICIES = ("safe", "always")
#: The longest pause or memory an option may ask for (one week).
MAX_SECONDS = 7 * 24 * 3600.0


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
    """

    tfo: bool = True
    mptcp: bool = True
    tfo_policy: TFOPolicy = "safe"
    tfo_pause: float = 600.0
    mptcp_relearn: float = 600.0

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
    ) -> FastpathOptions:
        """Return a copy with the given fields changed (validated again)."""
        return FastpathOptions(
            tfo=self.tfo if tfo is None else tfo,
            mptcp=self.mptcp if mptcp is None else mptcp,
            tfo_policy=self.tfo_policy if tfo_policy is None else tfo_policy,
            tfo_pause=self.tfo_pause if tfo_pause is None else tfo_pause,
            mptcp_relearn=self.mptcp_relearn if mptcp_relearn is None else mptcp_relearn,
        )
