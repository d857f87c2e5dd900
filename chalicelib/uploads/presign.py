"""Presigned S3 requests: POST forms and multipart part URLs for creators' uploads, GET URLs
for delivery. Pure request signing: no call reaches S3 except multipart create/complete/abort
(all of them through uploads.store)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.uploads import store

ENCRYPTION = "AES256"


def expiry(seconds: int) -> str:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def post_form(bucket: str, key: str, content_type: str, size: int,
              expires_in: int) -> dict[str, Any]:
    """A presigned POST whose policy binds the exact key, type, size range and encryption."""
    fields = {"Content-Type": content_type, "x-amz-server-side-encryption": ENCRYPTION}
    conditions: list[Any] = [
        {"Content-Type": content_type},
        {"x-amz-server-side-encryption": ENCRYPTION},
        ["content-length-range", 1, size],
    ]
    return store.presigned_post(bucket, key, fields, conditions, expires_in)


def start_multipart(bucket: str, key: str, content_type: str) -> str:
    return store.create_multipart(bucket, key, content_type, ENCRYPTION)


def part_urls(bucket: str, key: str, multipart_id: str, parts: int,
              expires_in: int) -> list[dict[str, Any]]:
    params = [{"Bucket": bucket, "Key": key, "UploadId": multipart_id, "PartNumber": n}
              for n in range(1, parts + 1)]
    urls = store.presigned_urls("upload_part", params, expires_in)
    return [{"part_number": n, "url": url} for n, url in enumerate(urls, start=1)]


def complete_multipart(bucket: str, key: str, multipart_id: str,
                       parts: list[tuple[int, str]]) -> None:
    store.complete_multipart(bucket, key, multipart_id,
                             [{"PartNumber": n, "ETag": etag} for n, etag in parts])


def abort_multipart(bucket: str, key: str, multipart_id: str) -> None:
    store.abort_multipart(bucket, key, multipart_id)


def get_url(bucket: str, key: str, expires_in: int, filename: str | None = None,
            version_id: str | None = None) -> str:
    """A presigned GET; with `filename`, the browser saves it under that name."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    if filename:
        from urllib.parse import quote

        ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
        params["ResponseContentDisposition"] = (
            f'attachment; filename="{ascii_name}"; filename*=UTF-8\'\'{quote(filename)}')
    return store.presigned_url("get_object", params, expires_in)
