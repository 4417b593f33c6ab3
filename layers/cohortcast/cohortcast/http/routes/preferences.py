"""Preferences routes: `GET /u/{token}` (the page) and `POST /u/{token}` (RFC 8058 one-click or the form).

Public (no API key): the HMAC-signed token is the credential. Answers are HTML, never JSON,
errors included: a person reads every answer of these routes in a browser.
"""

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from cohortcast.clock import utcnow
from cohortcast.errors import CohortcastError
from cohortcast.observability import logger
from cohortcast.preferences import service as preferences
from cohortcast.preferences.page import render_error_page

router = Router()
_HTML = "text/html; charset=utf-8"
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _html(status: int, body: str) -> Response:
    return Response(status_code=status, content_type=_HTML, body=body, headers=_HEADERS)


@router.get("/u/<token>", include_in_schema=False)
def show(token: str):  # no return annotation: Powertools would try to model Response
    return _html(200, preferences.preferences_page(token, form_action=f"/u/{token}"))


@router.post("/u/<token>", include_in_schema=False)
def submit(token: str):
    event = router.current_event
    outcome = preferences.post(
        token,
        event.decoded_body or "",
        event.headers.get("content-type"),
        form_action=f"/u/{token}",
        now=utcnow(),
    )
    if outcome.one_click:
        return Response(
            status_code=200, content_type=content_types.TEXT_PLAIN, body="unsubscribed", headers=_HEADERS
        )
    return _html(200, outcome.page or "")


def register_html_error_handlers(app: APIGatewayHttpResolver) -> None:
    """Replace the JSON error answers with pages for this router's resolver."""

    @app.exception_handler(CohortcastError)
    def _refused(exc: CohortcastError) -> Response:
        return _html(exc.status, render_error_page(exc.message))

    @app.exception_handler(Exception)
    def _fault(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return _html(500, render_error_page("Something went wrong on our side. Please try again later."))
