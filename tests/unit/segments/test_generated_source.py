"""The compiled rule's generated function never contains text from the rule (no injection)."""

import re
from datetime import UTC, datetime

from cohortcast.profiles.model import ProfileView
from cohortcast.segments.engine import compile_rule
from cohortcast.segments.rules import parse_rule

HOSTILE = "x') or __import__('os').system('echo pwned') or ('"
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
# Python keywords and the generator's own fixed names; rule text would show up as anything else.
VOCABULARY = {
    *("def", "return", "if", "else", "for", "in", "is", "not", "and", "or", "break", "continue"),
    *("True", "False", "None", "type", "dict", "str", "int", "float"),
    *("matches", "profile", "now", "state", "refresh", "b", "traits", "get", "items"),
    *("hourly", "counters", "segments", "first_seen", "last_seen"),
    *("days", "start", "total", "least", "day", "count", "n"),
}


def test_rule_text_is_passed_by_name_never_pasted_into_the_generated_source():
    rule = parse_rule(
        {
            "any": [
                {"trait": HOSTILE, "op": "eq", "value": HOSTILE},
                {"trait": "plan", "op": "eq", "value": HOSTILE},
                {"trait": f"company.{HOSTILE}", "op": "in", "value": [HOSTILE, "ok"]},
                {"event": HOSTILE, "count": {"gte": 1}, "within": "7d"},
                {
                    "event": "e",
                    "where": {"property": HOSTILE, "op": "eq", "value": HOSTILE},
                    "count": {"gte": 1},
                    "within": "7d",
                },
                {"segment": HOSTILE},
            ]
        }
    )
    compiled = compile_rule(rule, segment_rule=lambda _: None)

    assert "__import__" not in compiled.source and "pwned" not in compiled.source
    # Only names the compiler makes: constants _kN, locals _vN, and a fixed vocabulary.
    identifiers = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", compiled.source))
    made = {i for i in identifiers if re.fullmatch(r"_[kv]\d+", i)}
    assert identifiers - made <= VOCABULARY, identifiers - made - VOCABULARY
    # And the hostile values are still compared as plain data.
    user = ProfileView(user_id="u1", traits={"plan": HOSTILE})
    assert compiled.matches(user, NOW) is True
    assert compiled.matches(ProfileView(user_id="u2", traits={}), NOW) is False
