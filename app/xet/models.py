"""Tables of the Xet CAS (xet-protocol.md §9).

Content lives in the blob store, write-once by hash: `xet/xorbs/<hash>` (chunk bytes) and
`xet/files/<hash>` (a file's reconstruction recipe). These rows index it:

- `xet_xorbs`: one row per verified xorb, with its packed chunk index (hash, raw length,
  compressed byte range per chunk), which shard verification and reconstruction answers read.
- `xet_files`: one row per registered file: size and sha256 (verified by the server).
- `xet_dedup_chunks`: the global dedup index for eligible chunks only: chunk -> its xorb and
  the file it was registered with (an answer describes that file's xorbs, §4.3).

Which repo may read which file is not stored here: a file is readable through repo R when
`lfs_objects.xet_hash` names it and `repo_lfs_objects` gave its sha256 to R, the same rule that
lets a commit of R point at it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class XetXorb(Base):
    __tablename__ = "xet_xorbs"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    num_chunks: Mapped[int] = mapped_column(Integer)
    raw_bytes: Mapped[int] = mapped_column(BigInteger)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    chunk_index: Mapped[bytes] = mapped_column(LargeBinary)  # xorb.INDEX_ENTRY * num_chunks
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class XetFile(Base):
    __tablename__ = "xet_files"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class XetDedupChunk(Base):
    __tablename__ = "xet_dedup_chunks"

    chunk_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    xorb_hash: Mapped[str] = mapped_column(String(64))
    file_hash: Mapped[str] = mapped_column(String(64))
