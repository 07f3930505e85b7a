"""`lastCommit` of tree and paths-info entries (hf-protocol.md §5.3): the newest commit, along
first parents from the listed revision, whose parent differs from that revision at the path.

Comparing every ancestor with the listed revision (not with its own child) lets many
ancestors be compared in one query per folder depth, and a folder whose oid equals the
listed one ends the walk below it. Ancestors are read in windows growing 8, 32, 128, … so a
page whose files all changed recently reads only a few of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.repos.listing import Listed, lookup_paths, rows_at
from app.repos.models import Commit, RepoCommit
from app.repos.service import FileEntry

LAST_COMMIT_WALK = 200  # ancestors searched before giving up (lastCommit is optional, §5.3)
FIRST_WINDOW = 8  # ancestors compared in the first round; each next round is 4 times larger


@dataclass(frozen=True)
class LastCommit:
    sha: str
    title: str
    date: datetime


def last_commits(
    session: Session, repo_id: int, head: str, entries: Sequence[Listed | FileEntry]
) -> dict[str, LastCommit]:
    """path -> its last commit, for the entries of revision head; paths unchanged over the
    whole walk get none."""
    pending = {entry.path for entry in entries if entry.path}
    start = session.get(Commit, head)
    if start is None or not pending:
        return {}
    prefixes = {prefix for path in pending for prefix in _prefixes(path)}
    at_head = {p: e.oid for p, e in lookup_paths(session, start.tree_sha, prefixes).items()}
    chain = _first_parent_chain(session, repo_id, start)
    result: dict[str, LastCommit] = {}
    begin, window = 0, FIRST_WINDOW
    while pending and begin < len(chain) - 1:
        commits = chain[begin : begin + window + 1]
        parent_trees = [parent.tree_sha for parent in commits[1:]]
        differ = changed_in(session, parent_trees, start.tree_sha, at_head, pending)
        for commit, parent in pairwise(commits):
            for path in differ[parent.tree_sha] & pending:
                result[path] = LastCommit(commit.sha, commit.title, commit.authored_at)
            pending -= differ[parent.tree_sha]
        begin, window = begin + window, window * 4
    root = chain[-1]
    if pending and not root.parents:
        # Still unchanged at the first commit: that commit added them.
        result.update({p: LastCommit(root.sha, root.title, root.authored_at) for p in pending})
    return result


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: depth + 1]) for depth in range(len(parts))]


def _first_parent_chain(session: Session, repo_id: int, start: Commit) -> list[Commit]:
    """start and up to LAST_COMMIT_WALK first-parent ancestors. The repo's newest commits are
    read in one query first: in a linear history they are exactly this chain."""
    query = (
        select(Commit)
        .join(RepoCommit, RepoCommit.commit_sha == Commit.sha)
        .where(RepoCommit.repo_id == repo_id, Commit.authored_at <= start.authored_at)
        .order_by(Commit.authored_at.desc())
        .limit(LAST_COMMIT_WALK + 1)
    )
    recent = {commit.sha: commit for commit in session.scalars(query)}
    chain = [start]
    while len(chain) <= LAST_COMMIT_WALK and chain[-1].parents:
        sha = chain[-1].parents[0]
        parent = recent.get(sha) or session.get(Commit, sha)
        if parent is None:
            break
        chain.append(parent)
    return chain


def changed_in(
    session: Session,
    trees: Sequence[str],
    head_tree: str,
    at_head: dict[str, str],
    paths: Iterable[str],
) -> dict[str, set[str]]:
    """tree -> the paths whose entry there differs from head's (at_head: the head oid of
    every prefix of every path). One query per depth for all trees together."""
    changed: dict[str, set[str]] = {tree: set() for tree in trees}
    # (tree sha, name) -> (root tree, path, depth of name in path) walking through it
    pending: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
    for tree in changed:
        if tree != head_tree:
            for path in paths:
                pending[(tree, path.split("/")[0])].append((tree, path, 0))
    while pending:
        deeper: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
        for row in rows_at(session, pending):
            for root, path, depth in pending.pop((row[0], row[1])):
                parts = path.split("/")
                if row[4] == at_head.get("/".join(parts[: depth + 1])):
                    continue  # the same blob or folder as at head: nothing below changed
                if depth == len(parts) - 1 or row[2] != "tree":
                    changed[root].add(path)
                else:
                    deeper[(row[4], parts[depth + 1])].append((root, path, depth + 1))
        for walks in pending.values():  # names absent from that folder
            for root, path, _ in walks:
                changed[root].add(path)
        pending = deeper
    return changed
