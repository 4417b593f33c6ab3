"""The segments API through the api function's real handler (moto in-process)."""

from cohortcast.segments import backfill
from cohortcast.storage import segments as segment_store

from .conftest import NOW, profile, save

AT_RISK = {"last_seen": {"more_than_ago": "14d"}}


def _run_jobs(monkeypatch, sent):
    """Run queued segment jobs to completion, as the backfill function would."""
    from cohortcast.segments import jobs

    queue = list(sent)
    sent.clear()
    monkeypatch.setattr(jobs, "send_job", queue.append)
    monkeypatch.setattr(backfill, "PAGE_SIZE", 3)
    while queue:
        jobs.run_job(queue.pop(0), NOW)


def _capture_jobs(monkeypatch):
    from cohortcast.http.routes import segments as routes

    sent = []
    monkeypatch.setattr(routes, "send_job", sent.append)
    return sent


def test_create_dynamic_segment_returns_at_once_and_backfills(aws, api, monkeypatch):
    # Given three users, one of them not seen for 20 days
    save(profile("ann", last_seen_days=20))
    save(profile("bob", last_seen_days=1))
    save(profile("cid", last_seen_days=2))
    sent = _capture_jobs(monkeypatch)
    # When a segment is created
    status, created = api("POST", "/v1/segments", {"name": "At risk", "rule": AT_RISK})
    # Then the API answers 202 with a running job, before any profile was read
    assert status == 202, created
    assert created["backfill"]["state"] == "running"
    assert created["segment_id"].startswith("seg_")
    assert {m.job for m in sent} == {"backfill"} and len(sent) == backfill.PARTS
    # And when the jobs run, the backfill completes with the right members
    _run_jobs(monkeypatch, sent)
    status, shown = api("GET", f"/v1/segments/{created['segment_id']}")
    assert status == 200
    assert shown["backfill"]["state"] == "done"
    assert shown["backfill"]["processed"] == 3
    assert shown["size"] == 1
    status, page = api("GET", f"/v1/segments/{created['segment_id']}/members")
    assert [m["user_id"] for m in page["members"]] == ["ann"]


def test_unknown_op_is_422_with_pointer(api):
    status, body = api(
        "POST",
        "/v1/segments",
        {"name": "x", "rule": {"all": [{"trait": "plan", "op": "like", "value": "p"}]}},
    )
    assert status == 422
    assert body["error"]["code"] == "validation_error"
    assert any(d["pointer"].startswith("/rule/all/0") for d in body["error"]["details"]), body


def test_unknown_field_in_request_is_422(api):
    status, body = api("POST", "/v1/segments", {"name": "x", "rule": AT_RISK, "colour": "red"})
    assert status == 422
    assert body["error"]["details"][0]["pointer"] == "/colour"


def test_unknown_segment_is_404(api):
    status, body = api("GET", "/v1/segments/seg_nope")
    assert status == 404
    assert body["error"]["code"] == "segment_not_found"
    assert api("GET", "/v1/segments/seg_nope/members")[0] == 404
    assert api("DELETE", "/v1/segments/seg_nope")[0] == 404


def test_reference_to_unknown_segment_is_422(api, monkeypatch):
    _capture_jobs(monkeypatch)
    status, body = api("POST", "/v1/segments", {"name": "x", "rule": {"segment": "seg_missing"}})
    assert status == 422
    assert body["error"]["code"] == "unknown_segment"


def test_cycle_is_422_and_referenced_segment_cannot_be_deleted(api, monkeypatch):
    _capture_jobs(monkeypatch)
    _, a = api("POST", "/v1/segments", {"name": "a", "rule": AT_RISK})
    _, b = api("POST", "/v1/segments", {"name": "b", "rule": {"segment": a["segment_id"]}})
    # a -> b -> a would be a loop
    status, body = api("PUT", f"/v1/segments/{a['segment_id']}", {"rule": {"segment": b["segment_id"]}})
    assert status == 422
    assert body["error"]["code"] == "segment_cycle"
    assert a["segment_id"] in body["error"]["message"]
    status, body = api("DELETE", f"/v1/segments/{a['segment_id']}")
    assert status == 409
    assert body["error"]["details"]["referenced_by"] == [b["segment_id"]]


def test_template_segment_and_template_list(api, monkeypatch):
    _capture_jobs(monkeypatch)
    status, listed = api("GET", "/v1/segment-templates")
    assert status == 200
    ids = {t["template_id"] for t in listed["templates"]}
    assert len(ids) >= 10
    template_id = sorted(ids)[0]
    status, created = api("POST", "/v1/segments", {"template": template_id})
    assert status == 202, created
    assert created["template"] == template_id and created["rule"]
    status, body = api("POST", "/v1/segments", {"template": template_id, "overrides": {"nope": 1}})
    assert status == 422
    assert body["error"]["details"][0]["pointer"] == "/overrides/nope"


def test_static_segment_members_json_and_csv(api):
    status, created = api("POST", "/v1/segments", {"name": "Beta testers", "members": ["ann", "bob"]})
    assert status == 201, created
    sid = created["segment_id"]
    assert created["size"] == 2
    status, report = api("POST", f"/v1/segments/{sid}/members", {"add": ["cid"], "remove": ["ann"]})
    assert status == 200 and report["added"] == 1 and report["removed"] == 1
    csv_body = (
        "user_id,email\ndan,d@example.com\n,nobody@example.com\n" + "x" * 300 + ",long\nbob,b@example.com\n"
    )
    status, report = api("POST", f"/v1/segments/{sid}/members.csv", csv_body, content_type="text/csv")
    assert status == 200, report
    assert report["added"] == 1 and report["unchanged"] == 1
    assert [r["line"] for r in report["rejected"]] == [3, 4]
    assert segment_store.get_definition(sid).size == 3
    status, page = api("GET", f"/v1/segments/{sid}/members", query="limit=2")
    assert status == 200 and len(page["members"]) == 2 and page["next_cursor"]
    status, rest = api("GET", f"/v1/segments/{sid}/members", query=f"limit=2&cursor={page['next_cursor']}")
    users = {m["user_id"] for m in page["members"] + rest["members"]}
    assert users == {"bob", "cid", "dan"} and rest["next_cursor"] is None


def test_csv_with_only_bad_rows_is_422(api):
    _, created = api("POST", "/v1/segments", {"name": "s", "members": []})
    status, body = api(
        "POST", f"/v1/segments/{created['segment_id']}/members.csv", "a,b\n1,2\n", content_type="text/csv"
    )
    assert status == 422 and body["error"]["code"] == "invalid_csv"
    status, body = api(
        "POST",
        f"/v1/segments/{created['segment_id']}/members.csv",
        "user_id\n\n  ,\n",
        content_type="text/csv",
    )
    assert status == 200 and body["added"] == 0


def test_dynamic_segment_refuses_member_changes(api, monkeypatch):
    _capture_jobs(monkeypatch)
    _, created = api("POST", "/v1/segments", {"name": "d", "rule": AT_RISK})
    status, body = api("POST", f"/v1/segments/{created['segment_id']}/members", {"add": ["x"]})
    assert status == 409 and body["error"]["code"] == "segment_not_static"


def test_preview_counts_and_samples_without_saving(api):
    for i in range(25):
        save(profile(f"u{i:02}", traits={"plan": "pro" if i % 2 else "free"}))
    status, body = api(
        "POST", "/v1/segments/preview", {"rule": {"trait": "plan", "op": "eq", "value": "pro"}}
    )
    assert status == 200, body
    assert body == {"count": 12, "exact": True, "scanned": 25, "sample": body["sample"]}
    assert len(body["sample"]) == 12
    assert api("GET", "/v1/segments")[1]["segments"] == []


def test_explain_and_history(api, monkeypatch):
    save(profile("ann", last_seen_days=20))
    sent = _capture_jobs(monkeypatch)
    _, created = api("POST", "/v1/segments", {"name": "At risk", "rule": AT_RISK})
    _run_jobs(monkeypatch, sent)
    sid = created["segment_id"]
    status, explained = api("GET", f"/v1/segments/{sid}/explain/ann")
    assert status == 200, explained
    assert explained["member"] is True and explained["matches"] is True
    assert explained["rule"]["value"] is True and explained["rule"]["node"] == AT_RISK
    assert api("GET", f"/v1/segments/{sid}/explain/nobody")[0] == 404
    status, history = api("GET", f"/v1/segments/{sid}/history")
    assert status == 200
    assert [(t["user_id"], t["kind"], t["reason"]) for t in history["transitions"]] == [
        ("ann", "enter", "backfill")
    ]


def test_edit_rule_starts_new_backfill_and_moves_members(api, monkeypatch):
    save(profile("ann", last_seen_days=20))
    save(profile("bob", last_seen_days=40))
    sent = _capture_jobs(monkeypatch)
    _, created = api("POST", "/v1/segments", {"name": "At risk", "rule": AT_RISK})
    _run_jobs(monkeypatch, sent)
    sid = created["segment_id"]
    status, edited = api("PUT", f"/v1/segments/{sid}", {"rule": {"last_seen": {"more_than_ago": "30d"}}})
    assert status == 200 and edited["backfill"]["state"] == "running" and edited["version"] == 2
    _run_jobs(monkeypatch, sent)
    assert [m["user_id"] for m in api("GET", f"/v1/segments/{sid}/members")[1]["members"]] == ["bob"]
    kinds = [
        (t["user_id"], t["kind"], t["reason"])
        for t in api("GET", f"/v1/segments/{sid}/history")[1]["transitions"]
    ]
    assert ("ann", "exit", "rule_changed") in kinds
    assert api("GET", f"/v1/segments/{sid}")[1]["size"] == 1
    # a stale version is refused
    assert api("PUT", f"/v1/segments/{sid}", {"name": "x", "version": 1})[0] == 409


def test_delete_purges_members(api, monkeypatch):
    sent = _capture_jobs(monkeypatch)
    _, created = api("POST", "/v1/segments", {"name": "s", "members": ["ann"]})
    sid = created["segment_id"]
    assert api("DELETE", f"/v1/segments/{sid}")[0] == 200
    _run_jobs(monkeypatch, sent)
    assert segment_store.get_states(["U#ann"])["U#ann"].segments == set()
    assert segment_store.count_members(sid) == 0
    assert api("GET", f"/v1/segments/{sid}")[0] == 404


def test_every_seed_template_can_be_instantiated_as_a_segment(api, monkeypatch):
    # The templates' semantics are tested against hand-built users in tests/unit/segments;
    # here each one goes through the API and its backfill over a small population.
    save(profile("ann", traits={"plan": "enterprise"}, events={"login": {0: 3, 1: 2}, "api_call": {2: 1}}))
    save(profile("bob", first_seen_days=3, last_seen_days=1, events={"login": {1: 1}}))
    sent = _capture_jobs(monkeypatch)
    _, listed = api("GET", "/v1/segment-templates")
    for template in listed["templates"]:
        status, created = api("POST", "/v1/segments", {"template": template["template_id"]})
        assert status == 202, (template["template_id"], created)
        assert created["name"] == template["name"]
    _run_jobs(monkeypatch, sent)
    shown = api("GET", "/v1/segments")[1]["segments"]
    assert len(shown) == len(listed["templates"])
    assert all(s["backfill"]["state"] == "done" for s in shown)
    new_users = next(s for s in shown if s["template"] == "new_users")
    assert [
        m["user_id"] for m in api("GET", f"/v1/segments/{new_users['segment_id']}/members")[1]["members"]
    ] == ["bob"]
