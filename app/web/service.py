"""What the repo pages show, read through the repo service and the hub's cached listings
(no HTTP here). Everything derived from a git tree or blob is cached by its sha in the app's
`TreeCache`: content-addressed, so it never goes stale, and a card page of a 10,000-file repo
costs a handful of indexed queries once warm.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound
from sqlalchemy.orm import Session

from app.auth.permissions import Principal
from app.blobs import BlobStore
from app.cards.derived import parameter_counts, safetensors_header
from app.cards.render import HIGHLIGHT_CLASS_PREFIX, CardRenderer, LinkBase
from app.errors import EntryNotFound
from app.gating import service as gating
from app.gating.form import GateForm, countries, gate_form
from app.gating.models import STATUSES
from app.gating.service import Standing
from app.repos import content
from app.repos.gitobjects import load_object
from app.repos.history import path_history
from app.repos.lastcommit import LastCommit, last_commits
from app.repos.listing import Listed, TreeCache
from app.repos.models import Commit, Repo
from app.repos.service import (
    HEADS,
    TAGS,
    FileEntry,
    find_entry,
    get_commit,
    get_repo,
    list_refs,
    resolve_revision,
)
from app.web.urls import repo_url

MAX_INLINE_TEXT = 512 * 1024  # bigger files get a download link: a browser tab is no pager
MAX_HIGHLIGHT = 256 * 1024  # pygments runs ~1 MB/s; keep a page under a fraction of a second
MAX_DIFF_FILES = 50  # files with a diff shown on a commit page (others: listed only)
MAX_LISTED_CHANGES = 300  # files listed on a commit page
MAX_DIFF_BYTES = 128 * 1024  # per side; bigger files show "too large to show"
FOLDER_PAGE = 200  # entries per tree page
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp", ".ico")
README = "README.md"

Entry = Listed | FileEntry


@dataclass
class Revision:
    """A repo at one revision: what every repo page starts from."""

    repo: Repo
    name: str  # as asked: a branch, tag or sha
    commit: Commit
    branches: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commit.sha

    @property
    def tree(self) -> str:
        return self.commit.tree_sha


def open_revision(
    db: Session,
    principal: Principal,
    repo_type: str,
    repo_id: str,
    revision: str | None,
    *,
    content: bool = False,
) -> Revision:
    """The repo at revision; with content, for a page that shows file content (a gated
    repo's needs granted access)."""
    repo = get_repo(db, principal, repo_type, repo_id, content=content)
    name = revision or "main"
    commit = get_commit(db, resolve_revision(db, repo, name))
    return Revision(repo, name, commit)


def with_refs(db: Session, revision: Revision) -> Revision:
    """Fill the branch and tag names for the revision switcher."""
    for ref in list_refs(db, revision.repo):
        if ref.name.startswith(HEADS):
            revision.branches.append(ref.name.removeprefix(HEADS))
        elif ref.name.startswith(TAGS):
            revision.tags.append(ref.name.removeprefix(TAGS))
    return revision


# --- card page -------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    files: int
    total_size: int


def summary(db: Session, cache: TreeCache, tree: str) -> Summary:
    def count() -> Summary:
        files = [e for e in cache.get(db, tree) if e.kind != "tree"]
        return Summary(len(files), sum(e.size for e in files))

    return cache.rendered(("web-summary", tree), count)


def readme_html(
    db: Session, blobs: BlobStore, cache: TreeCache, renderer: CardRenderer, rev: Revision
) -> str | None:
    """The rendered README of the revision, or None when it has none. Keyed by the blob and
    the link base: relative links name the revision they were read at."""
    entry = find_entry(db, rev.tree, README)
    if entry is None or entry.is_dir or entry.lfs_oid is not None:
        return None
    base = LinkBase(repo_url(rev.repo), rev.name)

    def render() -> bytes:
        text = load_object(blobs, entry.oid).as_raw_string().decode("utf-8", "replace")
        return renderer.render(text, base).encode()

    return cache.rendered(("web-card", entry.oid, base), render).decode()


# --- the gate of a gated repo ------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """What a gated repo's card shows: the form its card declares and where the visitor stands."""

    mode: str  # auto | manual
    form: GateForm
    prompt_html: str | None
    standing: Standing
    countries: tuple[str, ...]


def gate_of(db: Session, principal: Principal, renderer: CardRenderer, repo: Repo) -> Gate | None:
    """None for a repo that is not gated."""
    if not gating.is_gated(repo):
        return None
    form = gate_form(repo.card_data, repo.type)
    prompt = renderer.render(form.prompt, LinkBase(repo_url(repo))) if form.prompt else None
    needs_countries = any(f.kind == "country" for f in form.fields)
    return Gate(
        mode=repo.gated or "",
        form=form,
        prompt_html=prompt,
        standing=gating.standing(db, principal, repo),
        countries=countries() if needs_countries else (),
    )


@dataclass(frozen=True)
class Review:
    """The access requests of a gated repo's settings page, by status (oldest first)."""

    pending: Sequence[gating.Listed]
    accepted: Sequence[gating.Listed]
    rejected: Sequence[gating.Listed]


REVIEW_LIMIT = 500  # per status on the page; the API pages through all of them


def review_of(db: Session, repo: Repo) -> Review | None:
    if not gating.is_gated(repo):
        return None
    lists = {s: gating.requests(db, repo, s, limit=REVIEW_LIMIT) for s in STATUSES}
    return Review(**lists)


# --- tree page -------------------------------------------------------------------------


@dataclass(frozen=True)
class Folder:
    path: str
    entries: list[Entry]  # this page of them
    last: dict[str, LastCommit]
    total: int  # entries in the whole folder
    page: int  # 1-based

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // FOLDER_PAGE))


def folder(db: Session, cache: TreeCache, rev: Revision, path: str, page: int = 1) -> Folder:
    """One page of the folder's entries, folders first, each with its last commit.

    Entries come from the cached listing of the whole revision (a 10,000-file folder is
    not re-read per view), and last commits are looked up for the page only and cached by
    commit: they walk history, so all 10,000 at once would take seconds."""
    path, page = path.strip("/"), max(page, 1)
    start = find_entry(db, rev.tree, path)
    if start is None or not start.is_dir:
        raise EntryNotFound(f"No folder {path!r} at {rev.name}")
    children = children_of(cache.get(db, rev.tree), path)
    ordered = [e for e in children if e.is_dir] + [e for e in children if not e.is_dir]
    entries = ordered[(page - 1) * FOLDER_PAGE : page * FOLDER_PAGE]

    def lookup() -> dict[str, LastCommit]:
        return last_commits(db, rev.repo.id, rev.sha, entries)

    last = cache.rendered(("web-last-commits", rev.sha, path, page), lookup)
    return Folder(path, list(entries), last, len(ordered), page)


def children_of(listing: Sequence[Listed], path: str) -> list[Listed]:
    """The direct children of folder path in a revision's listing (sorted by path, so the
    folder's entries are one run found by bisection)."""
    prefix = f"{path}/" if path else ""
    first = bisect.bisect_left(listing, (prefix,))
    out = []
    for entry in listing[first:]:
        if not entry.path.startswith(prefix):
            break
        if "/" not in entry.path[len(prefix) :]:
            out.append(entry)
    return out


def breadcrumbs(path: str) -> list[tuple[str, str]]:
    """(name, path up to it) for every folder of path."""
    parts = [p for p in path.split("/") if p]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


# --- file page -------------------------------------------------------------------------

BlobKind = Literal["text", "image", "lfs", "binary", "large"]


@dataclass(frozen=True)
class BlobView:
    entry: FileEntry
    kind: BlobKind
    html: str = ""  # highlighted lines, for text
    lines: int = 0


def blob_view(
    db: Session, blobs: BlobStore, cache: TreeCache, rev: Revision, path: str
) -> BlobView:
    entry = find_entry(db, rev.tree, path)
    if entry is None or entry.is_dir:
        raise EntryNotFound(f"Entry not found: {path}")
    if path.lower().endswith(IMAGE_SUFFIXES):
        return BlobView(entry, "image")
    if entry.lfs_oid is not None:
        return BlobView(entry, "lfs")
    if entry.size > MAX_INLINE_TEXT:
        return BlobView(entry, "large")

    def render() -> tuple[bytes, bytes]:
        data = load_object(blobs, entry.oid).as_raw_string()
        text = as_text(data)
        if text is None:
            return b"", b"binary"
        text = pretty_json(path, text)
        return highlight_file(path, text).encode(), str(len(text.splitlines())).encode()

    html, lines = cache.rendered(("web-blob", entry.oid, path.rsplit("/", 1)[-1]), render)
    if lines == b"binary":
        return BlobView(entry, "binary")
    return BlobView(entry, "text", html.decode(), int(lines))


BLAME_VERSIONS = 200  # versions of a file read for its blame (older lines go to the oldest)
MAX_BLAME_TEXT = 256 * 1024


@dataclass(frozen=True)
class BlameLine:
    number: int
    text: str
    commit: Commit
    first: bool  # the first line of a run from the same commit


def blame(db: Session, blobs: BlobStore, rev: Revision, path: str) -> list[BlameLine] | None:
    """Each line of a text file with the commit that last changed it (as `git blame` along
    first parents), from at most BLAME_VERSIONS versions; None for what is not small text."""
    entry = find_entry(db, rev.tree, path)
    if entry is None or entry.is_dir or entry.lfs_oid is not None or entry.size > MAX_BLAME_TEXT:
        return None
    commits, _ = path_history(db, rev.sha, path, limit=BLAME_VERSIONS)
    versions: list[tuple[Commit, list[str]]] = []
    for commit in reversed(commits):  # oldest first
        found = find_entry(db, commit.tree_sha, path)
        if found is None or found.is_dir or found.lfs_oid is not None:
            versions = []  # deleted or replaced: blame starts again after it
            continue
        text = as_text(load_object(blobs, found.oid).as_raw_string())
        if text is None:
            return None
        versions.append((commit, text.splitlines()))
    if not versions:
        return None
    owners = [versions[0][0]] * len(versions[0][1])
    previous = versions[0][1]
    for commit, lines in versions[1:]:
        matcher = difflib.SequenceMatcher(None, previous, lines, autojunk=False)
        next_owners: list[Commit] = []
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                next_owners += owners[i1:i2]
            else:
                next_owners += [commit] * (j2 - j1)
        owners, previous = next_owners, lines
    return [
        BlameLine(n + 1, line, owner, n == 0 or owners[n - 1].sha != owner.sha)
        for n, (line, owner) in enumerate(zip(previous, owners, strict=True))
    ]


MAX_TENSORS_SHOWN = 500  # rows of a safetensors file's tensor table
MAX_TENSOR_HEADER = 4 * 1024 * 1024  # a page reads headers up to this (real ones: KiBs to 2 MiB)


@dataclass(frozen=True)
class Tensors:
    """What a safetensors file's header says, read by range (the weights are not read)."""

    rows: list[tuple[str, str, str, int]]  # name, dtype, shape, parameters
    count: int  # tensors in the file
    parameters: int
    by_dtype: dict[str, int]
    metadata: dict[str, str]


def safetensors_view(db: Session, blobs: BlobStore, entry: FileEntry) -> Tensors | None:
    """The tensor table of a `.safetensors` file; None for other files or a header that is
    not one (the file page then says nothing about tensors)."""
    if not entry.path.endswith(".safetensors") or entry.size < 8:
        return None
    header = safetensors_header(blobs, content.locate(blobs, entry, db), MAX_TENSOR_HEADER)
    if header is None:
        return None
    tensors = [(k, v) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    rows = []
    for name, info in tensors[:MAX_TENSORS_SHOWN]:
        shape = info.get("shape")
        dims = shape if isinstance(shape, list) else []
        size = 1
        for dim in dims:
            size *= dim if isinstance(dim, int) and not isinstance(dim, bool) else 0
        rows.append((name, str(info.get("dtype", "?")), f"[{', '.join(map(str, dims))}]", size))
    by_dtype = parameter_counts([header])
    raw = header.get("__metadata__")
    metadata = {str(k): str(v)[:200] for k, v in raw.items()} if isinstance(raw, dict) else {}
    return Tensors(rows, len(tensors), sum(by_dtype.values()), by_dtype, metadata)


def pretty_json(path: str, text: str) -> str:
    """A minified JSON file (one long line) indented for reading; anything else as it is."""
    if not path.lower().endswith(".json") or text.count("\n") > 1 or len(text) < 120:
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return text


def as_text(data: bytes) -> str | None:
    """The file as text, or None for binary (a NUL byte or invalid UTF-8, as git decides)."""
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def highlight_file(path: str, text: str) -> str:
    """Highlighted lines in a numbered table (`hl-*` classes only: the CSP forbids inline
    styles). Huge files are escaped without lexing."""
    lexer = TextLexer()
    if len(text) <= MAX_HIGHLIGHT:
        with contextlib.suppress(ClassNotFound):
            lexer = get_lexer_for_filename(path.rsplit("/", 1)[-1], stripnl=False)
    formatter = HtmlFormatter(
        linenos="table", classprefix=HIGHLIGHT_CLASS_PREFIX, cssclass="hl-code", lineanchors="L"
    )
    return str(highlight(text, lexer, formatter))


# --- commit page -----------------------------------------------------------------------

ChangeKind = Literal["added", "deleted", "modified"]


@dataclass(frozen=True)
class FileChange:
    path: str
    kind: ChangeKind
    old: Listed | None
    new: Listed | None
    diff: list[tuple[str, str]] | None = None  # (css class, line); None when not shown
    note: str = ""


@dataclass(frozen=True)
class Changes:
    files: list[FileChange]  # the first MAX_LISTED_CHANGES
    total: int


def commit_changes(db: Session, blobs: BlobStore, cache: TreeCache, commit: Commit) -> Changes:
    """Files the commit changed against its first parent, with line diffs for small text.
    A commit of 10,000 files lists the first few hundred: a page is not an archive."""
    parent_tree = get_commit(db, commit.parents[0]).tree_sha if commit.parents else None
    return tree_changes(db, blobs, cache, parent_tree, commit.tree_sha)


def tree_changes(
    db: Session, blobs: BlobStore, cache: TreeCache, old_tree: str | None, new_tree: str
) -> Changes:
    """Files that differ from old_tree to new_tree (a commit's, or a pull request's)."""
    trees = cache.get_many(db, [t for t in (new_tree, old_tree) if t])
    new = {e.path: e for e in trees[new_tree] if e.kind != "tree"}
    old = {e.path: e for e in trees[old_tree] if e.kind != "tree"} if old_tree else {}
    changes = []
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path), new.get(path)
        if before is not None and after is not None and before.oid == after.oid:
            continue
        kind: ChangeKind = "added" if before is None else "deleted" if after is None else "modified"
        changes.append(FileChange(path, kind, before, after))
    shown = [
        _with_diff(blobs, change) if i < MAX_DIFF_FILES else change
        for i, change in enumerate(changes[:MAX_LISTED_CHANGES])
    ]
    return Changes(shown, len(changes))


def _with_diff(blobs: BlobStore, change: FileChange) -> FileChange:
    sides = [change.old, change.new]
    if any(side is not None and side.lfs_oid is not None for side in sides):
        return _noted(change, "Large file (LFS): no line diff")
    if any(side is not None and side.size > MAX_DIFF_BYTES for side in sides):
        return _noted(change, "File too large to show a diff")
    old_text, new_text = _text_of(blobs, change.old), _text_of(blobs, change.new)
    if old_text is None or new_text is None:
        return _noted(change, "Binary file")
    lines = difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), lineterm="")
    diff = list(lines)[2:]  # without the ---/+++ header: the page names the file
    return FileChange(change.path, change.kind, change.old, change.new, _classified(diff))


def _noted(change: FileChange, note: str) -> FileChange:
    return FileChange(change.path, change.kind, change.old, change.new, None, note)


def _text_of(blobs: BlobStore, entry: Listed | None) -> str | None:
    """The side's text: "" when the file is absent on that side, None when binary."""
    if entry is None:
        return ""
    return as_text(load_object(blobs, entry.oid).as_raw_string())


def _classified(lines: Sequence[str]) -> list[tuple[str, str]]:
    classes = {"+": "diff-add", "-": "diff-del", "@": "diff-hunk"}
    return [(classes.get(line[:1], "diff-ctx"), line) for line in lines]
