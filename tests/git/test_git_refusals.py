"""Pushes that must be refused, with a reason git shows, leaving the repo as it was."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

import httpx
import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob, Tree
from dulwich.pack import UnpackedObject, create_delta, full_unpacked_object, write_pack_data

from app.repos.models import Repo
from tests.git.gitkit import (
    Git,
    commit_object,
    give_lfs_object,
    lfs_pointer,
    pack_of,
    pkt,
    raw_push,
    repo_url,
)
from tests.hub.readkit import Owner, make_repo, new_owner
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

ZERO = "0" * 40


@pytest.fixture
def git(tmp_path: Path) -> Git:
    return Git(tmp_path / "git-home")


@pytest.fixture
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


@pytest.fixture
def repo(owner: Owner) -> Repo:
    repo, _ = make_repo(owner, f"target-{secrets.token_hex(3)}", {"a.txt": b"original"})
    return repo


def main_sha(owner: Owner, repo: Repo) -> str:
    sha = owner.api.model_info(repo.repo_id).sha
    assert sha is not None
    return sha


def refused_push(git: Git, work: Path, *args: str) -> str:
    result = git.run("push", *args, cwd=work, check=False)
    assert result.returncode != 0, result.stderr
    return result.stderr


def test_corrupt_pack_is_refused(server: LiveServer, owner: Owner, repo: Repo) -> None:
    before = main_sha(owner, repo)
    tree = Tree()
    tree.add(b"a.txt", 0o100644, Blob.from_string(b"new").id)
    commit = commit_object(tree, before)
    pack = bytearray(pack_of(Blob.from_string(b"new"), tree, commit))
    pack[40] ^= 0xFF  # inside the first object's compressed data
    report = raw_push(
        server,
        repo.repo_id,
        owner.token,
        [(before, commit.id.decode(), "refs/heads/main")],
        bytes(pack),
    )
    assert report[0] != "unpack ok" and report[0].startswith("unpack ")
    assert report[1] == "ng refs/heads/main unpacker error"
    assert main_sha(owner, repo) == before


@pytest.mark.parametrize("name", [b"..", b".git", b".GIT"])
def test_tree_with_a_forbidden_name_is_refused(
    server: LiveServer, owner: Owner, repo: Repo, name: bytes
) -> None:
    before = main_sha(owner, repo)
    blob = Blob.from_string(b"escape")
    tree = Tree()
    tree.add(name, 0o100644, blob.id)
    commit = commit_object(tree, before)
    report = raw_push(
        server,
        repo.repo_id,
        owner.token,
        [(before, commit.id.decode(), "refs/heads/main")],
        pack_of(blob, tree, commit),
    )
    assert name.decode() in " ".join(report) and "ok refs/heads/main" not in report
    assert main_sha(owner, repo) == before


def test_ref_outside_branches_and_tags_is_refused(
    server: LiveServer, owner: Owner, repo: Repo, git: Git, tmp_path: Path
) -> None:
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    stderr = refused_push(git, work, "origin", "HEAD:refs/pr/1", "HEAD:refs/convert/parquet")
    # A pull request is opened through the API or the web; git then pushes to its ref.
    assert "[remote rejected] HEAD -> refs/pr/1 (pull requests are opened" in stderr
    assert "[remote rejected] HEAD -> refs/convert/parquet (only branches (refs/heads/)" in stderr
    assert [b.name for b in owner.api.list_repo_refs(repo.repo_id).branches] == ["main"]


def test_default_branch_cannot_be_deleted(
    server: LiveServer, owner: Owner, repo: Repo, git: Git, tmp_path: Path
) -> None:
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    stderr = refused_push(git, work, "origin", "--delete", "main")
    assert "(refusing to delete the default branch main)" in stderr
    assert owner.api.model_info(repo.repo_id).sha is not None


def test_submodule_is_refused(
    server: LiveServer, owner: Owner, repo: Repo, git: Git, tmp_path: Path
) -> None:
    before = main_sha(owner, repo)
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    git.run("update-index", "--add", "--cacheinfo", f"160000,{before},vendored", cwd=work)
    git.run("commit", "-q", "-m", "add a submodule", cwd=work)
    assert "'vendored' is a submodule; submodules are not supported" in refused_push(git, work)
    assert main_sha(owner, repo) == before


def test_pointer_to_a_never_uploaded_lfs_object_is_refused(
    server: LiveServer, owner: Owner, repo: Repo, git: Git, tmp_path: Path
) -> None:
    before = main_sha(owner, repo)
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    git.commit_files(work, {"w.bin": lfs_pointer(b"never uploaded")}, "pointer only")
    stderr = refused_push(git, work)
    assert "[remote rejected] main -> main (LFS object" in stderr
    assert "of 'w.bin' was not uploaded; run git lfs push)" in stderr
    assert main_sha(owner, repo) == before


def test_pointer_to_another_repos_lfs_object_is_refused(
    server: LiveServer, owner: Owner, repo: Repo, git: Git, tmp_path: Path
) -> None:
    """Knowing a sha256 must not grant another repo's (private) file."""
    other, _ = make_repo(new_owner(server), "elsewhere", private=True)
    secret = secrets.token_bytes(2000)
    give_lfs_object(server, other, secret)
    before = main_sha(owner, repo)
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    git.commit_files(work, {"stolen.bin": lfs_pointer(secret)}, "steal")
    assert "of 'stolen.bin' was not uploaded" in refused_push(git, work)
    assert main_sha(owner, repo) == before


def test_pointer_with_a_wrong_size_is_refused(
    server: LiveServer, owner: Owner, repo: Repo, git: Git, tmp_path: Path
) -> None:
    data = secrets.token_bytes(1000)
    give_lfs_object(server, repo, data)
    lying = lfs_pointer(data).replace("size 1000", "size 999")
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    git.commit_files(work, {"w.bin": lying}, "wrong size")
    assert "LFS pointer of 'w.bin' says 999 bytes, the object has 1000" in refused_push(git, work)


def _private_blob(server: LiveServer) -> Blob:
    """A file of somebody else's private repo: its git blob is in the shared object store."""
    content = b"private " + secrets.token_bytes(64)
    make_repo(new_owner(server), "vault", {"secret.txt": content}, private=True)
    return Blob.from_string(content)


def test_tree_naming_another_repos_object_is_refused(
    server: LiveServer, owner: Owner, repo: Repo
) -> None:
    secret = _private_blob(server)
    before = main_sha(owner, repo)
    tree = Tree()
    tree.add(b"stolen.txt", 0o100644, secret.id)
    commit = commit_object(tree, before)
    report = raw_push(
        server,
        repo.repo_id,
        owner.token,
        [(before, commit.id.decode(), "refs/heads/main")],
        pack_of(tree, commit),  # the blob is not sent: the server has it, for another repo
    )
    assert report[0] == "unpack ok"
    assert report[1] == (
        f"ng refs/heads/main object {secret.id.decode()[:12]} (stolen.txt) "
        "is not in the pack or the repo"
    )
    assert main_sha(owner, repo) == before


def _push_delta_on(server: LiveServer, owner: Owner, repo: Repo, base: Blob) -> list[str]:
    """A thin pack whose one file is a delta on `base`, which the pack does not carry."""
    copy = Blob.from_string(base.data + b"!")
    delta = UnpackedObject(
        copy.type_num,
        sha=copy.sha().digest(),
        delta_base=base.sha().digest(),
        decomp_chunks=list(create_delta(base.as_raw_string(), copy.as_raw_string())),
    )
    tree = Tree()
    tree.add(b"copy.txt", 0o100644, copy.id)
    commit = commit_object(tree, main_sha(owner, repo))
    out = io.BytesIO()
    records = [full_unpacked_object(tree), full_unpacked_object(commit), delta]
    write_pack_data(out.write, iter(records), num_records=3, object_format=DEFAULT_OBJECT_FORMAT)
    command = (main_sha(owner, repo), commit.id.decode(), "refs/heads/main")
    return raw_push(server, repo.repo_id, owner.token, [command], out.getvalue())


def test_delta_based_on_another_repos_object_is_refused(
    server: LiveServer, owner: Owner, repo: Repo
) -> None:
    """A thin pack's delta copying from an object the pusher may not read would rebuild it."""
    secret = _private_blob(server)
    before = main_sha(owner, repo)
    report = _push_delta_on(server, owner, repo, secret)
    assert report[1] == (
        f"ng refs/heads/main object {secret.id.decode()[:12]} (delta base) "
        "is not in the pack or the repo"
    )
    assert main_sha(owner, repo) == before


def test_new_branch_at_a_foreign_commit_is_refused(
    server: LiveServer, owner: Owner, repo: Repo
) -> None:
    _, result = make_repo(new_owner(server), "foreign", {"x.txt": b"x"}, private=True)
    assert result is not None
    report = raw_push(
        server, repo.repo_id, owner.token, [(ZERO, result.sha, "refs/heads/b")], pack_of()
    )
    assert report[1] == (
        f"ng refs/heads/b {result.sha[:12]} is not a commit of this push or of this repo"
    )


def test_want_of_another_repos_object_is_refused(
    server: LiveServer, owner: Owner, repo: Repo
) -> None:
    """Partial clones may ask for objects by sha, but only for objects this repo reaches."""
    secret = _private_blob(server)
    request = pkt(f"want {secret.id.decode()} side-band-64k ofs-delta thin-pack\n".encode())
    response = httpx.post(
        f"{repo_url(server, repo.repo_id)}/git-upload-pack",
        content=request + b"0000" + pkt(b"done\n"),
        headers={"Content-Type": "application/x-git-upload-pack-request"},
        timeout=60,
    )
    assert response.status_code == 200
    assert b"ERR Client wants invalid object" in response.content
    assert b"PACK" not in response.content


@pytest.mark.parametrize("atomic", [True, False])
def test_one_refused_ref_fails_an_atomic_push_only(
    server: LiveServer, owner: Owner, repo: Repo, git: Git, tmp_path: Path, atomic: bool
) -> None:
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    local = git.commit_files(work, {"a.txt": "both or none"}, "two refs")
    flags = ["--atomic"] if atomic else []
    stderr = refused_push(git, work, *flags, "origin", "main", "HEAD:refs/pr/7")
    assert "HEAD -> refs/pr/7 (pull requests are opened" in stderr
    landed = main_sha(owner, repo) == local
    assert landed is not atomic
    if atomic:
        assert "main -> main (atomic push failed)" in stderr


def test_delta_on_a_base_that_exists_nowhere_gets_the_same_answer_as_a_foreign_one(
    server: LiveServer, owner: Owner, repo: Repo
) -> None:
    """No 500, and nothing that tells a missing base from another repo's (an oracle)."""
    absent = Blob.from_string(b"never stored anywhere " + secrets.token_bytes(16))
    before = main_sha(owner, repo)
    report = _push_delta_on(server, owner, repo, absent)
    assert report[1] == (
        f"ng refs/heads/main object {absent.id.decode()[:12]} (delta base) "
        "is not in the pack or the repo"
    )
    assert main_sha(owner, repo) == before


def test_negotiation_acks_only_commits_of_this_repo(
    server: LiveServer, owner: Owner, repo: Repo
) -> None:
    """A `have` of another (private) repo's commit gets the answer of an unknown one: NAK."""
    _, secret = make_repo(new_owner(server), "diary", {"day.txt": b"dear diary"}, private=True)
    assert secret is not None
    own = main_sha(owner, repo)

    def negotiate(have: str) -> bytes:
        caps = "multi_ack_detailed side-band-64k ofs-delta thin-pack"
        request = pkt(f"want {own} {caps}\n".encode())
        response = httpx.post(
            f"{repo_url(server, repo.repo_id)}/git-upload-pack",
            content=request + b"0000" + pkt(f"have {have}\n".encode()) + b"0000",
            headers={"Content-Type": "application/x-git-upload-pack-request"},
            auth=("git", owner.token),
            timeout=60,
        )
        assert response.status_code == 200
        return response.content

    assert f"ACK {own}".encode() in negotiate(own)  # its own commit is acknowledged
    foreign = negotiate(secret.sha)
    assert secret.sha.encode() not in foreign
    assert foreign == negotiate("0" * 39 + "1")  # the same as a commit that exists nowhere


def test_a_regular_file_over_10_mib_is_refused_with_the_git_lfs_advice(
    server: LiveServer, owner: Owner, repo: Repo, git: Git, tmp_path: Path
) -> None:
    before = main_sha(owner, repo)
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    git.commit_files(work, {"dump.dat": secrets.token_bytes(11 * 1024 * 1024)}, "a big file")
    stderr = refused_push(git, work, "origin", "main")
    assert "'dump.dat' is 11.0 MiB" in stderr and "git-lfs" in stderr
    assert main_sha(owner, repo) == before
