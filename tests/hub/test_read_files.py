"""Tree, paths-info, commits and refs (hf-protocol.md §5.3-§5.6) through huggingface_hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huggingface_hub import RepoFile, RepoFolder, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

from tests.hub.readkit import (  # noqa: F401 - no_xet is an autouse fixture
    Owner,
    add_ref,
    commit,
    make_repo,
    new_owner,
    no_xet,
)
from tests.live import LiveServer

LFS_DATA = b"lfs-content" * 50


@dataclass
class Repo:
    owner: Owner
    id: str
    first: str
    second: str
    third: str
    pr_head: str


@pytest.fixture(scope="module")
def repo(server: LiveServer) -> Repo:
    owner = new_owner(server)
    row, first = make_repo(owner, "files", {"a.txt": b"a", "dir/b.txt": b"b"}, title="one")
    assert first is not None
    second = commit(owner, row, {"dir/sub/c.txt": b"c"}, {"dir/w.bin": LFS_DATA}, title="two")
    third = commit(owner, row, {"a.txt": b"a2"}, title="three")
    add_ref(owner, row, "refs/heads/dev/x", second.sha)
    add_ref(owner, row, "refs/tags/v1", first.sha)
    add_ref(owner, row, "refs/pr/1", third.sha)
    pr = commit(owner, row, {"pr.txt": b"pr"}, branch="refs/pr/1", title="pr change")
    return Repo(owner, f"{owner.name}/files", first.sha, second.sha, third.sha, pr.sha)


def test_list_repo_files_is_recursive(repo: Repo) -> None:
    files = repo.owner.api.list_repo_files(repo.id)
    expected = [".gitattributes", "a.txt", "dir/b.txt", "dir/sub/c.txt", "dir/w.bin"]
    assert sorted(files) == expected


def test_tree_of_a_folder_lists_direct_children_with_root_relative_paths(repo: Repo) -> None:
    entries = list(repo.owner.api.list_repo_tree(repo.id, path_in_repo="dir"))
    kinds = {e.path: type(e) for e in entries}
    assert kinds == {
        "dir/b.txt": RepoFile,
        "dir/sub": RepoFolder,
        "dir/w.bin": RepoFile,
    }
    weights = next(e for e in entries if e.path == "dir/w.bin")
    assert isinstance(weights, RepoFile) and weights.size == len(LFS_DATA)
    assert weights.lfs is not None and weights.lfs.size == len(LFS_DATA)


def test_recursive_tree_of_a_subfolder(repo: Repo) -> None:
    paths = {e.path for e in repo.owner.api.list_repo_tree(repo.id, "dir", recursive=True)}
    assert paths == {"dir/b.txt", "dir/sub", "dir/sub/c.txt", "dir/w.bin"}
    nested = repo.owner.api.list_repo_tree(repo.id, "dir/sub", revision="refs/pr/1")
    assert [e.path for e in nested] == ["dir/sub/c.txt"]


def test_expanded_tree_gives_the_last_commit_of_each_entry(repo: Repo) -> None:
    entries = {e.path: e for e in repo.owner.api.list_repo_tree(repo.id, expand=True)}
    assert entries["a.txt"].last_commit is not None
    assert entries["a.txt"].last_commit.oid == repo.third
    assert entries["a.txt"].last_commit.title == "three"
    dir_commit = entries["dir"].last_commit
    assert dir_commit is not None and dir_commit.oid == repo.second
    assert entries[".gitattributes"].last_commit.oid != repo.third  # type: ignore[union-attr]


def test_tree_at_an_encoded_branch_name_and_missing_path(repo: Repo) -> None:
    api = repo.owner.api
    paths = {e.path for e in api.list_repo_tree(repo.id, revision="dev/x", recursive=True)}
    assert "dir/sub/c.txt" in paths and "a.txt" in paths
    pr_paths = {e.path for e in api.list_repo_tree(repo.id, revision="refs/pr/1")}
    assert "pr.txt" in pr_paths
    assert api.model_info(repo.id, revision="refs/pr/1").sha == repo.pr_head
    assert api.model_info(repo.id, revision="dev/x").sha == repo.second
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(repo.id, path_in_repo="nope"))
    with pytest.raises(RevisionNotFoundError):
        list(api.list_repo_tree(repo.id, revision="missing"))


def test_tree_pages_are_pinned_to_the_first_commit(repo: Repo, server: LiveServer) -> None:
    url: str | None = f"{server.url}/api/models/{repo.id}/tree/main?recursive=true&limit=2"
    seen: list[str] = []
    while url:
        answer = httpx.get(url)
        assert answer.status_code == 200
        seen += [e["path"] for e in answer.json()]
        url = answer.links.get("next", {}).get("url")
        if url:
            assert f"/tree/{repo.third}?" in url and "recursive=true" in url
    assert len(seen) == len(set(seen)) == 7


def test_paths_info_omits_missing_paths(repo: Repo) -> None:
    infos = repo.owner.api.get_paths_info(repo.id, ["a.txt", "dir", "nope", "dir/w.bin"])
    by_path = {i.path: i for i in infos}
    assert set(by_path) == {"a.txt", "dir", "dir/w.bin"}
    assert isinstance(by_path["dir"], RepoFolder)
    weights = by_path["dir/w.bin"]
    assert isinstance(weights, RepoFile) and weights.lfs is not None
    expanded = repo.owner.api.get_paths_info(repo.id, ["a.txt"], expand=True, revision="v1")
    assert expanded[0].last_commit is not None and expanded[0].last_commit.oid == repo.first


def test_paths_info_accepts_json(repo: Repo, server: LiveServer) -> None:
    answer = httpx.post(
        f"{server.url}/api/models/{repo.id}/paths-info/main",
        json={"paths": ["dir/b.txt"]},
        headers={"authorization": f"Bearer {repo.owner.token}"},
    )
    assert [e["path"] for e in answer.json()] == ["dir/b.txt"]


def test_commits_are_listed_newest_first(repo: Repo) -> None:
    commits = repo.owner.api.list_repo_commits(repo.id)
    assert [c.commit_id for c in commits[:3]] == [repo.third, repo.second, repo.first]
    assert commits[0].title == "three" and commits[0].authors == [repo.owner.name]
    assert commits[-1].title == "initial commit" and commits[0].created_at is not None
    tagged = repo.owner.api.list_repo_commits(repo.id, revision="v1", formatted=True)
    assert tagged[0].commit_id == repo.first and tagged[0].formatted_title == "one"


def test_commit_pages_follow_links(repo: Repo, server: LiveServer) -> None:
    url: str | None = f"{server.url}/api/models/{repo.id}/commits/main?limit=3"
    ids: list[str] = []
    while url:
        answer = httpx.get(url)
        ids += [c["id"] for c in answer.json()]
        url = answer.links.get("next", {}).get("url")
    assert len(ids) == 4 and ids[0] == repo.third


def test_refs_list_branches_tags_and_prs(repo: Repo) -> None:
    refs = repo.owner.api.list_repo_refs(repo.id, include_pull_requests=True)
    branches = {b.name: b.target_commit for b in refs.branches}
    assert branches == {"main": repo.third, "dev/x": repo.second}
    assert {t.name: t.target_commit for t in refs.tags} == {"v1": repo.first}
    assert refs.converts == []
    assert refs.pull_requests is not None
    assert [(p.ref, p.target_commit) for p in refs.pull_requests] == [("refs/pr/1", repo.pr_head)]


def test_downloads_at_revisions_with_slashes(
    repo: Repo, server: LiveServer, tmp_path: Path
) -> None:
    pr_file = hf_hub_download(
        repo.id, "pr.txt", revision="refs/pr/1", endpoint=server.url, cache_dir=tmp_path
    )
    assert Path(pr_file).read_bytes() == b"pr"
    nested = hf_hub_download(
        repo.id, "dir/sub/c.txt", revision="dev/x", endpoint=server.url, cache_dir=tmp_path
    )
    assert Path(nested).read_bytes() == b"c"
    head = httpx.head(f"{server.url}/{repo.id}/resolve/refs%2Fpr%2F1/pr.txt")
    assert head.headers["x-repo-commit"] == repo.pr_head


def test_last_commits_over_a_long_history_with_a_revert(server: LiveServer) -> None:
    owner = new_owner(server)
    row, first = make_repo(
        owner, "history", {"x.txt": b"1", "keep.txt": b"k", "deep/a/b.txt": b"b"}
    )
    assert first is not None
    shas = {}
    for step in range(11):
        shas["f.txt"] = commit(owner, row, {"f.txt": str(step).encode()}).sha
    commit(owner, row, {"x.txt": b"2"})
    shas["x.txt"] = commit(owner, row, {"x.txt": b"1"}).sha  # back to the first content
    for step in range(6):
        shas["g.txt"] = commit(owner, row, {"g.txt": str(step).encode()}).sha
    repo_id = f"{owner.name}/history"
    listed = {e.path: e.last_commit for e in owner.api.list_repo_tree(repo_id, expand=True)}
    got = {path: last.oid for path, last in listed.items() if last is not None}
    initial = owner.api.list_repo_commits(repo_id)[-1].commit_id
    expected = {**shas, "keep.txt": first.sha, "deep": first.sha, ".gitattributes": initial}
    assert got == expected
    deep = owner.api.get_paths_info(repo_id, ["deep/a/b.txt"], expand=True)
    assert deep[0].last_commit is not None and deep[0].last_commit.oid == first.sha
