"""Storage of the uploads context: the S3 bucket creators upload to. Every S3 call of the
platform's uploads goes through here; the services above only decide what to ask for."""
from __future__ import annotations

from typing import Any

from chalicelib import aws


def presigned_post(bucket: str, key: str, fields: dict[str, Any], conditions: list[Any],
                   expires_in: int) -> dict[str, Any]:
    return aws.s3().generate_presigned_post(Bucket=bucket, Key=key, Fields=fields,
                                            Conditions=conditions, ExpiresIn=expires_in)


def presigned_url(operation: str, params: dict[str, Any], expires_in: int) -> str:
    return aws.s3().generate_presigned_url(operation, Params=params, ExpiresIn=expires_in)


def presigned_urls(operation: str, params: list[dict[str, Any]], expires_in: int) -> list[str]:
    s3 = aws.s3()
    return [s3.generate_presigned_url(operation, Params=p, ExpiresIn=expires_in) for p in params]


def create_multipart(bucket: str, key: str, content_type: str, encryption: str) -> str:
    return aws.s3().create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type,
                                            ServerSideEncryption=encryption)["UploadId"]


def complete_multipart(bucket: str, key: str, multipart_id: str,
                       parts: list[dict[str, Any]]) -> None:
    aws.s3().complete_multipart_upload(Bucket=bucket, Key=key, UploadId=multipart_id,
                                       MultipartUpload={"Parts": parts})


def abort_multipart(bucket: str, key: str, multipart_id: str) -> None:
    aws.s3().abort_multipart_upload(Bucket=bucket, Key=key, UploadId=multipart_id)


def _version(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id else {}


def get_object(bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
    return aws.s3().get_object(Bucket=bucket, Key=key, **_version(version_id))


def delete_object(bucket: str, key: str, version_id: str | None = None) -> None:
    aws.s3().delete_object(Bucket=bucket, Key=key, **_version(version_id))


def put_object(bucket: str, key: str, body: bytes, content_type: str, encryption: str) -> None:
    aws.s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                        ServerSideEncryption=encryption)
