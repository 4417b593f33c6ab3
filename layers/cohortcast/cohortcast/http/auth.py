"""Who is calling: parsed from headers by the authorizer, enforced by each function.

API Gateway HTTP APIs cannot give a Lambda authorizer's denial our JSON error body or
a 401, so the authorizer labels the caller (scope in its context) and the functions
answer 401/403 in the documented shape. See docs/architecture.md.
"""

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cohortcast.auth.keys import ApiKey, verify_key
from cohortcast.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Caller:
    scope: str  # "admin", "write" or "none"
    key_id: str = ""


ANONYMOUS = Caller(scope="none")


def key_from_authorization(header: str | None) -> str | None:
    """The key in `Basic base64(key:)` (Segment) or `Bearer key`, else None."""
    if not header:
        return None
    kind, _, credentials = header.strip().partition(" ")
    kind = kind.lower()
    if kind == "bearer":
        return credentials.strip() or None
    if kind == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def caller_from_key(plaintext: str | None) -> Caller:
    record: ApiKey | None = verify_key(plaintext) if plaintext else None
    return Caller(scope=record.scope, key_id=record.key_id) if record else ANONYMOUS


def authorize_request(headers: dict[str, str]) -> dict[str, Any]:
    """Simple-response authorizer result: the caller's scope travels in the context."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    caller = caller_from_key(key_from_authorization(lowered.get("authorization")))
    return {"isAuthorized": True, "context": {"scope": caller.scope, "keyId": caller.key_id}}


def caller_from_event(event: Any) -> Caller:
    """The caller the authorizer put into `requestContext.authorizer.lambda`."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    labels = context.get("lambda") or {}
    return Caller(scope=labels.get("scope", "none"), key_id=labels.get("keyId", ""))


def require_scope(caller: Caller, scope: str) -> None:
    if caller.scope == "none":
        raise Unauthorized("missing or unknown API key")
    if caller.scope != scope:
        raise Forbidden(
            f"this route needs a key with the {scope} scope; the key given has the {caller.scope} scope"
        )
