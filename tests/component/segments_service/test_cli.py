"""`cohortcast segments ...` against a stub HTTP server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cohortcast_cli.main import main

SEGMENT = {
    "segment_id": "seg_1",
    "name": "At risk",
    "description": "",
    "kind": "dynamic",
    "rule": {"last_seen": {"more_than_ago": "14d"}},
    "template": None,
    "version": 1,
    "status": "active",
    "size": 3,
    "backfill": {"state": "running", "processed": 10, "matched": 3},
    "created_at": "2026-11-24T09:00:00.000Z",
    "updated_at": "2026-11-24T09:00:00.000Z",
}


@pytest.fixture
def server():
    seen: list[tuple[str, str, dict, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status, body):
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self):
            seen.append(("GET", self.path, dict(self.headers), ""))
            if self.path == "/v1/segments":
                self._reply(200, {"segments": [SEGMENT]})
            elif self.path == "/v1/segments/seg_1":
                self._reply(200, SEGMENT)
            else:
                self._reply(
                    404, {"error": {"code": "segment_not_found", "message": "no segment", "details": None}}
                )

        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            seen.append(("POST", self.path, dict(self.headers), body))
            if self.path == "/v1/segments/preview":
                self._reply(200, {"count": 2, "exact": True, "scanned": 5, "sample": ["ann", "bob"]})
            elif "like" in body:
                details = [{"pointer": "/rule/op", "message": "unknown op"}]
                self._reply(
                    422, {"error": {"code": "validation_error", "message": "bad", "details": details}}
                )
            else:
                self._reply(202, SEGMENT)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()


def _cli(url, *args):
    return main(["segments", "--url", url, "--admin-key", "cca_test", *args])


def test_list_and_show_send_the_admin_key(server, capsys):
    url, seen = server
    assert _cli(url, "list") == 0
    assert "At risk" in capsys.readouterr().out
    assert seen[0][2]["Authorization"] == "Bearer cca_test"
    assert _cli(url, "show", "seg_1") == 0
    assert "seg_1" in capsys.readouterr().out
    assert _cli(url, "show", "seg_x") == 1
    assert "segment_not_found" in capsys.readouterr().out


def test_create_and_preview_from_a_rule_file(server, tmp_path, capsys):
    url, seen = server
    rule_file = tmp_path / "rule.json"
    rule_file.write_text(json.dumps({"last_seen": {"more_than_ago": "14d"}}))
    assert _cli(url, "create", "--file", str(rule_file), "--name", "At risk") == 0
    assert json.loads(seen[-1][3]) == {"rule": {"last_seen": {"more_than_ago": "14d"}}, "name": "At risk"}
    assert "created" in capsys.readouterr().out
    assert _cli(url, "preview", "--file", str(rule_file)) == 0
    out = capsys.readouterr().out
    assert "2" in out and "ann" in out
    rule_file.write_text(json.dumps({"trait": "plan", "op": "like", "value": "x"}))
    assert _cli(url, "create", "--file", str(rule_file)) == 1
    assert "/rule/op" in capsys.readouterr().out


def test_missing_admin_key_is_refused(monkeypatch, capsys):
    monkeypatch.delenv("COHORTCAST_ADMIN_KEY", raising=False)
    assert main(["segments", "--admin-key", "", "list"]) == 2
