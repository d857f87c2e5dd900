"""Domain errors. Services raise these; the HTTP edge (`chalicelib.web`) maps each kind to a
status code and the error envelope of the API contract. Nothing here knows about HTTP."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a client may cause. `kind` picks the HTTP status at the edge."""

    kind = "invalid"
    code = "invalid_request"
    message = "The request is invalid."

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        self.message = message or self.message
        if code:
            self.code = code
        self.details = details or {}
        super().__init__(self.message)


class Invalid(DomainError):
    kind = "invalid"
    code = "invalid_request"


class ValidationFailed(Invalid):
    code = "validation_error"
    message = "Some fields are invalid."


class Unauthenticated(DomainError):
    kind = "unauthenticated"
    code = "unauthenticated"
    message = "Authentication is required."


class Forbidden(DomainError):
    kind = "forbidden"
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFound(DomainError):
    kind = "not_found"
    code = "not_found"
    message = "Not found."


class Conflict(DomainError):
    kind = "conflict"
    code = "conflict"
    message = "The request conflicts with the current state."


class TooLarge(DomainError):
    kind = "too_large"
    code = "too_large"
    message = "Too large."


class Refused(DomainError):
    kind = "refused"
    code = "rule_refused"
    message = "A business rule refused the request."


class ProviderUnavailable(DomainError):
    """A provider we depend on (Stripe) failed or could not be reached; nothing was done."""

    kind = "provider_unavailable"
    code = "payment_provider_unavailable"
    message = "The payment provider is unavailable; nothing was done. Try again."


class Unavailable(DomainError):
    """Our own infrastructure (a queue) failed; the caller should retry. Nothing was done."""

    kind = "unavailable"
    code = "service_unavailable"
    message = "The service is unavailable; nothing was done. Try again."


class Throttled(DomainError):
    kind = "throttled"
    code = "too_many_requests"
    message = "Too many requests; try again later."

    def __init__(self, retry_after: int, message: str | None = None, **kw: Any) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, **kw)
