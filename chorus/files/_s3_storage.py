"""The S3 storage backend (AWS or any S3-compatible store) and its presigned GET URLs.

boto3 is blocking: every call runs in a trio worker thread, at most
`max_threads` at a time for this store. Uploads use boto3's managed transfer
from the file on disk: objects above `part_size` go up as a multipart upload
of `part_size` parts, `transfer_concurrency` at a time, so memory stays
bounded (roughly parts in flight x part size) whatever the file size. A
failed multipart upload is aborted by the transfer manager, so no object
appears; if the abort itself cannot reach S3 the parts stay invisible until
a bucket lifecycle rule (`AbortIncompleteMultipartUpload`) removes them.

A call is not interrupted by trio cancellation: the worker thread finishes
(bounded by the timeouts and retries below) so no upload is left half-done
by our side.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import boto3
import boto3.exceptions
import botocore.config
import botocore.exceptions
import trio
from boto3.s3.transfer import TransferConfig

from ._delivery import Disposition, content_disposition
from ._storage import ObjectNotFound, StorageUnavailable, check_key

T = TypeVar("T")

MAX_PRESIGNED_TTL = 7 * 24 * 3600
"""The longest lifetime of a SigV4 presigned URL that S3 accepts."""

_ERRORS = (
    botocore.exceptions.BotoCoreError,  # unreachable endpoint, timeouts, no credentials
    botocore.exceptions.ClientError,  # S3 said no (access denied, no such bucket, ...)
    boto3.exceptions.S3UploadFailedError,  # the managed transfer's wrapper of both
)


class S3Storage:
    """Objects in `bucket` under `prefix`, through the S3 API. Implements `Storage`.

    Credentials come from boto3's usual chain (environment, shared config,
    instance role). `endpoint_url` selects an S3-compatible store (MinIO,
    Ceph, R2, moto, ...); it also switches to path-style addressing and to
    checksums only where the API requires them, which such stores accept.
    The constructor loads boto3's models (blocking, once at startup).
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        max_threads: int = 4,
        transfer_concurrency: int = 4,
        part_size: int = 8 * 1024 * 1024,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self._bucket = bucket
        self._prefix = check_key(prefix.strip("/")) + "/" if prefix.strip("/") else ""
        self._where = f"S3 bucket {bucket!r} at {endpoint_url or 'AWS'}"
        custom = endpoint_url is not None
        config = botocore.config.Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if custom else "auto"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=max_threads * transfer_concurrency,
            request_checksum_calculation="when_required" if custom else "when_supported",
            response_checksum_validation="when_required" if custom else "when_supported",
        )
        self._client = boto3.session.Session().client(
            "s3", region_name=region, endpoint_url=endpoint_url, config=config
        )
        self._transfer = TransferConfig(
            multipart_threshold=part_size,
            multipart_chunksize=part_size,
            max_concurrency=transfer_concurrency,
            preferred_transfer_client="classic",
        )
        self._limiter = trio.CapacityLimiter(max_threads)

    def object_key(self, key: str) -> str:
        """The key of the S3 object that stores `key` (the prefix, then the key)."""
        return self._prefix + check_key(key)

    async def _run(self, key: str, action: str, work: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return work()
            except _ERRORS as error:
                raise StorageUnavailable(
                    f"{self._where}: cannot {action} {key!r}: {error}"
                ) from error

        return await trio.to_thread.run_sync(guarded, limiter=self._limiter)

    async def put(
        self, key: str, source: Path, *, content_type: str, content_disposition: str | None = None
    ) -> None:
        name = self.object_key(key)
        extra = {"ContentType": content_type}
        if content_disposition is not None:
            extra["ContentDisposition"] = content_disposition

        def upload() -> None:
            if not source.is_file():
                raise FileNotFoundError(f"no file to store at {source}")
            self._client.upload_file(
                str(source), self._bucket, name, ExtraArgs=extra, Config=self._transfer
            )

        await self._run(key, "store", upload)

    async def delete(self, key: str) -> None:
        name = self.object_key(key)
        # S3 answers 204 for a missing key too: idempotent as it is.
        await self._run(
            key, "delete", lambda: self._client.delete_object(Bucket=self._bucket, Key=name)
        )

    async def delete_prefix(self, prefix: str) -> None:
        under = self.object_key(prefix) + "/"

        def delete_all() -> None:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=under
            )
            for page in pages:
                contents = page.get("Contents", [])
                if not contents:
                    continue
                answer = self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": item["Key"]} for item in contents], "Quiet": True},
                )
                if answer.get("Errors"):
                    failed = answer["Errors"][0]
                    raise StorageUnavailable(
                        f"{self._where}: cannot delete {failed.get('Key')!r}: "
                        f"{failed.get('Code')} {failed.get('Message')}"
                    )

        await self._run(prefix, "delete the objects under", delete_all)

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except ObjectNotFound:
            return False
        return True

    async def size(self, key: str) -> int:
        # S3 answers 403, not 404, for a missing key to a caller without
        # s3:ListBucket: that is a `StorageUnavailable` naming AccessDenied.
        name = self.object_key(key)

        def head() -> int:
            try:
                return self._client.head_object(Bucket=self._bucket, Key=name)["ContentLength"]
            except botocore.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    raise ObjectNotFound(key) from None
                raise

        return await self._run(key, "read the size of", head)

    async def presigned_get(
        self,
        key: str,
        *,
        ttl: int,
        display_name: str,
        content_type: str,
        disposition: Disposition | None = None,
    ) -> str:
        """A URL that fetches the object from S3 for `ttl` seconds, without credentials.

        The response's Content-Type and Content-Disposition are fixed by the
        signed URL (the same rule as the node's own delivery). S3 checks the
        signature and the expiry; the URL keeps working until then even if
        the object's message is deleted, unless the object itself is gone.
        Building the URL makes no request (but may load credentials).
        """
        if not 1 <= ttl <= MAX_PRESIGNED_TTL:
            raise ValueError(f"a presigned URL lives 1 to {MAX_PRESIGNED_TTL} seconds, not {ttl}")
        params = {
            "Bucket": self._bucket,
            "Key": self.object_key(key),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": content_disposition(
                display_name, content_type, disposition=disposition
            ),
        }
        return await self._run(
            key,
            "presign",
            lambda: self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl),
        )
