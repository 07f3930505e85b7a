"""Foundation behaviour through the real interfaces: CLI, /health, errors, whoami."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.live import LiveServer


def test_health_and_docs_answer(server: LiveServer) -> None:
    health = httpx.get(server.url + "/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["x-request-id"]
    assert httpx.get(server.url + "/docs").status_code == 200


def test_cli_creates_user_and_prints_token_last(server: LiveServer) -> None:
    result = server.cli("users", "create", "carol-cli")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("atr_") and len(token) == 44
    assert HfApi(endpoint=server.url, token=token).whoami()["name"] == "carol-cli"

    second = server.cli("tokens", "create", "carol-cli", "--role", "read", "--label", "ci")
    assert second.returncode == 0, second.stderr
    read_token = second.stdout.strip().splitlines()[-1]
    info = HfApi(endpoint=server.url, token=read_token).whoami()
    assert info["auth"]["accessToken"]["role"] == "read"
    assert info["auth"]["accessToken"]["displayName"] == "ci"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "create", "dup-user"], "already taken"),
        (["users", "create", "bad name"], "invalid name"),
        (["tokens", "create", "nobody-here"], "not found"),
        (["tokens", "create", "dup-user", "--role", "admin"], "'admin' is not one of"),
    ],
    ids=["duplicate-user", "invalid-name", "unknown-user", "unknown-role"],
)
def test_cli_refuses_bad_input_clearly(server: LiveServer, args: list[str], message: str) -> None:
    if args[-1] == "dup-user" or "dup-user" in args:
        server.cli("users", "create", "dup-user")
    result = server.cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_whoami_with_hf_client(server: LiveServer) -> None:
    name, token = server.new_user()
    info = HfApi(endpoint=server.url, token=token).whoami()
    assert info["name"] == name
    assert info["type"] == "user"
    assert info["auth"]["accessToken"]["role"] == "write"


@pytest.mark.parametrize(
    "token", ["atr_" + "x" * 40, "not-a-token", "atr_short"], ids=["unknown", "malformed", "short"]
)
def test_bad_tokens_are_refused(server: LiveServer, token: str) -> None:
    response = httpx.get(
        server.url + "/api/whoami-v2", headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid credentials in Authorization header"}
    assert response.headers["x-error-message"] == "Invalid credentials in Authorization header"


def test_revoked_token_is_refused(server: LiveServer) -> None:
    from app.auth.service import authenticate_token, revoke_token
    from app.db.engine import write_transaction

    _, token = server.new_user()
    api = HfApi(endpoint=server.url, token=token)
    api.whoami()
    with write_transaction(server.app().state.sessionmaker) as session:
        user, row = authenticate_token(session, token)
        revoke_token(session, user, row.id)
    with pytest.raises(HfHubHTTPError) as caught:
        api.whoami()
    assert caught.value.response.status_code == 401


def test_unknown_route_gets_hub_style_error(server: LiveServer) -> None:
    response = httpx.get(server.url + "/api/nothing-here")
    assert response.status_code == 404
    assert "error" in response.json()
    assert response.headers["x-request-id"]
