"""The fastpath options: one frozen, validated object shared by every adapter."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ._exceptions import OptionError

__all__ = ["FastpathOptions", "TFOPolicy"]

TFOPolicy = Literal["safe", "always"]
_TFO_POLICIES = ("safe", "always")


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
    """

    tfo: bool = True
    mptcp: bool = True
    tfo_policy: TFOPolicy = "safe"

    def __post_init__(self) -> None:
        for name in ("tfo", "mptcp"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise OptionError(name, value, "True or False")
        if self.tfo_policy not in _TFO_POLICIES:
            raise OptionError("tfo_policy", self.tfo_policy, " or ".join(map(repr, _TFO_POLICIES)))

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
    ) -> FastpathOptions:
        """Return a copy with the given fields changed (validated again)."""
        return FastpathOptions(
            tfo=self.tfo if tfo is None else tfo,
            mptcp=self.mptcp if mptcp is None else mptcp,
            tfo_policy=self.tfo_policy if tfo_policy is None else tfo_policy,
        )
