"""The `atrium` console script (ARCHITECTURE.md §4).

Commands that create secrets print them as the last line of stdout so scripts can take
`| tail -n 1`. Configuration errors print one line naming the variable and exit with status 2.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from app.config import ConfigError, Settings
from app.errors import AtriumError

if TYPE_CHECKING:
    from fastapi import FastAPI

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


def _existing_hub(settings: Settings, *, may_create: bool = False) -> Settings:
    """The settings, once it is clear which hub the command works on: an embedded hub whose
    database does not exist yet is created only by `serve`, `db upgrade`, with `--init`, or
    where ATRIUM_DATA_DIR or ATRIUM_DATABASE_URL names it; elsewhere a command run from the
    wrong folder would silently start a second, empty hub."""
    database = settings.embedded_database()
    if database is None or database.exists() or may_create:
        return settings
    context = click.get_current_context(silent=True)
    asked = bool(context and (context.find_root().obj or {}).get("init"))
    named = any(os.environ.get(v) for v in ("ATRIUM_DATA_DIR", "ATRIUM_DATABASE_URL"))
    if asked or named:
        return settings
    raise ConfigError(
        f"no hub in {settings.data_dir} ({database.name} does not exist): run the command "
        "where the hub's storage folder is, set ATRIUM_DATA_DIR to it, or pass --init "
        "(atrium --init ...) to create a new hub there"
    )


def _ready_app(*, may_create: bool = False) -> FastAPI:
    """An app whose database and store answer and whose schema is up to date."""
    from app.db.migrate import upgrade
    from app.main import check_storage, create_app

    _existing_hub(Settings().resolved(create=False), may_create=may_create)
    app = create_app(Settings())
    check_storage(app)
    upgrade(app.state.engine)
    return app


class _Database:
    """What the account commands need, without the whole app (whose imports take seconds):
    the settings and a session factory on a database whose schema is up to date."""

    def __init__(self) -> None:
        from app.db.engine import check_database, make_engine, make_sessionmaker
        from app.db.migrate import upgrade

        _existing_hub(Settings().resolved(create=False))
        self.settings = Settings().resolved()
        engine = make_engine(self.settings.database_url)
        check_database(engine)
        upgrade(engine)
        self.sessionmaker = make_sessionmaker(engine)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="atrium")
@click.option(
    "--init",
    is_flag=True,
    help="Create a new embedded hub in the data folder if there is none (only `serve` and "
    "`db upgrade` do so unasked).",
)
@click.pass_context
def main(context: click.Context, init: bool) -> None:
    """Atrium: a self-hosted model and dataset hub, compatible with the Hugging Face Hub.

    Configuration comes from ATRIUM_* environment variables; `atrium config` shows them and
    which hub the commands work on.
    """
    context.obj = {"init": init}


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes.")
@friendly_errors
def serve(host: str, port: int, workers: int) -> None:
    """Apply pending migrations, then serve the hub over HTTP."""
    import uvicorn

    from app.inference.config import InferenceSettings
    from app.logs import configure_logging, quiet_progress_bars

    InferenceSettings()  # a bad inference setting stops start-up here, in one line
    Settings().check_shared_secret()
    app = _ready_app(may_create=True)
    settings: Settings = app.state.settings
    database = settings.database_url.split("://")[0]
    configure_logging(settings.log_level)  # from here on stderr carries JSON lines only
    quiet_progress_bars()
    logging.getLogger("atrium").info(
        "serving on http://%s:%d (database %s, storage %s)",
        host,
        port,
        database,
        settings.storage_url,
    )
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


def _password(name: str, from_stdin: bool, min_length: int) -> str | None:
    """The password of --password-stdin, or asked for on a terminal; None when neither."""
    from app.auth.accounts import check_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise click.UsageError("--password-stdin given but no password on stdin")
        return check_password(password, min_length)
    if sys.stdin.isatty():
        password = click.prompt(
            f"Password for {name} (web sign-in)", hide_input=True, confirmation_prompt=True
        )
        return check_password(password, min_length)
    return None


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user a site administrator.")
@click.option("--email", default=None, help="E-mail address.")
@click.option("--fullname", default=None, help="The name shown beside the user name.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read a password (for web sign-in) from stdin; on a terminal it is asked for.",
)
@friendly_errors
def users_create(
    name: str, admin: bool, email: str | None, fullname: str | None, password_stdin: bool
) -> None:
    """Create user NAME and a write token; the token is the last line of stdout."""
    from app.audit.service import CLI, record, record_token
    from app.auth.service import create_token, create_user
    from app.db.engine import write_transaction

    db = _Database()
    password = _password(name, password_stdin, db.settings.min_password_length)
    with write_transaction(db.sessionmaker) as session:
        user = create_user(
            session, name, password=password, email=email, is_admin=admin, fullname=fullname
        )
        issued = create_token(session, user, role="write", label="cli")
        record(session, CLI, "user.create", name, admin=admin)
        record_token(session, CLI, "token.create", issued.token, name)
    if password is None:
        click.echo(
            f"{name} has no password yet: set one with `atrium users set-password {name}` "
            "to sign in to the web pages"
        )
    click.echo(f"created user {name}{' (admin)' if admin else ''} with a write token:")
    click.echo(issued.secret)


@users.command("list")
@friendly_errors
def users_list() -> None:
    """List every user: name, admin, disabled, password set, repos, created."""
    from app.auth.accounts import list_users, repo_count

    db = _Database()
    with db.sessionmaker() as session:
        rows = [
            (
                user.name,
                "admin" if user.is_admin else "",
                "disabled" if user.disabled_at else "",
                "password" if user.password_hash else "no password",
                f"{repo_count(session, user.name)} repos",
                f"{user.created_at:%Y-%m-%d}",
            )
            for user in list_users(session)
        ]
    _table(("NAME", "ADMIN", "STATE", "SIGN-IN", "REPOS", "CREATED"), rows)


@users.command("set-password")
@click.argument("name")
@friendly_errors
def users_set_password(name: str) -> None:
    """Set NAME's web password (from stdin, or asked for on a terminal); their browser
    sessions end."""
    from app.audit.service import CLI, record
    from app.auth.accounts import change_password
    from app.db.engine import write_transaction

    db = _Database()
    settings = db.settings
    password = _password(name, not sys.stdin.isatty(), settings.min_password_length)
    assert password is not None
    with write_transaction(db.sessionmaker) as session:
        change_password(session, name, password, settings.min_password_length)
        record(session, CLI, "user.password", name)
    click.echo(f"password of {name} set; their browser sessions were signed out")


def _switch_command(action: str) -> None:
    """`atrium users disable|enable|promote|demote NAME`, from `accounts.SWITCHES`."""
    from app.auth.accounts import SWITCHES

    switch = SWITCHES[action]

    @users.command(action, help=switch.help)
    @click.argument("name")
    @friendly_errors
    def command(name: str) -> None:
        from app.audit.service import CLI, record
        from app.db.engine import write_transaction

        db = _Database()
        with write_transaction(db.sessionmaker) as session:
            switch.change(session, name, switch.on)
            record(session, CLI, switch.audit, name)
        click.echo(switch.done.format(name=name))


for _action in ("disable", "enable", "promote", "demote"):
    _switch_command(_action)


@users.command("delete")
@click.argument("name")
@click.option("--transfer-to", default=None, help="User or organization that gets the repos.")
@friendly_errors
def users_delete(name: str, transfer_to: str | None) -> None:
    """Delete NAME with their tokens, sessions and memberships (refused while they own repos,
    unless --transfer-to moves them)."""
    from app.audit.service import CLI, record
    from app.auth.accounts import delete_user
    from app.db.engine import write_transaction

    db = _Database()
    with write_transaction(db.sessionmaker) as session:
        moved = delete_user(session, name, transfer_to)
        record(session, CLI, "user.delete", name, moved=moved, to=transfer_to)
    click.echo(f"deleted {name}" + (f"; {moved} repos moved to {transfer_to}" if moved else ""))


@main.group()
def orgs() -> None:
    """Manage organizations and their members (roles: read, contributor, write, admin)."""


@orgs.command("create")
@click.argument("name")
@click.option("--owner", required=True, help="User who becomes the organization's admin.")
@click.option("--fullname", default=None, help="Display name.")
@friendly_errors
def orgs_create(name: str, owner: str, fullname: str | None) -> None:
    """Create organization NAME with OWNER as its admin."""
    from app.audit.service import CLI, record
    from app.auth.service import create_org, get_user
    from app.db.engine import write_transaction

    db = _Database()
    with write_transaction(db.sessionmaker) as session:
        org = create_org(session, name, get_user(session, owner))
        org.fullname = fullname
        record(session, CLI, "org.create", name, owner=owner)
    click.echo(f"created organization {name}, administered by {owner}")


@orgs.command("list")
@friendly_errors
def orgs_list() -> None:
    """List every organization: name, display name, members, repos."""
    from app.auth.accounts import list_orgs, repo_count

    db = _Database()
    with db.sessionmaker() as session:
        rows = [
            (org.name, org.fullname or "", f"{n} members", f"{repo_count(session, org.name)} repos")
            for org, n in list_orgs(session)
        ]
    _table(("NAME", "DISPLAY NAME", "MEMBERS", "REPOS"), rows)


@orgs.command("members")
@click.argument("org")
@friendly_errors
def orgs_members(org: str) -> None:
    """List ORG's members and their roles."""
    from app.auth.accounts import get_org, org_members

    db = _Database()
    with db.sessionmaker() as session:
        rows = [(m.name, m.role) for m in org_members(session, get_org(session, org))]
    _table(("USER", "ROLE"), rows)


@orgs.command("add-member")
@click.argument("org")
@click.argument("user")
@click.option(
    "--role",
    type=click.Choice(["read", "contributor", "write", "admin"]),
    default="write",
    show_default=True,
    help="read: its private repos; contributor: also create repos and write those; write: "
    "also every repo; admin: also members.",
)
@friendly_errors
def orgs_add_member(org: str, user: str, role: str) -> None:
    """Add USER to ORG with ROLE, or change the role of a member."""
    from app.audit.service import CLI, record
    from app.auth.accounts import get_org
    from app.auth.service import add_member, get_user
    from app.db.engine import write_transaction

    db = _Database()
    with write_transaction(db.sessionmaker) as session:
        add_member(session, get_org(session, org), get_user(session, user), role)
        record(session, CLI, "org.member", org, user=user, role=role)
    click.echo(f"{user} is a member of {org} with role {role}")


@orgs.command("remove-member")
@click.argument("org")
@click.argument("user")
@friendly_errors
def orgs_remove_member(org: str, user: str) -> None:
    """Remove USER from ORG; its private repos turn invisible to them at once."""
    from app.audit.service import CLI, record
    from app.auth.accounts import get_org, remove_member
    from app.auth.service import get_user
    from app.db.engine import write_transaction

    db = _Database()
    with write_transaction(db.sessionmaker) as session:
        remove_member(session, get_org(session, org), get_user(session, user))
        record(session, CLI, "org.member.remove", org, user=user)
    click.echo(f"{user} is no longer a member of {org}")


@orgs.command("delete")
@click.argument("org")
@friendly_errors
def orgs_delete(org: str) -> None:
    """Delete ORG (refused while it owns repos)."""
    from app.audit.service import CLI, record
    from app.auth.accounts import delete_org, get_org
    from app.db.engine import write_transaction

    db = _Database()
    with write_transaction(db.sessionmaker) as session:
        delete_org(session, get_org(session, org))
        record(session, CLI, "org.delete", org)
    click.echo(f"deleted organization {org}")


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
@click.option("--expires", default=None, help="Lifetime, e.g. 12h, 30d, 4w, 1y; default never.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="ENTITY=read|discussion|write",
    help="Make a fine-grained token that may only do this (repeatable): ENTITY is a namespace "
    "(acme) or a repo (acme/bert, datasets/acme/corpus, spaces/acme/demo); discussion also "
    "opens discussions and pull requests there, write also pushes.",
)
@friendly_errors
def tokens_create(
    user: str, role: str, label: str, expires: str | None, scopes: tuple[str, ...]
) -> None:
    """Create a token for USER; the token is the last line of stdout."""
    from app.audit.service import CLI, record_token
    from app.auth.accounts import expiry
    from app.auth.permissions import Scope
    from app.auth.service import create_token, get_user
    from app.db.engine import write_transaction

    db = _Database()
    until = expiry(expires)
    parsed = [Scope.parse(text) for text in scopes]
    with write_transaction(db.sessionmaker) as session:
        issued = create_token(
            session,
            get_user(session, user),
            role=role,
            label=label,
            expires_at=until,
            scopes=parsed,
        )
        record_token(session, CLI, "token.create", issued.token, user)
    ending = f", expiring {until:%Y-%m-%d %H:%M} UTC" if until else ""
    kind = "fine-grained (" + ", ".join(scopes) + ")" if parsed else role
    click.echo(f"created {kind} token for {user}{ending}:")
    click.echo(issued.secret)


@tokens.command("list")
@click.argument("user")
@friendly_errors
def tokens_list(user: str) -> None:
    """List USER's tokens: id, label, role, created, last used, expiry (never the secret)."""
    from app.auth.accounts import user_tokens
    from app.auth.permissions import token_scopes
    from app.auth.service import get_user
    from app.db.base import utcnow

    db = _Database()
    now = utcnow()
    with db.sessionmaker() as session:
        rows = []
        for token in user_tokens(session, get_user(session, user)):
            expires = "never"
            if token.expires_at is not None:
                expires = f"{token.expires_at:%Y-%m-%d %H:%M}"
                expires += " (expired)" if token.expires_at <= now else ""
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            scopes = token_scopes(token)
            role = token.role
            if scopes is not None:
                role += " " + ",".join(f"{s.entity}={s.permission}" for s in scopes)
            rows.append(
                (
                    str(token.id),
                    token.label,
                    role,
                    f"…{token.hint}",
                    f"{token.created_at:%Y-%m-%d %H:%M}",
                    used,
                    expires,
                )
            )
    _table(("ID", "LABEL", "ROLE", "ENDS IN", "CREATED", "LAST USED", "EXPIRES"), rows)


@tokens.command("revoke")
@click.argument("token_id", type=int)
@friendly_errors
def tokens_revoke(token_id: int) -> None:
    """Revoke the token with id TOKEN_ID (see `atrium tokens list`); it stops working at once."""
    from app.audit.service import CLI, record_token
    from app.auth.accounts import revoke_token_id
    from app.auth.models import User
    from app.db.engine import write_transaction

    db = _Database()
    with write_transaction(db.sessionmaker) as session:
        token = revoke_token_id(session, token_id)
        owner = session.get(User, token.user_id)
        record_token(session, CLI, "token.revoke", token, owner.name if owner else "?")
    click.echo(f"revoked token {token_id}")


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell; a line saying so when there are no rows."""
    if not rows:
        click.echo("(none)")
        return
    widths = [max(len(cell) for cell in column) for column in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


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
    """Apply pending migrations (creating the database of a new embedded hub)."""
    _ready_app(may_create=True)
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

    settings = Settings().resolved(create=False)
    database = settings.embedded_database()
    if database is not None:
        state = "" if database.exists() else " (not created yet: `atrium serve` creates it)"
        click.echo(f"# hub: embedded, {database}{state}")
    else:
        click.echo(f"# hub: {settings.describe()['ATRIUM_DATABASE_URL']}, {settings.storage_url}")
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
