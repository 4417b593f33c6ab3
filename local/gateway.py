"""An HTTP server that behaves like the template's API Gateway HTTP API (payload v2.0).

Each request runs the route's Lambda authorizer and then the route's real `lambda_handler`
with the event API Gateway would send, so handlers' decorators and auth run as deployed.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.runtime import LocalFunction
from local.template import ACCOUNT_ID, API_ID, REGION, FunctionSpec, resources_of

log = logging.getLogger("local.gateway")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API request limit
_API_TYPES = ("AWS::Serverless::HttpApi",)


@dataclass(frozen=True)
class Authorizer:
    name: str
    function_id: str
    simple_responses: bool
    identity_headers: tuple[str, ...] = ()
    identity_query: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    method: str  # "ANY" or an HTTP method
    path: str  # "/v1/users/{userId}"
    function_id: str
    authorizer: Authorizer | None
    pattern: re.Pattern[str] = field(compare=False)

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def rank(self) -> tuple[int, int, int, int]:
        # API Gateway prefers exact paths over {params}, {params} over {proxy+}, a method over ANY.
        greedy = self.path.count("+}")
        params = self.path.count("{")
        return (greedy, params, -self.path.count("/"), self.method == "ANY")


def _path_pattern(path: str) -> re.Pattern[str]:
    regex = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"(?P<{_group(part[1:-2])}>.+)"
        elif part.startswith("{"):
            regex += f"(?P<{_group(part[1:-1])}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(f"^{regex}$")


def _group(name: str) -> str:
    # Regex group names must be identifiers; the original name is restored from the route.
    return "p_" + re.sub(r"\W", "_", name)


def _param_names(path: str) -> dict[str, str]:
    return {_group(n.rstrip("+")): n.rstrip("+") for n in re.findall(r"\{([^}]+)\}", path)}


def _authorizers(template: dict[str, Any]) -> dict[str, tuple[Authorizer | None, dict[str, Authorizer]]]:
    """Per HttpApi logical id: (default authorizer, all authorizers by name)."""
    apis: dict[str, tuple[Authorizer | None, dict[str, Authorizer]]] = {}
    for api_id, resource in resources_of(template, *_API_TYPES).items():
        auth = (resource.get("Properties") or {}).get("Auth") or {}
        named: dict[str, Authorizer] = {}
        for name, spec in (auth.get("Authorizers") or {}).items():
            target = spec.get("FunctionArn") or {}
            attribute = target.get("Fn::GetAtt") if isinstance(target, dict) else None
            if not attribute:
                log.warning("authorizer %s has no !GetAtt <Function>.Arn; not emulated", name)
                continue
            function_id = attribute.split(".")[0] if isinstance(attribute, str) else attribute[0]
            identity = spec.get("Identity") or {}
            named[name] = Authorizer(
                name=name,
                function_id=function_id,
                simple_responses=bool(spec.get("EnableSimpleResponses")),
                identity_headers=tuple(h.lower() for h in identity.get("Headers") or ()),
                identity_query=tuple(identity.get("QueryStrings") or ()),
            )
        apis[api_id] = (named.get(auth.get("DefaultAuthorizer", "")), named)
    return apis


def routes(template: dict[str, Any], specs: list[FunctionSpec]) -> list[Route]:
    apis = _authorizers(template)
    implicit = next(iter(apis.values()), (None, {}))
    table: list[Route] = []
    for spec in specs:
        for event in spec.events_of("HttpApi").values():
            props = event.get("Properties") or {}
            api_ref = props.get("ApiId")
            default, named = apis.get(api_ref.get("Ref"), implicit) if isinstance(api_ref, dict) else implicit
            chosen = (props.get("Auth") or {}).get("Authorizer")
            authorizer = None if chosen == "NONE" else named.get(chosen, default) if chosen else default
            path = props.get("Path", "/{proxy+}")
            table.append(
                Route(
                    method=str(props.get("Method", "ANY")).upper(),
                    path=path,
                    function_id=spec.logical_id,
                    authorizer=authorizer,
                    pattern=_path_pattern(path),
                )
            )
    return sorted(table, key=lambda r: r.rank)


def match(table: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for a still-encoded request path, and its path parameters URL-decoded.

    Like API Gateway, an encoded "/" ("%2F") stays inside its {param}; a greedy {proxy+}
    is decoded whole, so there "/" and "%2F" look the same."""
    for route in table:
        if route.method not in ("ANY", method):
            continue
        found = route.pattern.match(path)
        if found:
            names = _param_names(route.path)
            return route, {names[k]: unquote(v) for k, v in found.groupdict().items()}
    return None


# ------------------------------------------------------------------ events


@dataclass
class Request:
    method: str
    raw_path: str  # as sent, still percent-encoded
    raw_query: str
    headers: dict[str, str]  # lowercase names, repeats comma-joined
    body: bytes
    source_ip: str

    @property
    def decoded_path(self) -> str:
        # An HTTP API hands Lambda rawPath (and requestContext.http.path) URL-decoded.
        return unquote(self.raw_path)

    @property
    def cookies(self) -> list[str]:
        cookie = self.headers.get("cookie", "")
        return [c.strip() for c in cookie.split(";") if c.strip()]


def _query_parameters(raw_query: str) -> dict[str, str]:
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        values.setdefault(key, []).append(value)
    return {key: ",".join(items) for key, items in values.items()}


def _request_context(request: Request, route_key: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": request.headers.get("host", "127.0.0.1"),
        "domainPrefix": request.headers.get("host", "127.0.0.1").split(".")[0],
        "http": {
            "method": request.method,
            "path": request.decoded_path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.source_ip,
            "userAgent": request.headers.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }


def _body(request: Request) -> tuple[str | None, bool]:
    if not request.body:
        return None, False
    # API Gateway base64-encodes bodies it cannot pass as text: binary or content-encoded.
    if request.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        return base64.b64encode(request.body).decode(), True
    try:
        return request.body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(request.body).decode(), True


def _headers_for_lambda(request: Request) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k != "cookie"}
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    headers.setdefault("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}")
    return headers


def route_event(request: Request, route: Route, path_parameters: dict[str, str]) -> dict[str, Any]:
    body, is_base64 = _body(request)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.decoded_path,
        "rawQueryString": request.raw_query,
        "headers": _headers_for_lambda(request),
        "requestContext": _request_context(request, route.route_key),
        "isBase64Encoded": is_base64,
    }
    if request.cookies:
        event["cookies"] = request.cookies
    if request.raw_query:
        event["queryStringParameters"] = _query_parameters(request.raw_query)
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body is not None:
        event["body"] = body
    return event


def authorizer_event(
    request: Request, route: Route, path_parameters: dict[str, str], identity: list[str]
) -> dict[str, Any]:
    """The REQUEST authorizer event, payload 2.0. API Gateway never sends the body to it."""
    event = route_event(request, route, path_parameters)
    event.pop("body", None)
    event.pop("isBase64Encoded", None)
    event.pop("version", None)
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/$default/{request.method}"
        f"{request.decoded_path}",
        "identitySource": identity or None,
        **event,
    }


# ------------------------------------------------------------------ responses


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status, {"content-type": "application/json", **(headers or {})}, json.dumps(payload).encode()
    )


def _from_lambda(result: Any) -> Response:
    """Payload v2.0 response mapping, including API Gateway's guess for non-envelope results."""
    if isinstance(result, dict) and "statusCode" in result:
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        headers.update(
            {k.lower(): ",".join(map(str, v)) for k, v in (result.get("multiValueHeaders") or {}).items()}
        )
        return Response(int(result["statusCode"]), headers, body, list(result.get("cookies") or []))
    if isinstance(result, str):
        return Response(200, {"content-type": "application/json"}, result.encode())
    return json_response(200, result)


INTERNAL_ERROR = {"message": "Internal Server Error"}


class Gateway:
    """Turns a parsed request into a Response; the HTTP server below only moves bytes."""

    def __init__(
        self,
        table: list[Route],
        functions: dict[str, LocalFunction],
        local_routes: Callable[[Request], Response | None] | None = None,
    ) -> None:
        self.table = table
        self.functions = functions
        self.local_routes = local_routes

    def handle(self, request: Request) -> Response:
        if request.raw_path.startswith("/_local/") and self.local_routes:
            local = self.local_routes(request)
            if local is not None:
                return local
        found = match(self.table, request.method, request.raw_path)
        if found is None:
            return json_response(404, {"message": "Not Found"})
        route, path_parameters = found
        event = route_event(request, route, path_parameters)
        if route.authorizer:
            denied = self._authorize(request, route, path_parameters, event)
            if denied:
                return denied
        try:
            return _from_lambda(self.functions[route.function_id].invoke(event))
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return json_response(500, INTERNAL_ERROR)

    def _authorize(
        self, request: Request, route: Route, path_parameters: dict[str, str], event: dict[str, Any]
    ) -> Response | None:
        authorizer = route.authorizer
        assert authorizer is not None
        query = _query_parameters(request.raw_query)
        identity = [request.headers.get(h) for h in authorizer.identity_headers]
        identity += [query.get(q) for q in authorizer.identity_query]
        if any(value is None for value in identity):
            # A configured identity source that is missing: API Gateway answers without calling the function.
            return json_response(401, {"message": "Unauthorized"})
        try:
            result = self.functions[authorizer.function_id].invoke(
                authorizer_event(request, route, path_parameters, [v for v in identity if v is not None])
            )
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return json_response(500, INTERNAL_ERROR)
        allowed, context = _authorizer_decision(result, authorizer.simple_responses)
        if allowed is None:
            print(f"authorizer {authorizer.name} returned an invalid response: {result!r}", file=sys.stderr)
            return json_response(500, INTERNAL_ERROR)
        if not allowed:
            return json_response(403, {"message": "Forbidden"})
        event["requestContext"]["authorizer"] = {"lambda": context}
        return None


def _authorizer_decision(result: Any, simple: bool) -> tuple[bool | None, dict[str, Any]]:
    if not isinstance(result, dict):
        return None, {}
    if simple and "isAuthorized" in result:
        return bool(result["isAuthorized"]), result.get("context") or {}
    statements = ((result.get("policyDocument") or {}).get("Statement")) or []
    if not statements:
        return None, {}
    allowed = all(s.get("Effect") == "Allow" for s in statements)
    return allowed, result.get("context") or {}


# ------------------------------------------------------------------ HTTP server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like API Gateway
    gateway: Gateway  # set on the subclass made by serve()

    def _dispatch(self) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        length = int(headers.get("content-length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            response = json_response(413, {"message": "Request Entity Too Large"})
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            request = Request(
                self.command, split.path or "/", split.query, headers, body, self.client_address[0]
            )
            try:
                response = self.gateway.handle(request)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                response = json_response(500, INTERNAL_ERROR)
        self._write(response)
        elapsed = (time.perf_counter() - started) * 1000
        print(f"{self.command} {self.path} {response.status} {elapsed:.0f}ms", file=sys.stderr, flush=True)

    def _write(self, response: Response) -> None:
        self.send_response_only(response.status)
        self.send_header("Date", self.date_time_string())
        for name, value in response.headers.items():
            if name not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        for cookie in response.cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(response.body)))
        self.send_header("apigw-requestid", uuid.uuid4().hex[:16])
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is printed by _dispatch


def serve(gateway: Gateway, host: str, port: int) -> ThreadingHTTPServer:
    """A started-on-demand server; call serve_forever() in a thread and shutdown() to stop."""
    handler = type("GatewayHandler", (_Handler,), {"gateway": gateway})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
