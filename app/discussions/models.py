"""The tables of discussions and pull requests.

- `discussions`: one thread of a repo, numbered from 1 per repo like the Hub (discussions and
  pull requests share the numbers). A pull request also has its git ref `refs/pr/N`, moved by
  the ref service like any ref, the branch it targets, the commit it started from (`base_sha`,
  what merge compares against) and, once merged, the merge commit.
- `discussion_events`: what happened in a thread, in order: comments (their text and every
  earlier version in `data`), status changes, title changes, and the commits pushed to a pull
  request (recorded from the ref service's `repo.ref_moved` events). `uid` is the public id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow

DRAFT, OPEN, CLOSED, MERGED = "draft", "open", "closed", "merged"
STATUSES = (DRAFT, OPEN, CLOSED, MERGED)
COMMENT, STATUS_CHANGE, TITLE_CHANGE, COMMIT = "comment", "status-change", "title-change", "commit"


class Discussion(Base):
    __tablename__ = "discussions"
    __table_args__ = (
        UniqueConstraint("repo_id", "num"),
        Index("ix_discussions_repo_status", "repo_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_id: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"))
    num: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    is_pull_request: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    target_branch: Mapped[str | None] = mapped_column(String(300))  # refs/heads/…, PRs only
    base_sha: Mapped[str | None] = mapped_column(String(40))
    merge_commit: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DiscussionEvent(Base):
    __tablename__ = "discussion_events"
    # A commit event names its commit once per thread (the consumer may see a move twice).
    __table_args__ = (UniqueConstraint("discussion_id", "commit_oid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), unique=True)
    discussion_id: Mapped[int] = mapped_column(
        ForeignKey("discussions.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # comment: {"history": [{"raw", "html", "at", "author"}...]} newest last; status: {"status"};
    # title: {"from", "to"}; commit: {"oid", "subject"}
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_by: Mapped[str | None] = mapped_column(String(96))
    commit_oid: Mapped[str | None] = mapped_column(String(40))  # commit events only
