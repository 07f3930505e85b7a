"""Webhooks (no HTTP routes here): managing them, enqueueing what they watch, and sending.

What is sent, as the Hub sends it (hub-docs "Webhooks"): a JSON payload

    {"event": {"action": "create|update|delete", "scope": "repo.content|discussion|…"},
     "repo": {"type", "name", "id", "private", "headSha", "owner": {"name"}, "url"?},
     "updatedRefs"?: [{"ref", "oldSha", "newSha"}],
     "discussion"?: {"num", "title", "status", "isPullRequest", "author"},
     "comment"?: {"id", "content", "hidden", "author"},
     "webhook": {"id", "version": 3}}

with the header `X-Webhook-Secret` when the webhook has a secret. Repo events come from the
ref service's durable `repo_events` (the `WebhookEvents` consumer); discussion events are
enqueued in the transaction that records them. Either way a `webhook_deliveries` row is the
unit of work: a restart loses nothing, enqueueing twice is a no-op (`event_key`), and the
`Sender` of each process claims due rows by compare-and-swap, so replicas never send one row
twice at once. Failures are retried with exponential backoff (`ATRIUM_WEBHOOK_RETRY_SECONDS`
doubled each time, at most ten minutes apart); a delivery that fails `MAX_ATTEMPTS` times is
given up, and a webhook whose deliveries fail `DISABLE_AFTER` times in a row is disabled with
the reason shown to its owner.

Private repos' events go only to webhooks whose owner may read them. Receivers on loopback,
link-local (cloud metadata), private or reserved addresses are refused — when the webhook is
saved and again before each send, against DNS rebinding — unless
`ATRIUM_WEBHOOK_ALLOW_PRIVATE=true`.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import User
from app.auth.permissions import Principal, can_read
from app.config import Settings
from app.db.base import utcnow
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.errors import BadRequest, Forbidden, NotFound, Unauthorized
from app.http import iso_z
from app.repos.models import Ref, Repo, RepoEvent
from app.repos.service import DEFAULT_BRANCH, HEADS
from app.webhooks.models import DELIVERED, FAILED, PENDING, Webhook, WebhookDelivery

log = logging.getLogger("atrium.webhooks")
DOMAINS = ("repo", "discussion")
WATCH_TYPES = ("user", "org", "model", "dataset", "space")
MAX_WEBHOOKS = 50  # per user
MAX_WATCHED = 100
MAX_ATTEMPTS = 8
DISABLE_AFTER = 10  # deliveries given up in a row
MAX_BACKOFF_S = 600.0
CLAIM_S = 30.0  # a claimed delivery is another sender's again after this (> SEND_TIMEOUT_S)
SEND_TIMEOUT_S = 10.0
BATCH = 20
VERSION = 3


# --- managing webhooks ----------------------------------------------------------------------


def require_owner(principal: Principal, *, write: bool) -> User:
    if principal.user is None:
        raise Unauthorized("You must be authenticated to manage webhooks")
    if write and (principal.role != "write" or principal.scopes is not None):
        raise Forbidden("Managing webhooks needs a write token (not a read or fine-grained one)")
    return principal.user


def check_url(url: str, settings: Settings) -> str:
    """An http(s) URL whose host does not resolve to this machine, the cloud's metadata
    service or a private network (unless `ATRIUM_WEBHOOK_ALLOW_PRIVATE`)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise BadRequest("A webhook URL is an http:// or https:// URL with a host")
    if not settings.webhook_allow_private:
        refused = refused_address(parts.hostname, parts.port or 0)
        if refused is not None:
            raise BadRequest(
                f"Webhook URL {url[:200]!r} points at {refused}, which is refused: set "
                "ATRIUM_WEBHOOK_ALLOW_PRIVATE=true to send to private networks"
            )
    return url


def refused_address(host: str, port: int) -> str | None:
    """Why host may not be sent to (its first refused address), or None."""
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except OSError:
        return f"{host}, which does not resolve"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_loopback
            or address.is_link_local
            or address.is_private
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            return f"{address} (loopback, link-local, private or reserved)"
    return None


def _watched(items: Any) -> list[dict[str, str]]:
    if not isinstance(items, list) or not items:
        raise BadRequest("'watched' lists at least one {type, name}")
    if len(items) > MAX_WATCHED:
        raise BadRequest(f"A webhook watches at most {MAX_WATCHED} items")
    out = []
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        name = item.get("name") if isinstance(item, dict) else None
        if kind not in WATCH_TYPES or not isinstance(name, str) or not name.strip():
            raise BadRequest(f"each watched item is {{type: {'|'.join(WATCH_TYPES)}, name}}")
        out.append({"type": kind, "name": name.strip()[:200]})
    return out


def _domains(domains: Any) -> list[str]:
    if domains is None:
        return list(DOMAINS)
    if not isinstance(domains, list) or not domains or any(d not in DOMAINS for d in domains):
        raise BadRequest(f"'domains' lists some of: {', '.join(DOMAINS)}")
    return sorted(set(domains))


def _secret(secret: Any) -> str | None:
    if secret is None or secret == "":
        return None
    if not isinstance(secret, str) or len(secret) > 200:
        raise BadRequest("'secret' is a string of at most 200 characters")
    return secret


def create(session: Session, user: User, body: dict[str, Any], settings: Settings) -> Webhook:
    count = session.query(Webhook).filter(Webhook.owner_id == user.id).count()
    if count >= MAX_WEBHOOKS:
        raise BadRequest(f"A user has at most {MAX_WEBHOOKS} webhooks")
    url = body.get("url")
    if not isinstance(url, str):
        raise BadRequest("'url' is required: where to send the events")
    hook = Webhook(
        uid=secrets.token_hex(12),
        owner_id=user.id,
        url=check_url(url, settings),
        secret=_secret(body.get("secret")),
        watched=_watched(body.get("watched")),
        domains=_domains(body.get("domains")),
    )
    session.add(hook)
    session.flush()
    return hook


def find(session: Session, user: User, uid: str) -> Webhook:
    hook = session.scalar(select(Webhook).where(Webhook.uid == uid, Webhook.owner_id == user.id))
    if hook is None:
        raise NotFound(f"Webhook {uid[:40]!r} not found")
    return hook


def owned(session: Session, user: User) -> Sequence[Webhook]:
    return session.scalars(
        select(Webhook).where(Webhook.owner_id == user.id).order_by(Webhook.id)
    ).all()


def change(hook: Webhook, body: dict[str, Any], settings: Settings) -> None:
    if body.get("url") is not None:
        hook.url = check_url(str(body["url"]), settings)
    if body.get("watched") is not None:
        hook.watched = _watched(body["watched"])
    if body.get("domains") is not None:
        hook.domains = _domains(body["domains"])
    if "secret" in body:
        hook.secret = _secret(body["secret"])
    hook.updated_at = utcnow()


def set_enabled(hook: Webhook, enabled: bool) -> None:
    hook.disabled = not enabled
    hook.disabled_reason = None if enabled else "disabled by its owner"
    if enabled:
        hook.failures = 0


def as_json(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.uid,
        "url": hook.url,
        "watched": hook.watched,
        "domains": hook.domains,
        "secret": hook.secret,
        "disabled": hook.disabled,
        "disabledReason": hook.disabled_reason,
    }


def deliveries(session: Session, hook: Webhook, limit: int = 50) -> Sequence[WebhookDelivery]:
    return session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == hook.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    ).all()


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "event": row.payload.get("event"),
        "status": row.status,
        "attempts": row.attempts,
        "responseStatus": row.response_status,
        "error": row.error,
        "createdAt": iso_z(row.created_at),
        "deliveredAt": iso_z(row.delivered_at) if row.delivered_at else None,
    }


# --- what each webhook is told -----------------------------------------------------------------


def _watches(hook: Webhook, repo: Repo) -> bool:
    for item in hook.watched:
        if item["type"] in ("user", "org") and item["name"] == repo.namespace:
            return True
        if item["type"] == repo.type and item["name"] == repo.repo_id:
            return True
    return False


def listeners(session: Session, repo: Repo, domain: str) -> list[Webhook]:
    """The enabled webhooks watching repo in that domain whose owner may read it."""
    candidates = session.scalars(select(Webhook).where(Webhook.disabled.is_(False))).all()
    out = []
    owners: dict[int, User | None] = {}
    for hook in candidates:
        if domain not in hook.domains or not _watches(hook, repo):
            continue
        if hook.owner_id not in owners:
            owners[hook.owner_id] = session.get(User, hook.owner_id)
        owner = owners[hook.owner_id]
        if owner is None or owner.disabled_at is not None:
            continue
        principal = Principal(user=owner, role="write")
        if can_read(session, principal, repo.namespace, repo.private, (repo.type, repo.repo_id)):
            out.append(hook)
    return out


def repo_json(session: Session, repo: Repo, public_url: str | None) -> dict[str, Any]:
    head = session.scalar(
        select(Ref.commit_sha).where(Ref.repo_id == repo.id, Ref.name == "refs/heads/main")
    )
    out: dict[str, Any] = {
        "type": repo.type,
        "name": repo.repo_id,
        "id": repo.uid,
        "private": repo.private,
        "headSha": head,
        "owner": {"name": repo.namespace},
    }
    if public_url:
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(repo.type, "")
        base = public_url.rstrip("/")
        out["url"] = {
            "web": f"{base}/{prefix}{repo.repo_id}",
            "api": f"{base}/api/{repo.type}s/{repo.repo_id}",
        }
    return out


def enqueue(
    session: Session,
    repo: Repo,
    domain: str,
    key: str,
    payload: dict[str, Any],
) -> int:
    """A delivery of payload for every webhook listening; idempotent per (webhook, key)."""
    hooks = listeners(session, repo, domain)
    rows = [
        {
            "webhook_id": hook.id,
            "event_key": key[:80],
            "payload": {**payload, "webhook": {"id": hook.uid, "version": VERSION}},
            "status": PENDING,
            "attempts": 0,
            "next_at": utcnow(),
            "created_at": utcnow(),
        }
        for hook in hooks
    ]
    if rows:
        insert_ignore(session, WebhookDelivery, rows, ["webhook_id", "event_key"])
    return len(rows)


def enqueue_discussion(
    session: Session,
    repo: Repo,
    scope: str,
    action: str,
    key: str,
    discussion: dict[str, Any],
    comment: dict[str, Any] | None = None,
) -> None:
    payload: dict[str, Any] = {
        "event": {"action": action, "scope": scope},
        "repo": repo_json(session, repo, None),
        "discussion": discussion,
    }
    if comment is not None:
        payload["comment"] = comment
    enqueue(session, repo, "discussion", key, payload)


class WebhookEvents:
    """The consumer of ref moves that enqueues `repo.content` deliveries."""

    name = "webhooks"

    def __init__(self, factory: sessionmaker[Session], settings: Settings):
        self.factory = factory
        self.settings = settings

    def handle(self, event: RepoEvent) -> None:
        with self.factory() as session:  # most hubs have few webhooks: no write lock for none
            if (
                session.scalar(select(Webhook.id).where(Webhook.disabled.is_(False)).limit(1))
                is None
            ):
                return
        with write_transaction(self.factory) as session:
            repo = session.scalar(select(Repo).where(Repo.uid == event.repo_uid))
            if repo is None:
                return  # deleted: its privacy can no longer be checked, so nothing is told
            created = (
                event.cause in ("repo.create", "repo.duplicate")
                and event.ref == HEADS + DEFAULT_BRANCH
            )
            action = "create" if created else "update"
            payload = {
                "event": {"action": action, "scope": "repo.content"},
                "repo": repo_json(session, repo, self.settings.public_url),
                "updatedRefs": [{"ref": event.ref, "oldSha": event.old, "newSha": event.new}],
            }
            enqueue(session, repo, "repo", f"ref:{event.id}", payload)


# --- sending ------------------------------------------------------------------------------------


class Sender:
    """Sends due deliveries from a daemon thread of each process (a few at a time)."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings):
        self.factory = factory
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="atrium-webhook")

    def start(self, interval_s: float) -> None:
        if interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(interval_s,), name="atrium-webhooks", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.run_once()
            except Exception:  # the database may be away a while: next round
                log.exception("sending webhooks failed")

    def run_once(self) -> int:
        claimed = self._claim()
        futures = [self._pool.submit(self._send, delivery_id) for delivery_id in claimed]
        for future in futures:
            future.result()
        return len(claimed)

    def _claim(self) -> list[int]:
        now = utcnow()
        with self.factory() as session:
            due = session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == PENDING,
                    WebhookDelivery.next_at <= now,
                    or_(
                        WebhookDelivery.claimed_until.is_(None),
                        WebhookDelivery.claimed_until < now,
                    ),
                )
                .order_by(WebhookDelivery.id)
                .limit(BATCH)
            ).all()
        claimed = []
        for delivery_id in due:
            with write_transaction(self.factory) as session:
                done = session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == delivery_id,
                        WebhookDelivery.status == PENDING,
                        or_(
                            WebhookDelivery.claimed_until.is_(None),
                            WebhookDelivery.claimed_until < now,
                        ),
                    )
                    .values(claimed_until=now + timedelta(seconds=CLAIM_S))
                )
                if done.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(delivery_id)
        return claimed

    def _send(self, delivery_id: int) -> None:
        with self.factory() as session:
            row = session.get(WebhookDelivery, delivery_id)
            hook = session.get(Webhook, row.webhook_id) if row is not None else None
            if row is None or hook is None:
                return
            url, secret, payload, disabled = hook.url, hook.secret, row.payload, hook.disabled
        if disabled:
            self._finish(delivery_id, None, "the webhook is disabled", give_up=True)
            return
        status, error = None, None
        parts = urlsplit(url)
        refused = None
        if not self.settings.webhook_allow_private:
            refused = refused_address(parts.hostname or "", parts.port or 0)
        if refused is not None:
            error = f"refused address: {refused}"
        else:
            headers = {"Content-Type": "application/json", "User-Agent": "Atrium-Webhooks"}
            if secret:
                headers["X-Webhook-Secret"] = secret
            try:
                response = httpx.post(
                    url, json=payload, headers=headers, timeout=SEND_TIMEOUT_S,
                    follow_redirects=False,
                )  # fmt: skip
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"the receiver answered {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        self._finish(delivery_id, status, error)

    def _finish(
        self, delivery_id: int, status: int | None, error: str | None, *, give_up: bool = False
    ) -> None:
        with write_transaction(self.factory) as session:
            row = session.get(WebhookDelivery, delivery_id)
            hook = session.get(Webhook, row.webhook_id) if row is not None else None
            if row is None or hook is None:
                return
            row.attempts += 1
            row.response_status, row.error, row.claimed_until = status, error, None
            if error is None:
                row.status, row.delivered_at, hook.failures = DELIVERED, utcnow(), 0
                return
            if give_up or row.attempts >= MAX_ATTEMPTS:
                row.status = FAILED
                hook.failures += 1
                if hook.failures >= DISABLE_AFTER and not hook.disabled:
                    hook.disabled = True
                    hook.disabled_reason = (
                        f"disabled after {hook.failures} failed deliveries in a row; last: {error}"
                    )[:300]
                return
            base = self.settings.webhook_retry_seconds
            delay = min(base * 2 ** (row.attempts - 1), MAX_BACKOFF_S)
            row.next_at = utcnow() + timedelta(seconds=delay)
