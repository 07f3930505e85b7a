"""README -> HTML: what a card may show, and what never reaches the browser."""

from __future__ import annotations

import pytest

from app.cards.render import CardRenderer, LinkBase

BASE = LinkBase("/alice/m", "main")
DATASET_BASE = LinkBase("/datasets/alice/d", "refs/pr/1")


@pytest.fixture(scope="module")
def renderer() -> CardRenderer:
    return CardRenderer()


def render(renderer: CardRenderer, text: str, base: LinkBase = BASE) -> str:
    return renderer.render(text, base)


@pytest.mark.parametrize(
    ("card", "forbidden"),
    [
        ("<script>alert(1)</script>", "<script"),
        ("<img src=x onerror=alert(1)>", "onerror"),
        ("<a href='javascript:alert(1)'>x</a>", "javascript:"),
        ("<a href='JaVaScRiPt:alert(1)'>x</a>", "javascript:"),
        ("<a href=' javascript:alert(1)'>x</a>", "javascript:"),
        ("[x](javascript:alert(1))", "javascript:"),
        ("[x](<javascript:alert(1)>)", "javascript:"),
        ("![x](javascript:alert(1))", "javascript:"),
        ("<a href='data:text/html,<script>alert(1)</script>'>x</a>", "data:"),
        ("<a href='vbscript:msgbox(1)'>x</a>", "vbscript:"),
        ("<iframe src='https://evil.example'></iframe>", "<iframe"),
        ("<object data='x.swf'></object>", "<object"),
        ("<embed src='x.swf'>", "<embed"),
        ("<svg onload=alert(1)><circle/></svg>", "onload"),
        ("<math><mtext><script>alert(1)</script></mtext></math>", "<script"),
        ("<p style='position:fixed;inset:0'>x</p>", "style="),
        ("<style>body{display:none}</style>", "<style"),
        ("<form action='https://evil.example'><input name=p></form>", "<form"),
        ("<meta http-equiv=refresh content='0;url=https://evil.example'>", "<meta"),
        ("<base href='https://evil.example/'>", "<base"),
        ("<link rel=stylesheet href='https://evil.example/x.css'>", "<link"),
        ("<div class='topbar'>spoof</div>", "topbar"),
        ("<p id='main'>clobber</p>", "id="),
        ("<details open ontoggle=alert(1)>x</details>", "ontoggle"),
    ],
)
def test_dangerous_html_never_reaches_the_page(
    renderer: CardRenderer, card: str, forbidden: str
) -> None:
    html = render(renderer, f"# Card\n\n{card}\n\nafter\n")
    assert forbidden not in html.lower()
    assert "<h1>Card</h1>" in html


def test_yaml_header_is_not_shown(renderer: CardRenderer) -> None:
    html = render(renderer, "---\nlicense: mit\ntags: [a]\n---\n# Title\n")
    assert html.strip() == "<h1>Title</h1>"


def test_tables_and_highlighted_code_render(renderer: CardRenderer) -> None:
    html = render(renderer, "| a | b |\n|--:|---|\n| 1 | 2 |\n\n```python\ndef f(): pass\n```\n")
    assert "<th>a</th>" in html and "<td>2</td>" in html
    assert '<code class="language-python"><span class="hl-k">def</span>' in html


def test_unknown_code_language_stays_plain_and_escaped(renderer: CardRenderer) -> None:
    html = render(renderer, "```nosuchlang\n<b>x</b>\n```\n")
    assert "&lt;b&gt;x&lt;/b&gt;" in html


@pytest.mark.parametrize(
    ("markdown", "base", "expected"),
    [
        ("[c](src/a.py)", BASE, 'href="/alice/m/blob/main/src/a.py"'),
        ("[c](./src/a.py#L2)", BASE, 'href="/alice/m/blob/main/src/a.py#L2"'),
        ("![i](img/p.png)", BASE, 'src="/alice/m/resolve/main/img/p.png"'),
        ("[c](a b.md)", BASE, "[c](a b.md)"),  # not a link in CommonMark
        ("[c](<a b.md>)", BASE, 'href="/alice/m/blob/main/a%20b.md"'),
        ("[c](x.md)", DATASET_BASE, 'href="/datasets/alice/d/blob/refs%2Fpr%2F1/x.md"'),
        ("[c](#usage)", BASE, 'href="#usage"'),
        ("[c](/bob/other)", BASE, 'href="/bob/other"'),
        ("[c](https://example.org/x)", BASE, 'href="https://example.org/x"'),
        ("[c](mailto:a@example.org)", BASE, 'href="mailto:a@example.org"'),
        ("[c](../../etc/passwd)", BASE, "<a "),
    ],
)
def test_links_resolve_to_repo_files(
    renderer: CardRenderer, markdown: str, base: LinkBase, expected: str
) -> None:
    assert expected in render(renderer, markdown, base)


def test_relative_link_leaving_the_repo_is_dropped(renderer: CardRenderer) -> None:
    assert "href" not in render(renderer, "[c](../../etc/passwd)")


def test_images_on_other_hosts_are_dropped(renderer: CardRenderer) -> None:
    """The page makes no request outside the server (a tracking pixel would)."""
    html = render(renderer, "![pixel](https://tracker.example/p.gif)\n<img src='//cdn.example/x'>")
    assert "tracker.example" not in html and "cdn.example" not in html


def test_external_links_carry_rel_noopener(renderer: CardRenderer) -> None:
    html = render(renderer, "[x](https://example.org)")
    assert 'rel="noopener noreferrer nofollow"' in html
