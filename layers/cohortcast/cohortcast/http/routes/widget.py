"""`GET /widget.js`: the embeddable in-app widget, one vanilla script (http/assets/widget.js)
that calls the feed API at its own origin. No key: the script is the same for everyone; the
write key and the user hash come from its `<script>` tag's data attributes.

Read once per container; answered gzipped when the browser accepts it, with a weak ETag (the
same for both encodings, `Vary: Accept-Encoding`) and 304 on a matching If-None-Match, and
cached for five minutes, so a new release reaches pages within minutes."""

import hashlib
from importlib.resources import files

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

router = Router()

WIDGET_SCRIPT = (files("cohortcast.http") / "assets" / "widget.js").read_text(encoding="utf-8")
WIDGET_ETAG = f'W/"{hashlib.sha256(WIDGET_SCRIPT.encode()).hexdigest()[:32]}"'
_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "ETag": WIDGET_ETAG,
    "Vary": "Accept-Encoding",
    "X-Content-Type-Options": "nosniff",
}


def _matches(if_none_match: str | None) -> bool:
    """If-None-Match names our ETag (weak comparison: a W/ prefix on either side is ignored)."""
    if not if_none_match:
        return False
    given = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in given or WIDGET_ETAG.removeprefix("W/") in given


@router.get("/widget.js", include_in_schema=False)
def widget_script():  # no return annotation: Powertools would try to model Response
    if _matches(router.current_event.get_header_value("If-None-Match")):
        return Response(status_code=304, headers={**_HEADERS}, body="")
    return Response(
        status_code=200,
        content_type="text/javascript; charset=utf-8",
        body=WIDGET_SCRIPT,
        headers={**_HEADERS},  # a copy: Powertools adds Content-Encoding to it
        compress=True,
    )
