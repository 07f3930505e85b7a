"""Tokens and sessions (issue 10 §8), and what issue 10 asks for that is not built yet.

A token is stored only as its hash: neither the database rows nor (on SQLite) the database
files hold the secret. The features still missing (login and token-use rate limits, pickle
scanning shown in `model_info`) are written down as strict xfails, so that they fail the run
the day they land until the marker goes."""

from __future__ import annotations

import io
import pickle
import secrets
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from sqlalchemy import text

from tests.live import LiveServer
from tests.reliability.figures import REFUSED, record
from tests.reliability.test_rate_limits import own_address


def test_tokens_are_stored_only_as_hashes(server: LiveServer) -> None:
    name, _ = server.new_user()
    created = server.cli("tokens", "create", name, "--role", "read", "--label", "at-rest")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    random_part = secret.removeprefix("atr_")
    assert (
        httpx.get(
            f"{server.url}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}
        ).json()["name"]
        == name
    )
    with server.app().state.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM tokens")).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert random_part[:12] not in stored and random_part[-12:] not in stored
    data_dir = Path(server.env["ATRIUM_DATA_DIR"])
    for db_file in data_dir.glob("atrium.db*"):  # SQLite: the file and its WAL
        assert random_part.encode() not in db_file.read_bytes(), db_file


def test_repeated_failed_sign_ins_are_rate_limited(server: LiveServer) -> None:
    name, _ = server.new_user(password="right password")
    with httpx.Client(base_url=server.url, headers=own_address(), timeout=30) as browser:
        statuses = []
        for _ in range(30):
            form = browser.get("/login").text
            token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            data = {"username": name, "password": "wrong", "csrf_token": token}
            statuses.append(browser.post("/login", data=data).status_code)
    record(REFUSED, statuses.count(429))
    assert 429 in statuses


def test_guessing_tokens_is_rate_limited(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, headers=own_address(), timeout=30) as client:
        statuses = [
            client.get(
                "/api/whoami-v2",
                headers={"Authorization": f"Bearer atr_{secrets.token_urlsafe(30)}"},
            ).status_code
            for _ in range(100)
        ]
    assert 429 in statuses


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.xfail(strict=True, reason="issue 10 §7: pickle files are not scanned yet")
def test_a_malicious_pickle_is_flagged_in_model_info(server: LiveServer) -> None:
    name, token = server.new_user()
    api = HfApi(endpoint=server.url, token=token)
    repo_id = f"{name}/pickled"
    api.create_repo(repo_id)
    payload = io.BytesIO(pickle.dumps(_Boom()))
    api.upload_file(path_or_fileobj=payload, path_in_repo="pytorch_model.bin", repo_id=repo_id)
    info = api.model_info(repo_id, securityStatus=True)
    status = info.security_repo_status or {}
    flagged = [f.get("path") for f in status.get("filesWithIssues", [])]
    assert "pytorch_model.bin" in flagged
