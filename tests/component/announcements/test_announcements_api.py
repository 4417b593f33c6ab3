"""POST/GET /v1/announcements and cancel, through the api function's real handler."""

from datetime import timedelta

import boto3
import pytest

from tests.component.announcements.conftest import NOW, publish_messages

BODY = "Hello {{ user.first_name | default('there') }},\n\n**New:** reports are faster."


def announcement(**overrides):
    return {"title": "Faster reports", "body": BODY, "audience": {"segments": ["seg_pro"]}, **overrides}


@pytest.fixture
def pro(segments):
    return segments("seg_pro", ["u1", "u2", "u3"])


def test_announcement_without_audience_is_rejected(api):
    status, body = api("POST", "/v1/announcements", {"title": "t", "body": "b"})
    assert status == 422
    assert body["error"]["code"] == "no_audience"


def test_unknown_segment_is_named(api, pro):
    status, body = api(
        "POST", "/v1/announcements", announcement(audience={"segments": ["seg_pro", "seg_nope"]})
    )
    assert status == 422
    assert body["error"]["code"] == "unknown_segment"
    assert "seg_nope" in body["error"]["message"]


def test_unknown_excluded_segment_is_named(api, pro):
    status, body = api(
        "POST",
        "/v1/announcements",
        announcement(audience={"segments": ["seg_pro"], "exclude_segments": ["seg_x"]}),
    )
    assert status == 422
    assert body["error"]["details"][0]["pointer"] == "/audience/exclude_segments"


def test_empty_body_is_rejected(api, pro):
    status, body = api("POST", "/v1/announcements", announcement(body="   "))
    assert status == 422
    assert body["error"]["details"][0]["pointer"] == "/body"


def test_template_syntax_error_names_the_line(api, pro):
    status, body = api("POST", "/v1/announcements", announcement(body="Hi\n\nthere {{ user.name \n"))
    assert status == 422
    assert "line" in body["error"]["message"]


def test_script_in_body_is_accepted_and_sanitized_at_render(api, pro):
    from cohortcast.announcements.render import compile_announcement

    status, _ = api("POST", "/v1/announcements", announcement(body="Hi <script>alert(1)</script> there"))
    assert status == 201
    rendered = compile_announcement("t", "Hi <script>alert(1)</script> there").render(
        {}, unsubscribe_url="https://x/u", preferences_url="https://x/p"
    )
    assert "<script" not in rendered.html


def test_send_at_in_the_past_is_rejected(api, pro):
    past = (NOW - timedelta(minutes=1)).isoformat()
    status, body = api("POST", "/v1/announcements", announcement(send_at=past))
    assert status == 422
    assert body["error"]["details"][0]["pointer"] == "/send_at"


def test_unknown_channel_is_rejected(api, pro):
    status, body = api("POST", "/v1/announcements", announcement(channels=["email", "fax"]))
    assert status == 422
    assert body["error"]["details"][0]["pointer"].startswith("/channels")


def test_invalid_inline_rule_points_into_the_rule(api):
    status, body = api(
        "POST", "/v1/announcements", announcement(audience={"rule": {"trait": "plan", "op": "nope"}})
    )
    assert status == 422
    assert body["error"]["details"][0]["pointer"].startswith("/audience/rule")


def test_immediate_announcement_queues_its_first_page(api, aws, pro):
    status, body = api("POST", "/v1/announcements", announcement())
    assert status == 201
    assert body["status"] == "publishing"
    assert publish_messages(aws) == [{"v": 1, "announcement_id": body["id"], "page": 0, "cursor": None}]


def test_same_idempotency_key_and_body_returns_the_same_announcement(api, aws, pro):
    headers = {"idempotency-key": "order-42"}
    first_status, first = api("POST", "/v1/announcements", announcement(), headers=headers)
    again_status, again = api("POST", "/v1/announcements", announcement(), headers=headers)
    assert (first_status, again_status) == (201, 201)
    assert again["id"] == first["id"]
    assert len(publish_messages(aws)) == 1
    _status, listed = api("GET", "/v1/announcements")
    assert [a["id"] for a in listed["announcements"]] == [first["id"]]


def test_same_idempotency_key_with_another_body_is_rejected(api, pro):
    headers = {"idempotency-key": "order-43"}
    api("POST", "/v1/announcements", announcement(), headers=headers)
    status, body = api("POST", "/v1/announcements", announcement(title="Other"), headers=headers)
    assert status == 422
    assert body["error"]["code"] == "idempotency_key_reused"


def test_dry_run_counts_audience_and_skip_reasons_without_saving(api, aws, segments, profiles):
    segments("seg_pro", ["u1", "u2", "u3"])
    segments("seg_trial", ["u3", "u4"])
    profiles(
        {
            "u1": {"email": "u1@example.com"},
            "u2": {},
            "u3": {"email": "u3@example.com", "phone": "+1 555 555 0123"},
            "u4": {"phone": "+1555"},  # not E.164: the deliverer would skip it as invalid too
        }
    )
    status, body = api(
        "POST",
        "/v1/announcements",
        announcement(audience={"segments": ["seg_pro", "seg_trial"]}, channels=["email", "sms"]),
        query="dry_run=true",
    )
    assert status == 200
    assert body["audience_size"] == 4
    assert body["by_segment"] == {"seg_pro": 3, "seg_trial": 1}
    assert body["channels"]["email"] == {"reachable": 2, "skipped": {"no_address": 2}, "deferred": {}}
    assert body["channels"]["sms"] == {
        "reachable": 1,
        "skipped": {"no_address": 2, "invalid_address": 1},
        "deferred": {},
    }
    assert publish_messages(aws) == []
    assert api("GET", "/v1/announcements")[1]["announcements"] == []


def test_dry_run_estimates_every_skip_reason_with_the_deliverers_policy(api, aws, segments, profiles):
    """The sample goes through the deliverer's own reads and policy: preferences, the
    suppression list, the frequency cap and quiet hours, not only missing addresses."""
    from cohortcast.delivery.email import email_hash
    from cohortcast.storage import delivery as delivery_store

    api(
        "PUT",
        "/v1/settings",
        {
            "default_timezone": "UTC",
            "quiet_hours": ["21:00", "08:00"],
            "frequency_cap": {"count": 2, "days": 7},
        },
    )
    people = {f"u{i}": {"email": f"u{i}@example.com"} for i in range(1, 8)}
    people["u6"].pop("email")
    people["u5"]["timezone"] = "Pacific/Auckland"  # 22:00 there: inside quiet hours
    segments("seg_pro", list(people))
    profiles(people)
    delivery_store.update_preferences(
        "u2", unsubscribed_all=True, topics_off_add=frozenset(), topics_off_remove=frozenset(), updated_at="x"
    )
    delivery_store.update_preferences(
        "u7",
        unsubscribed_all=None,
        topics_off_add=frozenset({"news"}),
        topics_off_remove=frozenset(),
        updated_at="x",
    )
    delivery_store.put_suppressions([{"email_hash": email_hash("u3@example.com"), "reason": "bounce"}])
    boto3.resource("dynamodb").Table(aws.name("DataTable")).update_item(
        Key=delivery_store.preferences_key("u4"),
        UpdateExpression="SET #a = :t, #b = :t",
        ExpressionAttributeNames={"#a": "send:ann_1", "#b": "send:ann_2"},
        ExpressionAttributeValues={":t": (NOW - timedelta(days=1)).isoformat()},
    )

    status, body = api(
        "POST",
        "/v1/announcements",
        announcement(topic="news", channels=["email", "sms"]),
        query="dry_run=true",
    )
    assert status == 200, body
    assert body["channels"]["email"] == {
        "reachable": 2,
        "skipped": {"unsubscribed": 2, "suppressed": 1, "frequency_cap": 1, "no_address": 1},
        "deferred": {"quiet_hours": 1},
    }
    assert body["channels"]["sms"]["skipped"] == {"no_address": 7}  # nobody has a phone number

    # with send_at the policy runs at that moment: at 03:00 UTC u1 waits for the end of the
    # quiet hours and u5 (16:00 in Auckland) does not
    send_at = (NOW + timedelta(hours=18)).isoformat()
    _status, later = api(
        "POST", "/v1/announcements", announcement(topic="news", send_at=send_at), query="dry_run=true"
    )
    assert later["channels"]["email"]["reachable"] == 2
    assert later["channels"]["email"]["deferred"] == {"quiet_hours": 1}


def test_scheduled_announcement_creates_a_one_time_schedule(api, aws, pro):
    send_at = NOW + timedelta(hours=2)
    status, body = api("POST", "/v1/announcements", announcement(send_at=send_at.isoformat()))
    assert status == 201
    assert body["status"] == "scheduled"
    scheduler = boto3.client("scheduler")
    schedule = scheduler.get_schedule(
        Name=f"announcement-{body['id']}", GroupName=aws.name("AnnouncementScheduleGroup")
    )
    assert schedule["ScheduleExpression"] == "at(2026-11-23T11:00:00)"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"].endswith(":function:PublishFunction")
    assert publish_messages(aws) == []


def test_cancel_deletes_the_schedule(api, aws, pro):
    _, body = api("POST", "/v1/announcements", announcement(send_at=(NOW + timedelta(hours=2)).isoformat()))
    status, cancelled = api("POST", f"/v1/announcements/{body['id']}/cancel")
    assert status == 200
    assert cancelled["status"] == "cancelled"
    schedules = boto3.client("scheduler").list_schedules()["Schedules"]
    assert schedules == []


def test_cancel_of_a_publishing_announcement_conflicts(api, pro):
    _, body = api("POST", "/v1/announcements", announcement())
    status, error = api("POST", f"/v1/announcements/{body['id']}/cancel")
    assert status == 409
    assert error["error"]["code"] == "not_cancellable"


def test_unknown_announcement_is_404(api):
    status, _body = api("GET", "/v1/announcements/ann_nope")
    assert status == 404


def test_list_is_newest_first_and_paged(api, pro, monkeypatch):
    from cohortcast.http.routes import announcements as routes

    ids = []
    for minute in range(3):
        monkeypatch.setattr(routes, "utcnow", lambda m=minute: NOW + timedelta(minutes=m))
        ids.append(api("POST", "/v1/announcements", announcement(title=f"n{minute}"))[1]["id"])
    _status, page = api("GET", "/v1/announcements", query="limit=2")
    assert [a["id"] for a in page["announcements"]] == [ids[2], ids[1]]
    _, rest = api("GET", "/v1/announcements", query=f"limit=2&cursor={page['next_cursor']}")
    assert [a["id"] for a in rest["announcements"]] == [ids[0]]


def test_local_time_announcement_publishes_now_and_shows_its_local_time(api, aws, pro):
    status, body = api("POST", "/v1/announcements", announcement(local_time="09:00"))
    assert status == 201, body
    assert (body["status"], body["local_time"], body["send_at"]) == ("publishing", "09:00", None)
    assert publish_messages(aws) == [{"v": 1, "announcement_id": body["id"], "page": 0, "cursor": None}]
    assert api("GET", f"/v1/announcements/{body['id']}")[1]["local_time"] == "09:00"


@pytest.mark.parametrize("local_time", ["9:00", "24:00", "09:60", "09:00:00", "nine", ""])
def test_local_time_must_be_hh_mm(api, pro, local_time):
    status, body = api("POST", "/v1/announcements", announcement(local_time=local_time))
    assert status == 422, body


def test_send_at_and_local_time_together_are_rejected(api, pro):
    send_at = (NOW + timedelta(hours=2)).isoformat()
    status, body = api("POST", "/v1/announcements", announcement(local_time="09:00", send_at=send_at))
    assert status == 422
    assert body["error"]["details"][0]["pointer"] == "/local_time"
