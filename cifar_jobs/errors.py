"""The service's refusals as exceptions: one class per kind of answer, each carrying the service's message.

Every error answer has one shape, `{"message": ..., "detail": ...}`; the message names what was wrong (the field
of a refused spec, the quota that was reached) and is what the exception says.
"""

from typing import Any

import httpx


class ServiceError(Exception):
    """An answer other than a success: `status` is its HTTP status, `message` the service's words."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.detail = status, message, detail


class Unauthorized(ServiceError):
    """401: no token, or one the service does not know (revoked, expired, mistyped)."""


class Forbidden(ServiceError):
    """403: the token is known but may not do this (another user's job, an admin's route)."""


class NotFound(ServiceError):
    """404: no such job, sweep, user or webhook (or one this token may not see)."""


class Conflict(ServiceError):
    """409: the request clashes with the thing's state (deleting a running job, a reused idempotency key)."""


class SpecRefused(ServiceError):
    """422: a refused request; `field` is where, e.g. `body.learning_rate` (None when the message has none)."""

    @property
    def field(self) -> str | None:
        head, sep, _ = self.message.partition(": ")
        return head if sep and " " not in head else None


class QuotaExceeded(ServiceError):
    """429: a quota or rate was reached; `retry_after` is the seconds the service asks to wait (None if it did not
    say)."""

    def __init__(self, status: int, message: str, detail: Any = None, retry_after: float | None = None) -> None:
        super().__init__(status, message, detail)
        self.retry_after = retry_after


class Unavailable(ServiceError):
    """503 (or 502, 504): the service, its database or a proxy in front of it cannot answer now; try again."""


_BY_STATUS: dict[int, type[ServiceError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: SpecRefused,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def error_of(response: httpx.Response) -> ServiceError:
    """The exception for an answer that is not a success (its body read)."""
    detail: Any = None
    try:
        body = response.json()
        message = (
            str(body.get("message") or body.get("detail") or response.text) if isinstance(body, dict) else response.text
        )
        detail = body.get("detail") if isinstance(body, dict) else body
    except ValueError:
        message = response.text or response.reason_phrase
    if response.status_code == 429:
        retry_after = response.headers.get("Retry-After")
        return QuotaExceeded(429, message, detail, float(retry_after) if _is_number(retry_after) else None)
    return _BY_STATUS.get(response.status_code, ServiceError)(response.status_code, message, detail)


def _is_number(text: str | None) -> bool:
    try:
        return text is not None and float(text) >= 0
    except ValueError:
        return False
