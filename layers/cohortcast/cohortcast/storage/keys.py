"""Every DynamoDB key format in one place (see docs/data-model.md)."""

import zlib

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


# -- data table: segments (see docs/data-model.md, "Segments") -----------
SEGMENTS_PK = "SEGMENTS"
MEMBER_SHARDS = 16  # membership items of one segment spread over this many partitions
SWEEP_SHARDS = 16  # DueIndex partitions of users whose memberships can change with time
MEMBERSHIP_STATE_SK = "STATE"


def shard_of(profile_pk: str, shards: int) -> int:
    """A stable shard number for a profile (not Python's salted hash())."""
    value = 0
    for byte in profile_pk.encode():
        value = (value * 31 + byte) & 0xFFFFFFFF
    return value % shards


def segment_member_pk(segment_id: str, shard: int) -> str:
    return f"SEG#{segment_id}#M#{shard}"


def segment_transitions_pk(segment_id: str) -> str:
    return f"SEG#{segment_id}#T"


def segment_transition_sk(at: str, kind: str, profile_pk: str) -> str:
    # The kind is part of the key: one batch can make a user enter and exit at the same `now`.
    return f"{at}#{kind}#{profile_pk}"


def parse_segment_transition_sk(sk: str) -> tuple[str, str, str]:
    """(at, kind, profile_pk) of a transition's sort key."""
    at, kind, profile_pk = sk.split("#", 2)
    return at, kind, profile_pk


def segment_import_pk(segment_id: str, job_id: str) -> str:
    """The chunks of user ids of one CSV import job, kept until the job is done."""
    return f"SEG#{segment_id}#IMPORT#{job_id}"


def segment_size_pk(segment_id: str) -> str:
    return f"SEG#{segment_id}#SIZE"


def membership_state_pk(profile_pk: str) -> str:
    return f"MEMBERSHIP#{profile_pk}"


def profile_pk_of_membership_state(pk: str) -> str:
    return pk.removeprefix("MEMBERSHIP#")


# A pointer to each transition naming a user, in that user's MEMBERSHIP# partition: erasure
# finds them all with one Query instead of reading every segment's whole history.
TRANSITION_POINTER_PREFIX = "T#"


def transition_pointer_sk(segment_id: str, transition_sk: str) -> str:
    return f"{TRANSITION_POINTER_PREFIX}{segment_id}#{transition_sk}"


def sweep_due_pk(shard: int) -> str:
    return f"SWEEP#{shard}"


# -- data table: workspace settings and announcements (docs/data-model.md) --
SETTINGS_PK = "SETTINGS"
WORKSPACE_SK = "WORKSPACE"
ANNOUNCEMENTS_PK = "ANNOUNCEMENTS"  # one item per announcement; sk = id (ULID: newest sorts last)
COUNTS_TOTAL_SK = "COUNTS#TOTAL"


def announcement_sk(announcement_id: str) -> str:
    return announcement_id


def announcement_pk(announcement_id: str) -> str:
    """The announcement's own partition: its counters (total and per segment)."""
    return f"ANN#{announcement_id}"


def counts_segment_sk(segment_id: str) -> str:
    return f"COUNTS#SEG#{segment_id}"


def publish_page_pk(announcement_id: str) -> str:
    """The publish plan: one item per audience page, written once (planned counted once)."""
    return f"ANN#{announcement_id}#PAGES"


def publish_page_sk(page: int) -> str:
    return f"{page:08d}"


# DueIndex partition of announcements in `publishing`, due when they should have progressed
# (few at a time: one partition).
PUBLISH_DUE_PK = "PUBLISH#0"


# -- data table: delivery (see docs/data-model.md, "Announcements and delivery") --
PREFERENCES_SK = "PREFS"  # a user's preferences/contact item, next to their ledger records
SUPPRESSION_SK = "SUPPRESSION"
SETTLE_SHARDS = 4  # DueIndex partitions of deliveries in doubt or deferred


# -- the in-app feed ------------------------------------------------------------------------------
FEED_POSTS_PK = "FEED"  # one lean item per published in-app announcement (sk = its id)
FEED_STATE_SK = "FEED"  # a user's seen/read/reaction of every post, in their DLV# partition
REACTION_PREFIX = "REACTION#"  # a user's reaction and comment, in the announcement's ANN# partition


def reaction_sk(user_id: str) -> str:
    return f"{REACTION_PREFIX}{user_id}"


def reaction_key(announcement_id: str, user_id: str) -> dict[str, str]:
    return {"pk": announcement_pk(announcement_id), "sk": reaction_sk(user_id)}


def is_delivery_record_sk(sk: str) -> bool:
    """A ledger record, not the preferences item nor a feed state item of the same partition."""
    return sk not in (PREFERENCES_SK, FEED_STATE_SK)


def user_id_of_delivery_pk(pk: str) -> str:
    return pk.removeprefix("DLV#")


def delivery_pk(user_id: str) -> str:
    """All of one user's delivery records (and preferences) share a partition: erasure and the
    frequency cap find them with one query; announcement ids are ULIDs, so sks sort by time."""
    return f"DLV#{user_id}"


def delivery_sk(announcement_id: str, channel: str) -> str:
    return f"{announcement_id}#{channel}"


def suppression_pk(email_hash: str) -> str:
    return f"SUP#{email_hash}"


def settle_due_pk(user_id: str) -> str:
    return f"SETTLE#{_stable_hash(user_id) % SETTLE_SHARDS}"


def settle_due_pks() -> list[str]:
    return [f"SETTLE#{shard}" for shard in range(SETTLE_SHARDS)]


def _stable_hash(value: str) -> int:
    # not Python's salted hash(): the shard must not change between processes
    return zlib.crc32(value.encode())
