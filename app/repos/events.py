"""Delivering the repo model's domain events (`repo_events`) to the work that follows them.

A consumer is a name and a `handle(event)`; the bus feeds it every event after its position
(`event_cursors`), in id order, at least once. A consumer must therefore be idempotent (a
pickle scan records a verdict per content once; a webhook delivery carries the event id).

When: right after the transaction that recorded events commits, in that thread (`attach`
hooks the app's sessionmaker, so an API commit answers after its scans), and every
`ATRIUM_EVENTS_POLL_SECONDS` from a background thread, which delivers what a crash, another
replica or a command-line write left behind. Replicas and `serve --workers` processes share
the cursors: a position moves by compare-and-swap, so two deliverers never both skip an event.

A consumer that fails is retried on the next round; after `MAX_ATTEMPTS` failures in a row on
one event, the event is logged and skipped so that one bad event cannot stall the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.base import utcnow
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.repos.models import EventCursor, RepoEvent
from app.repos.refs import NOTIFY

log = logging.getLogger("atrium.events")
BATCH = 100  # events read per query
MAX_ATTEMPTS = 5  # failures on one event before a consumer skips it


class Consumer(Protocol):
    """Follow-up work on repo events; `name` keys its position, so it never changes. A
    consumer with a true `background` attribute (long work, such as a dataset conversion) is
    fed by the poller only, never in the thread of the commit that recorded the event."""

    name: str

    def handle(self, event: RepoEvent) -> None: ...


class EventBus:
    """The consumers of one app, and the deliverer that feeds them."""

    def __init__(self, factory: sessionmaker[Session], consumers: Sequence[Consumer]):
        self.factory = factory
        self.consumers = tuple(consumers)
        self._locks = {c.name: threading.Lock() for c in self.consumers}
        self._failures: dict[tuple[str, int], int] = {}
        self._local = threading.local()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def attach(self) -> None:
        """Deliver after every commit that recorded events through this sessionmaker."""
        self.factory.configure(info={NOTIFY: self.deliver})

    def deliver(self, *, background: bool = False) -> int:
        """Feed every consumer the events it has not had; returns how many were handled.
        Background consumers are fed only when background (the poller). Re-entrant calls (a
        consumer whose own commit records events) are folded into the running round, which
        reads the log again before it ends."""
        if getattr(self._local, "delivering", False):
            self._local.again = True
            return 0
        self._local.delivering = True
        handled = 0
        fed = [c for c in self.consumers if background or not getattr(c, "background", False)]
        try:
            while True:
                self._local.again = False
                handled += sum(self._feed(consumer) for consumer in fed)
                if not self._local.again:
                    return handled
        finally:
            self._local.delivering = False

    def start(self, interval_s: float) -> None:
        """Poll in a daemon thread until `stop` (`create_app`'s lifespan)."""
        if interval_s <= 0 or self._poller is not None:
            return
        self._stop.clear()
        self._poller = threading.Thread(
            target=self._poll, args=(interval_s,), name="atrium-events", daemon=True
        )
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=30)
            self._poller = None

    def _poll(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.deliver(background=True)
            except Exception:  # the database may be away for a while: try again next round
                log.exception("delivering repo events failed")

    def _feed(self, consumer: Consumer) -> int:
        """One consumer's pending events, in order; the lock keeps this process's threads
        from handling the same event twice (blocking, so that a commit's own events are
        handled before its answer even when another thread is delivering). The position
        moves once per batch, past the events handled (consumers are idempotent: after a
        crash, or a race with another process, a batch may be handled again)."""
        handled = 0
        with self._locks[consumer.name]:
            while True:
                position = _position(self.factory, consumer.name)
                events = _after(self.factory, position)
                if not events:
                    return handled
                done = position
                for event in events:
                    if not self._handle(consumer, event):
                        break
                    done = event.id
                if done == position:
                    return handled  # the first event failed: the next round retries it
                if not _advance(self.factory, consumer.name, position, done):
                    continue  # another process moved it: read the position again
                handled += sum(1 for event in events if event.id <= done)
                if done != events[-1].id:
                    return handled  # stopped at a failure

    def _handle(self, consumer: Consumer, event: RepoEvent) -> bool:
        """True when the event is done with (handled, or skipped after MAX_ATTEMPTS)."""
        key = (consumer.name, event.id)
        try:
            consumer.handle(event)
        except Exception:
            failures = self._failures.get(key, 0) + 1
            if failures < MAX_ATTEMPTS:
                self._failures[key] = failures
                log.warning("%s: event %s failed (%s of %s)", consumer.name, event.id,
                            failures, MAX_ATTEMPTS, exc_info=True)  # fmt: skip
                return False
            log.exception("%s: event %s skipped after %s failures", consumer.name, event.id,
                          failures)  # fmt: skip
        self._failures.pop(key, None)
        return True


def _position(factory: sessionmaker[Session], name: str) -> int:
    with factory() as session:
        position = session.scalar(select(EventCursor.position).where(EventCursor.consumer == name))
    if position is None:
        with write_transaction(factory) as session:
            insert_ignore(session, EventCursor, [{"consumer": name, "position": 0}], ["consumer"])
        return 0
    return position


def _after(factory: sessionmaker[Session], position: int) -> list[RepoEvent]:
    with factory() as session:
        query = select(RepoEvent).where(RepoEvent.id > position).order_by(RepoEvent.id)
        return list(session.scalars(query.limit(BATCH)))


def _advance(factory: sessionmaker[Session], name: str, old: int, new: int) -> bool:
    with write_transaction(factory) as session:
        result = session.execute(
            update(EventCursor)
            .where(EventCursor.consumer == name, EventCursor.position == old)
            .values(position=new, updated_at=utcnow())
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
