"""End to end, every asynchronous and staffed channel: democare delivers SMS replies, push
receipts and email acknowledgements to the exporter's callback receiver, signed; a fault in
any channel is reported with the right step and reason within one interval, and clears."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._support.processes import Process, down, get, inject, wait_until
from tests._support.scrape import value
from tests._support.servers import free_port

pytestmark = pytest.mark.e2e

INTERVAL = 2.0
START_SECONDS = 20.0
REPORT_SECONDS = INTERVAL + 2.0 + 4.0  # the next tick, a whole attempt, and a loaded machine

CHECKS = """
defaults: {{interval: 2s, timeout: 2s, retries: 0, location: ci}}
variables:
  base: "http://{care}"
  ws: "ws://{care}"
callbacks:
  sms-inbound:
    signature: &s {{header: X-Democare-Signature, secret: e2e-secret, prefix: "sha256="}}
  push-receipts: {{signature: *s}}
  email-inbound: {{signature: *s}}
channels:
  - name: sms
    kind: sms
    team: messaging
    journeys:
      - name: reply
        steps:
          - {{name: send, method: POST, url: "${{base}}/sms/v1/messages",
              json: {{from: "+33600000001", to: "+33900000000", body: "ref ${{run_id}}"}}}}
          - name: reply
            await:
              callback: sms-inbound
              within: 1s
              match: [{{path: $.Body, contains: "${{run_id}}"}}]
  - name: push
    kind: push
    team: messaging
    journeys:
      - name: receipt
        steps:
          - {{name: send, method: POST, url: "${{base}}/push/v1/send",
              json: {{device_token: t, title: t, body: b, data: {{run: "${{run_id}}"}}}}}}
          - name: receipt
            await:
              callback: push-receipts
              within: 1s
              match: [{{path: $.data.run, equals: "${{run_id}}"}}]
  - name: email
    kind: email
    team: messaging
    journeys:
      - name: ack
        steps:
          - name: send
            smtp:
              address: "{smtp}"
              tls: {{ca_file: "{ca}", server_name: localhost}}
              username: probe@carewatch.example
              password: smtp-password
              from: probe@carewatch.example
              to: care@carewatch.example
              subject: "e2e ${{run_id}}"
          - name: ack
            await:
              callback: email-inbound
              within: 1s
              match: [{{path: $.subject, contains: "${{run_id}}"}}]
  - name: chat
    kind: chat
    team: messaging
    journeys:
      - name: bot
        steps:
          - name: talk
            websocket: "${{ws}}/chat/v1/ws"
            conversation:
              - receive: {{within: 1s, json: [{{path: $.type, equals: greeting}}]}}
              - send: {{json: {{type: message, text: roaming}}}}
              - receive: {{within: 1s, json: [{{path: $.type, equals: bot_reply}}]}}
  - name: voice
    kind: voice
    team: contact-center
    journeys:
      - name: callback
        steps:
          - {{name: request, method: POST, url: "${{base}}/voice/v1/callbacks",
              json: {{msisdn: "+33600000001"}}, expect: {{status: 201}}}}
  - name: help
    kind: self_service
    team: digital
    journeys:
      - name: search
        steps:
          - {{name: search, url: "${{base}}/help/v1/search?q=roaming",
              expect: {{json: [{{path: $.total, gt: 0}}]}}}}
  - name: agent
    kind: agent
    team: contact-center
    journeys:
      - name: context
        steps:
          - {{name: context, url: "${{base}}/agent/v1/customers/C-10001/context",
              headers: {{X-Agent-Key: demo-agent-key}}}}
  - name: video
    kind: video
    team: contact-center
    journeys:
      - name: session
        steps:
          - {{name: create, method: POST, url: "${{base}}/video/v1/sessions", json: {{}},
              expect: {{status: 201}}}}
"""
JOURNEYS = ("reply", "receipt", "ack", "bot", "callback", "session", "search", "context")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("channels")
    care, agent, smtp = (f"127.0.0.1:{free_port()}" for _ in range(3))
    ca = tmp / "smtp-ca.pem"
    receiver = f"http://{agent}/callbacks"
    democare = Process(
        [
            *(sys.executable, "-m", "democare", "--listen", care, "--webhook-secret", "e2e-secret"),
            *("--smtp-listen", smtp, "--smtp-cert-out", str(ca)),
            *(
                "--webhook",
                f"sms={receiver}/sms-inbound",
                "--webhook",
                f"push={receiver}/push-receipts",
            ),
            *("--webhook", f"email={receiver}/email-inbound"),
        ],
        tmp / "democare.log",
    )
    config: Path = tmp / "checks.yaml"
    config.write_text(CHECKS.format(care=care, smtp=smtp, ca=ca))
    wait_until(
        lambda: ca.exists() and get(f"http://{care}/healthz")[0] == 200,
        START_SECONDS,
        "democare up",
    )
    exporter = Process(
        [sys.executable, "exporter.py", "--config", str(config), "--listen", agent],
        tmp / "exporter.log",
    )
    metrics = f"http://{agent}/metrics"
    try:
        wait_until(
            lambda: all(
                value(get(metrics)[1], "carewatch_journey_up", journey=j) == 1 for j in JOURNEYS
            ),
            START_SECONDS,
            f"every channel up ({democare.output()[-2000:]})",
        )
        yield {"care": care, "metrics": metrics, "exporter": exporter}
    finally:
        assert exporter.stop() == 0, exporter.output()
        democare.stop()


def test_every_channel_is_up_with_its_delivery_latency(stack: dict[str, Any]) -> None:
    text = get(stack["metrics"])[1]
    for journey in ("reply", "receipt", "ack"):
        delivery = value(text, "carewatch_step_duration_seconds", journey=journey, phase="delivery")
        assert delivery is not None
        assert 0 < delivery < 1.0, (journey, delivery)
    assert value(text, "carewatch_step_duration_seconds", journey="bot", phase="first_reply") > 0
    matched = value(
        text, "carewatch_callback_events_total", callback="sms-inbound", result="matched"
    )
    assert matched >= 1


@pytest.mark.parametrize(
    ("channel", "fault", "journey", "step", "reason"),
    [
        ("sms", {"mode": "no_reply"}, "reply", "reply", "callback_timeout"),
        (
            "push",
            {"mode": "late_reply", "delay_ms": 1500},
            "receipt",
            "receipt",
            "callback_timeout",
        ),
        ("email", {"mode": "no_reply"}, "ack", "ack", "callback_timeout"),
        ("email", {"mode": "error"}, "ack", "send", "http_status"),
        ("chat", {"mode": "no_reply"}, "bot", "talk", "timeout"),
        ("chat", {"mode": "error", "status": 503}, "bot", "talk", "http_status"),
        ("voice", {"mode": "error"}, "callback", "request", "http_status"),
        ("video", {"mode": "down"}, "session", "create", "connect"),
        ("self_service", {"mode": "garbage"}, "search", "search", "assertion"),
        ("agent", {"mode": "slow", "delay_ms": 3000}, "context", "context", "timeout"),
    ],
)
def test_a_fault_in_any_channel_names_step_and_reason(
    stack: dict[str, Any],
    channel: str,
    fault: dict[str, Any],
    journey: str,
    step: str,
    reason: str,
) -> None:
    metrics, care = stack["metrics"], stack["care"]
    wait_until(
        lambda: value(get(metrics)[1], "carewatch_journey_up", journey=journey) == 1,
        REPORT_SECONDS,
        f"{journey} up before the fault",
    )
    inject(care, channel=channel, **fault)
    try:
        text = wait_until(lambda: down(metrics, journey), REPORT_SECONDS, f"{journey} down")
        assert (
            value(text, "carewatch_step_failure_info", journey=journey, step=step, reason=reason)
            == 1
        ), [line for line in text.splitlines() if "failure_info" in line]
    finally:
        get(f"http://{care}/_faults", method="DELETE")
    wait_until(
        lambda: value(get(metrics)[1], "carewatch_journey_up", journey=journey) == 1,
        REPORT_SECONDS,
        f"{journey} back up",
    )
