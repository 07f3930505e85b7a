"""Imports every table so that Alembic and `Base.metadata` see the whole schema."""

from app.audit.models import AuditEvent
from app.auth.models import BrowserSession, Membership, Organization, Token, User
from app.auth.ratelimit import RateLimitCounter
from app.collections.models import Collection, CollectionItem
from app.db.base import Base
from app.discussions.models import Discussion, DiscussionEvent
from app.follows.models import Follow
from app.gating.models import AccessRequest
from app.git.models import GitTag
from app.likes.models import RepoLike
from app.quotas.models import NamespaceQuota, RepoGitBlob
from app.repos.models import (
    Commit,
    EventCursor,
    LfsObject,
    Ref,
    Repo,
    RepoCommit,
    RepoEvent,
    RepoLfsObject,
    RepoRedirect,
    TreeEntry,
)
from app.security.models import PickleScan
from app.webhooks.models import Webhook, WebhookDelivery
from app.xet.models import XetDedupChunk, XetFile, XetXorb

__all__ = [
    "AccessRequest",
    "AuditEvent",
    "Base",
    "BrowserSession",
    "Collection",
    "CollectionItem",
    "Commit",
    "Discussion",
    "DiscussionEvent",
    "EventCursor",
    "Follow",
    "GitTag",
    "LfsObject",
    "Membership",
    "NamespaceQuota",
    "Organization",
    "PickleScan",
    "RateLimitCounter",
    "Ref",
    "Repo",
    "RepoCommit",
    "RepoEvent",
    "RepoGitBlob",
    "RepoLfsObject",
    "RepoLike",
    "RepoRedirect",
    "Token",
    "TreeEntry",
    "User",
    "Webhook",
    "WebhookDelivery",
    "XetDedupChunk",
    "XetFile",
    "XetXorb",
]
