"""Collections (no HTTP here): who may see and change them, their items and their JSON.

A collection belongs to a namespace: whoever may create repos there may create, edit and
delete its collections. A private collection is seen only by the namespace's members (and
site admins); to anyone else it does not exist (404). Items point at repos or collections the
caller may read when adding them; a listing leaves out the items a viewer may not read, so a
private repo's name never leaks through a public collection.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.auth.models import Organization
from app.auth.permissions import Principal, can_read, require_write
from app.collections.models import Collection, CollectionItem
from app.db.base import utcnow
from app.errors import BadRequest, Conflict, NotFound
from app.http import iso_z
from app.repos.models import Repo
from app.repos.service import find_repo

ITEM_TYPES = ("model", "dataset", "space", "collection")
THEMES = ("orange", "blue", "green", "purple", "pink", "indigo")
MAX_ITEMS = 1000
MAX_TITLE = 60  # as the Hub
MAX_NOTE = 500


class Exists(Conflict):
    """409, with the existing collection's slug (the client's `exists_ok` reads it)."""

    def __init__(self, message: str, *, slug: str):
        super().__init__(message)
        self.slug = slug


def slug_of(collection: Collection) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", collection.title.lower()).strip("-") or "collection"
    return f"{collection.owner}/{words[:60]}-{collection.uid}"


def may_see(session: Session, principal: Principal, collection: Collection) -> bool:
    if not collection.private or principal.is_admin:
        return True
    return collection.owner in principal.user_namespaces(session, write=False)


def find(session: Session, principal: Principal, slug: str) -> Collection:
    """By slug (any title part: only the trailing uid counts); NotFound when hidden."""
    uid = slug.rsplit("-", 1)[-1]
    found = session.scalar(select(Collection).where(Collection.uid == uid)) if uid else None
    if (
        found is None
        or not slug.startswith(f"{found.owner}/")
        or not may_see(session, principal, found)
    ):
        raise NotFound(f"Collection {slug[:120]!r} not found")
    return found


def require_editor(session: Session, principal: Principal, collection: Collection) -> None:
    require_write(session, principal, collection.owner, create=True)


def _title(title: Any) -> str:
    if not isinstance(title, str) or not title.strip():
        raise BadRequest("A collection needs a title")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise BadRequest(f"A collection's title has at most {MAX_TITLE} characters")
    return title


def create(
    session: Session,
    principal: Principal,
    *,
    namespace: str,
    title: Any,
    description: str | None = None,
    private: bool = False,
) -> Collection:
    require_write(session, principal, namespace, create=True)
    clean = _title(title)
    existing = session.scalar(
        select(Collection).where(Collection.owner == namespace, Collection.title == clean)
    )
    if existing is not None:
        raise Exists(f"A collection titled {clean!r} already exists", slug=slug_of(existing))
    top = session.scalar(select(func.max(Collection.position)).where(Collection.owner == namespace))
    collection = Collection(
        uid=secrets.token_hex(12),
        owner=namespace,
        title=clean,
        description=(description or "").strip()[:2000] or None,
        private=bool(private),
        position=(top if top is not None else -1) + 1,
    )
    session.add(collection)
    session.flush()
    return collection


def update(collection: Collection, body: dict[str, Any]) -> None:
    if body.get("title") is not None:
        collection.title = _title(body["title"])
    if "description" in body and body["description"] is not None:
        collection.description = str(body["description"]).strip()[:2000] or None
    if body.get("private") is not None:
        collection.private = bool(body["private"])
    if body.get("theme") is not None:
        if body["theme"] not in THEMES:
            raise BadRequest(f"theme is one of {', '.join(THEMES)}")
        collection.theme = body["theme"]
    if body.get("position") is not None:
        collection.position = int(body["position"])
    collection.updated_at = utcnow()


def items(session: Session, collection: Collection) -> list[CollectionItem]:
    return list(
        session.scalars(
            select(CollectionItem)
            .where(CollectionItem.collection_id == collection.id)
            .order_by(CollectionItem.position, CollectionItem.id)
        )
    )


def _renumber(rows: Sequence[CollectionItem]) -> None:
    for position, row in enumerate(rows):
        row.position = position


def add_item(
    session: Session,
    principal: Principal,
    collection: Collection,
    item_id: str,
    item_type: str,
    note: str | None,
) -> CollectionItem:
    require_editor(session, principal, collection)
    if item_type not in ITEM_TYPES:
        raise BadRequest(f"An item's type is one of {', '.join(ITEM_TYPES)}")
    row = CollectionItem(uid=secrets.token_hex(12), collection_id=collection.id, note=_note(note))
    if item_type == "collection":
        member = find(session, principal, item_id)
        if member.id == collection.id:
            raise BadRequest("A collection cannot contain itself")
        row.member_id = member.id
        clash = CollectionItem.member_id == member.id
    else:
        repo = find_repo(session, item_type, item_id)
        key = (repo.type, repo.repo_id) if repo is not None else None
        if repo is None or not can_read(session, principal, repo.namespace, repo.private, key):
            raise NotFound(f"{item_type} {item_id} not found")
        row.repo_id = repo.id
        clash = CollectionItem.repo_id == repo.id
    taken = session.scalar(
        select(CollectionItem.id).where(CollectionItem.collection_id == collection.id, clash)
    )
    if taken is not None:
        raise Conflict(f"{item_id} is already in this collection")
    current = items(session, collection)
    if len(current) >= MAX_ITEMS:
        raise BadRequest(f"A collection holds at most {MAX_ITEMS} items")
    row.position = len(current)
    session.add(row)
    collection.updated_at = utcnow()
    session.flush()
    return row


def _note(note: Any) -> str | None:
    if note is None:
        return None
    text = str(note).strip()
    if len(text) > MAX_NOTE:
        raise BadRequest(f"A note has at most {MAX_NOTE} characters")
    return text or None


def item_of(session: Session, collection: Collection, uid: str) -> CollectionItem:
    row = session.scalar(
        select(CollectionItem).where(
            CollectionItem.collection_id == collection.id, CollectionItem.uid == uid
        )
    )
    if row is None:
        raise NotFound(f"Item {uid[:40]!r} not found in this collection")
    return row


def update_item(
    session: Session, collection: Collection, row: CollectionItem, body: dict[str, Any]
) -> None:
    if "note" in body and body["note"] is not None:
        row.note = _note(body["note"])
    if body.get("position") is not None:
        rows = [r for r in items(session, collection) if r.id != row.id]
        position = max(0, min(int(body["position"]), len(rows)))
        rows.insert(position, row)
        _renumber(rows)
    collection.updated_at = utcnow()


def delete_item(session: Session, collection: Collection, row: CollectionItem) -> None:
    session.delete(row)
    session.flush()
    _renumber(items(session, collection))
    collection.updated_at = utcnow()


def visible(session: Session, principal: Principal, owner: str | None = None) -> list[Collection]:
    query = select(Collection).order_by(Collection.updated_at.desc()).limit(200)
    if owner:
        query = query.where(Collection.owner == owner)
    if not principal.is_admin:
        readable = principal.user_namespaces(session, write=False)
        query = query.where(or_(Collection.private.is_(False), Collection.owner.in_(readable)))
    return list(session.scalars(query))


def containing(session: Session, principal: Principal, repo: Repo) -> list[Collection]:
    """The visible collections a repo is in (for its page and `list_collections(item=)`)."""
    ids = select(CollectionItem.collection_id).where(CollectionItem.repo_id == repo.id)
    rows = session.scalars(select(Collection).where(Collection.id.in_(ids)))
    return [c for c in rows if may_see(session, principal, c)]


@dataclass(frozen=True)
class Shown:
    row: CollectionItem
    repo: Repo | None
    member: Collection | None


def shown_items(session: Session, principal: Principal, collection: Collection) -> list[Shown]:
    """The items the viewer may see (a private repo or collection of others is left out)."""
    out = []
    for row in items(session, collection):
        if row.repo_id is not None:
            repo = session.get(Repo, row.repo_id)
            if repo is None:
                continue
            key = (repo.type, repo.repo_id)
            if can_read(session, principal, repo.namespace, repo.private, key):
                out.append(Shown(row, repo, None))
        elif row.member_id is not None:
            member = session.get(Collection, row.member_id)
            if member is not None and may_see(session, principal, member):
                out.append(Shown(row, None, member))
    return out


def owner_json(session: Session, name: str) -> dict[str, Any]:
    is_org = session.scalar(select(Organization.id).where(Organization.name == name))
    return {"name": name, "type": "org" if is_org is not None else "user", "avatarUrl": ""}


def as_json(session: Session, principal: Principal, collection: Collection) -> dict[str, Any]:
    shown = []
    for item in shown_items(session, principal, collection):
        note = {"text": item.row.note, "html": item.row.note} if item.row.note else None
        entry: dict[str, Any] = {"_id": item.row.uid, "position": item.row.position, "note": note}
        if item.repo is not None:
            repo = item.repo
            entry.update(
                id=repo.repo_id,
                type=repo.type,
                author=repo.namespace,
                private=repo.private,
                downloads=repo.downloads,
                likes=repo.likes,
                lastModified=iso_z(repo.updated_at),
            )
        elif item.member is not None:
            entry.update(
                id=item.member.uid,
                slug=slug_of(item.member),
                type="collection",
                title=item.member.title,
            )
        shown.append(entry)
    return {
        "slug": slug_of(collection),
        "title": collection.title,
        "description": collection.description,
        "owner": owner_json(session, collection.owner),
        "items": shown,
        "lastUpdated": iso_z(collection.updated_at),
        "position": collection.position,
        "private": collection.private,
        "theme": collection.theme,
        "upvotes": 0,
        "isUpvotedByUser": False,
    }
