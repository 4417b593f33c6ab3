"""GET /widget.js: the one script, small enough gzipped, cacheable (ETag, 304) and compressed
for browsers that accept gzip; it names no host to call (the API is its own origin)."""

import base64
import gzip
import re

import pytest

from cohortcast.http.app import build_resolver
from cohortcast.http.routes import widget

MAX_GZIPPED_BYTES = 15 * 1024
SVG_NAMESPACE = "http://www.w3.org/2000/svg"

app = build_resolver(widget.router)


def _get(headers: dict[str, str]) -> dict:
    event = {
        "version": "2.0",
        "routeKey": "GET /widget.js",
        "rawPath": "/widget.js",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "GET", "path": "/widget.js"}, "stage": "$default"},
        "isBase64Encoded": False,
    }
    return app.resolve(event, None)


def test_the_script_is_at_most_15_kb_gzipped():
    size = len(gzip.compress(widget.WIDGET_SCRIPT.encode(), compresslevel=9))
    assert 1024 < size <= MAX_GZIPPED_BYTES, f"widget.js is {size} bytes gzipped"


def test_the_script_names_no_host_but_the_svg_namespace():
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", widget.WIDGET_SCRIPT))
    assert urls <= {SVG_NAMESPACE}  # a namespace, not a request


def test_widget_js_is_javascript_cached_five_minutes_with_an_etag():
    response = _get({})
    headers = response["headers"]
    assert response["statusCode"] == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["ETag"] == widget.WIDGET_ETAG and headers["ETag"].startswith('W/"')
    assert "Content-Encoding" not in headers
    assert response["body"] == widget.WIDGET_SCRIPT
    assert "window.cohortcast" in response["body"]


def test_a_browser_that_accepts_gzip_gets_the_same_script_gzipped():
    response = _get({"accept-encoding": "gzip, deflate, br"})
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is True
    assert response["headers"]["Content-Encoding"] == "gzip"
    assert response["headers"]["Vary"] == "Accept-Encoding"
    assert gzip.decompress(base64.b64decode(response["body"])).decode() == widget.WIDGET_SCRIPT
    assert "Content-Encoding" not in _get({})["headers"]  # the shared headers were not changed


@pytest.mark.parametrize(
    "if_none_match",
    [widget.WIDGET_ETAG, widget.WIDGET_ETAG.removeprefix("W/"), f'"other", {widget.WIDGET_ETAG}', "*"],
)
def test_a_matching_if_none_match_is_304_without_a_body(if_none_match):
    response = _get({"if-none-match": if_none_match, "accept-encoding": "gzip"})
    assert response["statusCode"] == 304
    assert response["body"] in ("", None)
    assert response["headers"]["ETag"] == widget.WIDGET_ETAG
    assert response["headers"]["Cache-Control"] == "public, max-age=300"


def test_another_etag_gets_the_script():
    response = _get({"if-none-match": 'W/"an-older-release"'})
    assert response["statusCode"] == 200 and response["body"] == widget.WIDGET_SCRIPT
