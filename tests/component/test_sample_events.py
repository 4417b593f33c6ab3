"""Every sample HTTP event in events/http runs through its real handler without a server error."""

import importlib
import json
from pathlib import Path

import pytest

SAMPLES = sorted((Path(__file__).parents[2] / "events" / "http").glob("*.json"))
HANDLERS = {
    "ingest": "functions.ingest.app",
    "api": "functions.api.app",
    "authorizer": "functions.authorizer.app",
}


def _handler(sample: Path):
    return importlib.import_module(HANDLERS[sample.stem.split("_")[0]]).lambda_handler


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.stem for s in SAMPLES])
def test_sample_event_is_handled(aws, lambda_context, sample):
    # Given the ingest samples have been stored (so the user samples find a user)
    ingest = _handler(Path("ingest_batch.json"))
    for name in ("ingest_identify", "ingest_track"):
        ingest(json.loads((sample.parent / f"{name}.json").read_text()), lambda_context)
    event = json.loads(sample.read_text())
    result = _handler(sample)(event, lambda_context)
    if sample.stem == "authorizer_request":
        assert result["isAuthorized"] is True and result["context"]["scope"] == "none"  # key unknown here
    else:
        assert result["statusCode"] == 200, result["body"]
