"""Discussions and pull requests (issue 20) against a live server, with the unmodified client,
the `hf discussions` CLI and git: an outsider improves a repo through a pull request, the
owner merges it; conflicts, permissions, hidden comments and private repos."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.git.gitkit import Git, repo_url
from tests.live import ROOT, LiveServer


def api(server: LiveServer, token: str | None) -> HfApi:
    return HfApi(endpoint=server.url, token=token if token else False)


def status_of(excinfo: pytest.ExceptionInfo[HfHubHTTPError]) -> int:
    return excinfo.value.response.status_code


def hf_cli(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The `hf` command of the installed huggingface_hub, pointed at the server."""
    env = {
        **os.environ,
        "HF_ENDPOINT": server.url,
        "HF_TOKEN": token,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0",  # the CLI reads HF_TOKEN, as users run it
    }
    code = "from huggingface_hub.cli.hf import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_an_outsider_opens_a_pull_request_and_the_owner_merges_it(
    server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    owner, owner_token = server.new_user()
    outsider, outsider_token = server.new_user()
    repo_id = f"{owner}/community"
    owner_api, outsider_api = api(server, owner_token), api(server, outsider_token)
    owner_api.create_repo(repo_id)
    owner_api.upload_file(path_or_fileobj=b"# Model\n", path_in_repo="README.md", repo_id=repo_id)
    owner_api.upload_file(path_or_fileobj=b"a = 1\n", path_in_repo="code.py", repo_id=repo_id)

    # The outsider cannot write main, but opens a pull request with a commit (Xet on).
    with pytest.raises(HfHubHTTPError) as refused:
        outsider_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert status_of(refused) == 403
    weights = secrets.token_bytes(200_000)
    commit = outsider_api.create_commit(
        repo_id,
        [
            CommitOperationAdd("fix.md", b"A fix\n"),
            CommitOperationAdd("weights.safetensors", weights),
            CommitOperationAdd("code.py", b"a = 2\n"),
        ],
        commit_message="Fix the docs",
        commit_description="This fixes the **docs**.",
        create_pr=True,
    )
    assert commit.pr_url and commit.pr_revision == "refs/pr/1" and commit.pr_num == 1
    assert commit.pr_url == f"{server.url}/{repo_id}/discussions/1"
    pr = owner_api.get_discussion_details(repo_id, 1)
    assert (pr.title, pr.author, pr.status, pr.is_pull_request) == (
        "Fix the docs",
        outsider,
        "open",
        True,
    )
    assert pr.target_branch == "refs/heads/main" and pr.conflicting_files == []
    assert "diff --git a/code.py b/code.py" in (pr.diff or "")
    assert "-a = 1\n+a = 2" in (pr.diff or "")
    assert "version https://git-lfs.github.com/spec/v1" in (pr.diff or "")  # LFS pointer diff
    assert [e.type for e in pr.events] == ["comment", "commit"]
    assert pr.events[0].content == "This fixes the **docs**."
    assert "<strong>docs</strong>" in pr.events[0].rendered
    assert pr.events[1].summary == "Fix the docs"

    # A second commit by the author, through git: push HEAD to refs/pr/1.
    git = Git(tmp_path / "git")
    work = git.clone(repo_url(server, repo_id, outsider_token), tmp_path / "work")
    git.run("fetch", "origin", "refs/pr/1:pr", cwd=work)
    git.run("checkout", "pr", cwd=work)
    git.commit_files(work, {"more.md": "more\n"}, "More docs")
    git.run("push", "origin", "HEAD:refs/pr/1", cwd=work)
    # Not to main, and not a pull request they did not open.
    pushed = git.run("push", "origin", "HEAD:main", cwd=work, check=False)
    assert pushed.returncode != 0 and "refs/pr" in pushed.stderr
    events = [e.type for e in owner_api.get_discussion_details(repo_id, 1).events]
    assert events == ["comment", "commit", "commit"]

    # Comments go back and forth; the author edits theirs; history is kept.
    question = owner_api.comment_discussion(repo_id, 1, "Could you also *add tests*?")
    answer = outsider_api.comment_discussion(repo_id, 1, "Sure, later")
    edited = outsider_api.edit_discussion_comment(repo_id, 1, answer.id, "Done in the next PR")
    assert edited.edited and edited.content == "Done in the next PR"
    assert [h["raw"] for h in edited.edit_history] == ["Done in the next PR", "Sure, later"]
    with pytest.raises(HfHubHTTPError) as not_theirs:
        outsider_api.edit_discussion_comment(repo_id, 1, question.id, "hijacked")
    assert status_of(not_theirs) == 403
    # Only writers merge; the owner merges, main holds the change, the thread says merged.
    with pytest.raises(HfHubHTTPError) as no_merge:
        outsider_api.merge_pull_request(repo_id, 1)
    assert status_of(no_merge) == 403
    owner_api.merge_pull_request(repo_id, 1, comment="Thanks!")
    merged = owner_api.get_discussion_details(repo_id, 1)
    assert merged.status == "merged" and merged.merge_commit_oid
    head = owner_api.list_repo_commits(repo_id)[0]
    assert head.commit_id == merged.merge_commit_oid and "#1" in head.title
    files = set(owner_api.list_repo_files(repo_id))
    assert {"fix.md", "more.md", "weights.safetensors", "README.md"} <= files
    code = owner_api.hf_hub_download(repo_id, "code.py", cache_dir=tmp_path / "c")
    assert Path(code).read_text() == "a = 2\n"
    weights_path = owner_api.hf_hub_download(
        repo_id, "weights.safetensors", cache_dir=tmp_path / "c"
    )
    assert Path(weights_path).read_bytes() == weights
    assert [e.type for e in merged.events][-2:] == ["comment", "status-change"]
    # A merged pull request keeps its ref and takes no more pushes.
    assert "refs/pr/1" in [
        r.ref for r in owner_api.list_repo_refs(repo_id, include_pull_requests=True).pull_requests
    ]
    with pytest.raises(HfHubHTTPError):
        outsider_api.upload_file(
            path_or_fileobj=b"late", path_in_repo="late.md", repo_id=repo_id, revision="refs/pr/1"
        )


def test_conflicts_are_refused_with_their_files(
    server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    owner, token = server.new_user()
    repo_id = f"{owner}/conflicts"
    hub = api(server, token)
    hub.create_repo(repo_id)
    hub.upload_file(path_or_fileobj=b"v1\n", path_in_repo="a.txt", repo_id=repo_id)
    hub.upload_file(path_or_fileobj=b"keep\n", path_in_repo="b.txt", repo_id=repo_id)
    pr = hub.create_pull_request(repo_id, title="Change a and drop b")
    assert pr.status == "draft" and pr.git_reference == "refs/pr/1"
    hub.create_commit(
        repo_id,
        [CommitOperationAdd("a.txt", b"from the PR\n"), CommitOperationDelete("b.txt")],
        commit_message="PR side",
        revision=pr.git_reference,
    )
    hub.upload_file(path_or_fileobj=b"from main\n", path_in_repo="a.txt", repo_id=repo_id)
    hub.upload_file(path_or_fileobj=b"other\n", path_in_repo="c.txt", repo_id=repo_id)
    with pytest.raises(HfHubHTTPError) as draft:
        hub.merge_pull_request(repo_id, 1)
    assert status_of(draft) == 400 and "draft" in str(draft.value)
    hub.change_discussion_status(repo_id, 1, "open")
    details = hub.get_discussion_details(repo_id, 1)
    assert details.conflicting_files == ["a.txt"]
    with pytest.raises(HfHubHTTPError) as conflict:
        hub.merge_pull_request(repo_id, 1)
    assert status_of(conflict) == 409 and "a.txt" in str(conflict.value)
    # Resolved on the PR (the same content as main): it merges, b.txt deleted, c.txt kept.
    hub.upload_file(
        path_or_fileobj=b"from main\n", path_in_repo="a.txt", repo_id=repo_id, revision="refs/pr/1"
    )
    assert hub.get_discussion_details(repo_id, 1).conflicting_files == []
    hub.merge_pull_request(repo_id, 1)
    assert set(hub.list_repo_files(repo_id)) == {".gitattributes", "a.txt", "c.txt"}
    # A pull request targets a branch: an unknown one is RevisionNotFound.
    bad = httpx.post(
        f"{server.url}/api/models/{repo_id}/commit/no-such-branch?create_pr=1",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        content=json.dumps({"key": "header", "value": {"summary": "x"}}) + "\n",
    )
    assert bad.status_code == 404 and bad.headers["x-error-code"] == "RevisionNotFound"


def test_discussions_rights_hidden_comments_and_privacy(
    server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    owner, owner_token = server.new_user()
    visitor, visitor_token = server.new_user()
    _, read_token = server.new_user(role="read")
    repo_id = f"{owner}/talk"
    owner_api, visitor_api = api(server, owner_token), api(server, visitor_token)
    owner_api.create_repo(repo_id)

    # A discussion (not a PR): opened, commented, renamed, closed and reopened by its author.
    thread = visitor_api.create_discussion(repo_id, "A question", description="How big is it?")
    assert (thread.num, thread.is_pull_request, thread.status) == (1, False, "open")
    reply = owner_api.comment_discussion(repo_id, 1, "Very **big**\n\n<script>alert(1)</script>")
    assert "<script>" not in reply.rendered and "<strong>big</strong>" in reply.rendered
    renamed = visitor_api.rename_discussion(repo_id, 1, "A question about size")
    assert (renamed.old_title, renamed.new_title) == ("A question", "A question about size")
    closed = visitor_api.change_discussion_status(repo_id, 1, "closed", comment="Answered")
    assert closed.new_status == "closed"
    assert [d.num for d in owner_api.get_repo_discussions(repo_id, discussion_status="closed")] == [
        1
    ]
    visitor_api.change_discussion_status(repo_id, 1, "open")
    assert [d.title for d in owner_api.get_repo_discussions(repo_id, author=visitor)] == [
        "A question about size"
    ]
    assert list(owner_api.get_repo_discussions(repo_id, discussion_type="pull_request")) == []

    # Rights: a read token, anonymous, another user's thread, hiding, a non-writer's merge.
    with pytest.raises(HfHubHTTPError) as read_only:
        api(server, read_token).comment_discussion(repo_id, 1, "hi")
    assert status_of(read_only) == 403
    with pytest.raises(HfHubHTTPError) as anonymous:
        api(server, None).create_discussion(repo_id, "spam")
    assert status_of(anonymous) == 401
    _, other_token = server.new_user()
    with pytest.raises(HfHubHTTPError) as not_author:
        api(server, other_token).change_discussion_status(repo_id, 1, "closed")
    assert status_of(not_author) == 403
    with pytest.warns(UserWarning), pytest.raises(HfHubHTTPError) as no_hide:
        visitor_api.hide_discussion_comment(repo_id, 1, reply.id)
    assert status_of(no_hide) == 403
    with pytest.warns(UserWarning, match="irreversible"):
        hidden = owner_api.hide_discussion_comment(repo_id, 1, reply.id)
    assert hidden.hidden
    shown = api(server, None).get_discussion_details(repo_id, 1)
    comment = next(e for e in shown.events if e.id == reply.id)
    assert "big" not in comment.content and "big" not in comment.rendered
    assert comment.edit_history == []
    # Bad input: empty titles and comments, unknown threads and comments.
    with pytest.raises(HfHubHTTPError) as empty:
        visitor_api.comment_discussion(repo_id, 1, "   ")
    assert status_of(empty) == 400
    with pytest.raises(HfHubHTTPError) as missing:
        visitor_api.get_discussion_details(repo_id, 99)
    assert status_of(missing) == 404

    # A private repo's threads are invisible: 404 like the repo itself.
    secret = f"{owner}/secret-talk"
    owner_api.create_repo(secret, private=True)
    owner_api.create_discussion(secret, "Internal")
    for token in (visitor_token, None):
        with pytest.raises(RepositoryNotFoundError):
            list(api(server, token).get_repo_discussions(secret))
        with pytest.raises(RepositoryNotFoundError):
            api(server, token).get_discussion_details(secret, 1)
        with pytest.raises(RepositoryNotFoundError):
            api(server, token).comment_discussion(secret, 1, "hello?")


def test_hf_discussions_cli(server: LiveServer, tmp_path: Path, hf_home: Path) -> None:
    owner, token = server.new_user()
    repo_id = f"{owner}/cli-talk"
    hub = api(server, token)
    hub.create_repo(repo_id)
    made = hf_cli(server, token, "discussions", "create", repo_id, "--title", "From the CLI")
    assert made.returncode == 0, made.stderr
    assert "Created discussion" in made.stdout
    listed = hf_cli(server, token, "discussions", "list", repo_id, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert [d["title"] for d in json.loads(listed.stdout)] == ["From the CLI"]
    said = hf_cli(server, token, "discussions", "comment", repo_id, "1", "--body", "Hello")
    assert said.returncode == 0 and "Commented on #1" in said.stdout
    commit = hub.upload_file(
        path_or_fileobj=b"cli\n", path_in_repo="cli.txt", repo_id=repo_id, create_pr=True
    )
    number = str(commit.pr_num)
    diff = hf_cli(server, token, "discussions", "diff", repo_id, number)
    assert diff.returncode == 0 and "+cli" in diff.stdout
    merged = hf_cli(server, token, "discussions", "merge", repo_id, number, "--yes")
    assert merged.returncode == 0, merged.stderr
    assert f"Merged #{number}" in merged.stdout
    closed = hf_cli(server, token, "discussions", "close", repo_id, "1", "--yes")
    assert closed.returncode == 0 and "Closed #1" in closed.stdout
