from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from http_fastpath import FastpathError, FastpathOptions, OptionError
from http_fastpath._core.policy import is_replay_safe, is_tls_client_hello, request_method


def test_defaults() -> None:
    opts = FastpathOptions()
    assert (opts.tfo, opts.mptcp, opts.tfo_policy) == (True, True, "safe")
    assert opts.enabled


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"tfo": "yes"}, "tfo", "True or False"),
        ({"mptcp": 1}, "mptcp", "True or False"),
        ({"tfo_policy": "sometimes"}, "tfo_policy", "'safe' or 'always'"),
    ],
)
def test_invalid_values_name_the_field_value_and_allowed(
    kwargs: dict[str, object], field: str, allowed: str
) -> None:
    with pytest.raises(OptionError) as info:
        FastpathOptions(**kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert field in message and repr(next(iter(kwargs.values()))) in message
    assert f"allowed: {allowed}" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, FastpathError)
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == message


@given(st.one_of(st.text(), st.integers(), st.none(), st.booleans()))
def test_fuzzed_policy_only_documented_errors(value: object) -> None:
    try:
        FastpathOptions(tfo_policy=value)  # type: ignore[arg-type]
    except OptionError:
        assert value not in ("safe", "always")
    else:
        assert value in ("safe", "always")


def test_replace_validates() -> None:
    assert FastpathOptions().replace(tfo=False).tfo is False
    with pytest.raises(OptionError):
        FastpathOptions().replace(tfo_policy="never")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "safe"),
    [
        (b"GET / HTTP/1.1\r\n", True),
        (b"HEAD / HTTP/1.1\r\n", True),
        (b"PUT /x HTTP/1.1\r\n", True),
        (b"DELETE /x HTTP/1.1\r\n", True),
        (b"OPTIONS * HTTP/1.1\r\n", True),
        (b"CONNECT example.test:443 HTTP/1.1\r\n", True),
        (b"POST / HTTP/1.1\r\n", False),
        (b"PATCH / HTTP/1.1\r\n", False),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", False),
        (b"get / HTTP/1.1\r\n", False),
        (b"", False),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", True),
        (b"\x16\x03\x01\x02\x00\x02", False),
        (b"\x17\x03\x03\x00\x10\x01", False),
    ],
)
def test_replay_policy(data: bytes, safe: bool) -> None:
    assert is_replay_safe(data) is safe


@given(st.binary(max_size=64))
def test_policy_never_raises(data: bytes) -> None:
    result = is_replay_safe(data)
    if result:
        assert is_tls_client_hello(data) or request_method(data) is not None


# -- one resolver for every constructor ---------------------------------------------------------


def _constructors() -> list[tuple[str, object]]:
    """Every public constructor that takes options= (and the keywords, where it has them)."""
    import http_fastpath
    from http_fastpath import FastpathAdapter, FastpathPoolManager, FastpathProxyManager

    from .._stack import AsyncFastpathTransport, FastpathTransport

    out: list[tuple[str, object]] = [
        ("FastpathAdapter", FastpathAdapter),
        ("FastpathPoolManager", FastpathPoolManager),
        ("FastpathProxyManager", lambda **kw: FastpathProxyManager("http://127.0.0.1:9", **kw)),
        ("FastpathTransport", FastpathTransport),
        ("AsyncFastpathTransport", AsyncFastpathTransport),
    ]
    return out + [("install", http_fastpath.install)]


@pytest.mark.parametrize(
    ("kwargs", "name", "allowed"),
    [
        ({"options": {"tfo": False}}, "options", "a FastpathOptions instance or None"),
        ({"options": FastpathOptions(), "tfo": False}, "tfo", "not both"),
        ({"options": FastpathOptions(), "mptcp": True}, "mptcp", "not both"),
        ({"options": FastpathOptions(), "tfo_policy": "safe"}, "tfo_policy", "not both"),
        ({"tfo": "yes"}, "tfo", "True or False"),
        ({"tfo_policy": "sometimes"}, "tfo_policy", "'safe' or 'always'"),
    ],
)
def test_every_constructor_says_the_same_for_the_same_mistake(
    kwargs: dict[str, object], name: str, allowed: str
) -> None:
    import http_fastpath

    messages = set()
    for what, make in _constructors():
        if what == "install" and set(kwargs) != {"options"}:
            continue  # install() takes options= only
        with pytest.raises(OptionError) as raised:
            make(**kwargs)  # type: ignore[operator]
        assert raised.value.name == name, what
        assert allowed in str(raised.value), (what, str(raised.value))
        messages.add(str(raised.value))
        assert http_fastpath.status()["active"] is False
    assert len(messages) == 1, messages


def test_keywords_build_the_same_options_everywhere() -> None:
    from http_fastpath import FastpathAdapter, FastpathPoolManager

    from .._stack import FastpathTransport

    want = FastpathOptions(tfo=False, mptcp=True, tfo_policy="always")
    kw = {"tfo": False, "tfo_policy": "always"}
    assert FastpathAdapter(**kw).fastpath_options == want  # type: ignore[arg-type]
    assert FastpathPoolManager(**kw).fastpath_options == want  # type: ignore[arg-type]
    assert FastpathTransport(**kw).options == want  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["FastpathBackend", "AsyncFastpathBackend"])
def test_backends_validate_like_the_rest(backend: str) -> None:
    from .. import _stack

    cls = getattr(_stack, backend)
    assert cls().options == FastpathOptions()
    assert cls(FastpathOptions(tfo=False)).options.tfo is False
    with pytest.raises(OptionError, match="a FastpathOptions instance or None") as raised:
        cls({"tfo": False})
    assert raised.value.name == "options"
    with pytest.raises(OptionError, match="retries"):
        cls(retries=-1)
