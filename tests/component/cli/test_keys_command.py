"""`cohortcast keys create`: the key is printed once, stored hashed, and verifies with its scope."""

from cohortcast.auth.keys import hash_key, verify_key
from cohortcast.storage import aws as storage
from cohortcast_cli.main import main


def test_keys_create_prints_a_key_that_verifies_and_stores_only_its_hash(aws, capsys):
    table = aws.name("DataTable")
    assert main(["keys", "create", "--scope", "admin", "--name", "ops", "--table", table]) == 0
    plaintext = capsys.readouterr().out.strip().splitlines()[-1]

    record = verify_key(plaintext)
    assert record is not None and (record.scope, record.name) == ("admin", "ops")
    items = storage.table(aws.name("DataTable")).scan()["Items"]
    stored = [item for item in items if item.get("kind") == "api_key"]
    assert [item["pk"] for item in stored] == [f"KEY#{hash_key(plaintext)}"]
    assert all(plaintext not in str(value) for item in stored for value in item.values())


def test_keys_create_without_a_table_is_refused(aws, monkeypatch):
    monkeypatch.delenv("DATA_TABLE", raising=False)
    assert main(["keys", "create", "--scope", "write"]) == 2
