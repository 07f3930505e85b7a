"""Engine and session factory, created by `create_app` and kept on `app.state`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import Session, sessionmaker

from app.config import ConfigError

SQLITE_BUSY_TIMEOUT_S = 30
IMMEDIATE_OPTION = "atrium_write"


def make_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 20, pool_timeout: float = 10
) -> Engine:
    """The engine of one process. On PostgreSQL every process holds up to `pool_size` idle
    connections and opens `max_overflow` more under load; a request that finds none free
    within `pool_timeout` seconds fails with 503 (see `database_unavailable`)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
    )


# PostgreSQL's classes of errors that say "not now" rather than "wrong": connection exception
# (08), insufficient resources (53, e.g. 53300 too many connections), operator intervention
# (57P, e.g. a server shutting down or starting up).
_TRANSIENT_SQLSTATES = ("08", "53", "57P")


def database_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the database cannot serve now (retry later): the pool
    gave no connection in time, the server refused a new one, or SQLite stayed locked."""
    if isinstance(exc, SATimeoutError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return str(sqlstate).startswith(_TRANSIENT_SQLSTATES)
    message = str(exc.orig or exc).lower()
    return "database is locked" in message or "connection" in message


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A deferred BEGIN that reads and then writes fails with SQLITE_BUSY when another writer
    # committed in between; write transactions take the write lock up front instead.
    immediate = conn.get_execution_options().get(IMMEDIATE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def check_database(engine: Engine) -> None:
    """Raise ConfigError naming ATRIUM_DATABASE_URL when the database does not answer."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            f"ATRIUM_DATABASE_URL: cannot connect to {engine.url.render_as_string()} ({reason}); "
            "check that the database server runs and the URL is right"
        ) from None


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def write_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction that holds the write lock from its start (on SQLite)."""
    with factory() as session:
        session.connection(execution_options={IMMEDIATE_OPTION: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
