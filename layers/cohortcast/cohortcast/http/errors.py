"""The one error-to-response mapping: every API error is `{"error": {"code", "message", "details"}}`
with the right status (the preferences pages, read by people, answer with HTML pages instead)."""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from cohortcast.errors import CohortcastError
from cohortcast.observability import logger


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(code, message, details),
    )


def error_result(exc: CohortcastError) -> dict[str, Any]:
    """The Lambda proxy result for an error raised before Powertools resolves the request."""
    return {
        "statusCode": exc.status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(error_body(exc.code, exc.message, exc.details)),
        "isBase64Encoded": False,
    }


def _validation_details(errors: list[dict]) -> list[dict]:
    """Pydantic errors as JSON pointers into the request, without echoing input values."""
    details = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            where, loc = loc[0], loc[1:]
        else:
            where = "body"
        details.append({"in": where, "pointer": "/" + "/".join(loc), "message": err.get("msg", "invalid")})
    return details


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(CohortcastError)
    def _domain_error(exc: CohortcastError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    def _validation_error(exc: RequestValidationError) -> Response:
        details = _validation_details(list(exc.errors()))
        first = details[0] if details else {"pointer": "/", "message": "invalid request"}
        message = f"{first.get('in', 'body')} {first['pointer']}: {first['message']}"
        return error_response(422, "validation_error", message, details)

    @app.not_found
    def _no_route(_exc: NotFoundError) -> Response:
        return error_response(404, "not_found", "no such route")

    @app.exception_handler(Exception)
    def _fault(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "internal error")
