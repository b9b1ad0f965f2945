"""A thin S3 object store: the only module that talks to boto3."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from services.core.settings import Settings

log = logging.getLogger(__name__)


class ObjectNotFound(KeyError):
    """The key does not exist in the bucket."""


class WriteConflict(RuntimeError):
    """A conditional write lost: the object changed (or appeared) since it was read."""


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object."""

    key: str
    size: int
    modified: datetime


def make_s3_client(settings: Settings) -> Any:
    """A boto3 S3 client with bounded timeouts and standard retries (S3 down is reported, not hung)."""
    config = Config(
        connect_timeout=settings.s3_connect_timeout_s,
        read_timeout=settings.s3_read_timeout_s,
        retries={"max_attempts": settings.s3_max_attempts, "mode": "standard"},
        s3={"addressing_style": "path"},
        signature_version="s3v4",
    )
    return boto3.client("s3", config=config, **settings.s3_client_kwargs())


class ObjectStore:
    """Bytes and JSON in one bucket; the client is passed in so tests can hand it any S3."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:
        """Build a store from settings (no network call)."""
        return cls(make_s3_client(settings), settings.s3_bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            log.info("creating bucket %s", self.bucket)
            self.client.create_bucket(Bucket=self.bucket)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write one object."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def put_bytes_if_absent(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> bool:
        """Write one object only if the key is free (If-None-Match: *); False when it already exists."""
        try:
            self.put_bytes_conditional(key, data, if_match=None, content_type=content_type)
        except WriteConflict:
            return False
        return True

    def get_bytes(self, key: str) -> bytes:
        """Read one object; ObjectNotFound when missing."""
        return self.get_bytes_with_etag(key)[0]

    def put_json(self, key: str, obj: Any) -> None:
        """Write an object as pretty JSON."""
        data = json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
        self.put_bytes(key, data, "application/json")

    def get_json(self, key: str) -> Any:
        """Read a JSON object."""
        return json.loads(self.get_bytes(key))

    def exists(self, key: str) -> bool:
        """Whether the key exists."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object under a prefix, sorted by key."""
        out: list[ObjectInfo] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out.append(ObjectInfo(obj["Key"], int(obj["Size"]), obj["LastModified"]))
        return sorted(out, key=lambda o: o.key)

    def list_dirs(self, prefix: str) -> list[str]:
        """Immediate sub-folders of a prefix (ending in '/'), sorted."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        dirs: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                dirs.add(cp["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(dirs)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under a prefix; returns how many."""
        keys = [o.key for o in self.list(prefix)]
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
        return len(keys)

    def get_bytes_with_etag(self, key: str) -> tuple[bytes, str]:
        """Read one object and the ETag it had when read; ObjectNotFound when missing."""
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(key) from exc
            raise
        return resp["Body"].read(), resp["ETag"]

    def put_bytes_conditional(
        self, key: str, data: bytes, *, if_match: str | None, content_type: str = "application/octet-stream"
    ) -> str:
        """Write only if the object still has ETag if_match (None: only if it is absent); returns the new ETag.

        WriteConflict when another writer got there first (412, or 409 from AWS for a concurrent write).
        """
        cond = {"IfMatch": if_match} if if_match is not None else {"IfNoneMatch": "*"}
        try:
            resp = self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **cond
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise WriteConflict(f"{key}: changed since it was read ({code})") from exc
            raise
        return resp["ETag"]
