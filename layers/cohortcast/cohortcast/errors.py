"""The one error hierarchy; `cohortcast.http.errors` maps it to the JSON error shape."""

from typing import Any


class CohortcastError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class BadRequest(CohortcastError):
    pass


class Unauthorized(CohortcastError):
    status = 401
    code = "unauthorized"


class Forbidden(CohortcastError):
    status = 403
    code = "forbidden"


class NotFound(CohortcastError):
    status = 404
    code = "not_found"


class Conflict(CohortcastError):
    status = 409
    code = "conflict"


class PayloadTooLarge(CohortcastError):
    status = 413
    code = "payload_too_large"


class Unprocessable(CohortcastError):
    status = 422
    code = "validation_error"
