import base64

import pytest

from cohortcast.delivery.tokens import TokenClaims, make_token, read_token
from cohortcast.errors import BadRequest

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32


def flip_byte(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_token_round_trips_user_and_topic():
    token = make_token(SECRET, "user-1", "product-news")
    assert read_token(SECRET, token) == TokenClaims("user-1", "product-news")


def test_token_without_topic_reads_back_none():
    assert read_token(SECRET, make_token(SECRET, "user-1", None)).topic is None


def test_non_ascii_ids_round_trip():
    assert read_token(SECRET, make_token(SECRET, "üser:é", "nouvelles")) == TokenClaims("üser:é", "nouvelles")


def test_token_is_url_safe():
    token = make_token(SECRET, "user/with+odd=chars?", "topic&x")
    assert token.replace("-", "").replace("_", "").isalnum()


def test_tampered_token_is_rejected():
    token = make_token(SECRET, "user-1", "news")
    for index in (0, 3, 8, -1):
        with pytest.raises(BadRequest, match="invalid or tampered token"):
            read_token(SECRET, flip_byte(token, index))


def test_token_for_user_a_never_reads_as_user_b():
    token_a = make_token(SECRET, "user-a", "news")
    forged = (
        base64.urlsafe_b64encode(
            base64.urlsafe_b64decode(token_a + "=" * (-len(token_a) % 4)).replace(b"user-a", b"user-b")
        )
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(BadRequest):
        read_token(SECRET, forged)
    assert read_token(SECRET, token_a).user_id == "user-a"


def test_truncated_token_is_rejected():
    token = make_token(SECRET, "user-1", "news")
    for cut in (1, 5, len(token) // 2, len(token) - 1):
        with pytest.raises(BadRequest):
            read_token(SECRET, token[:cut])


@pytest.mark.parametrize("garbage", ["", "not a token", "!!!!", "a" * 2000, "AAAA", "é"])
def test_garbage_is_rejected(garbage):
    with pytest.raises(BadRequest):
        read_token(SECRET, garbage)


def test_token_signed_with_another_secret_is_rejected():
    with pytest.raises(BadRequest):
        read_token(SECRET, make_token(OTHER_SECRET, "user-1", "news"))


def test_rotation_accepts_the_previous_secret():
    old_token = make_token(OTHER_SECRET, "user-1", "news")
    assert read_token([SECRET, OTHER_SECRET], old_token).user_id == "user-1"
    with pytest.raises(BadRequest):
        read_token([SECRET], old_token)


def test_token_carries_the_address_hash_for_a_link_replayed_after_erasure():
    token = make_token(SECRET, "user-1", "news", "ab" * 32)
    assert read_token(SECRET, token) == TokenClaims("user-1", "news", email_hash="ab" * 32)


def test_links_already_sent_without_the_address_hash_still_work():
    import hashlib
    import hmac

    payload = bytes([1]) + len(b"user-1").to_bytes(2, "big") + b"user-1" + (4).to_bytes(2, "big") + b"news"
    mac = hmac.new(SECRET, b"cohortcast/unsubscribe-token/v1\x00" + payload, hashlib.sha256).digest()
    version_1 = base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()
    assert read_token(SECRET, version_1) == TokenClaims("user-1", "news", email_hash=None)
