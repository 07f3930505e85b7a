"""Pickle scanning (issue 10 §7): every write path records a verdict per file content, shown
in `model_info(securityStatus=True)`, the tree and the file page; inference refuses unsafe
files. Payloads are real: `torch.save` files and pickles whose `__reduce__` calls os.system."""

from __future__ import annotations

import io
import logging
import os
import pickle
import secrets
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from dulwich.objects import Blob
from huggingface_hub import HfApi
from sqlalchemy import delete

from app.db.engine import write_transaction
from app.errors import StorageUnavailable
from app.security.models import PickleScan
from app.security.scanner import ERROR, SAFE, UNSAFE, RangeFile, scan
from tests.git.gitkit import Git, give_lfs_object, lfs_pointer, repo_url
from tests.hub.readkit import Owner, make_repo, new_owner
from tests.inference import kit
from tests.live import Backend, LiveServer, start_server

SYSTEM = f"{os.system.__module__}.system"  # posix.system on Linux


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def torch_file(*, legacy: bool = False) -> bytes:
    """A state dict as transformers writes pytorch_model.bin (zip), or in the pre-1.6 layout."""
    out = io.BytesIO()
    state = torch.nn.Linear(4, 3).state_dict()
    torch.save(state, out, _use_new_zipfile_serialization=not legacy)
    return out.getvalue()


def evil_torch_zip(padding: int = 0) -> bytes:
    """A torch zip whose data.pkl was swapped for a malicious pickle; the tensors stay, with
    one more of `padding` random bytes."""
    source = zipfile.ZipFile(io.BytesIO(torch_file()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith("/data.pkl"):
                data = pickle.dumps({"weight": _Boom()})
            target.writestr(name, data)
        if padding:
            target.writestr(f"{name.split('/')[0]}/data/99", os.urandom(padding))
    return out.getvalue()


EVIL = pickle.dumps(_Boom())


# --- the scanner alone ---------------------------------------------------------------------


SCANS = {
    "zip": ("pytorch_model.bin", torch_file(), SAFE, None),
    "legacy": ("pytorch_model.bin", torch_file(legacy=True), SAFE, None),
    "plain": ("model.pkl", pickle.dumps({"labels": ["a", "b"], "sizes": (1, 2.5)}), SAFE, None),
    "evil": ("pytorch_model.bin", EVIL, UNSAFE, SYSTEM),
    "evil-zip": ("model.pt", evil_torch_zip(), UNSAFE, SYSTEM),
    # strict: an import picklescan does not know as innocuous is unsafe too
    "unknown-import": ("model.pkl", pickle.dumps(Path("x")), UNSAFE, "pathlib.PosixPath"),
    "garbage": ("pytorch_model.bin", b"not a pickle at all", ERROR, None),
    "tail": ("model.pkl", pickle.dumps(1) + b"trailing bytes it did not parse", ERROR, None),
    "empty": ("model.pkl", b"", ERROR, None),
}


@pytest.mark.parametrize(("path", "data", "status", "imported"), SCANS.values(), ids=SCANS)
def test_the_scanner_passes_only_what_it_fully_read_as_innocuous(
    path: str, data: bytes, status: str, imported: str | None
) -> None:
    verdict = scan(io.BytesIO(data), path)
    assert verdict.status == status, verdict
    assert (imported in verdict.imports) if imported else verdict.imports == []
    assert (verdict.detail is not None) == (status == ERROR)


def test_range_reads_find_the_pickle_of_a_zip_and_stop_at_the_read_limit() -> None:
    data = evil_torch_zip()
    reads: list[tuple[int, int]] = []

    def open_range(start: int, length: int) -> list[bytes]:
        reads.append((start, length))
        return [data[start : start + length]]

    verdict = scan(RangeFile(open_range, len(data)), "pytorch_model.bin")
    assert verdict.status == UNSAFE and SYSTEM in verdict.imports
    assert reads and all(start + length <= len(data) for start, length in reads)
    big = pickle.dumps([b"x" * 200_000, _Boom()])
    capped = RangeFile(lambda s, n: [big[s : s + n]], len(big), limit=100_000)
    verdict = scan(capped, "model.pkl")
    assert verdict.status == ERROR and "100,000 bytes" in (verdict.detail or "")


def test_an_incomplete_scan_is_an_error_whatever_the_log_level() -> None:
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.ERROR)  # ATRIUM_LOG_LEVEL=error
    try:
        assert scan(io.BytesIO(b"not a pickle at all"), "model.pkl").status == ERROR
    finally:
        root.setLevel(saved)


def test_a_scan_ignores_the_log_lines_of_a_scan_on_another_thread() -> None:
    """picklescan reports parse failures only in its (shared) log: a garbage file scanned on
    another thread meanwhile must not turn this scan into an error."""
    data = pickle.dumps({"labels": ["a", "b"]})
    other: list[str] = []

    def open_range(start: int, length: int) -> list[bytes]:
        if not other:  # mid-scan, another thread scans garbage to completion
            garbage = threading.Thread(
                target=lambda: other.append(scan(io.BytesIO(b"garbage"), "x.pkl").status)
            )
            garbage.start()
            garbage.join()
        return [data[start : start + length]]

    assert scan(RangeFile(open_range, len(data)), "model.pkl").status == SAFE
    assert other == [ERROR]


def test_a_store_that_fails_mid_scan_gives_no_verdict() -> None:
    """picklescan swallows errors of reads inside a pickle; an outage must still not become
    a verdict, which would be kept for good."""
    data = pickle.dumps([b"x" * 3_000_000, _Boom()])

    def flaky(start: int, length: int) -> list[bytes]:
        if 0 < start < len(data) - 100_000:  # the zip probe of the end answers, not the middle
            raise StorageUnavailable("the bucket did not answer")
        return [data[start : start + length]]

    with pytest.raises(StorageUnavailable):
        scan(RangeFile(flaky, len(data)), "model.pkl")


# --- every write path, shown on every read path ----------------------------------------------


def flagged(api: HfApi, repo_id: str) -> dict[str, set[str]]:
    """path -> imports of each file `securityRepoStatus` lists as unsafe."""
    status = api.model_info(repo_id, securityStatus=True).security_repo_status or {}
    assert status.get("scansDone") is True
    issues = status.get("filesWithIssues", [])
    assert all(item["level"] == "unsafe" for item in issues)
    return {
        item["path"]: {f"{i['module']}.{i['name']}" for i in item["pickleImports"]}
        for item in issues
    }


def test_a_malicious_pickle_is_flagged_in_model_info(server: LiveServer) -> None:
    name, token = server.new_user()
    api = HfApi(endpoint=server.url, token=token)
    repo_id = f"{name}/pickled"
    api.create_repo(repo_id)
    payload = io.BytesIO(EVIL)
    api.upload_file(path_or_fileobj=payload, path_in_repo="pytorch_model.bin", repo_id=repo_id)
    issues = flagged(api, repo_id)
    assert issues == {"pytorch_model.bin": {SYSTEM}}
    [entry] = [f for f in api.list_repo_tree(repo_id, expand=True) if f.path.endswith(".bin")]
    assert entry.security is not None and entry.security.safe is False
    page = httpx.get(f"{server.url}/{repo_id}/blob/main/pytorch_model.bin")
    assert page.status_code == 200
    assert 'class="badge unsafe"' in page.text and SYSTEM in page.text


def test_benign_torch_files_are_safe_everywhere(server: LiveServer) -> None:
    name, token = server.new_user()
    api = HfApi(endpoint=server.url, token=token)
    repo_id = f"{name}/benign"
    api.create_repo(repo_id)
    for path, data in (("pytorch_model.bin", torch_file()), ("old.pt", torch_file(legacy=True))):
        api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=repo_id)
    assert flagged(api, repo_id) == {}
    infos = api.get_paths_info(repo_id, ["pytorch_model.bin", "old.pt"], expand=True)
    assert [i.security.safe for i in infos] == [True, True]  # type: ignore[union-attr]
    page = httpx.get(f"{server.url}/{repo_id}/blob/main/old.pt")
    assert "pickle scan: safe" in page.text and "badge unsafe" not in page.text


def test_a_torch_zip_with_a_malicious_pickle_is_flagged(server: LiveServer) -> None:
    owner = new_owner(server)
    repo, _ = make_repo(owner, "zipped", lfs={"weights/model.pt": evil_torch_zip()})
    issues = flagged(owner.api, repo.repo_id)
    assert issues == {"weights/model.pt": {SYSTEM}}


def test_a_malicious_pickle_uploaded_through_xet_is_read_from_the_cas(server: LiveServer) -> None:
    owner = new_owner(server)
    owner.api.create_repo(f"{owner.name}/via-xet")
    repo_id = f"{owner.name}/via-xet"
    padded = evil_torch_zip(padding=3 * 1024 * 1024)  # read by ranges, not whole
    owner.api.upload_file(path_or_fileobj=padded, path_in_repo="model.ckpt", repo_id=repo_id)
    [entry] = owner.api.get_paths_info(repo_id, ["model.ckpt"], expand=True)
    assert entry.xet_hash is not None and entry.lfs is not None
    assert server.app().state.blobs.size(f"lfs/{entry.lfs.sha256}") is None  # only in the CAS
    assert flagged(owner.api, repo_id) == {"model.ckpt": {SYSTEM}}


@pytest.mark.e2e
def test_malicious_pickles_pushed_with_git_are_flagged(server: LiveServer, tmp_path: Path) -> None:
    owner = new_owner(server)
    repo, _ = make_repo(owner, "pushed-pickles")
    git = Git(tmp_path / "git-home")
    work = git.clone(repo_url(server, repo.repo_id, owner.token, suffix=".git"), tmp_path / "w")
    large = evil_torch_zip()
    give_lfs_object(server, repo, large)
    # No git-lfs filter in this client: the .pkl goes in as a plain blob, the .bin as a pointer.
    files = {"small.pkl": EVIL, "pytorch_model.bin": lfs_pointer(large), "ok.pkl": torch_file()}
    git.commit_files(work, files, "add pickles")
    git.run("push", cwd=work)
    issues = flagged(owner.api, repo.repo_id)
    assert issues == {"pytorch_model.bin": {SYSTEM}, "small.pkl": {SYSTEM}}


def test_files_committed_before_scanning_are_scanned_by_the_cli(server: LiveServer) -> None:
    owner = new_owner(server)
    repo, _ = make_repo(owner, "older", {"model.pkl": EVIL})
    key = Blob.from_string(EVIL).id.decode()
    with write_transaction(server.app().state.sessionmaker) as session:
        session.execute(delete(PickleScan).where(PickleScan.oid == key))
    status = owner.api.model_info(repo.repo_id, securityStatus=True).security_repo_status
    assert status == {"scansDone": False, "filesWithIssues": []}
    done = server.cli("scan-pickles")
    assert done.returncode == 0, done.stderr
    assert "scanned" in done.stdout
    assert flagged(owner.api, repo.repo_id) == {"model.pkl": {SYSTEM}}


# --- inference -------------------------------------------------------------------------------


PICKLE_REPOS = ("evil-tc", "unscanned-tc")


@pytest.fixture(scope="module")
def pickle_owner(backend: Backend) -> Iterator[Owner]:
    """A user on an inference server that may load the pickle weights of its PICKLE_REPOS."""
    name = f"picklelab{secrets.token_hex(4)}"
    allowed = ",".join(f"{name}/{repo}" for repo in PICKLE_REPOS)
    env = {"ATRIUM_INFERENCE_WORKERS": "1", "ATRIUM_INFERENCE_ALLOW_PICKLE": allowed}
    server = start_server(backend, env)
    _, token = server.new_user(name)
    yield Owner(server, name, token)
    server.stop()


def test_inference_refuses_models_with_unsafe_or_unscanned_pickles(pickle_owner: Owner) -> None:
    files, _ = kit.model_files("text-classification")  # config and tokenizer, no weights
    evil, _ = make_repo(pickle_owner, "evil-tc", {**files, "pytorch_model.bin": EVIL})
    benign = torch_file()
    unscanned, _ = make_repo(pickle_owner, "unscanned-tc", {**files, "pytorch_model.bin": benign})
    with write_transaction(pickle_owner.server.app().state.sessionmaker) as session:
        key = Blob.from_string(benign).id.decode()
        session.execute(delete(PickleScan).where(PickleScan.oid == key))
    for repo, why in ((evil, SYSTEM), (unscanned, "has not been scanned")):
        url = f"{pickle_owner.server.url}/models/{repo.repo_id}"
        answer = httpx.post(url, json={"inputs": "a"}, timeout=60)
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert "pytorch_model.bin" in error and why in error
