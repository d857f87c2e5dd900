"""Objects that landed in the uploads bucket: read one to check it, delete one that failed
its check or whose draft is gone, and put one directly (the local demo seed)."""
from __future__ import annotations

from typing import Any

from chalicelib.uploads import store
from chalicelib.uploads.presign import ENCRYPTION


def open_object(bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
    """The object's metadata and streaming body (S3's GetObject reply)."""
    return store.get_object(bucket, key, version_id)


def delete(bucket: str, key: str, version_id: str | None = None) -> None:
    """Delete the object (one version of it, when `version_id` is given)."""
    store.delete_object(bucket, key, version_id)


def put(bucket: str, key: str, body: bytes, content_type: str) -> None:
    """Store `body` under `key`, encrypted like an upload through a presigned form."""
    store.put_object(bucket, key, body, content_type, ENCRYPTION)
