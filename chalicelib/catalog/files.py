"""Checking what creators upload. Nothing the client declared is trusted: when S3 announces
an object, its size must equal the declared size, its first bytes must show the declared
type, and its SHA-256 is computed from the bytes. A failing object is deleted."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib import db
from chalicelib.catalog import store
from chalicelib.catalog.states import OPEN_UPLOAD, UploadStatus
from chalicelib.catalog.store import ResourceRecord, UploadRecord
from chalicelib.config import settings
from chalicelib.observability import logger, metrics
from chalicelib.uploads import objects, sniff

CHUNK = 1024 * 1024
OPEN = tuple(s.value for s in OPEN_UPLOAD)


def _reject(upload: UploadRecord, reason: str, version_id: str | None) -> None:
    try:
        upload.update(actions=[UploadRecord.status.set(UploadStatus.REJECTED.value),
                               UploadRecord.reason.set(reason),
                               UploadRecord.checked_at.set(db.now_iso())],
                      condition=UploadRecord.status.is_in(*OPEN))
    except UpdateError as exc:
        if not db.is_condition_failure(exc):
            raise
        return
    objects.delete(settings().uploads_bucket, upload.key, version_id)
    metrics.add_metric(name="UploadsRejected", unit="Count", value=1)
    logger.info("upload rejected", extra={"upload_id": upload.upload_id, "reason": reason})


def _accept(upload: UploadRecord, size: int, digest: str, found: str | None,
            version_id: str | None) -> None:
    actions = [UploadRecord.status.set(UploadStatus.VERIFIED.value), UploadRecord.size.set(size),
               UploadRecord.sha256.set(digest), UploadRecord.checked_at.set(db.now_iso())]
    # Absent, not null, when the sniffer found no type or the bucket keeps no versions.
    if found is not None:
        actions.append(UploadRecord.sniffed_type.set(found))
    if version_id is not None:
        actions.append(UploadRecord.version_id.set(version_id))
    pointer = {"cover": ("cover_upload_id", ResourceRecord.cover_key),
               "preview": ("preview_upload_id", ResourceRecord.preview_key)}.get(upload.purpose)
    for _ in range(4):
        resource = None
        if pointer:
            resource = store.get_resource(upload.resource_id)
            # A cover or preview goes live once checked, unless a newer one was chosen since.
            if resource is not None and getattr(resource, pointer[0]) != upload.upload_id:
                resource = None
        try:
            with db.transaction() as tx:
                tx.update(upload, actions=actions, condition=UploadRecord.status.is_in(*OPEN))
                if resource is not None and pointer:
                    tx.update(resource, actions=[pointer[1].set(upload.key)])
            break
        except TransactWriteError as exc:
            codes = db.cancellation_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return  # already decided by an earlier delivery of the same event
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                continue  # the resource changed meanwhile: look again
            raise
    metrics.add_metric(name="UploadsVerified", unit="Count", value=1)


def check_object(key: str, version_id: str | None = None) -> str:
    """Check one landed object against its upload record; returns what was decided."""
    ids = store.parse_object_key(key)
    if ids is None:
        return "ignored"
    upload = store.get_upload(*ids)
    if upload is None:
        logger.warning("object without upload record", extra={"key": key})
        return "unknown"
    if upload.key != key or upload.status not in OPEN:
        return "duplicate"
    try:
        upload.update(actions=[UploadRecord.status.set(UploadStatus.VERIFYING.value)],
                      condition=UploadRecord.status == UploadStatus.AWAITING_UPLOAD.value)
    except UpdateError as exc:
        if not db.is_condition_failure(exc):
            raise
    body = objects.open_object(settings().uploads_bucket, key, version_id)
    size = int(body["ContentLength"])
    if size != int(upload.declared_size):
        body["Body"].close()
        _reject(upload, f"size {size} bytes differs from the declared {upload.declared_size}",
                version_id)
        return "rejected"
    digest, head = hashlib.sha256(), b""
    for chunk in body["Body"].iter_chunks(CHUNK):
        if len(head) < sniff.HEAD_BYTES:
            head += chunk[:sniff.HEAD_BYTES - len(head)]
        digest.update(chunk)
    ok, found = sniff.matches(upload.content_type, head)
    if not ok:
        _reject(upload, f"content is {found or 'of an unknown type'}, not the declared "
                        f"{upload.content_type}", version_id)
        return "rejected"
    _accept(upload, size, digest.hexdigest(), found, version_id or body.get("VersionId"))
    return "verified"


def handle_s3_event(event: Mapping[str, Any]) -> None:
    """The uploads bucket's notification, as S3 invokes the function with it (asynchronously:
    an exception makes Lambda try the whole event again, twice, then dead-letter it). Checking
    an object again is harmless: an upload already decided is left as it is."""
    for entry in event.get("Records", []):
        if not entry.get("eventName", "").startswith("ObjectCreated"):
            continue
        if entry["s3"]["bucket"]["name"] != settings().uploads_bucket:
            continue
        # Keys arrive URL-encoded, as S3 sends them.
        key = unquote_plus(entry["s3"]["object"]["key"])
        outcome = check_object(key, entry["s3"]["object"].get("versionId"))
        logger.info("upload checked", extra={"key": key, "outcome": outcome})
