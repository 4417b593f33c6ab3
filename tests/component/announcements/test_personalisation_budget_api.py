"""POST /v1/announcements rejects a personalisation that is over its budget for everyone."""

import pytest


@pytest.fixture
def pro(segments):
    return segments("seg_pro", ["u1"])


@pytest.mark.parametrize(
    "body",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "Hello {{ 'a' * 200000000 }}",
    ],
    ids=["nested-loops", "string-repeat"],
)
def test_a_body_over_the_personalisation_budget_is_a_422_naming_the_budget(api, pro, body):
    status, answer = api(
        "POST", "/v1/announcements", {"title": "T", "body": body, "audience": {"segments": ["seg_pro"]}}
    )
    assert status == 422
    assert answer["error"]["code"] == "personalisation_budget"
    assert answer["error"]["details"][0]["pointer"] == "/body"
    assert "budget" in answer["error"]["message"]
