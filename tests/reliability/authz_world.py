"""A small world for the authorization matrix: an organisation with an owner (org admin), a
read member and a write member, an outsider, a site admin, and a public and a private repo
of the organisation holding a README and an LFS file."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass

import httpx

from app.auth.permissions import Principal
from app.auth.service import add_member, create_org, create_token, create_user, revoke_token
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.repos.commits import AddFile, AddLfsFile, Author, create_commit
from app.repos.manage import create_repo
from app.repos.models import LfsObject, RepoLfsObject
from tests.live import LiveServer

README = b"# authz\n"
WEIGHTS = b"weights " * 1000
WEIGHTS_OID = hashlib.sha256(WEIGHTS).hexdigest()
PASSWORD = "correct horse battery staple"
CALLERS = ("anonymous", "outsider", "owner_read_token", "reader", "writer", "owner", "admin")


@dataclass
class World:
    server: LiveServer
    org: str
    tokens: dict[str, str]  # caller -> token (anonymous absent)
    users: dict[str, str]  # caller -> user name (anonymous absent)
    revoked: str
    shas: dict[str, str]  # "public"/"private" -> head commit

    def repo_id(self, visibility: str) -> str:
        return f"{self.org}/{visibility}"

    def headers(self, caller: str) -> dict[str, str]:
        token = self.tokens.get(caller)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def basic(self, caller: str) -> dict[str, str]:
        """git's way to send the token: HTTP Basic with the token as password."""
        token = self.tokens.get(caller)
        if not token:
            return {}
        return {"Authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode()}


def build_world(server: LiveServer) -> World:
    factory = server.app().state.sessionmaker
    tag = secrets.token_hex(3)
    tokens: dict[str, str] = {}
    with write_transaction(factory) as session:
        users = {
            caller: create_user(
                session,
                f"{caller.replace('_', '-')}-{tag}",
                is_admin=caller == "admin",
                password=PASSWORD,
            )
            for caller in ("outsider", "reader", "writer", "owner", "admin")
        }
        for caller, user in users.items():
            tokens[caller] = create_token(session, user, role="write").secret
        tokens["owner_read_token"] = create_token(session, users["owner"], role="read").secret
        gone = create_token(session, users["owner"], role="write")
        revoke_token(session, users["owner"], gone.token.id)
        org = create_org(session, f"org-{tag}", users["owner"])
        add_member(session, org, users["reader"], "read")
        add_member(session, org, users["writer"], "write")
        owner = Principal(user=users["owner"], role="write")
    shas = {v: _seed_repo(server, owner, org.name, v) for v in ("public", "private")}
    names = {caller: user.name for caller, user in users.items()}
    names["owner_read_token"] = names["owner"]  # in a browser, the owner signs in
    return World(server, org.name, tokens, names, gone.secret, shas)


def _seed_repo(server: LiveServer, owner: Principal, org: str, visibility: str) -> str:
    app = server.app()
    factory, blobs = app.state.sessionmaker, app.state.blobs
    repo = create_repo(
        factory, blobs, owner, "model", org, visibility, private=visibility == "private"
    )
    blobs.put(f"lfs/{WEIGHTS_OID}", [WEIGHTS], sha256=WEIGHTS_OID, size=len(WEIGHTS))
    with write_transaction(factory) as session:
        insert_ignore(session, LfsObject, [{"oid": WEIGHTS_OID, "size": len(WEIGHTS)}], ["oid"])
        row = {"repo_id": repo.id, "oid": WEIGHTS_OID}
        insert_ignore(session, RepoLfsObject, [row], ["repo_id", "oid"])
    assert owner.user is not None
    ops = [AddFile("README.md", README), AddLfsFile("w.bin", WEIGHTS_OID, len(WEIGHTS))]
    author = Author.of(owner.user)
    return create_commit(factory, blobs, repo.id, "main", ops, author=author, title="seed").sha


def sign_in(client: httpx.Client, user: str) -> None:
    """Sign in through the login form, as a browser does (CSRF token from the form)."""
    form = client.get("/login").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert match, "no CSRF token on the login form"
    data = {"username": user, "password": PASSWORD, "csrf_token": match[1]}
    answer = client.post("/login", data=data)
    assert answer.status_code in (200, 302, 303), (answer.status_code, answer.text[-1500:])


def ndjson_commit(path: str) -> bytes:
    lines = [
        {"key": "header", "value": {"summary": "authz probe"}},
        {"key": "file", "value": {"path": path, "content": "cHJvYmU=", "encoding": "base64"}},
    ]
    return b"\n".join(json.dumps(line).encode() for line in lines)
