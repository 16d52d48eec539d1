from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from http_fastpath import FastpathOptions
from http_fastpath._integrations.env import parse_environ


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


@pytest.mark.parametrize(
    ("raw", "tfo", "mptcp", "http3"),
    [
        ("tfo,mptcp,h3", True, True, True),
        ("H3, tfo", True, False, True),
        ("h3", False, False, True),  # the upgrade alone: TCP without TFO/MPTCP
        ("all", True, True, False),  # experimental features only by name
        ("1,h3", True, True, True),
        ("tfo,mptcp", True, True, False),
    ],
)
def test_h3_only_by_name(raw: str, tfo: bool, mptcp: bool, http3: bool) -> None:
    config = parse_environ({"HTTP_FASTPATH": raw})
    assert config.options == FastpathOptions(tfo=tfo, mptcp=mptcp)
    assert config.http3 is http3 and not config.problems


@pytest.mark.parametrize("raw", [None, "", "0", "off", "OFF", "false", "no", "none", " "])
def test_off(raw: str | None) -> None:
    environ = {} if raw is None else {"HTTP_FASTPATH": raw}
    config = parse_environ(environ)
    assert config.options is None and not config.active and not config.problems


def test_bad_token_is_named_and_the_valid_part_applies() -> None:
    config = parse_environ({"HTTP_FASTPATH": "tfo,bogus"})
    assert config.options == FastpathOptions(tfo=True, mptcp=False)
    (problem,) = config.problems
    assert "'bogus'" in problem and "tfo, mptcp, h3" in problem


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


def test_happy_eyeballs_off() -> None:
    config = parse_environ({"HTTP_FASTPATH": "1", "HTTP_FASTPATH_HAPPY_EYEBALLS_DELAY": "off"})
    assert config.options is not None and config.options.happy_eyeballs_delay is None


def test_memory_tuning_variables() -> None:
    config = parse_environ(
        {
            "HTTP_FASTPATH": "tfo,mptcp",
            "HTTP_FASTPATH_TFO_PAUSE": "30",
            "HTTP_FASTPATH_MPTCP_RELEARN": "0.5",
            "HTTP_FASTPATH_MEMORY_SIZE": "128",
            "HTTP_FASTPATH_HAPPY_EYEBALLS_DELAY": "0.1",
        }
    )
    assert config.options == FastpathOptions(
        tfo_pause=30.0, mptcp_relearn=0.5, happy_eyeballs_delay=0.1
    )
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
        ("HTTP_FASTPATH_HAPPY_EYEBALLS_DELAY", "0.001"),
        ("HTTP_FASTPATH_HAPPY_EYEBALLS_DELAY", "3"),
        ("HTTP_FASTPATH_HAPPY_EYEBALLS_DELAY", "soon"),
    ],
)
def test_bad_memory_tuning_is_named_and_ignored(name: str, value: str) -> None:
    config = parse_environ({"HTTP_FASTPATH": "tfo", name: value})
    (problem,) = config.problems
    assert name in problem and repr(value) in problem
    assert config.options == FastpathOptions(tfo=True, mptcp=False)
    assert config.memory_size is None


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("debug", "debug"),
        ("INFO", "info"),
        ("warning", "warning"),
        ("warn", "warning"),
        (" error ", "error"),
        ("critical", "critical"),
        ("FATAL", "critical"),
    ],
)
def test_every_standard_log_level_name(raw: str, level: str) -> None:
    config = parse_environ({"HTTP_FASTPATH_LOG": raw})
    assert config.log_level == level and not config.problems
    assert config.options is None  # HTTP_FASTPATH_LOG alone asks for no fast path


def test_bad_log_level_lists_the_valid_ones() -> None:
    (problem,) = parse_environ({"HTTP_FASTPATH_LOG": "loud"}).problems
    assert problem.startswith("HTTP_FASTPATH_LOG: unknown value 'loud' ignored")
    assert "debug, info, warning, error, critical" in problem


def test_host_variables() -> None:
    config = parse_environ(
        {
            "HTTP_FASTPATH": "tfo",
            "HTTP_FASTPATH_HOSTS": " .Example.COM, 10.0.0.0/8 api.test:8443 ",
            "HTTP_FASTPATH_EXCLUDE": "internal.example.com",
        }
    )
    assert not config.problems
    assert config.hosts == (".example.com", "10.0.0.0/8", "api.test:8443")
    assert config.exclude == ("internal.example.com",)
    unset = parse_environ({"HTTP_FASTPATH": "tfo", "HTTP_FASTPATH_HOSTS": " , "})
    assert unset.hosts is None and unset.exclude is None and not unset.problems


def test_bad_host_entries_are_named_and_the_valid_ones_apply() -> None:
    config = parse_environ(
        {"HTTP_FASTPATH": "tfo", "HTTP_FASTPATH_EXCLUDE": "ok.test,10.0.0.0/33,a:b,[x]"}
    )
    assert config.exclude == ("ok.test",)
    assert [p.split(" ignored")[0] for p in config.problems] == [
        "HTTP_FASTPATH_EXCLUDE: '10.0.0.0/33'",
        "HTTP_FASTPATH_EXCLUDE: 'a:b'",
        "HTTP_FASTPATH_EXCLUDE: '[x]'",
    ]
    assert "CIDR" in config.problems[0]
    # Nothing valid left in HTTP_FASTPATH_HOSTS: no host gets the fast path (not every host).
    only_bad = parse_environ({"HTTP_FASTPATH": "tfo", "HTTP_FASTPATH_HOSTS": "a:b"})
    assert only_bad.hosts == () and len(only_bad.problems) == 1


def test_read_environ_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """``http_fastpath.read_environ()`` parses ``os.environ`` without applying it."""
    import http_fastpath

    monkeypatch.setenv("HTTP_FASTPATH", "tfo")
    monkeypatch.setenv("HTTP_FASTPATH_MEMORY_SIZE", "12")
    config = http_fastpath.read_environ(warn=False)
    assert isinstance(config, http_fastpath.EnvConfig)
    assert config.raw == "tfo" and config.memory_size == 12
    assert config.options is not None and (config.options.tfo, config.options.mptcp) == (
        True,
        False,
    )
