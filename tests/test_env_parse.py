from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from http_fastpath import FastpathOptions
from http_fastpath._env import parse_environ


@pytest.mark.parametrize(
    ("raw", "tfo", "mptcp"),
    [
        ("tfo", True, False),
        ("mptcp", False, True),
        ("tfo,mptcp", True, True),
        (" TFO , mptcp ", True, True),
        ("1", True, True),
        ("on", True, True),
        ("all", True, True),
    ],
)
def test_features(raw: str, tfo: bool, mptcp: bool) -> None:
    config = parse_environ({"HTTP_FASTPATH": raw})
    assert config.options == FastpathOptions(tfo=tfo, mptcp=mptcp)
    assert config.active and not config.problems


@pytest.mark.parametrize("raw", [None, "", "0", "off", "OFF", "false", "no", "none", " "])
def test_off(raw: str | None) -> None:
    environ = {} if raw is None else {"HTTP_FASTPATH": raw}
    config = parse_environ(environ)
    assert config.options is None and not config.active and not config.problems


def test_bad_token_is_named_and_the_valid_part_applies() -> None:
    config = parse_environ({"HTTP_FASTPATH": "tfo,bogus"})
    assert config.options == FastpathOptions(tfo=True, mptcp=False)
    (problem,) = config.problems
    assert "'bogus'" in problem and "tfo, mptcp" in problem


def test_policy_and_log() -> None:
    config = parse_environ(
        {"HTTP_FASTPATH": "tfo", "HTTP_FASTPATH_TFO_POLICY": "always", "HTTP_FASTPATH_LOG": "INFO"}
    )
    assert config.options is not None and config.options.tfo_policy == "always"
    assert config.log_level == "info"
    bad = parse_environ({"HTTP_FASTPATH": "tfo", "HTTP_FASTPATH_TFO_POLICY": "yolo"})
    assert bad.options is not None and bad.options.tfo_policy == "safe"
    assert "'yolo'" in bad.problems[0] and "safe, always" in bad.problems[0]


@given(
    st.dictionaries(
        st.sampled_from(["HTTP_FASTPATH", "HTTP_FASTPATH_TFO_POLICY", "HTTP_FASTPATH_LOG", "X"]),
        st.text(),
    )
)
def test_fuzzed_environment_never_raises(environ: dict[str, str]) -> None:
    config = parse_environ(environ)
    if config.options is not None:
        assert config.options.tfo or config.options.mptcp
    for problem in config.problems:
        assert problem.startswith("HTTP_FASTPATH")


def test_memory_tuning_variables() -> None:
    config = parse_environ(
        {
            "HTTP_FASTPATH": "tfo,mptcp",
            "HTTP_FASTPATH_TFO_PAUSE": "30",
            "HTTP_FASTPATH_MPTCP_RELEARN": "0.5",
            "HTTP_FASTPATH_MEMORY_SIZE": "128",
        }
    )
    assert config.options == FastpathOptions(tfo_pause=30.0, mptcp_relearn=0.5)
    assert config.memory_size == 128 and not config.problems


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTTP_FASTPATH_TFO_PAUSE", "-1"),
        ("HTTP_FASTPATH_TFO_PAUSE", "nan"),
        ("HTTP_FASTPATH_MPTCP_RELEARN", "ten"),
        ("HTTP_FASTPATH_MPTCP_RELEARN", "1e9"),
        ("HTTP_FASTPATH_MEMORY_SIZE", "0"),
        ("HTTP_FASTPATH_MEMORY_SIZE", "1.5"),
    ],
)
def test_bad_memory_tuning_is_named_and_ignored(name: str, value: str) -> None:
    config = parse_environ({"HTTP_FASTPATH": "tfo", name: value})
    (problem,) = config.problems
    assert name in problem and repr(value) in problem
    assert config.options == FastpathOptions(tfo=True, mptcp=False)
    assert config.memory_size is None
