"""Tables of git smart HTTP.

`refs` rows always name commits, because every API route resolves a revision to a commit. An
annotated tag pushed with git therefore moves its ref to the tag's commit, and `git_tags`
remembers the tag object (its message, tagger, signature) so that git clients keep seeing the
annotated tag for as long as the ref still points at that commit.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class GitTag(Base):
    __tablename__ = "git_tags"

    repo_id: Mapped[int] = mapped_column(
        ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # refs/tags/v1
    tag_sha: Mapped[str] = mapped_column(String(40))
    commit_sha: Mapped[str] = mapped_column(String(40))  # the ref's value when it was pushed
