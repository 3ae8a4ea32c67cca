"""Model-written Markdown to safe HTML.

Two independent layers, so that a mistake in one is caught by the other:
1. markdown-it-py with raw HTML disabled: ``<script>`` in the text becomes ``&lt;script&gt;``.
2. nh3 (ammonia) keeps only a small allow-list of tags and attributes and drops unsafe URL
   schemes (``javascript:``), whatever the first layer produced.
"""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
_md.enable("strikethrough")

ALLOWED_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}


def render_markdown(text: str | None) -> SafeString:
    """Markdown to HTML that is safe to place in a page (see the module docstring)."""
    if not text:
        return mark_safe("")
    html = _md.render(str(text))
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 (sanitised by nh3 just above)
