"""Limits on failed sign-ins and invalid tokens, counted in the database.

The counters live in one small table so that every API replica behind the proxy sees the same
numbers (a per-process counter would give each replica its own allowance). Only failures are
written: a successful sign-in or token use costs no write. Each key (`login:<name>`,
`login-ip:<address>`, `token-fail:<address>`) counts failures in a fixed window that opens at
its first failure; once `limit` failures are counted, the key is refused until the window ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import Integer, String, case, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db.base import Base
from app.db.upsert import dialect_insert
from app.errors import TooManyRequests

KEY_LENGTH = 200


class RateLimitCounter(Base):
    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    resets_at: Mapped[int] = mapped_column(Integer, index=True)  # Unix time, seconds


@dataclass(frozen=True)
class Limit:
    """At most `limit` failures per `window_s` for `key`; a limit of 0 is no limit."""

    key: str
    limit: int
    window_s: int

    @property
    def stored_key(self) -> str:
        return self.key[:KEY_LENGTH]


def retry_after(session: Session, limits: list[Limit]) -> int | None:
    """Seconds until the most distant reset among the limits already reached, or None."""
    now = int(time.time())
    waits = []
    for limit in limits:
        if limit.limit <= 0:
            continue
        row = session.get(RateLimitCounter, limit.stored_key)
        if row is not None and row.resets_at > now and row.count >= limit.limit:
            waits.append(row.resets_at - now)
    return max(waits) if waits else None


def count_failure(session: Session, limits: list[Limit]) -> int | None:
    """Add one failure to each key; like `retry_after`, the wait when a limit is now passed
    (more failures than it allows). The session should be a write transaction of its own
    (`write_transaction`), committed whether or not the request then fails."""
    now = int(time.time())
    # Ended windows go here, on the (rare) failure path, so the table stays as small as the
    # set of keys that failed recently; the index makes this cheap when none ended.
    session.execute(delete(RateLimitCounter).where(RateLimitCounter.resets_at <= now))
    waits = []
    for limit in limits:
        if limit.limit <= 0:
            continue
        count, resets_at = _increment(session, limit, now)
        if count > limit.limit:
            waits.append(resets_at - now)
    return max(waits) if waits else None


def _increment(session: Session, limit: Limit, now: int) -> tuple[int, int]:
    """One upsert: a counter whose window has ended starts again at 1."""
    table = RateLimitCounter.__table__
    statement = dialect_insert(session, RateLimitCounter).values(
        key=limit.stored_key, count=1, resets_at=now + limit.window_s
    )
    current = table.c.resets_at > now
    statement = statement.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "count": case((current, table.c.count + 1), else_=1),
            "resets_at": case((current, table.c.resets_at), else_=statement.excluded.resets_at),
        },
    ).returning(table.c.count, table.c.resets_at)
    count, resets_at = session.execute(statement).one()
    return int(count), int(resets_at)


def too_many(what: str, wait_s: int) -> TooManyRequests:
    minutes = math.ceil(wait_s / 60)
    when = f"{minutes} minute{'s' if minutes > 1 else ''}" if wait_s > 60 else f"{wait_s} seconds"
    return TooManyRequests(f"Too many {what}; try again in {when}", retry_after_s=wait_s)
