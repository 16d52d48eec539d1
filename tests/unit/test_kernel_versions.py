"""tests/_kernel.py: the skip reasons of kernel-version-dependent tests."""

from __future__ import annotations

import pytest

from .._kernel import MPTCP_TFO, TCP_IS_MPTCP, KernelFeature, linux_version


@pytest.mark.parametrize(
    ("release", "version"),
    [("6.18.44-fc-v657", (6, 18)), ("6.8.0-45-generic", (6, 8)), ("5.15.0", (5, 15)),
     ("4.19", (4, 19)), ("weird", (0, 0))],
)  # fmt: skip
def test_linux_version(release: str, version: tuple[int, int]) -> None:
    assert linux_version(release) == version


def test_an_older_kernel_gets_the_reason() -> None:
    assert TCP_IS_MPTCP.skip_reason("6.8.0-45-generic") == (
        "needs Linux >= 6.10 for TCP_IS_MPTCP; this is 6.8.0-45-generic"
    )
    assert MPTCP_TFO.skip_reason("6.1.0") is not None
    for release in ("6.10.0", "6.18.44-fc-v657", "7.0"):
        assert TCP_IS_MPTCP.skip_reason(release) is None
    assert KernelFeature("x", 5, 6).skip_reason("5.6.0") is None


def test_require_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("platform.release", lambda: "5.10.0-old")
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(
        pytest.skip.Exception,
        match=r"needs Linux >= 6.10 for TCP_IS_MPTCP; this is Linux 5.10.0-old",
    ):
        TCP_IS_MPTCP.require()
