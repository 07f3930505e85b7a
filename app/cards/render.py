"""README.md -> sanitized HTML for the card page.

The Markdown body (its YAML header cut off exactly where `app.cards.metadata` reads it) is
rendered by markdown-it-py (CommonMark + tables + strikethrough, raw HTML allowed as on the
Hub), code fences are highlighted by pygments into `hl-*` classes, and the whole result is
then cleaned by nh3: the card is written by anyone with write access, so `<script>`, `on*=`
handlers, `style` (the page's CSP forbids inline styles anyway) and `javascript:`/`data:`
URLs never reach the browser. Cleaning runs last, on the final HTML, so nothing a renderer
plugin emits can bypass it.

Links are resolved like the Hub does: a relative link opens the file's page in the repo
(`/{repo}/blob/{rev}/{path}`), a relative image loads the file itself (`/resolve/`), and an
image on another host is dropped (the page makes no request outside the server).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import quote, unquote, urlsplit

import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from app.cards.metadata import split_front_matter

HIGHLIGHT_CLASS_PREFIX = "hl-"  # pygments token classes; the stylesheet styles only these
MAX_HIGHLIGHT_CHARS = 200_000  # bigger code blocks stay plain: pygments is ~1 MB/s
ALLOWED_TAGS = (nh3.ALLOWED_TAGS - {"area", "map"}) | {"input", "section"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "code": {"class"},
    "span": {"class"},
    "pre": {"class"},
    "div": {"class"},
    "li": {"class"},
    "ul": {"class"},
    "section": {"class"},
    "sup": {"class"},
    "a": {"href", "hreflang", "title"},
    "input": {"type", "checked", "disabled"},
}
# Classes a card may carry: the ones this renderer emits, never the page's own.
ALLOWED_CLASS_PREFIXES = (HIGHLIGHT_CLASS_PREFIX, "language-", "footnote", "task-list", "contains")


@dataclass(frozen=True)
class LinkBase:
    """Where a card's relative links point: the repo's page prefix and revision."""

    repo_path: str  # "/alice/m" or "/datasets/alice/d", already percent-encoded
    revision: str = "main"
    folder: str = ""  # the card's folder inside the repo ("" for the root README)

    def resolve(self, url: str, *, image: bool) -> str | None:
        """The URL to emit for a link or image, or None to drop it."""
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            return None if image else url  # nh3 then drops unsafe schemes
        if not parts.path or url.startswith(("/", "#", "?")):
            return url
        # markdown-it already percent-encoded the link: decode once, encode once.
        path = posixpath.normpath(posixpath.join(self.folder, unquote(parts.path)))
        if path.startswith("../") or path == "..":
            return None
        kind = "resolve" if image else "blob"
        rev = quote(self.revision, safe="")
        out = f"{self.repo_path}/{kind}/{rev}/{quote(path)}"
        return out + (f"#{parts.fragment}" if parts.fragment else "")


class _CardMarkdown(MarkdownIt):
    """markdown-it prints a `javascript:` link as its raw source text; this one emits every
    link and leaves the verdict to nh3, which drops the unsafe URL and keeps the text."""

    def validateLink(self, url: str) -> bool:
        return True


class CardRenderer:
    """Markdown and sanitizer configured once (both cost more to build than to run)."""

    @cached_property
    def _markdown(self) -> MarkdownIt:
        md = _CardMarkdown("commonmark", {"html": True, "highlight": highlight_code})
        md.enable(["table", "strikethrough"])
        return md.use(footnote_plugin).use(tasklists_plugin)

    def render(self, text: str, base: LinkBase) -> str:
        """The card's Markdown body as safe HTML."""
        _, body = split_front_matter(text)
        html = self._markdown.render(body)
        return sanitize(html, base)


def sanitize(html: str, base: LinkBase) -> str:
    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr in ("href", "src"):
            return base.resolve(value, image=tag == "img")
        if attr == "class":
            kept = [c for c in value.split() if c.startswith(ALLOWED_CLASS_PREFIXES)]
            return " ".join(kept) or None
        if tag == "input" and attr == "type":
            return value if value == "checkbox" else None
        return value

    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=attribute_filter,
        link_rel="noopener noreferrer nofollow",
        url_schemes={"http", "https", "mailto"},
    )


def highlight_code(code: str, lang: str, _attrs: str) -> str:
    """markdown-it's highlight hook: spans with `hl-*` classes, or "" to keep it plain (then
    markdown-it escapes the code itself)."""
    if not lang or len(code) > MAX_HIGHLIGHT_CHARS:
        return ""
    try:
        lexer = get_lexer_by_name(lang.split()[0])
    except ClassNotFound:
        return ""
    formatter = HtmlFormatter(nowrap=True, classprefix=HIGHLIGHT_CLASS_PREFIX)
    return str(highlight(code, lexer, formatter))
