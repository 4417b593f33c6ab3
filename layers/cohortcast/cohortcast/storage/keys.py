"""Every DynamoDB key format in one place (see docs/data-model.md)."""

PROFILE_SK = "PROFILE"
ALIAS_SK = "ALIAS"


# -- profiles table -------------------------------------------------------
def profile_pk(user_id: str | None = None, anonymous_id: str | None = None) -> str:
    """A known user's profile, or an anonymous visitor's until identified."""
    if user_id is not None:
        return f"U#{user_id}"
    if anonymous_id is not None:
        return f"A#{anonymous_id}"
    raise ValueError("a profile needs a userId or an anonymousId")


def profile_ids(pk: str) -> tuple[str | None, str | None]:
    """(user_id, anonymous_id) for a profile pk."""
    kind, _, ident = pk.partition("#")
    return (ident, None) if kind == "U" else (None, ident)


def alias_pk(source_pk: str) -> str:
    """Where a merged-away profile key (anonymous or previous user id) now points."""
    return f"AL#{source_pk}"


# -- events table ---------------------------------------------------------
def event_sk(sort_time: str, message_id: str) -> str:
    return f"{sort_time}#{message_id}"


# -- data table -----------------------------------------------------------
def api_key_pk(key_hash: str) -> str:
    return f"KEY#{key_hash}"


API_KEY_SK = "KEY"
