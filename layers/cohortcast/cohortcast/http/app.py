"""One resolver factory for every HTTP function: validation, OpenAPI, error shape, auth scope."""

from collections.abc import Callable

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from cohortcast.http.auth import caller_from_event, require_scope
from cohortcast.http.errors import register_error_handlers

API_TITLE = "cohortcast"
API_VERSION = "1.0.0"
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs"})


def build_resolver(*routers: Router, scope: str | None = None) -> APIGatewayHttpResolver:
    """A resolver with our routers; `scope` makes every non-public route require that key scope."""
    app = APIGatewayHttpResolver(enable_validation=True)
    register_error_handlers(app)
    if scope is not None:
        app.use(middlewares=[_scope_guard(scope)])
    for router in routers:
        app.include_router(router)
    return app


def _scope_guard(scope: str) -> Callable:
    def guard(app: APIGatewayHttpResolver, next_middleware: Callable) -> Response:
        if app.current_event.path not in PUBLIC_PATHS:
            require_scope(caller_from_event(app.current_event.raw_event), scope)
        return next_middleware(app)

    return guard
