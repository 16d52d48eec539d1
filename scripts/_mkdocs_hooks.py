"""mkdocs hook: render the Sphinx roles of http_fastpath's docstrings in the API reference.

The docstrings say ``:class:`FastpathOptions``` and ``:func:`~http_fastpath.probe``` (Sphinx
roles; they read well in ``help()``), which Markdown shows as ``:class:`` followed by code. This
hook turns each role into inline code -- the last dotted part for ``~`` targets -- linked to
its entry when the API page documents that name. Plain HTML, no mkdocs internals.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:class|func|meth|attr|exc|data|mod|obj):<code>(~?)([\w.]+)</code>")
ANCHOR = re.compile(r'\bid="([\w.]+)"')


def on_page_content(html: str, **kwargs: Any) -> str:
    """Replace ``:role:<code>target</code>`` with ``<code>target</code>``, linked when possible."""
    anchors = set(ANCHOR.findall(html))

    def render(match: re.Match[str]) -> str:
        tilde, target = match.groups()
        shown = target.rsplit(".", 1)[-1] if tilde else target
        for candidate in (target, f"http_fastpath.{target}"):
            if candidate in anchors:
                return f'<a href="#{candidate}"><code>{shown}</code></a>'
        return f"<code>{shown}</code>"

    return ROLE.sub(render, html)
