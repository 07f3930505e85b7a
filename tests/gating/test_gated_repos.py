"""Gated repos (issue 19) against a live server, with the unmodified clients: metadata stays
public, every content path refuses callers without access (401 anonymous, 403 signed in, with
`X-Error-Code: GatedRepo` so huggingface_hub raises GatedRepoError), and access follows the
requests as the owner decides them — at once, credentials derived earlier included."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

from tests.datasets.test_load_dataset import run_client
from tests.git.gitkit import Git, repo_url
from tests.live import LiveServer

CARD = """---
license: other
extra_gated_heading: Acknowledge the license to access this model
extra_gated_prompt: You agree to use this model **responsibly**.
extra_gated_fields:
  Company: text
  Country: country
  Intended use:
    type: select
    options: [Research, Education, {label: Something else, value: other}]
  I agree to the terms: checkbox
---
# A gated model
"""
ANSWERS = {
    "Company": "Acme",
    "Country": "France",
    "Intended use": "Research",
    "I agree to the terms": True,
}
# load_dataset in a fresh interpreter pointed at the server: the error it raises and why.
LOAD_SCRIPT = """
import json, sys
import datasets

repo, token = sys.argv[1], sys.argv[2]
try:
    rows = [dict(r) for r in datasets.load_dataset(repo, token=token)["train"]]
    print(json.dumps({"rows": rows}))
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""
WEIGHTS = secrets.token_bytes(300_000)  # a large file, stored through Xet by upload_folder


def api(server: LiveServer, token: str | None) -> HfApi:
    return HfApi(endpoint=server.url, token=token if token else False)


def seed(server: LiveServer, token: str, repo_id: str, tmp_path: Path, **kwargs: str) -> None:
    """A repo as a user makes it: the default client (Xet on) uploads a folder."""
    folder = tmp_path / f"seed-{secrets.token_hex(3)}"
    folder.mkdir()
    (folder / "README.md").write_text(CARD)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "model.safetensors").write_bytes(WEIGHTS)
    for name, text in kwargs.items():
        (folder / name.replace("_", ".")).write_text(text)
    hub = api(server, token)
    hub.upload_folder(folder_path=folder, repo_id=repo_id, repo_type=None)


def gated_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers.get("x-error-code") == "GatedRepo"


def get(server: LiveServer, path: str, token: str | None, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))  # type: ignore[arg-type]
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


def content_paths_refuse(
    server: LiveServer, repo_id: str, token: str | None, status: int, tmp_path: Path
) -> None:
    """Every way to content answers the GatedRepo error; metadata still answers."""
    hub = api(server, token)
    info = hub.model_info(repo_id, files_metadata=True)
    assert info.gated in ("auto", "manual")
    assert {s.rfilename for s in info.siblings or []} >= {"README.md", "model.safetensors"}
    assert "model.safetensors" in hub.list_repo_files(repo_id)
    cache = tmp_path / f"cache-{secrets.token_hex(3)}"
    with pytest.raises(GatedRepoError, match=f"Access to model {repo_id} is restricted"):
        hf_hub_download(
            repo_id, "config.json", endpoint=server.url, token=token or False, cache_dir=cache
        )
    with pytest.raises(GatedRepoError):
        snapshot_download(repo_id, endpoint=server.url, token=token or False, cache_dir=cache)
    for path in ("resolve/main/config.json", "raw/main/README.md", "resolve/main/.gitattributes"):
        gated_error(get(server, f"/{repo_id}/{path}", token), status)
    ranged = get(
        server, f"/{repo_id}/resolve/main/model.safetensors", token, headers={"Range": "bytes=0-9"}
    )
    gated_error(ranged, status)
    head = httpx.head(
        f"{server.url}/{repo_id}/resolve/main/model.safetensors",
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    gated_error(head, status)
    gated_error(get(server, f"/api/models/{repo_id}/xet-read-token/main", token), status)
    oid = hashlib.sha256(WEIGHTS).hexdigest()
    batch = httpx.post(
        f"{server.url}/{repo_id}.git/info/lfs/objects/batch",
        json={"operation": "download", "objects": [{"oid": oid, "size": len(WEIGHTS)}]},
        headers={
            "Accept": "application/vnd.git-lfs+json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    assert batch.status_code == status, batch.text
    inference = httpx.post(
        f"{server.url}/models/{repo_id}",
        json={"inputs": "hello"},
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=60,
    )
    gated_error(inference, status)
    with pytest.raises(GatedRepoError):
        hub.auth_check(repo_id)
    git = Git(tmp_path / f"git-{secrets.token_hex(3)}")
    cloned = git.run("clone", repo_url(server, repo_id, token), str(git.home / "c"), check=False)
    assert cloned.returncode != 0 and not (git.home / "c" / "config.json").exists()


def test_gated_model_refuses_content_until_access_is_granted(
    server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    owner, owner_token = server.new_user()
    visitor, visitor_token = server.new_user()
    repo_id = f"{owner}/gated-model"
    owner_api = api(server, owner_token)
    owner_api.create_repo(repo_id)
    seed(server, owner_token, repo_id, tmp_path)
    # A Xet read token taken while the repo is open dies the moment the gate closes.
    early = get(server, f"/api/models/{repo_id}/xet-read-token/main", visitor_token).json()
    owner_api.update_repo_settings(repo_id, gated="manual")
    assert owner_api.model_info(repo_id).gated == "manual"
    xet_file = owner_api.get_paths_info(repo_id, ["model.safetensors"])[0]
    xet_hash = getattr(xet_file, "xet_hash", None)
    assert xet_hash, "upload_folder stored the weights through Xet"
    stale = httpx.get(
        f"{early['casUrl']}/v1/reconstructions/{xet_hash}",
        headers={"Authorization": f"Bearer {early['accessToken']}"},
    )
    gated_error(stale, 403)

    content_paths_refuse(server, repo_id, None, 401, tmp_path)
    content_paths_refuse(server, repo_id, visitor_token, 403, tmp_path)

    # The owner reads as before; the visitor asks, with answers the form checks.
    owner_api.auth_check(repo_id)
    assert hf_hub_download(
        repo_id, "config.json", endpoint=server.url, token=owner_token, cache_dir=tmp_path / "o"
    )
    ask = f"{server.url}/api/models/{repo_id}/ask-access"
    auth = {"Authorization": f"Bearer {visitor_token}"}
    missing = httpx.post(
        ask, json={"fields": {**ANSWERS, "I agree to the terms": False}}, headers=auth
    )
    assert missing.status_code == 400 and "I agree to the terms" in missing.json()["error"]
    wrong = httpx.post(ask, json={"fields": {**ANSWERS, "Country": "Atlantis"}}, headers=auth)
    assert wrong.status_code == 400 and "Country" in wrong.json()["error"]
    asked = httpx.post(ask, json={"fields": ANSWERS}, headers=auth)
    assert asked.status_code == 200 and asked.json() == {"status": "pending"}
    with pytest.raises(GatedRepoError, match="awaiting a review"):
        hf_hub_download(
            repo_id,
            "config.json",
            endpoint=server.url,
            token=visitor_token,
            cache_dir=tmp_path / "v0",
        )

    # Only those who may write the repo review it.
    with pytest.raises(HfHubHTTPError) as refused:
        list(api(server, visitor_token).list_pending_access_requests(repo_id))
    assert refused.value.response.status_code == 403
    pending = list(owner_api.list_pending_access_requests(repo_id))
    assert [(r.username, r.status) for r in pending] == [(visitor, "pending")]
    assert pending[0].fields == ANSWERS
    assert list(owner_api.list_accepted_access_requests(repo_id)) == []

    owner_api.accept_access_request(repo_id, visitor)
    visitor_api = api(server, visitor_token)
    visitor_api.auth_check(repo_id)
    folder = snapshot_download(
        repo_id, endpoint=server.url, token=visitor_token, cache_dir=tmp_path / "v1"
    )
    assert (Path(folder) / "model.safetensors").read_bytes() == WEIGHTS
    git = Git(tmp_path / "git-ok")
    clone = git.clone(repo_url(server, repo_id, visitor_token), git.home / "clone")
    assert json.loads((clone / "config.json").read_text()) == {"model_type": "bert"}
    held = get(server, f"/api/models/{repo_id}/xet-read-token/main", visitor_token).json()

    # Rejecting an accepted user revokes at once, the Xet token they hold included.
    owner_api.reject_access_request(repo_id, visitor, rejection_reason="Not for this project")
    with pytest.raises(GatedRepoError, match="rejected"):
        hf_hub_download(
            repo_id,
            "config.json",
            endpoint=server.url,
            token=visitor_token,
            cache_dir=tmp_path / "v2",
        )
    revoked = httpx.get(
        f"{held['casUrl']}/v1/reconstructions/{xet_hash}",
        headers={"Authorization": f"Bearer {held['accessToken']}"},
    )
    gated_error(revoked, 403)
    rejected = list(owner_api.list_rejected_access_requests(repo_id))
    assert [r.username for r in rejected] == [visitor] and rejected[0].fields == ANSWERS
    again = httpx.post(ask, json={"fields": ANSWERS}, headers=auth)
    assert again.status_code == 400
    with pytest.raises(HfHubHTTPError) as twice:
        owner_api.reject_access_request(repo_id, visitor, rejection_reason=None)
    assert twice.value.response.status_code == 404
    owner_api.cancel_access_request(repo_id, visitor)
    assert [r.username for r in owner_api.list_pending_access_requests(repo_id)] == [visitor]

    # A grant needs no request; granting twice is refused; an unknown user is 404.
    third, third_token = server.new_user()
    owner_api.grant_access(repo_id, third)
    assert hf_hub_download(
        repo_id, "config.json", endpoint=server.url, token=third_token, cache_dir=tmp_path / "t"
    )
    with pytest.raises(HfHubHTTPError) as granted:
        owner_api.grant_access(repo_id, third)
    assert granted.value.response.status_code == 400
    with pytest.raises(HfHubHTTPError) as nobody:
        owner_api.grant_access(repo_id, f"nobody{secrets.token_hex(3)}")
    assert nobody.value.response.status_code == 404

    # The decisions are in the audit log.
    _, admin_token = server.new_user(admin=True)
    log = get(server, "/api/admin/audit-log", admin_token, params={"target": repo_id}).json()
    actions = [e["action"] for e in log]
    assert {"repo.gated", "gate.request", "gate.decide", "gate.grant"} <= set(actions)


def test_auto_gate_accepts_at_once_and_members_never_ask(
    server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    owner, owner_token = server.new_user()
    visitor, visitor_token = server.new_user()
    repo_id = f"{owner}/auto-gated"
    owner_api = api(server, owner_token)
    owner_api.create_repo(repo_id)
    seed(server, owner_token, repo_id, tmp_path)
    owner_api.update_repo_settings(repo_id, gated="auto")
    with pytest.raises(GatedRepoError):
        hf_hub_download(
            repo_id,
            "config.json",
            endpoint=server.url,
            token=visitor_token,
            cache_dir=tmp_path / "a",
        )
    asked = httpx.post(
        f"{server.url}/api/models/{repo_id}/ask-access",
        json={"fields": ANSWERS},
        headers={"Authorization": f"Bearer {visitor_token}"},
    )
    assert asked.json() == {"status": "accepted"}
    assert hf_hub_download(
        repo_id, "config.json", endpoint=server.url, token=visitor_token, cache_dir=tmp_path / "b"
    )
    accepted = list(owner_api.list_accepted_access_requests(repo_id))
    assert [(r.username, r.fields) for r in accepted] == [(visitor, ANSWERS)]
    assert list(owner_api.list_pending_access_requests(repo_id)) == []

    # Requests waiting on a manual gate are accepted when it turns auto.
    waiting, waiting_token = server.new_user()
    owner_api.update_repo_settings(repo_id, gated="manual")
    httpx.post(
        f"{server.url}/api/models/{repo_id}/ask-access",
        json={"fields": ANSWERS},
        headers={"Authorization": f"Bearer {waiting_token}"},
    )
    assert [r.username for r in owner_api.list_pending_access_requests(repo_id)] == [waiting]
    owner_api.update_repo_settings(repo_id, gated="auto")
    assert hf_hub_download(
        repo_id, "config.json", endpoint=server.url, token=waiting_token, cache_dir=tmp_path / "c"
    )

    # An org's members read its gated repo without asking; a read token cannot review.
    org = f"gate{secrets.token_hex(3)}"
    assert server.cli("orgs", "create", org, "--owner", owner).returncode == 0
    member, member_token = server.new_user()
    assert server.cli("orgs", "add-member", org, member, "--role", "read").returncode == 0
    org_repo = f"{org}/team-model"
    owner_api.create_repo(org_repo)
    seed(server, owner_token, org_repo, tmp_path)
    owner_api.update_repo_settings(org_repo, gated="manual")
    assert hf_hub_download(
        org_repo, "config.json", endpoint=server.url, token=member_token, cache_dir=tmp_path / "m"
    )
    with pytest.raises(HfHubHTTPError) as member_review:
        list(api(server, member_token).list_pending_access_requests(org_repo))
    assert member_review.value.response.status_code == 403

    # Ungated again: everyone reads; the reviews answer 400 (not gated).
    owner_api.update_repo_settings(org_repo, gated=False)
    assert hf_hub_download(
        org_repo, "config.json", endpoint=server.url, token=False, cache_dir=tmp_path / "n"
    )
    with pytest.raises(HfHubHTTPError) as ungated:
        list(owner_api.list_pending_access_requests(org_repo))
    assert ungated.value.response.status_code == 400


def test_gated_dataset_hides_rows_parquet_and_files(
    server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    owner, owner_token = server.new_user()
    visitor, visitor_token = server.new_user()
    repo_id = f"{owner}/gated-data"
    owner_api = api(server, owner_token)
    owner_api.create_repo(repo_id, repo_type="dataset")
    rows = "\n".join(json.dumps({"text": f"secret row {i}", "label": i % 2}) for i in range(20))
    owner_api.upload_file(
        path_or_fileobj=rows.encode(),
        path_in_repo="data/train.jsonl",
        repo_id=repo_id,
        repo_type="dataset",
    )
    owner_api.update_repo_settings(repo_id, repo_type="dataset", gated="manual")
    viewer = "/api/datasets-server"
    # The owner's viewer converts and answers; the visitor's gets GatedRepo on every route.
    owner_rows = get(
        server,
        f"{viewer}/rows",
        owner_token,
        params={"dataset": repo_id, "config": "default", "split": "train"},
    )
    assert owner_rows.status_code == 200 and "secret row" in owner_rows.text
    for token, status in ((None, 401), (visitor_token, 403)):
        for route, extra in (
            ("rows", {"config": "default", "split": "train"}),
            ("first-rows", {"config": "default", "split": "train"}),
            ("search", {"config": "default", "split": "train", "query": "secret"}),
            ("filter", {"config": "default", "split": "train", "where": "label=1"}),
            ("parquet", {}),
            ("splits", {}),
        ):
            answer = get(server, f"{viewer}/{route}", token, params={"dataset": repo_id, **extra})
            gated_error(answer, status)
            assert "secret row" not in answer.text
        export = get(
            server,
            f"/datasets/{repo_id}/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet",
            token,
        )
        gated_error(export, status)
    refused = run_client(server, tmp_path / "c1", LOAD_SCRIPT, repo_id, visitor_token)
    assert refused["error"] == "DatasetNotFoundError" and "gated dataset" in refused["message"]
    # datasets turns the client's GatedRepoError (403 here) into this message.
    assert "to ask for access" in refused["message"]
    owner_api.grant_access(repo_id, visitor, repo_type="dataset")
    loaded = run_client(server, tmp_path / "c2", LOAD_SCRIPT, repo_id, visitor_token)
    assert loaded["rows"][0] == {"text": "secret row 0", "label": 0}
