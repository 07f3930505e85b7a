"""Tables of the versioned repo model.

Git objects live in the blob store (`git/<sha1>`); these tables index them so that no listing
walks object storage (ARCHITECTURE.md §5):

- `commits` / `tree_entries` are global and content-addressed like the objects they index, so
  repos that share content share rows. `tree_entries` holds the direct children of every git
  tree, with the real size, LFS oid and xet hash of each file.
- `repo_commits` records which commits belong to which repo: a revision given by sha resolves
  only within its repo, so one repo's sha can never reach another (private) repo's content.
- `refs` are moved by compare-and-swap (`UPDATE … WHERE commit_sha = :old`).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


def new_uid() -> str:
    return secrets.token_hex(16)


class Repo(Base):
    __tablename__ = "repos"
    __table_args__ = (
        UniqueConstraint("type", "namespace", "name"),
        Index("ix_repos_type_updated", "type", "updated_at"),
        Index("ix_repos_type_downloads", "type", "downloads"),
        Index("ix_repos_namespace", "namespace"),
        # The other sorts of the repo listing (app/hub/search.py)
        Index("ix_repos_type_likes", "type", "likes"),
        Index("ix_repos_type_created", "type", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Names the repo in derived credentials (`app.repos.grants`): unlike `id`, never reused.
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    type: Mapped[str] = mapped_column(String(16))  # model | dataset | space
    namespace: Mapped[str] = mapped_column(String(96))
    name: Mapped[str] = mapped_column(String(96))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    gated: Mapped[str | None] = mapped_column(String(16))  # None | auto | manual
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the default branch's files say (`app.cards.derived`): transformersInfo, safetensors.
    derived: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The user who created it: an organization's contributors write the repos they created.
    created_by: Mapped[int | None] = mapped_column(Integer)
    downloads: Mapped[int] = mapped_column(BigInteger, default=0)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    # Parsed from README.md on the default branch at commit time.
    card_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    pipeline_tag: Mapped[str | None] = mapped_column(String(64))
    library_name: Mapped[str | None] = mapped_column(String(64))
    used_storage: Mapped[int] = mapped_column(BigInteger, default=0)

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def page_path(self) -> str:
        """`/ns/name`, `/datasets/ns/name` or `/spaces/ns/name`: the repo's pages on the server."""
        prefix = {"dataset": "/datasets", "space": "/spaces"}.get(self.type, "")
        return f"{prefix}/{quote(self.namespace)}/{quote(self.name)}"


class RepoRedirect(Base):
    """An old name of a moved repo, which answers with a redirect to its current name until a
    repo takes the name again (as on the Hub)."""

    __tablename__ = "repo_redirects"
    __table_args__ = (UniqueConstraint("type", "namespace", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str] = mapped_column(String(96))
    name: Mapped[str] = mapped_column(String(96))
    repo_id: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Ref(Base):
    __tablename__ = "refs"
    __table_args__ = (UniqueConstraint("repo_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_id: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))  # refs/heads/main, refs/tags/v1
    commit_sha: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Commit(Base):
    __tablename__ = "commits"

    sha: Mapped[str] = mapped_column(String(40), primary_key=True)
    tree_sha: Mapped[str] = mapped_column(String(40))
    parents: Mapped[list[str]] = mapped_column(JSON, default=list)
    author_name: Mapped[str] = mapped_column(String(200))
    author_email: Mapped[str] = mapped_column(String(320))
    authored_at: Mapped[datetime] = mapped_column(UTCDateTime)
    title: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)


class RepoCommit(Base):
    __tablename__ = "repo_commits"

    repo_id: Mapped[int] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    )
    commit_sha: Mapped[str] = mapped_column(String(40), primary_key=True)


class TreeEntry(Base):
    __tablename__ = "tree_entries"

    tree_sha: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # blob | tree
    mode: Mapped[int] = mapped_column(Integer)
    oid: Mapped[str] = mapped_column(String(40))  # git blob or tree sha1
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # real file size (LFS: object size)
    lfs_oid: Mapped[str | None] = mapped_column(String(64))
    lfs_pointer_size: Mapped[int | None] = mapped_column(Integer)
    xet_hash: Mapped[str | None] = mapped_column(String(64))


class LfsObject(Base):
    """A verified large object in the blob store (`lfs/<oid>`), shared by every repo."""

    __tablename__ = "lfs_objects"

    oid: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The Xet file with this content (app/xet), when it came through Xet or was converted.
    xet_hash: Mapped[str | None] = mapped_column(String(64), index=True)


class RepoLfsObject(Base):
    """Which repo was given which object: a commit may only point at objects uploaded to its
    repo, so knowing a sha256 never grants the content of somebody else's private file."""

    __tablename__ = "repo_lfs_objects"

    repo_id: Mapped[int] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    )
    oid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # When the repo was given it (`list_lfs_files`' pushedAt); None: before this was kept.
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)


class RepoEvent(Base):
    """A domain event of the repo model, written in the transaction that made the change
    (`app.repos.refs`). Ids are assigned in commit order, so consumers read the table as a
    log: each keeps its position in `event_cursors`. Rows outlive their repo (no foreign key),
    so they name it by its `uid`, which never recurs, and `repo` as it was named then."""

    __tablename__ = "repo_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))  # repo.ref_moved
    repo_uid: Mapped[str] = mapped_column(String(32), index=True)
    repo_type: Mapped[str] = mapped_column(String(16))
    repo: Mapped[str] = mapped_column(String(200))  # namespace/name when the event happened
    ref: Mapped[str] = mapped_column(String(255))
    old: Mapped[str | None] = mapped_column(String(40))  # None: the ref was created
    new: Mapped[str | None] = mapped_column(String(40))  # None: the ref was deleted
    actor: Mapped[str | None] = mapped_column(String(96))  # None: the server or an operator
    cause: Mapped[str] = mapped_column(String(32))


class EventCursor(Base):
    """How far one consumer of `repo_events` has got: every event up to `position` is done."""

    __tablename__ = "event_cursors"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
