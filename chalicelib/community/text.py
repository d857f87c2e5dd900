"""User text as HTML: a safe Markdown subset rendered by markdown-it-py (a maintained
CommonMark parser), never by regexes. Its `js-default` preset escapes raw HTML and refuses
`javascript:`, `vbscript:`, `file:` and non-image `data:` links (they stay literal text);
images (tracking pixels, hot-linking) and headings (a comment is not a page) are off too.
Links get `rel="nofollow ugc noopener"`: user text earns no search rank and opens no
window handle. The source is stored; the HTML is made when it is shown."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

_DISABLED = ["image", "heading", "lheading", "table", "hr"]


@lru_cache(maxsize=1)
def _renderer() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("js-default", {"linkify": False, "typographer": False}).disable(_DISABLED)

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "nofollow ugc noopener")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


def render(source: str | None) -> str | None:
    """The HTML of a Markdown source (None for None)."""
    if source is None:
        return None
    return _renderer().render(source)
