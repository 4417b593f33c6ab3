"""A large CSV import over real HTTP: 202 at once, progress while the job runs, exact members."""

import time

ROWS = 3_000


def test_a_large_csv_import_answers_202_shows_progress_and_ends_with_exactly_its_members(stack):
    created = stack.admin.post("/v1/segments", json={"name": "Imported over HTTP", "members": []})
    assert created.status_code == 201, created.text
    segment_id = created.json()["segment_id"]
    body = "user_id\n" + "".join(f"csv-user-{i}\n" for i in range(ROWS)) + "\n" + "x" * 300 + "\n"

    response = stack.admin.post(
        f"/v1/segments/{segment_id}/members.csv", content=body, headers={"Content-Type": "text/csv"}
    )

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["members_import"]["state"] == "running"
    assert accepted["members_import"]["total"] == ROWS
    assert [r["line"] for r in accepted["rejected"]] == [ROWS + 3]
    seen_processed = []
    deadline = time.monotonic() + 120
    while True:
        shown = stack.admin.get(f"/v1/segments/{segment_id}").json()
        progress = shown["members_import"]
        seen_processed.append(progress["processed"])
        if progress["state"] == "done" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert progress["state"] == "done", progress
    assert seen_processed == sorted(seen_processed)  # progress only moves forward
    assert progress["added"] == progress["processed"] == shown["size"] == ROWS
    assert progress["rejected"] == 1
    members, cursor = [], None
    while True:
        page = stack.admin.get(
            f"/v1/segments/{segment_id}/members",
            params={"limit": 1000, **({"cursor": cursor} if cursor else {})},
        ).json()
        members += [m["user_id"] for m in page["members"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(members) == sorted(f"csv-user-{i}" for i in range(ROWS))
