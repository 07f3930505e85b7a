"""The `atrium` console script (ARCHITECTURE.md §4).

Commands that create secrets print them as the last line of stdout so scripts can take
`| tail -n 1`. Configuration errors print one line naming the variable and exit with status 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from fastapi import FastAPI

from app.config import ConfigError, Settings
from app.errors import AtriumError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn configuration and domain errors into one line on stderr, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"atrium: configuration error: {exc}", err=True)
            sys.exit(2)
        except AtriumError as exc:
            click.echo(f"atrium: error: {exc.message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _ready_app() -> FastAPI:
    """An app whose database and store answer and whose schema is up to date."""
    from app.db.migrate import upgrade
    from app.main import check_storage, create_app

    app = create_app(Settings())
    check_storage(app)
    upgrade(app.state.engine)
    return app


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="atrium")
def main() -> None:
    """Atrium: a self-hosted model and dataset hub, compatible with the Hugging Face Hub.

    Configuration comes from ATRIUM_* environment variables; `atrium config` shows them.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes.")
@friendly_errors
def serve(host: str, port: int, workers: int) -> None:
    """Apply pending migrations, then serve the hub over HTTP."""
    import uvicorn

    from app.logs import configure_logging

    app = _ready_app()
    settings: Settings = app.state.settings
    database = settings.database_url.split("://")[0]
    click.echo(
        f"atrium: serving on http://{host}:{port} (database {database}, "
        f"storage {settings.storage_url})",
        err=True,
    )
    configure_logging(settings.log_level)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        log_config=None,  # keep the JSON handler of configure_logging
        access_log=False,  # the app writes its own access log (app/logs.py says why)
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        timeout_graceful_shutdown=30,
    )


@main.group()
def users() -> None:
    """Manage user accounts."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user a site administrator.")
@click.option("--email", default=None, help="E-mail address.")
@click.option(
    "--password-stdin", is_flag=True, help="Read a password (for web sign-in) from stdin."
)
@friendly_errors
def users_create(name: str, admin: bool, email: str | None, password_stdin: bool) -> None:
    """Create user NAME and a write token; the token is the last line of stdout."""
    from app.audit.service import CLI, record, record_token
    from app.auth.service import create_token, create_user
    from app.db.engine import write_transaction

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not password:
        raise click.UsageError("--password-stdin given but no password on stdin")
    app = _ready_app()
    with write_transaction(app.state.sessionmaker) as session:
        user = create_user(session, name, password=password, email=email, is_admin=admin)
        issued = create_token(session, user, role="write", label="cli")
        record(session, CLI, "user.create", name, admin=admin)
        record_token(session, CLI, "token.create", issued.token, name)
    click.echo(f"created user {name}{' (admin)' if admin else ''} with a write token:")
    click.echo(issued.secret)


@main.group()
def tokens() -> None:
    """Manage access tokens."""


@tokens.command("create")
@click.argument("user")
@click.option(
    "--role",
    type=click.Choice(["read", "write"]),
    default="write",
    show_default=True,
    help="What the token may do.",
)
@click.option("--label", default="", help="A name to recognise the token by.")
@friendly_errors
def tokens_create(user: str, role: str, label: str) -> None:
    """Create a token for USER; the token is the last line of stdout."""
    from app.audit.service import CLI, record_token
    from app.auth.service import create_token, get_user
    from app.db.engine import write_transaction

    app = _ready_app()
    with write_transaction(app.state.sessionmaker) as session:
        issued = create_token(session, get_user(session, user), role=role, label=label)
        record_token(session, CLI, "token.create", issued.token, user)
    click.echo(f"created {role} token for {user}:")
    click.echo(issued.secret)


@main.command("audit")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--action", default=None, help="Only this action, e.g. token.create or repo.push.")
@friendly_errors
def audit_command(limit: int, action: str | None) -> None:
    """Show the newest audit log events: time, actor, action, target, address, details."""
    import json

    from app.audit.service import events

    app = _ready_app()
    with app.state.sessionmaker() as session:
        rows = events(session, limit=limit, action=action)
    for row in rows:
        fields = (row.actor or "-", row.action, row.target or "-", row.ip or "-")
        when = row.at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{when}  " + "  ".join(fields) + f"  {json.dumps(row.details)}")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply pending migrations."""
    _ready_app()
    click.echo("database is up to date")


@main.command("fsck")
@friendly_errors
def fsck_command() -> None:
    """Verify every reachable object's hash and the file index; exit 1 on any problem."""
    from app.repos.fsck import fsck

    app = _ready_app()
    report = fsck(app.state.sessionmaker, app.state.blobs)
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@main.command("scan-pickles")
@friendly_errors
def scan_pickles_command() -> None:
    """Scan the pickle files that have no verdict yet (committed before scanning existed);
    commits scan their own files, so this is only needed once after upgrading."""
    from app.security.service import scan_unscanned

    app = _ready_app()
    count = scan_unscanned(app.state.sessionmaker, app.state.blobs)
    click.echo(f"scanned {count} pickle file(s)")


@main.command("gc")
@click.option(
    "--grace-hours",
    default=24.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Keep unreachable objects younger than this (uploads not committed yet).",
)
@click.option(
    "--settle-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Wait this long for in-flight commits before the final reachability check.",
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@friendly_errors
def gc_command(grace_hours: float, settle_seconds: float, dry_run: bool) -> None:
    """Delete git and LFS objects that no revision reaches, and stale upload parts and clone
    caches (safe while the server runs)."""
    from app.maintenance import collect_garbage, sweeper_lock

    app = _ready_app()
    settings: Settings = app.state.settings
    with sweeper_lock(app.state.engine, settings.data_dir):
        report = collect_garbage(
            app.state.sessionmaker,
            app.state.blobs,
            grace_s=grace_hours * 3600,
            settle_s=settle_seconds,
            dry_run=dry_run,
        )
    for key in report.candidates if dry_run else report.deleted:
        click.echo(f"{'would delete' if dry_run else 'deleted'} {key}")
    click.echo(report.summary(dry_run))


@main.command("config")
@friendly_errors
def show_config() -> None:
    """Show every setting with its effective value (secrets masked)."""
    from app.inference.config import InferenceSettings

    settings = Settings().resolved()
    rows = {**settings.describe(), **InferenceSettings().describe()}
    width = max(len(name) for name in rows)
    for name, value in rows.items():
        click.echo(f"{name.ljust(width)}  {value}")


@main.command("worker")
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to listen on.")
@click.option("--port", default=7070, show_default=True, type=int, help="TCP port.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (else ATRIUM_INFERENCE_DEVICE).")
@friendly_errors
def worker(host: str, port: int, device: str | None) -> None:
    """Run an inference worker for API servers whose ATRIUM_INFERENCE_REMOTE_WORKERS name it.

    Connections are authenticated with ATRIUM_SECRET_KEY, which must match the API servers'."""
    from app.inference.config import InferenceSettings
    from app.inference.pool import local_devices
    from app.inference.worker import serve_forever

    settings = InferenceSettings()
    chosen = device or local_devices(settings)[0]
    click.echo(f"atrium: inference worker on {host}:{port}, device {chosen}", err=True)
    serve_forever(Settings().resolved(), settings, chosen, (host, port))


@main.group()
def quota() -> None:
    """Per-namespace storage quotas (default: ATRIUM_NAMESPACE_QUOTA)."""


@quota.command("set")
@click.argument("namespace")
@click.argument("size")
@friendly_errors
def quota_set(namespace: str, size: str) -> None:
    """Limit NAMESPACE to SIZE (bytes, 10GB, 500MiB; 0: unlimited; `default`: the default)."""
    from app.config import parse_size
    from app.db.engine import write_transaction
    from app.quotas.service import set_limit

    try:
        limit = None if size == "default" else parse_size(size)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SIZE") from None
    app = _ready_app()
    with write_transaction(app.state.sessionmaker) as session:
        set_limit(session, namespace, limit)
    _show_usage(app, namespace)


@quota.command("show")
@click.argument("namespace")
@friendly_errors
def quota_show(namespace: str) -> None:
    """Show what NAMESPACE stores and its limit."""
    _show_usage(_ready_app(), namespace)


def _show_usage(app: FastAPI, namespace: str) -> None:
    from app.quotas.service import format_size, usage

    with app.state.sessionmaker() as session:
        used = usage(session, app.state.settings, namespace)
    limit = format_size(used.limit) if used.limit else "unlimited"
    click.echo(
        f"{namespace}: {format_size(used.used)} used of {limit} "
        f"(large files {format_size(used.lfs_bytes)}, git files {format_size(used.git_bytes)})"
    )


if __name__ == "__main__":
    main()
