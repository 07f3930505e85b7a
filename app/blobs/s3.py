"""Blob store on S3 (or any S3-compatible endpoint such as MinIO) through boto3.

Writes stream through a multipart upload whose parts are sent as they fill; the declared
sha256/size is checked before CompleteMultipartUpload, so a mismatch aborts the upload and
nothing ever becomes visible under the key. Objects smaller than one part are sent with a
single PutObject after verification.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.blobs.base import STREAM_CHUNK, BlobInfo, BlobNotFound, HashingReader, MiB, validate_key
from app.config import ConfigError
from app.errors import StorageUnavailable

PART_SIZE = 8 * MiB  # S3 needs >= 5 MiB parts; grown for huge declared sizes (10,000 parts max)
MAX_PARTS = 9_000
COPY_OBJECT_MAX = 5 * 1024 * MiB  # S3's limit for a single CopyObject
COPY_PART = 512 * MiB  # part size of copies beyond it
PARTS_IN_FLIGHT = 3  # bounds memory at part size * (PARTS_IN_FLIGHT + 2)


class S3BlobStore:
    def __init__(
        self, url: str, endpoint_url: str | None, create_bucket: bool, *, timeout: float = 60
    ):
        parsed = urlparse(url)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.endpoint_url = endpoint_url
        self.create_bucket = create_bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,
                connect_timeout=min(5, timeout),
                read_timeout=timeout,
                signature_version="s3v4",
            ),
        )
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-part")

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise ConfigError(
                    f"ATRIUM_STORAGE_URL: bucket {self.bucket!r} is not accessible ({code}); "
                    "check the AWS_* credentials"
                ) from None
        except BotoCoreError as exc:
            raise ConfigError(
                f"ATRIUM_S3_ENDPOINT_URL: cannot reach S3 at {self.endpoint_url or 'AWS'} ({exc}); "
                "check that the endpoint runs and the URL is right"
            ) from None
        if not self.create_bucket:
            raise ConfigError(
                f"ATRIUM_STORAGE_URL: bucket {self.bucket!r} does not exist; create it or set "
                "ATRIUM_S3_CREATE_BUCKET=true"
            )
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            raise ConfigError(
                f"ATRIUM_STORAGE_URL: bucket {self.bucket!r} does not exist and could not be "
                f"created ({exc.response.get('Error', {}).get('Code')}); create it by hand"
            ) from None

    def put(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None = None,
        size: int | None = None,
    ) -> BlobInfo:
        s3_key = self._key(key)
        reader = HashingReader(sha256, size)
        buffer = bytearray()
        upload: _Multipart | None = None
        part_size = max(PART_SIZE, (size or 0) // MAX_PARTS + 1)
        try:
            for chunk in chunks:
                reader.feed(chunk)
                buffer += chunk
                while len(buffer) >= part_size:
                    upload = upload or _Multipart(self, s3_key)
                    upload.send(bytes(buffer[:part_size]))
                    del buffer[:part_size]
            digest = reader.verify()
            if upload is None:
                self._call(
                    self.client.put_object, Bucket=self.bucket, Key=s3_key, Body=bytes(buffer)
                )
            else:
                if buffer:
                    upload.send(bytes(buffer))
                upload.complete()
        except BaseException:
            if upload is not None:
                upload.abort()
            raise
        return BlobInfo(key=key, size=reader.count, sha256=digest)

    def open(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if length == 0:
            if self.size(key) is None:
                raise BlobNotFound(f"object {key} not found")
            return iter(())
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            kwargs["Range"] = f"bytes={start}-{end}"
        try:
            response = self._call(self.client.get_object, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise BlobNotFound(f"object {key} not found") from None
            if code == "InvalidRange":
                return iter(())
            raise
        return _stream_body(response["Body"])

    def size(self, key: str) -> int | None:
        try:
            head = self._call(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self._call(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str = "") -> Iterator[tuple[str, float]]:
        full_prefix = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(f"{self.prefix}/") if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
            for item in page.get("Contents", []):
                yield item["Key"][strip:], item["LastModified"].timestamp()

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=expires_s,
        )
        return url

    def presigned_range_url(self, key: str, start: int, end: int, expires_s: int) -> str:
        """A GET URL bound to `Range: bytes=start-end` (the header is signed), so its holder
        reads only that range of the object (Xet fetch URLs, xet-protocol.md §4.2)."""
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key), "Range": f"bytes={start}-{end}"},
            ExpiresIn=expires_s,
        )
        return url

    def presigned_part_url(self, key: str, upload_id: str, part: int, expires_s: int) -> str:
        url: str = self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "UploadId": upload_id,
                "PartNumber": part,
            },
            ExpiresIn=expires_s,
        )
        return url

    def create_multipart(self, key: str) -> str:
        """Start a multipart upload whose parts clients PUT to presigned_part_url directly."""
        created = self._call(
            self.client.create_multipart_upload, Bucket=self.bucket, Key=self._key(key)
        )
        upload_id: str = created["UploadId"]
        return upload_id

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None:
        """Assemble parts 1..n (the ETags the part PUTs answered); the object appears at key."""
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]
        self._call(
            self.client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=self._key(key),
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )

    def copy(self, source: str, target: str) -> None:
        """Server-side copy: the bytes never leave S3. One CopyObject up to its 5 GiB limit
        (boto3's managed copy would split even 10 MB into parts), parts beyond."""
        where = {"Bucket": self.bucket, "Key": self._key(source)}
        size = self.size(source)
        if size is not None and size <= COPY_OBJECT_MAX:
            self._call(
                self.client.copy_object, CopySource=where, Bucket=self.bucket, Key=self._key(target)
            )
            return
        config = TransferConfig(multipart_threshold=COPY_OBJECT_MAX, multipart_chunksize=COPY_PART)
        self._call(
            self.client.copy,
            CopySource=where,
            Bucket=self.bucket,
            Key=self._key(target),
            Config=config,
        )

    def local_path(self, key: str) -> Path | None:
        return None

    def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except BotoCoreError as exc:
            raise StorageUnavailable(f"object storage did not answer: {exc}") from exc


class _Multipart:
    """One multipart upload; parts are sent from a thread pool, a few in flight at a time."""

    def __init__(self, store: S3BlobStore, s3_key: str):
        self.store = store
        self.key = s3_key
        created = store._call(store.client.create_multipart_upload, Bucket=store.bucket, Key=s3_key)
        self.upload_id: str = created["UploadId"]
        self.futures: list[Future[dict[str, Any]]] = []

    def send(self, data: bytes) -> None:
        number = len(self.futures) + 1
        pending = [f for f in self.futures if not f.done()]
        if len(pending) >= PARTS_IN_FLIGHT:
            pending[0].result()
        self.futures.append(self.store.pool.submit(self._upload_part, number, data))

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        answer = self.store._call(
            self.store.client.upload_part,
            Bucket=self.store.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def complete(self) -> None:
        parts = [future.result() for future in self.futures]
        self.store._call(
            self.store.client.complete_multipart_upload,
            Bucket=self.store.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": parts},
        )

    def abort(self) -> None:
        for future in self.futures:
            future.cancel()
        # An orphaned upload that cannot be aborted now is reclaimed by a bucket lifecycle rule.
        with contextlib.suppress(ClientError, BotoCoreError):
            self.store.client.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id
            )


def _stream_body(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size=STREAM_CHUNK)
    finally:
        body.close()
