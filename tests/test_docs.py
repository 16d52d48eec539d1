"""Docs: no broken relative links; every public name documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import http_fastpath

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


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


@pytest.mark.parametrize("name", http_fastpath.__all__)
def test_public_names_have_docstrings(name: str) -> None:
    if name == "__version__":
        return
    try:
        obj = getattr(http_fastpath, name)
    except ImportError as exc:  # an extra that is not installed
        pytest.skip(f"{name}: {exc}")
    assert (obj.__doc__ or "").strip(), f"http_fastpath.{name} has no docstring"


def test_readme_names_exactly_the_methods_that_ride_in_the_syn() -> None:
    """The replay-safety choice is documented where users look, and matches the code."""
    from pathlib import Path

    from http_fastpath._policy import SAFE_METHODS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    safety = readme.split("## Safety", 1)[1].split("\n## ", 1)[0]
    for method in SAFE_METHODS:
        assert method.decode() in safety, method
    assert b"POST" not in SAFE_METHODS and b"PATCH" not in SAFE_METHODS
    assert "Never POST or PATCH" in safety
