"""Docs: no broken relative links; every public name documented; every snippet runs.

Python snippets: every ```python block of the README and docs/ must compile, and every one in
docs/ runs (in a subprocess, in the test run's network namespace, loopback only) unless the
line right above its fence says why it cannot::

    <!-- no-run: contacts a remote host -->

(an HTML comment: invisible on GitHub and in the mkdocs site). The site itself is built with
``mkdocs build --strict`` by scripts/docs.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import http_fastpath

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SNIPPET = re.compile(
    r"^(?P<indent>[ ]*)(?:<!-- no-run: (?P<reason>[^>]*?) -->\n(?P=indent))?```python\n"
    r"(?P<code>.*?)^(?P=indent)```",
    re.S | re.M,
)
NO_RUN = re.compile(r"<!-- no-run:")


def _snippets(page: Path) -> list[tuple[str, str, str | None]]:
    """(id, code, no-run reason) for each ```python block of a page."""
    text = page.read_text()
    out = []
    for match in SNIPPET.finditer(text):
        line = text.count("\n", 0, match.start("code"))
        code = textwrap.dedent(match["code"])  # a fence inside a list item is indented
        out.append((f"{page.relative_to(ROOT)}:{line}", code, match["reason"]))
    return out


SNIPPETS = [s for page in PAGES if page.name != "CHANGELOG.md" for s in _snippets(page)]
RUNNABLE = [s for s in SNIPPETS if s[0].startswith("docs/") and s[2] is None]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_docs_index_lists_every_page() -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    missing = {p for p in pages if f"({p})" not in index}
    assert not missing, f"docs/index.md does not link {sorted(missing)}"


@pytest.mark.parametrize("name", [n for n in http_fastpath.__all__ if n != "__version__"])
def test_public_names_have_docstrings(name: str) -> None:
    try:
        obj = getattr(http_fastpath, name)
    except ImportError as exc:  # an extra that is not installed
        pytest.skip(f"{name}: {exc}")
    assert (obj.__doc__ or "").strip(), f"http_fastpath.{name} has no docstring"


def test_readme_names_exactly_the_methods_that_ride_in_the_syn() -> None:
    """The replay-safety choice is documented where users look, and matches the code."""
    from pathlib import Path

    from http_fastpath._core.policy import SAFE_METHODS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    safety = readme.split("## Safety", 1)[1].split("\n## ", 1)[0]
    for method in SAFE_METHODS:
        assert method.decode() in safety, method
    assert b"POST" not in SAFE_METHODS and b"PATCH" not in SAFE_METHODS
    assert "Never POST or PATCH" in safety


def test_api_reference_lists_every_public_name() -> None:
    """docs/api.md renders every public name; mkdocs --strict (scripts/docs) resolves them."""
    from http_fastpath import httpx2

    api = (ROOT / "docs" / "api.md").read_text()
    top = {n for n in http_fastpath.__all__ if n != "__version__"}
    missing = sorted(n for n in top if f"::: http_fastpath.{n}\n" not in api)
    assert not missing, f"docs/api.md lacks ::: http_fastpath.NAME for {missing}"
    block = api.split("::: http_fastpath.httpx2\n", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"^\s+- (\w+)$", block, flags=re.M))
    assert listed == set(httpx2.__all__), "docs/api.md: the httpx2 members differ from __all__"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s[0])
def test_snippet_compiles(snippet: tuple[str, str, str | None]) -> None:
    where, code, reason = snippet
    if reason is not None:
        assert reason.strip(), f"{where}: a no-run mark needs its reason"
    compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_no_run_marks_sit_on_python_fences() -> None:
    for page in PAGES:
        text = page.read_text()
        marks = len(NO_RUN.findall(text))
        used = sum(1 for s in _snippets(page) if s[2] is not None)
        assert marks == used, f"{page.name}: a no-run mark not right above a ```python fence"


@pytest.mark.netns
@pytest.mark.parametrize("snippet", RUNNABLE, ids=lambda s: s[0])
def test_snippet_runs(snippet: tuple[str, str, str | None], tmp_path: Path) -> None:
    """Runs the snippet as a script, as a reader would (loopback servers only)."""
    where, code, _ = snippet
    env = {k: v for k, v in os.environ.items() if not k.startswith("HTTP_FASTPATH")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, f"{where}:\n{done.stdout}{done.stderr}"
