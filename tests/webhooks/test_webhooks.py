"""Webhooks (issue 21) with the unmodified client and a receiver on loopback: the payload and
secret of a commit and of a discussion comment, retries until the receiver answers (the event
arrives once), durability across a kill -9, two replicas sending each event once, private
repos only to webhooks whose owner may read them, and the address policy."""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from app.config import Settings
from app.errors import BadRequest
from app.webhooks.service import CLAIM_S, check_url
from tests.live import LiveServer, start_server


@dataclass
class Receiver:
    """An HTTP receiver: records every POST; answers `fail` of them with 500 first."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    fail: int = 0
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, scope: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r for r in self.received if scope is None or r["body"]["event"]["scope"] == scope
            ]

    def wait(
        self, count: int, scope: str | None = None, timeout: float = 30
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(scope)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{len(self.events(scope))} of {count} deliveries arrived")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.attempts += 1
                failing = state.fail > 0
                if failing:
                    state.fail -= 1
                else:
                    state.received.append({"headers": dict(self.headers), "body": body})
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{http.server_address[1]}/hook"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield state
    http.shutdown()


def test_commit_and_comment_deliveries_with_retries(
    server: LiveServer, receiver: Receiver, hf_home: Path
) -> None:
    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo_id = f"{owner}/hooked-{secrets.token_hex(2)}"
    hub.create_repo(repo_id)
    hook = hub.create_webhook(
        url=receiver.url,
        watched=[{"type": "model", "name": repo_id}],
        domains=["repo", "discussion"],
        secret="s3cret",
    )
    assert [h.id for h in hub.list_webhooks()] == [hook.id]
    assert hub.get_webhook(hook.id).secret == "s3cret"

    receiver.fail = 3  # the receiver is down three times; the event arrives once after
    commit = hub.upload_file(path_or_fileobj=b"v1", path_in_repo="a.txt", repo_id=repo_id)
    (delivery,) = receiver.wait(1, "repo.content")
    body = delivery["body"]
    assert delivery["headers"]["X-Webhook-Secret"] == "s3cret"
    assert body["event"] == {"action": "update", "scope": "repo.content"}
    assert body["repo"]["name"] == repo_id and body["repo"]["headSha"] == commit.oid
    assert body["updatedRefs"][0]["newSha"] == commit.oid
    assert body["webhook"]["id"] == hook.id
    time.sleep(1)
    assert len(receiver.events("repo.content")) == 1 and receiver.attempts == 4

    hub.create_discussion(repo_id, title="Hello")
    hub.comment_discussion(repo_id, 1, "A comment")
    (said,) = receiver.wait(1, "discussion.comment")
    assert said["body"]["comment"]["content"] == "A comment"
    assert said["body"]["discussion"]["num"] == 1
    assert receiver.wait(1, "discussion")[0]["body"]["discussion"]["title"] == "Hello"

    # Disabled webhooks hear nothing; the owner sees the deliveries; others see no webhook.
    hub.disable_webhook(hook.id)
    hub.upload_file(path_or_fileobj=b"v2", path_in_repo="a.txt", repo_id=repo_id)
    time.sleep(1.5)
    assert len(receiver.events("repo.content")) == 1
    hub.enable_webhook(hook.id)
    hub.update_webhook(
        hook.id, url=receiver.url, watched=[{"type": "user", "name": owner}], domains=["repo"]
    )
    _, other_token = server.new_user()
    with pytest.raises(HfHubHTTPError) as foreign:
        HfApi(endpoint=server.url, token=other_token).get_webhook(hook.id)
    assert foreign.value.response.status_code == 404
    hub.delete_webhook(hook.id)
    assert hub.list_webhooks() == []


def test_private_repos_are_told_only_to_their_readers(
    server: LiveServer, receiver: Receiver, hf_home: Path
) -> None:
    owner, token = server.new_user()
    _, spy_token = server.new_user()
    hub, spy = HfApi(endpoint=server.url, token=token), HfApi(endpoint=server.url, token=spy_token)
    secret = f"{owner}/private-{secrets.token_hex(2)}"
    hub.create_repo(secret, private=True)
    spy.create_webhook(
        url=receiver.url, watched=[{"type": "user", "name": owner}], domains=["repo"]
    )
    mine = hub.create_webhook(
        url=receiver.url, watched=[{"type": "user", "name": owner}], domains=["repo"]
    )
    hub.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=secret)
    receiver.wait(1, "repo.content")
    time.sleep(1)
    hooks = {d["body"]["webhook"]["id"] for d in receiver.events("repo.content")}
    assert hooks == {mine.id}


def test_the_address_policy_refuses_loopback_and_metadata_by_default() -> None:
    strict = Settings(webhook_allow_private=False)
    for url in (
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://[::1]/hook",
        "ftp://example.com/x",
        "not a url",
    ):
        with pytest.raises(BadRequest):
            check_url(url, strict)
    assert check_url("http://127.0.0.1/hook", Settings(webhook_allow_private=True))


def test_deliveries_survive_a_kill_and_two_replicas_send_once(
    server: LiveServer, receiver: Receiver, hf_home: Path
) -> None:
    second = start_server(server.backend)
    try:
        owner, token = server.new_user()
        on_a = HfApi(endpoint=server.url, token=token)
        on_b = HfApi(endpoint=second.url, token=token)
        repo_id = f"{owner}/replicated-{secrets.token_hex(2)}"
        on_a.create_repo(repo_id)
        on_a.create_webhook(
            url=receiver.url, watched=[{"type": "model", "name": repo_id}], domains=["repo"]
        )
        # Two replicas sending from one queue: each of 6 commits arrives once.
        for i in range(6):
            (on_a if i % 2 else on_b).upload_file(
                path_or_fileobj=f"v{i}".encode(), path_in_repo="f.txt", repo_id=repo_id
            )
        found = receiver.wait(6, "repo.content")
        time.sleep(1.5)
        shas = [d["body"]["updatedRefs"][0]["newSha"] for d in receiver.events("repo.content")]
        assert len(shas) == len(set(shas)) == 6

        # The receiver is down when a commit lands on B; B is killed; the event still comes.
        receiver.fail = 10**6
        on_b.upload_file(path_or_fileobj=b"late", path_in_repo="f.txt", repo_id=repo_id)
        time.sleep(0.5)
        os.kill(second.proc.pid, signal.SIGKILL)
        second.proc.wait(10)
        receiver.fail = 0
        # A delivery the killed process had claimed waits out its claim (CLAIM_S) first.
        found = receiver.wait(7, "repo.content", timeout=CLAIM_S + 20)
        assert len(found) == 7
    finally:
        second.stop()


def test_the_webhooks_page_adds_lists_and_disables(
    server: LiveServer, receiver: Receiver, hf_home: Path
) -> None:
    import re

    import httpx

    name, password = f"hooker{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    _, token = server.new_user(name, password=password)
    repo_id = f"{name}/paged-{secrets.token_hex(2)}"
    HfApi(endpoint=server.url, token=token).create_repo(repo_id)
    with httpx.Client(base_url=server.url) as browser:

        def csrf(html: str) -> str:
            found = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert found
            return found.group(1)

        login = {"username": name, "password": password, "next": "/"}
        login["csrf_token"] = csrf(browser.get("/login").text)
        assert browser.post("/login", data=login).status_code == 303
        page = browser.get("/settings/webhooks").text
        bad = browser.post(
            "/settings/webhooks",
            data={"url": "ftp://x", "watched": f"model:{repo_id}", "csrf_token": csrf(page)},
        )
        assert bad.status_code == 200 and 'id="webhook-error"' in bad.text
        form = {
            "url": receiver.url,
            "watched": f"model:{repo_id}",
            "domain-repo": "on",
            "secret": "from-the-page",
            "csrf_token": csrf(page),
        }
        assert browser.post("/settings/webhooks", data=form).status_code == 303
        HfApi(endpoint=server.url, token=token).upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id
        )
        (delivery,) = receiver.wait(1, "repo.content")
        assert delivery["headers"]["X-Webhook-Secret"] == "from-the-page"
        time.sleep(0.5)
        listed = browser.get("/settings/webhooks").text
        assert receiver.url in listed and "delivered" in listed
        uid = re.search(r'data-id="([0-9a-f]+)"', listed)
        assert uid
        done = browser.post(
            f"/settings/webhooks/{uid.group(1)}/disable", data={"csrf_token": csrf(listed)}
        )
        assert done.status_code == 303
    assert HfApi(endpoint=server.url, token=token).get_webhook(uid.group(1)).disabled
