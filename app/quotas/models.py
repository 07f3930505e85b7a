"""Tables of the storage quotas.

- `namespace_quotas`: a namespace's own limit, overriding `ATRIUM_NAMESPACE_QUOTA`.
- `repo_git_blobs`: which regular (non-LFS) git blobs each repo holds, with their size,
  written with the tree rows of every commit. It is to git objects what `repo_lfs_objects` is
  to large files, so that a namespace's usage is two SUMs over indexed rows
  (`app.quotas.service.usage`), never a walk over trees.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class NamespaceQuota(Base):
    __tablename__ = "namespace_quotas"

    namespace: Mapped[str] = mapped_column(String(96), primary_key=True)
    limit_bytes: Mapped[int] = mapped_column(BigInteger)  # 0: unlimited
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RepoGitBlob(Base):
    __tablename__ = "repo_git_blobs"

    repo_id: Mapped[int] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    )
    oid: Mapped[str] = mapped_column(String(40), primary_key=True)  # git blob sha1
    size: Mapped[int] = mapped_column(BigInteger)
