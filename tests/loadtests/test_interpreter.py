"""The Locust engine works out once what is the same in every run, and nothing else.

A simulated customer renders a step that names no variable once, and a templated one on every
run; it draws a ``run_id`` only for a journey that names it; a step that checks only its status
still fails with the message ``judge`` gives. The requests are checked where they land: a
loopback server in this process records what it received. The Locust side runs in a subprocess
(``locust_once.py``), so gevent never patches this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests._support.paths import REPO

ONCE = Path(__file__).parent / "locust_once.py"
RUN_SECONDS = 60.0
RUNS = 3
#: The path the recording server answers 404 on; every other path gets 200 and ``X-Echo``.
MISSING = "/missing"
#: The path it answers only after ``SLOW_SECONDS``.
SLOW = "/slow"
SLOW_SECONDS = 1.0


class _Recorder(BaseHTTPRequestHandler):
    """Records each request as ``(method, path, headers, body)``; answers JSON."""

    received: list[tuple[str, str, dict[str, str], str]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.received.append((self.command, self.path, dict(self.headers.items()), body))
        payload = b'{"token": "t-1"}'
        if self.path == SLOW:
            time.sleep(SLOW_SECONDS)
        try:
            self.send_response(404 if self.path == MISSING else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Echo", "yes")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (SLOW)

    do_GET = do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str, dict[str, str], str]]]]:
    """``(base URL, what it received)`` of a recording HTTP server on loopback."""
    received: list[tuple[str, str, dict[str, str], str]] = []
    handler = type("Recorder", (_Recorder,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()


CHECKS = """
defaults: {{timeout: 5s, retries: 0, location: ci}}
devices:
  phone: {{user_agent: "CareApp/1.0", headers: {{X-Platform: ios}}}}
channels:
  - name: app
    kind: app
    team: t
    journeys:
      - name: constant
        device: phone
        steps:
          - name: form
            method: POST
            url: {base}/constant?a=1
            headers: {{x-platform: android, X-Literal: "$${{kept}}"}}
            query: {{q: [1, two], flag: true}}
            form: {{user: demo, n: 5}}
            expect: {{status: 200, headers: {{X-Echo: {{equals: "yes"}}}}}}
            capture: {{echo: {{header: X-Echo}}}}
          - name: again
            url: {base}/again
            headers: {{X-Echo-Was: "${{echo}}"}}
      - name: templated
        steps:
          - name: run
            url: {base}/run/${{run_id}}
            headers: {{X-Uuid: "${{uuid}}"}}
      - name: status-only
        steps:
          - name: missing
            url: {base}{missing}
            expect: {{status: [200, 3xx]}}
      - name: slow
        steps:
          - name: wait
            url: {base}{slow}
            timeout: 200ms
      - name: secret
        steps:
          - name: token
            url: {base}/token?key=${{env:CW_LOCUST_SECRET:-unset}}
            expect: {{json: [{{path: $.token, equals: "${{env:CW_LOCUST_SECRET:-unset}}"}}]}}
"""


def run_locust(checks: Path, journey_id: str, *, runs: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ONCE), str(checks), "--runs", str(runs), journey_id],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)[journey_id]
    return out


@pytest.fixture
def checks(
    server: tuple[str, list[Any]], write_config: Callable[[str], Path]
) -> tuple[Path, list[tuple[str, str, dict[str, str], str]]]:
    base, received = server
    return write_config(CHECKS.format(base=base, missing=MISSING, slow=SLOW)), received


def test_a_constant_step_sends_the_same_request_on_every_run(
    checks: tuple[Path, list[tuple[str, str, dict[str, str], str]]],
) -> None:
    path, received = checks
    out = run_locust(path, "app/constant", runs=RUNS)
    assert out["result"]["success"], out
    forms = [r for r in received if r[0] == "POST"]
    assert len(forms) == RUNS
    for method, where, headers, body in forms:
        assert (method, where, body) == (
            "POST",
            "/constant?a=1&q=1&q=two&flag=true",
            "user=demo&n=5",
        )
        assert headers["User-Agent"] == "CareApp/1.0"
        assert headers["x-platform"] == "android"  # the step's header replaces the device's
        assert "X-Platform" not in headers
        assert headers["X-Literal"] == "${kept}"  # $${ is a literal ${, not a template
    # The header expectation and the header capture still read the response's headers.
    agains = [r for r in received if r[1] == "/again"]
    assert [h["X-Echo-Was"] for _, _, h, _ in agains] == ["yes"] * RUNS


def test_a_templated_step_is_rendered_on_every_run(
    checks: tuple[Path, list[tuple[str, str, dict[str, str], str]]],
) -> None:
    path, received = checks
    out = run_locust(path, "app/templated", runs=RUNS)
    assert out["result"]["success"], out
    run_ids = [where.removeprefix("/run/") for _, where, _, _ in received]
    uuids = [headers["X-Uuid"] for _, _, headers, _ in received]
    assert len(set(run_ids)) == len(set(uuids)) == RUNS  # a new run_id and uuid every run
    assert all(len(run_id) == 32 and int(run_id, 16) >= 0 for run_id in run_ids)
    assert (
        out["entries"]
        == [["GET", "app/templated/run", None], ["JOURNEY", "app/templated", None]] * RUNS
    )


def test_a_status_only_step_fails_with_the_message_judge_gives(
    checks: tuple[Path, list[tuple[str, str, dict[str, str], str]]],
) -> None:
    path, _ = checks
    out = run_locust(path, "app/status-only", runs=RUNS)
    result = out["result"]
    assert (result["failed_step"], result["reason"]) == ("missing", "http_status")
    assert result["message"] == "expected status 200 or 3xx, got 404"
    step_errors = [error for kind, _, error in out["entries"] if kind == "GET"]
    assert step_errors == ["http_status: expected status 200 or 3xx, got 404"] * RUNS


def test_a_step_out_of_time_fails_on_every_run(
    checks: tuple[Path, list[tuple[str, str, dict[str, str], str]]],
) -> None:
    path, _ = checks
    out = run_locust(path, "app/slow", runs=2)
    result = out["result"]
    assert (result["failed_step"], result["reason"]) == ("wait", "timeout")
    assert result["message"] == "step timeout 200ms reached while waiting for the response"
    assert result["duration_seconds"] < SLOW_SECONDS
    step_errors = [error for kind, _, error in out["entries"] if kind == "GET"]
    assert step_errors == [f"timeout: {result['message']}"] * 2


def test_a_failure_reported_to_locust_hides_the_secrets(
    checks: tuple[Path, list[tuple[str, str, dict[str, str], str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Locust's failure table (and so its reports) and the result get the redacted message."""
    secret = "S3CR3T-locust-0f9e"
    monkeypatch.setenv("CW_LOCUST_SECRET", secret)
    path, received = checks
    out = run_locust(path, "app/secret", runs=1)
    assert received[0][1] == f"/token?key={secret}"  # the secret is sent, as written
    assert out["result"]["message"] == "$.token: expected '<redacted>', got 't-1'"
    step_errors = [error for kind, _, error in out["entries"] if kind == "GET"]
    assert step_errors == ["assertion: $.token: expected '<redacted>', got 't-1'"]
    assert secret not in json.dumps(out)
