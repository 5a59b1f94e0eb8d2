"""Server-rendered HTML pages (Jinja2): the sign-in page now, the operations console later.

Templates live in ``app/pages/templates/``; every page extends ``base.html``,
which carries the page's small stylesheet inline (no CDN, no build step: the
pages work on an intranet without internet, and the CSP allows inline styles).
Jinja2 escapes every value, so names and messages can never become markup.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = ["TEMPLATES", "render"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **context: Any) -> str:
    """The page ``name`` (a template file) filled with ``context``."""
    return _environment().get_template(name).render(**context)
