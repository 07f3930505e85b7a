"""Tokens and sessions (issue 10 §8).

A token is stored only as its hash: neither the database rows nor (on SQLite) the database
files hold the secret. Failed sign-ins and guessed tokens are rate limited. (Pickle scanning,
issue 10 §7, is tested in tests/security/test_pickle_scan.py.)"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
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
