"""One resolver factory for every HTTP function: validation, OpenAPI, error shape, auth scope."""

import re
from re import Match
from typing import Any
from urllib.parse import quote, unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.api_gateway import Router

from cohortcast.errors import CohortcastError, PayloadTooLarge
from cohortcast.http.auth import caller_from_event, require_scope
from cohortcast.http.errors import error_result, register_error_handlers

API_TITLE = "cohortcast"
API_VERSION = "1.0.0"
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs"})
# "{name}" or greedy "{name+}" in an API Gateway route key.
_ROUTE_PARAM = re.compile(r"\{([^}+]+)(\+?)\}")
# Management bodies are small JSON documents (the largest: a 5,000-member list or CSV).
MAX_MANAGEMENT_BODY_BYTES = 1024 * 1024


class GuardedResolver(APIGatewayHttpResolver):
    """Checks the key scope and the body size before Powertools parses or validates anything,
    so an unauthenticated or oversized request costs no parsing and learns nothing."""

    def __init__(self, scope: str | None, max_body_bytes: int | None) -> None:
        super().__init__(enable_validation=True)
        self._scope = scope
        self._max_body_bytes = max_body_bytes

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            self._guard(event)
        except CohortcastError as exc:
            return error_result(exc)
        return super().resolve(_with_routing_path(event), context)

    def _convert_matches_into_route_keys(self, match: Match) -> dict[str, str]:
        # The routing path carries each path parameter percent-encoded exactly once.
        return {name: unquote(value) for name, value in match.groupdict().items()}

    def _guard(self, event: dict[str, Any]) -> None:
        if self._scope is not None and event.get("rawPath") not in PUBLIC_PATHS:
            require_scope(caller_from_event(event), self._scope)
        body = event.get("body") or ""
        size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
        if self._max_body_bytes is not None and size > self._max_body_bytes:
            raise PayloadTooLarge(
                f"request body is {size} bytes; the limit is {self._max_body_bytes} bytes",
                {"limit_bytes": self._max_body_bytes},
            )


def _with_routing_path(event: dict[str, Any]) -> dict[str, Any]:
    """The event with a rawPath Powertools can route on, rebuilt from API Gateway's route match.

    An HTTP API delivers rawPath and pathParameters already URL-decoded, so a userId such as
    "a/b" or "a?b" would route wrongly (or not at all) from rawPath. API Gateway has already
    matched the route: put its decoded parameters back into the route key's path, each encoded
    once, so every `<param>` matches one segment and is decoded once, in
    _convert_matches_into_route_keys."""
    _method, _, template = str(event.get("routeKey") or "").partition(" ")
    parameters = event.get("pathParameters") or {}
    if not template.startswith("/") or not parameters:
        return event

    def encoded(found: Match[str]) -> str:
        name, greedy = found.groups()
        # A greedy {proxy+} spans segments: its slashes stay path separators.
        return quote(str(parameters.get(name, "")), safe="/" if greedy else "")

    path = _ROUTE_PARAM.sub(encoded, template)
    stage = (event.get("requestContext") or {}).get("stage")
    if stage and stage != "$default":
        path = f"/{stage}{path}"  # Powertools strips a named stage from rawPath
    return {**event, "rawPath": path}


def build_resolver(
    *routers: Router, scope: str | None = None, max_body_bytes: int | None = None
) -> APIGatewayHttpResolver:
    """A resolver with our routers; `scope` makes every non-public route require that key scope."""
    app = GuardedResolver(scope, max_body_bytes)
    register_error_handlers(app)
    for router in routers:
        app.include_router(router)
    return app
