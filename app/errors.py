"""One error hierarchy, mapped to HTTP in exactly one handler (`app.main`).

    AtriumError                       500  (never raised bare)
    ├── RepoMoved                     307  an old name of a moved repo
    ├── BadRequest                    400
    │   ├── InvalidName               400
    │   └── InvalidPath               422  a file path a repo cannot hold
    ├── Unauthorized                  401  "Invalid credentials in Authorization header"
    │   └── GatedRepoLogin            401 anonymous, on a gated repo
    ├── Forbidden                     403
    │   └── GatedRepo                 403 signed in, without access to a gated repo
    ├── NotFound                      404
    │   ├── RepoNotFound              404 (401 for anonymous callers, as huggingface.co does)
    │   ├── RevisionNotFound          404
    │   └── EntryNotFound             404
    ├── RequestTimeout                408  an upload that stalled or crawled
    ├── Conflict                      409
    ├── PreconditionFailed            412  stale parent commit
    ├── PayloadTooLarge               413
    │   └── QuotaExceeded             413  the namespace's storage quota
    ├── RangeNotSatisfiable           416
    ├── TooManyRequests               429  with Retry-After
    └── StorageUnavailable            503  retryable

`code` becomes the `X-Error-Code` header that huggingface_hub classifies errors by
(utils/_http.py); `message` the `X-Error-Message` header and the JSON `{"error": ...}` body.
"""

from __future__ import annotations

from typing import ClassVar


class AtriumError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str | None] = None
    default_message: ClassVar[str] = "Internal error"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers = headers or {}
        super().__init__(self.message)


class RepoMoved(AtriumError):
    """The repo asked for by an old name: the same request at the new name answers it.
    The handlers turn `old` into `new` in the request's path for the `Location` header."""

    status = 307

    def __init__(self, old: str, new: str):
        self.old, self.new = old, new
        super().__init__(f"Repository {old} was moved to {new}")

    def location(self, raw_path: str, query: str = "") -> str:
        path = raw_path.replace(f"/{self.old}", f"/{self.new}", 1)
        return path + (f"?{query}" if query else "")


class BadRequest(AtriumError):
    status = 400
    default_message = "Bad request"


class InvalidName(BadRequest):
    default_message = "Invalid name"


class InvalidPath(BadRequest):
    status = 422
    default_message = "Invalid file path"


class Unauthorized(AtriumError):
    status = 401
    default_message = "Invalid credentials in Authorization header"


class Forbidden(AtriumError):
    status = 403
    default_message = "You don't have the rights to perform this action"


class GatedRepo(Forbidden):
    """A gated repo's content, asked for by a user without granted access. `page` is the
    repo's page on this server, where access is asked for; the API handler makes it absolute."""

    code = "GatedRepo"

    def __init__(self, message: str, *, page: str):
        self.reason, self.page = message, page
        super().__init__(self.absolute(""))

    def absolute(self, base_url: str) -> str:
        return f"{self.reason} Visit {base_url}{self.page} to ask for access."


class GatedRepoLogin(Unauthorized):
    code = "GatedRepo"


class NotFound(AtriumError):
    status = 404
    default_message = "Not found"


class RepoNotFound(NotFound):
    code = "RepoNotFound"
    default_message = "Repository not found"


class RevisionNotFound(NotFound):
    code = "RevisionNotFound"
    default_message = "Revision not found"


class EntryNotFound(NotFound):
    code = "EntryNotFound"
    default_message = "Entry not found"


class Conflict(AtriumError):
    status = 409
    default_message = "Conflict"


class RequestTimeout(AtriumError):
    status = 408
    default_message = "The request body arrived too slowly"


class PreconditionFailed(AtriumError):
    status = 412
    default_message = (
        "The branch was updated since you opened this page. Please refresh and try again."
    )


class PayloadTooLarge(AtriumError):
    status = 413
    default_message = "Request body too large"


class QuotaExceeded(PayloadTooLarge):
    code = "QuotaExceeded"
    default_message = "Storage quota exceeded"


class RangeNotSatisfiable(AtriumError):
    status = 416
    default_message = "Requested range not satisfiable"


class TooManyRequests(AtriumError):
    status = 429
    default_message = "Too many requests, retry later"

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


class StorageUnavailable(AtriumError):
    status = 503
    default_message = "Storage is unavailable, retry later"
