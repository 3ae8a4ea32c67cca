"""Errors of the triggers app, in the one API error shape (agentos.api.ApplicationError)."""

from __future__ import annotations

from rest_framework import status

from agentos.api import ApplicationError


class InvalidSignature(ApplicationError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "invalid_signature"


class RateLimited(ApplicationError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class InvalidSchedule(ApplicationError):
    code = "invalid_schedule"
