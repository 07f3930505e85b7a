"""Verdicts of the pickle scanner, one per file content.

Keyed by content, not by path or repo: the same bytes get the same verdict wherever they are
committed, and are scanned once. The key is the LFS sha256 of a large file (64 hex) or the git
blob sha1 of a regular one (40 hex); the lengths differ, so the two never collide.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class PickleScan(Base):
    __tablename__ = "pickle_scans"

    oid: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(8))  # safe | unsafe | error (treated as unsafe)
    # "module.name" of every import the scanner did not know as innocuous.
    imports: Mapped[list[str]] = mapped_column(JSON, default=list)
    detail: Mapped[str | None] = mapped_column(Text)  # why a scan ended in error
    scanner: Mapped[str] = mapped_column(String(64))  # "picklescan 1.0.5"
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
