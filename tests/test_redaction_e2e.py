"""End to end: a secret planted through ``${env:...}`` never leaves the exporter.

A distinctive secret goes into headers, bodies, query strings, a capture, a TCP payload and an
await match; every kind of step fails against real servers on loopback; a config error quotes
it. Then every output is searched for it: the exporter's log, ``/probe``, ``/metrics``,
``carewatch check`` and the ``/-/reload`` answer.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tests._support.processes import Process, get, wait_until
from tests._support.scrape import value
from tests._support.servers import free_port

pytestmark = pytest.mark.e2e

START_SECONDS = 15.0
#: What the secret starts with: any of it in an output is a leak, the start of it included.
MARK = "S3CR3T"
#: Characters that URL-encoding and JSON change, so the encoded forms are searched too.
SECRET = f"{MARK}-{secrets.token_hex(8)}+/&x"
#: A second secret, used as a whole query value and in Basic auth.
PASSWORD = f"{MARK}pw{secrets.token_hex(6)}"

CHECKS = """
defaults: {{interval: 1s, timeout: 1s, retries: 0, location: ci}}
variables: {{base: "http://{target}"}}
callbacks:
  inbound: {{token: {{header: X-Token, value: "${{env:CW_TEST_SECRET}}"}}}}
channels:
  - name: leaks
    kind: app
    team: mobile
    journeys:
      - name: header
        steps:
          - name: echo
            url: ${{base}}/echo
            headers: {{Authorization: "Bearer ${{env:CW_TEST_SECRET}}"}}
            expect: {{headers: {{X-Echo: {{equals: nope}}}}}}
      - name: body
        steps:
          - name: echo
            method: POST
            url: ${{base}}/echo
            json: {{token: "${{env:CW_TEST_SECRET}}"}}
            expect: {{json: [{{path: $.body, equals: nope}}]}}
      - name: query
        steps:
          - name: echo
            url: ${{base}}/echo?token=${{env:CW_TEST_PASSWORD}}
            query: {{key: "${{env:CW_TEST_SECRET}}"}}
            expect: {{json: [{{path: $.path, equals: nope}}]}}
      - name: basic
        steps:
          - name: echo
            url: ${{base}}/echo
            headers: {{Authorization: "Basic ${{env:CW_TEST_BASIC}}"}}
            expect: {{json: [{{path: $.authorization, equals: nope}}]}}
      - name: capture
        steps:
          - name: first
            url: ${{base}}/echo
            headers: {{Authorization: "${{env:CW_TEST_SECRET}}"}}
            capture: {{token: {{json: $.authorization}}}}
          - name: second
            url: ${{base}}/echo?again=${{token}}
            expect: {{body: {{regex: ["^nope ${{token}}"]}}}}
      - name: invalid-url
        steps:
          - name: bad
            url: "${{env:CW_TEST_BAD_URL}}"
      - name: tcp
        steps:
          - name: echo
            tcp:
              address: "{tcp}"
              send: "HELLO ${{env:CW_TEST_SECRET}}\\n"
              expect: {{contains: nope}}
      - name: await
        steps:
          - name: reply
            await:
              callback: inbound
              within: 500ms
              match: [{{path: $.Body, contains: "${{env:CW_TEST_SECRET}}"}}]
"""

#: A file whose problems quote the secret: a wrong type, after ``${env:...}`` is expanded.
BROKEN = """
defaults: {{interval: 1s, timeout: 1s, retries: "${{env:CW_TEST_SECRET}}", location: ci}}
channels:
  - name: leaks
    kind: app
    team: mobile
    journeys:
      - name: header
        steps:
          - name: echo
            url: "http://{target}/${{env:CW_TEST_SECRET}}"
            method: "${{env:CW_TEST_PASSWORD}}"
"""


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with what it was sent: the worst case for a leak."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace")
        auth = self.headers.get("Authorization", "")
        text = json.dumps({"path": self.path, "authorization": auth, "body": body})
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", auth)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


class _TcpEcho(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"HEARD " + self.rfile.readline())


def _forms(value: str) -> list[str]:
    """``value`` and its encodings that a message could hold."""
    return [
        value,
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        base64.b64encode(f"probe:{value}".encode()).decode()[8:-4],
    ]


def leaks(text: str) -> list[str]:
    """The lines of ``text`` that hold any part of a planted secret."""
    needles = [MARK, *_forms(SECRET)[1:], *_forms(PASSWORD)[1:], SECRET[7:], PASSWORD[8:]]
    return [line for line in text.splitlines() if any(n in line for n in needles)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("redaction")
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _TcpEcho)
    tcp.daemon_threads = True
    for server in (http, tcp):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{http.server_address[1]}"
    agent = f"127.0.0.1:{free_port()}"
    config = tmp / "checks.yaml"
    config.write_text(CHECKS.format(target=target, tcp=f"127.0.0.1:{tcp.server_address[1]}"))
    env = {
        **os.environ,
        "CW_TEST_SECRET": SECRET,
        "CW_TEST_PASSWORD": PASSWORD,
        "CW_TEST_BASIC": base64.b64encode(f"probe:{PASSWORD}".encode()).decode(),
        "CW_TEST_BAD_URL": f"http://{target}:99999/x?token={PASSWORD}",
    }
    exporter = Process(
        [sys.executable, "exporter.py", "--config", str(config), "--listen", agent],
        tmp / "exporter.log",
        env=env,
    )
    metrics = f"http://{agent}/metrics"
    journeys = ("header", "body", "query", "basic", "capture", "invalid-url", "tcp", "await")
    try:
        wait_until(
            lambda: all(
                value(get(metrics)[1], "carewatch_journey_up", journey=j) == 0 for j in journeys
            ),
            START_SECONDS,
            "every journey failed",
        )
        yield {
            "agent": agent,
            "metrics": metrics,
            "config": config,
            "target": target,
            "exporter": exporter,
            "env": env,
            "journeys": journeys,
            "tmp": tmp,
        }
    finally:
        exporter.stop()
        http.shutdown()
        tcp.shutdown()


def test_every_step_failure_is_reported_without_the_secret(stack: dict[str, Any]) -> None:
    """/probe shows each failure's message, /metrics its label, the log its warning: the
    secret is in none of them, and each journey failed where the secret would show."""
    outputs: dict[str, str] = {}
    for journey in stack["journeys"]:
        # POST: some of these journeys change the target, which GET /probe refuses
        url = f"http://{stack['agent']}/probe?journey=leaks/{journey}"
        status, text = get(url, method="POST")
        assert status == 200, text
        outputs[f"/probe {journey}"] = text
        result = json.loads(text)
        assert not result["success"], text
        assert result["message"], text
    outputs["/metrics"] = get(stack["metrics"])[1]
    outputs["log"] = stack["exporter"].output()
    found = {where: leaks(text) for where, text in outputs.items() if leaks(text)}
    assert not found, found
    # The failures are the ones that would have quoted the secret.
    assert "<redacted>" in outputs["/probe header"]
    assert "<redacted>" in outputs["/probe tcp"]
    assert "<redacted>" in outputs["/probe await"]
    assert "<redacted>" in outputs["/probe invalid-url"]
    assert "journey leaks/header failed" in outputs["log"]


def test_config_errors_do_not_quote_the_secret(stack: dict[str, Any]) -> None:
    """The same problems in ``carewatch check``, the log and the ``/-/reload`` answer."""
    broken = stack["tmp"] / "broken.yaml"
    broken.write_text(BROKEN.format(target=stack["target"]))
    check = subprocess.run(
        [sys.executable, "-m", "carewatch", "check", str(broken)],
        capture_output=True,
        text=True,
        env=stack["env"],
        cwd=Path(__file__).parent.parent,
        timeout=60,
    )
    assert check.returncode == 2, check
    assert "defaults.retries: expected a valid integer; got '<redacted>'" in check.stderr
    # The running exporter reloads the broken file in place of its own.
    config: Path = stack["config"]
    good = config.read_text()
    config.write_text(broken.read_text())
    try:
        status, answer = get(f"http://{stack['agent']}/-/reload", data=b"", method="POST")
    finally:
        config.write_text(good)
    assert status == 400, answer
    assert "<redacted>" in answer, answer
    outputs = {
        "check": check.stdout + check.stderr,
        "/-/reload": answer,
        "log": wait_until(
            lambda: (
                stack["exporter"].output()
                if "reload rejected" in stack["exporter"].output()
                else None
            ),
            5,
            "the rejected reload logged",
        ),
    }
    found = {where: leaks(text) for where, text in outputs.items() if leaks(text)}
    assert not found, found
