"""Content-addressed object storage behind one interface (see `base.BlobStore`)."""

from app.blobs.base import BlobInfo, BlobNotFound, BlobStore, HashMismatch
from app.blobs.factory import create_blob_store

__all__ = ["BlobInfo", "BlobNotFound", "BlobStore", "HashMismatch", "create_blob_store"]
