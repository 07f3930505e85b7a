"""The tables of collections.

- `collections`: owned by a namespace (a user or an org), titled, public or private. Its slug
  is `owner/<title as words>-<uid>`; only the uid identifies it, so a renamed collection
  answers to its old slugs too, as on the Hub.
- `collection_items`: one repo (by its row, so a moved repo stays in) or one collection per
  row, with its position and an optional note. Items go with what they point at.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class Collection(Base):
    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), unique=True)
    owner: Mapped[str] = mapped_column(String(96), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    private: Mapped[bool] = mapped_column(default=False)
    theme: Mapped[str] = mapped_column(String(16), default="indigo")
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CollectionItem(Base):
    __tablename__ = "collection_items"
    __table_args__ = (
        UniqueConstraint("collection_id", "repo_id", name="uq_collection_items_repo"),
        UniqueConstraint("collection_id", "member_id", name="uq_collection_items_member"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(24), unique=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    repo_id: Mapped[int | None] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(  # a collection inside this one
        ForeignKey("collections.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
