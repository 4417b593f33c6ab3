"""The in-app feed over its real routes: live targeting, read state, reactions, bad input."""

from datetime import timedelta

from cohortcast.storage import feed as feed_store
from tests.component.announcements.conftest import NOW


def test_a_user_sees_the_posts_targeted_to_their_segments_pinned_first_then_newest(
    feed, publish, segments, profiles, clock
):
    profiles({"ada": {"email": "ada@example.com"}, "bob": {"email": "bob@example.com"}})
    segments("seg_power", ["ada"])
    segments("seg_trial", ["bob"])
    older = publish({"title": "For power users", "audience": {"segments": ["seg_power"]}, "labels": ["New"]})
    clock.move_to(NOW + timedelta(minutes=1))
    publish({"title": "For trials", "audience": {"segments": ["seg_trial"]}})
    newer = publish({"title": "For everyone", "audience": {"everyone": True}})
    pinned = publish(
        {
            "title": "Pinned **news**",
            "audience": {"everyone": True},
            "pinned": True,
            "cta": {"label": "Go", "url": "https://x.test/a"},
        }
    )

    status, body, _ = feed("GET", "/v1/feed", user="ada")

    assert status == 200, body
    assert [item["id"] for item in body["items"]] == [pinned, newer, older]
    assert body["unread"] == 3 and body["next_cursor"] is None
    first = body["items"][0]
    assert first["pinned"] is True and first["cta"] == {"label": "Go", "url": "https://x.test/a"}
    assert first["read"] is False and first["reaction"] is None
    assert ">Hello</p>" in first["html"] and "<script" not in first["html"]
    assert body["items"][2]["labels"] == ["New"]


def test_targeting_is_live_a_user_who_joins_later_sees_the_post_and_one_who_leaves_stops(
    feed, publish, segments, profiles
):
    from cohortcast.storage import keys
    from cohortcast.storage import segments as segment_store

    profiles({"ada": {}, "cy": {}})
    segments("seg_power", ["ada"])
    post = publish({"title": "Power", "audience": {"segments": ["seg_power"]}})
    assert [i["id"] for i in feed("GET", "/v1/feed", user="cy")[1]["items"]] == []

    segments("seg_power", ["cy"])  # cy joins after the publish
    segment_store.update_state(
        keys.profile_pk(user_id="ada"), exited=["seg_power"], updated_at="x"
    )  # ada leaves

    assert [i["id"] for i in feed("GET", "/v1/feed", user="cy")[1]["items"]] == [post]
    assert feed("GET", "/v1/feed", user="ada")[1]["items"] == []
    assert feed("POST", f"/v1/feed/{post}/read", user="ada")[0] == 404


def test_an_excluded_user_and_a_post_past_visible_until_are_not_shown(
    feed, publish, segments, profiles, clock
):
    profiles({"ada": {}, "bob": {}})
    segments("seg_staff", ["bob"])
    publish({"title": "Not staff", "audience": {"everyone": True, "exclude_segments": ["seg_staff"]}})
    short = publish(
        {
            "title": "Short",
            "audience": {"everyone": True},
            "visible_until": (NOW + timedelta(hours=1)).isoformat(),
        }
    )

    assert [i["title"] for i in feed("GET", "/v1/feed", user="bob")[1]["items"]] == ["Short"]
    clock.move_to(NOW + timedelta(hours=2))
    assert [i["title"] for i in feed("GET", "/v1/feed", user="bob")[1]["items"]] == []
    assert [i["title"] for i in feed("GET", "/v1/feed", user="ada")[1]["items"]] == ["Not staff"]
    assert feed("POST", f"/v1/feed/{short}/read", user="ada")[0] == 404


def test_an_inline_rule_is_evaluated_on_the_profile_when_the_feed_opens(feed, publish, profiles):
    profiles({"ent": {"plan": "enterprise"}, "free": {"plan": "free"}})
    publish(
        {
            "title": "Enterprise only",
            "audience": {"rule": {"trait": "plan", "op": "eq", "value": "enterprise"}},
        }
    )

    assert [i["title"] for i in feed("GET", "/v1/feed", user="ent")[1]["items"]] == ["Enterprise only"]
    assert feed("GET", "/v1/feed", user="free")[1]["items"] == []


def test_reading_clears_the_badge_and_counts_once_per_user(feed, publish, profiles, api):
    profiles({"ada": {}})
    first = publish({"title": "One", "audience": {"everyone": True}})
    publish({"title": "Two", "audience": {"everyone": True}})
    assert feed("GET", "/v1/feed/unread", user="ada")[1] == {"unread": 2}

    assert feed("POST", f"/v1/feed/{first}/read", user="ada")[:2] == (200, {"read": True})
    assert feed("POST", f"/v1/feed/{first}/read", user="ada")[:2] == (200, {"read": True})  # again: no-op
    assert feed("GET", "/v1/feed/unread", user="ada")[1] == {"unread": 1}
    assert feed("POST", "/v1/feed/read-all", user="ada")[:2] == (200, {"read": 1})
    assert feed("GET", "/v1/feed/unread", user="ada")[1] == {"unread": 0}
    assert all(item["read"] for item in feed("GET", "/v1/feed", user="ada")[1]["items"])

    status, view = api("GET", f"/v1/announcements/{first}")
    assert status == 200
    assert view["in_app"]["read"] == 1 and view["in_app"]["seen"] == 1


def test_one_reaction_per_user_changeable_with_a_comment(feed, publish, profiles, api):
    profiles({"ada": {}, "bob": {}})
    post = publish({"title": "React", "audience": {"everyone": True}})

    assert feed("POST", f"/v1/feed/{post}/reaction", user="ada", body={"reaction": "up"})[:2] == (
        200,
        {"reaction": "up", "comment": None},
    )
    assert feed(
        "POST", f"/v1/feed/{post}/reaction", user="ada", body={"reaction": "love", "comment": "Nice!"}
    )[1] == {
        "reaction": "love",
        "comment": "Nice!",
    }
    feed("POST", f"/v1/feed/{post}/reaction", user="bob", body={"reaction": "down"})

    items = feed("GET", "/v1/feed", user="ada")[1]["items"]
    assert items[0]["reaction"] == "love"
    view = api("GET", f"/v1/announcements/{post}")[1]["in_app"]
    assert view["reactions"] == {"up": 0, "down": 1, "love": 1} and view["comments"] == 1
    status, page = api("GET", f"/v1/announcements/{post}/reactions")
    assert status == 200
    assert [(r["user_id"], r["reaction"], r["comment"]) for r in page["reactions"]] == [
        ("ada", "love", "Nice!"),
        ("bob", "down", None),
    ]


def test_a_wrong_hash_a_hash_for_another_user_or_no_key_is_401(feed, publish, profiles):
    profiles({"ada": {}})
    publish({"title": "Secret", "audience": {"everyone": True}})

    status, body, _ = feed("GET", "/v1/feed", user="ada", hash_for="bob")
    assert status == 401 and body["error"]["code"] == "invalid_user_hash"
    assert feed("GET", "/v1/feed/unread", user="ada", headers={"x-cohortcast-user-hash": "00" * 32})[0] == 401
    assert feed("GET", "/v1/feed", user="ada", key="wk_not_a_key")[0] == 401


def test_unknown_announcement_is_404_and_a_bad_reaction_is_422(feed, publish, profiles):
    profiles({"ada": {}})
    post = publish({"title": "x", "audience": {"everyone": True}})

    status, body, _ = feed("POST", "/v1/feed/ann_nope/read", user="ada")
    assert status == 404 and body["error"]["code"] == "announcement_not_found"
    assert feed("POST", f"/v1/feed/{post}/reaction", user="ada", body={"reaction": "meh"})[0] == 422
    assert (
        feed("POST", f"/v1/feed/{post}/reaction", user="ada", body={"reaction": "up", "comment": "x" * 1001})[
            0
        ]
        == 422
    )


def test_cors_headers_follow_the_workspace_allowed_origins(feed, api, profiles):
    profiles({"ada": {}})
    assert feed("GET", "/v1/feed/unread", user="ada")[2]["Access-Control-Allow-Origin"] == "*"
    assert api("PUT", "/v1/settings", {"allowed_origins": ["https://app.example.com"]})[0] == 200

    allowed = feed("GET", "/v1/feed/unread", user="ada", headers={"origin": "https://app.example.com"})[2]
    other = feed("GET", "/v1/feed/unread", user="ada", headers={"origin": "https://evil.example"})[2]
    assert allowed["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Origin" not in other


def test_the_feed_index_is_lean_and_published_once(publish, profiles):
    post = publish({"title": "Lean", "body": "x" * 5000, "audience": {"everyone": True}})
    (stored,) = [p for p in feed_store.all_posts() if p.announcement_id == post]
    assert stored.public is True and stored.published_at.startswith("2026-11-23")


def test_in_app_fields_are_validated_naming_the_field(api, segments):
    segments("seg_a", [])
    cases = [
        ({"labels": ["Nope"], "audience": {"everyone": True}}, "/labels/0"),
        ({"channels": ["email"], "labels": ["New"], "audience": {"everyone": True}}, "/labels"),
        ({"audience": {"everyone": True, "segments": ["seg_a"]}}, "/audience/segments"),
        (
            {"audience": {"everyone": True}, "visible_until": (NOW - timedelta(hours=1)).isoformat()},
            "/visible_until",
        ),
        ({"audience": {"everyone": True}, "email_if_unread_after": "48h"}, None),  # needs email too
        (
            {
                "audience": {"everyone": True},
                "channels": ["email", "in_app"],
                "email_if_unread_after": "soon",
            },
            None,
        ),
        ({"audience": {"everyone": True}, "image_url": "javascript:alert(1)"}, None),
    ]
    for extra, pointer in cases:
        status, body = api(
            "POST", "/v1/announcements", {"title": "t", "body": "b", "channels": ["in_app"], **extra}
        )
        assert status == 422, (extra, body)
        if pointer is not None:
            assert body["error"]["details"][0]["pointer"] == pointer, body


def test_workspace_labels_can_be_changed_and_are_then_accepted(api, feed, publish, profiles):
    assert api("PUT", "/v1/settings", {"labels": ["Beta", "New"]})[0] == 200
    profiles({"ada": {}})
    publish({"title": "Beta feature", "labels": ["Beta"], "audience": {"everyone": True}})
    assert feed("GET", "/v1/feed", user="ada")[1]["items"][0]["labels"] == ["Beta"]


def test_erasing_a_user_removes_their_feed_state_and_reactions(feed, publish, profiles, api):
    profiles({"ada": {}})
    post = publish({"title": "Bye", "audience": {"everyone": True}})
    feed("POST", f"/v1/feed/{post}/reaction", user="ada", body={"reaction": "up", "comment": "mine"})

    assert api("DELETE", "/v1/users/ada")[0] in (200, 202, 204)

    assert api("GET", f"/v1/announcements/{post}/reactions")[1]["reactions"] == []
    assert feed_store.read_user("ada", "U#ada")[1] == {}


def test_the_state_of_posts_gone_from_the_feed_is_dropped_from_the_users_item(feed, publish, profiles, clock):
    profiles({"ada": {}})
    short = publish(
        {
            "title": "Short",
            "audience": {"everyone": True},
            "visible_until": (NOW + timedelta(hours=1)).isoformat(),
        }
    )
    feed("GET", "/v1/feed", user="ada")
    assert set(feed_store.read_user("ada", "U#ada")[1]) == {short}

    clock.move_to(NOW + timedelta(hours=2))
    lasting = publish({"title": "Lasting", "audience": {"everyone": True}})
    feed("GET", "/v1/feed", user="ada")  # lists (and records seen for) the new post only
    assert set(feed_store.read_user("ada", "U#ada")[1]) == {lasting}
