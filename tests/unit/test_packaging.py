"""The wheel: contents, metadata of the extras, and a fresh install that runs."""

from __future__ import annotations

import email
import subprocess
import zipfile
from pathlib import Path

import pytest

import http_fastpath

from .._wheel import build_wheel, fresh_venv


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def wheel_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_venv(tmp_path_factory.mktemp("venv") / "env", wheel)


def test_sdist_builds_offline_with_everything_needed(tmp_path: Path) -> None:
    import sys
    import tarfile

    from .._wheel import ROOT

    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "--no-isolation",
            "-o",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (sdist,) = tmp_path.glob("http_fastpath-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for needed in ("pyproject.toml", "README.md", "CHANGELOG.md", "http_fastpath/_core/dialer.py"):
        assert needed in names
    assert any(n.startswith("tests/") for n in names)
    assert any(n.startswith("benchmarks/") for n in names)
    assert "http_fastpath/_data/http_fastpath_env.pth" in names  # the wheel needs it


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(name))


def test_wheel_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "http_fastpath_env.pth" in names
    assert "http_fastpath/py.typed" in names
    assert not any(n.startswith(("tests/", "http_fastpath/_data/")) for n in names)


def test_version_is_single_sourced(wheel: Path) -> None:
    assert _metadata(wheel)["Version"] == http_fastpath.__version__


def test_extras_pull_only_what_they_need(wheel: Path) -> None:
    requires = _metadata(wheel).get_all("Requires-Dist") or []
    by_extra: dict[str, set[str]] = {}
    for line in requires:
        spec, _, marker = line.partition(";")
        assert "extra ==" in marker, f"unconditional dependency: {line}"
        extra = marker.split("extra ==")[1].strip().strip("'\"")
        name = spec.strip().split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
        by_extra.setdefault(extra, set()).add(name.lower())
    assert not by_extra["httpx"] & {"requests", "urllib3"}
    assert not by_extra["requests"] & {"httpx", "httpcore", "anyio"}
    assert by_extra["httpx2"] == {"httpx2", "httpcore2", "anyio"}  # nothing of httpx
    assert by_extra["lab"] == {"trustme"}  # http_fastpath.netlab, apart from the runtime
    # the demo: the lab and the two stock clients it races, nothing else
    assert by_extra["demo"] == {"trustme", "requests", "urllib3", "httpx", "httpcore", "anyio"}
    assert {"aioquic", "httpx"} <= by_extra["http3"]  # [http3] alone runs docs/http3.md


def test_license_and_python_versions_in_the_metadata(wheel: Path) -> None:
    meta = _metadata(wheel)
    with zipfile.ZipFile(wheel) as zf:
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in zf.namelist())
    assert meta["License-Expression"] == "MIT"
    classifiers = set(meta.get_all("Classifier") or [])
    versions = {c.rsplit(" ", 1)[1] for c in classifiers if c.count("::") == 2 and "3." in c}
    assert versions == {"3.10", "3.11", "3.12", "3.13"}
    assert meta["Requires-Python"] == ">=3.10"


def test_fresh_install_runs(wheel_python: Path) -> None:
    out = subprocess.run(
        [str(wheel_python), "-m", "http_fastpath", "doctor", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=wheel_python.parent,  # not the checkout: import what the wheel installed
    )
    assert '"tfo_client"' in out.stdout
    where = subprocess.run(
        [str(wheel_python), "-c", "import http_fastpath; print(http_fastpath.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=wheel_python.parent,
    ).stdout
    assert str(wheel_python.parent.parent) in where  # the wheel, not the checkout
