"""The git smart protocol over one repo: dulwich's handlers with Atrium's storage and push rules.

dulwich speaks the protocol (ref advertisement, want/have negotiation, shallow, filters,
side-band, report-status) and writes and parses packs; Atrium supplies the repo view
(`app.git.store`) and, for receive-pack, replaces dulwich's "write the refs" step with
`app.git.push`, which checks and applies the push like an API commit.
"""

from __future__ import annotations

import io
import logging
import socket
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from dulwich.errors import (
    ApplyDeltaError,
    ChecksumMismatch,
    GitProtocolError,
    HangupException,
    ObjectFormatException,
)
from dulwich.objects import ObjectID
from dulwich.protocol import (
    CAPABILITY_ALLOW_REACHABLE_SHA1_IN_WANT,
    CAPABILITY_ATOMIC,
    CAPABILITY_SIDE_BAND_64K,
    SIDE_BAND_CHANNEL_FATAL,
    ReceivableProtocol,
)
from dulwich.refs import Ref
from dulwich.server import (
    Backend,
    BackendRepo,
    PackHandler,
    ReceivePackHandler,
    UploadPackHandler,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import Actor
from app.blobs import BlobStore
from app.config import Settings
from app.errors import AtriumError
from app.git.cache import ReplyRecorder
from app.git.incoming import Incoming, MissingDeltaBase, receive_pack
from app.git.models import GitTag
from app.git.push import MayPush, Push, RefCommand, not_in_repo
from app.git.store import AtriumGitRepo
from app.git.wire import Writer
from app.repos.history import History
from app.repos.models import Repo
from app.repos.service import list_refs

log = logging.getLogger("atrium.git")

UPLOAD_PACK = "git-upload-pack"
RECEIVE_PACK = "git-receive-pack"
SERVICES = (UPLOAD_PACK, RECEIVE_PACK)
HIDDEN_REFS = "refs/atrium/reachable/"  # never advertised: stateless requests list no refs
# What a broken pack raises while it is read and inflated (dulwich's own list, server.py).
UNPACK_ERRORS = (
    OSError,
    ChecksumMismatch,
    ApplyDeltaError,
    AssertionError,
    socket.error,
    zlib.error,
    ObjectFormatException,
    KeyError,
    ValueError,
)


@dataclass
class PushTarget:
    """Where a receive-pack applies its commands."""

    factory: sessionmaker[Session]
    blobs: BlobStore
    repo_id: int
    settings: Settings
    actor: Actor  # who pushes, for the audit log
    may_push: MayPush  # raises when the pusher may not move a ref


class _Backend(Backend):
    """dulwich opens repos by path; each request already holds its one repo."""

    def __init__(self, repo: AtriumGitRepo, target: PushTarget | None):
        self.repo = repo
        self.target = target

    def open_repository(self, path: str) -> BackendRepo:
        return self.repo  # type: ignore[return-value]


class AtriumReceivePack(ReceivePackHandler):
    """receive-pack whose pack goes to the blob store and whose refs move by `app.git.push`."""

    def _apply_pack(
        self, refs: list[tuple[ObjectID, ObjectID, Ref]]
    ) -> Iterator[tuple[bytes, bytes]]:
        backend = self.backend
        assert isinstance(backend, _Backend) and backend.target is not None
        target = backend.target
        commands = [RefCommand.parse(old, new, ref) for old, new, ref in refs]
        try:
            incoming = self._receive(target) if any(c.new for c in commands) else Incoming()
        except MissingDeltaBase as missing:
            yield (b"unpack", b"ok")
            for command in commands:
                reason = not_in_repo(missing.sha, "delta base")
                yield (command.ref.encode(), reason.encode())
            return
        except UNPACK_ERRORS as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            yield (b"unpack", reason.encode("utf-8", "replace"))
            for command in commands:
                yield (command.ref.encode(), b"unpacker error")
            return
        yield (b"unpack", b"ok")
        push = Push(
            target.factory,
            target.blobs,
            target.repo_id,
            incoming,
            target.settings,
            target.actor,
            target.may_push,
        )
        for ref, status in push.apply(commands, atomic=self.has_capability(CAPABILITY_ATOMIC)):
            yield (ref.encode("utf-8", "replace"), status.encode("utf-8", "replace"))

    def _receive(self, target: PushTarget) -> Incoming:
        store = self.backend.repo.store  # type: ignore[attr-defined]
        read_some = getattr(self.proto, "recv", None)
        return receive_pack(target.blobs, self.proto.read, read_some, store.get_raw)


class AtriumUploadPack(UploadPackHandler):
    """upload-pack that also accepts wants of objects the refs reach: a partial clone
    (`--filter=blob:none`) fetches the blobs it lacks by sha, and git only asks a server that
    advertises this. Such wants arrive as hidden refs (`reachable_refs`)."""

    def capabilities(self) -> list[bytes]:
        return [*super().capabilities(), CAPABILITY_ALLOW_REACHABLE_SHA1_IN_WANT]

    def _start_pack_send_phase(self) -> None:
        # A partial clone's lazy fetch names the blobs it lacks but repeats the clone's
        # filter (blob:none); git's upload-pack exempts explicit wants from the filter, and
        # dulwich has no such exemption, so the filter is dropped (it runs right after this).
        if self.repo.wants_blobs:  # type: ignore[attr-defined]
            self.filter_spec = None
        if self.filter_spec is not None:
            # The filter drops objects from the planned order: reading ahead would fetch
            # the very files a partial clone asked not to receive.
            self.repo.store.plan_reads([])  # type: ignore[attr-defined]
        super()._start_pack_send_phase()


HANDLERS: dict[str, type[PackHandler]] = {
    UPLOAD_PACK: AtriumUploadPack,
    RECEIVE_PACK: AtriumReceivePack,
}


def _handler(
    service: str, backend: _Backend, proto: ReceivableProtocol, *, advertise: bool
) -> PackHandler:
    cls: Any = HANDLERS[service]
    handler: PackHandler = cls(backend, ["/"], proto, stateless_rpc=True, advertise_refs=advertise)
    return handler


def advertise(service: str, repo: AtriumGitRepo) -> Callable[[Writer], None]:
    """The `info/refs?service=` reply: a service banner, then the refs and capabilities."""

    def work(write: Writer) -> None:
        proto = ReceivableProtocol(io.BytesIO().read, write)
        proto.write_pkt_line(f"# service={service}\n".encode())
        proto.write_pkt_line(None)
        _handler(service, _Backend(repo, None), proto, advertise=True).handle()

    return work


def serve(
    service: str,
    repo: AtriumGitRepo,
    body: IO[bytes],
    target: PushTarget | None = None,
    recorder: ReplyRecorder | None = None,
) -> Callable[[Writer], None]:
    """One stateless RPC round: read the spooled request body, write the reply (and hand a
    copy of it to recorder, kept only if the round completes)."""

    def work(write: Writer) -> None:
        done = False
        try:
            proto = ReceivableProtocol(body.read, recorder.wrap(write) if recorder else write)
            done = _handle(_handler(service, _Backend(repo, target), proto, advertise=False))
        finally:
            body.close()
            repo.store.close()
            if recorder is not None:
                recorder.finish(done)

    return work


def _handle(handler: PackHandler) -> bool:
    """Run the handler; False when it failed after the side-band was set up, in which case
    the failure went to git on the side-band's error channel (git prints it as `remote:
    …`) because a bare `ERR` line there would read as a corrupt band."""
    try:
        handler.handle()
    except (HangupException, GitProtocolError):
        raise
    except Exception as exc:
        if not _uses_sideband(handler):
            raise
        log.exception("git request failed")
        reason = exc.message if isinstance(exc, AtriumError) else "internal server error"
        handler.proto.write_sideband(SIDE_BAND_CHANNEL_FATAL, f"error: {reason}\n".encode())
        return False
    return True


def _uses_sideband(handler: PackHandler) -> bool:
    try:
        return handler.has_capability(CAPABILITY_SIDE_BAND_64K)
    except GitProtocolError:  # raised while capabilities are not negotiated yet
        return False


def advertised_refs(session: Session, repo: Repo) -> dict[str, str]:
    """The refs git sees: the `refs` table, with annotated tags shown as their tag objects
    while their ref still points at the tagged commit (`app.git.models`)."""
    refs = {ref.name: ref.commit_sha for ref in list_refs(session, repo)}
    for tag in session.scalars(select(GitTag).where(GitTag.repo_id == repo.id)):
        if refs.get(tag.name) == tag.commit_sha:
            refs[tag.name] = tag.tag_sha
    return refs


def wanted_objects(body: IO[bytes]) -> set[str]:
    """The shas of the `want` lines an upload-pack request starts with; rewinds body."""
    wants: set[str] = set()
    proto = ReceivableProtocol(body.read, lambda _data: None)
    for line in proto.read_pkt_seq():
        command, _, rest = line.partition(b" ")
        if command != b"want":
            break
        wants.add(rest[:40].decode("ascii", "replace"))
    body.seek(0)
    return wants


def reachable_refs(
    session: Session, repo_id: int, refs: dict[str, str], wants: set[str]
) -> tuple[dict[str, str], bool]:
    """Hidden refs for wanted objects that are not ref tips but that this repo's history
    reaches, so dulwich serves them (a want of anything else stays refused), and whether
    any of them is a file."""
    found = History(session, repo_id).find(wants - set(refs.values()), set(refs.values()))
    hidden = {f"{HIDDEN_REFS}{sha}": sha for sha in found}
    blobs = any(row is not None and row.kind == "blob" for row in found.values())
    return {**refs, **hidden}, blobs
