"""The table of access requests to gated repos.

One row per (repo, user): the user's request and the answers they gave to the repo's gate
form, its status (pending, accepted, rejected), and who decided it. A grant without a request
(`grant_access`) is an accepted row with no answers. Rows go with their repo and their user.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow

PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"
STATUSES = (PENDING, ACCEPTED, REJECTED)


class AccessRequest(Base):
    __tablename__ = "access_requests"
    __table_args__ = (
        UniqueConstraint("repo_id", "user_id"),
        Index("ix_access_requests_repo_status", "repo_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_id: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    # The answers to the gate form's fields; None for a grant made without a request.
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Shown to the user on a rejection (at most 200 characters, as on the Hub).
    reason: Mapped[str | None] = mapped_column(String(200))
    decided_by: Mapped[str | None] = mapped_column(String(96))  # None: accepted automatically
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
