from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from app.blobs.base import BlobStore
from app.blobs.local import LocalBlobStore
from app.blobs.s3 import S3BlobStore
from app.config import Settings


def create_blob_store(settings: Settings) -> BlobStore:
    """The store named by ATRIUM_STORAGE_URL (file:// or s3://); settings must be resolved."""
    url = settings.storage_url
    if url.startswith("s3://"):
        return S3BlobStore(
            url,
            settings.s3_endpoint_url,
            settings.s3_create_bucket,
            timeout=settings.s3_timeout,
        )
    return LocalBlobStore(Path(unquote(urlparse(url).path)))
