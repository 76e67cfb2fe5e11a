"""The webhook receiver's defences, on a real in-process agent over loopback: Stripe's timed
signatures (tolerance and replays), the budget of rejections per source address, and the log
of rejected callbacks (defect 9: with the name and the cause, throttled, never the body).

The signature and token checks themselves, with runs waiting for events, are in
tests/engine/test_webhooks.py.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from probes.service.agent import Service
from probes.service.guards import SourceLimiter
from probes.service.receiver import MAX_SOURCES, REJECTED_BURST

SECRET: Final = "whsec_test"
PLANTED: Final = "PLANTED-BODY-7f3a"

CHECKS: Final = """\
defaults: {interval: 1h, timeout: 1s, retries: 0}
callbacks:
  payments:
    signature: {scheme: stripe, header: Stripe-Signature, secret: whsec_test, tolerance: 5m}
  sms:
    signature: {header: X-Sig, secret: s}
channels:
  - name: web
    kind: web
    team: digital
    journeys:
      - name: home
        steps:
          - {name: home, url: "http://127.0.0.1:9/"}
"""


def stripe(body: bytes, *, at: float | None = None, secret: str = SECRET) -> str:
    """A ``Stripe-Signature`` header for ``body`` signed at ``at`` (default: now)."""
    t = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


class Agent:
    def __init__(self, service: Service, url: str) -> None:
        self.service = service
        self.url = url

    async def post(
        self,
        name: str,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        source: str = "127.0.0.1",
    ) -> tuple[int, dict[str, str]]:
        connector = aiohttp.TCPConnector(local_addr=(source, 0))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(f"{self.url}/callbacks/{name}", data=body, headers=headers) as response,
        ):
            return response.status, await response.json()

    async def rejected(self, name: str) -> float:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/metrics") as response,
        ):
            text = await response.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "carewatch_callback_events_total" and sample.labels == {
                    "callback": name,
                    "result": "rejected",
                }:
                    return sample.value
        raise AssertionError(f"no rejected count for {name}")


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    checks = tmp_path / "checks.yaml"
    checks.write_text(CHECKS, encoding="utf-8")
    service = Service(checks, location="test")
    await service.start()
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    # 0.0.0.0: reachable from 127.0.0.1 and 127.0.0.2, two sources on one machine
    site = web.TCPSite(runner, "0.0.0.0", 0)
    await site.start()
    yield Agent(service, f"http://127.0.0.1:{runner.addresses[0][1]}")
    await service.stop()
    await runner.cleanup()


async def test_a_stripe_signature_is_checked_with_its_time(agent: Agent) -> None:
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
    now = time.time()
    good = await agent.post("payments", body, {"Stripe-Signature": stripe(body)})
    rotated = await agent.post(  # during a secret's rotation Stripe sends one v1 per secret
        "payments",
        body + b" ",
        {"Stripe-Signature": stripe(body + b" ", secret="old") + "," + stripe(body + b" ")[13:]},
    )
    old = await agent.post("payments", body, {"Stripe-Signature": stripe(body, at=now - 310)})
    ahead = await agent.post("payments", body, {"Stripe-Signature": stripe(body, at=now + 310)})
    late_ok = await agent.post("payments", b"{}", {"Stripe-Signature": stripe(b"{}", at=now - 290)})
    wrong = await agent.post("payments", body, {"Stripe-Signature": stripe(body, secret="x")})
    no_time = await agent.post("payments", body, {"Stripe-Signature": stripe(body)[13:]})
    plain = await agent.post("payments", body, {"Stripe-Signature": "v1=" + "0" * 64})

    assert good == (200, {"matched": False})
    assert rotated[0] == late_ok[0] == 200
    assert old[0] == ahead[0] == 401
    assert "over the tolerance of 300s" in old[1]["error"]
    assert wrong == no_time == plain == (401, {"error": "signature or token missing or wrong"})
    assert await agent.rejected("payments") == 5


async def test_a_replayed_signature_is_rejected(agent: Agent) -> None:
    body = b'{"id": "evt_2"}'
    header = {"Stripe-Signature": stripe(body)}
    first = await agent.post("payments", body, header)
    replays = [await agent.post("payments", body, header) for _ in range(3)]
    resigned = await agent.post(
        "payments", body, {"Stripe-Signature": stripe(body, at=time.time() + 1)}
    )

    assert first[0] == 200
    assert replays == [(401, {"error": "replayed: this signature was already received"})] * 3
    assert resigned[0] == 200  # the same event signed at another time is another delivery
    assert await agent.rejected("payments") == 3


async def test_a_source_over_its_budget_of_rejections_is_answered_429(agent: Agent) -> None:
    # The receiver's own budget, refilling once an hour, so that none comes back mid-test.
    agent.service._receiver.sources = SourceLimiter(
        interval=3600, burst=REJECTED_BURST, sources=MAX_SOURCES
    )
    statuses = [
        (await agent.post("sms", b"forged", {"X-Sig": "0"}))[0] for _ in range(REJECTED_BURST + 5)
    ]
    body = b"genuine"
    genuine = {"X-Sig": hmac.new(b"s", body, hashlib.sha256).hexdigest()}
    limited = await agent.post("sms", body, genuine)
    elsewhere = await agent.post("sms", body, genuine, source="127.0.0.2")

    assert statuses == [401] * REJECTED_BURST + [429] * 5
    assert limited[0] == 429  # unread: the source spent its budget
    assert elsewhere == (200, {"matched": False})  # another source is not limited
    assert await agent.rejected("sms") == REJECTED_BURST + 6


async def test_rejections_are_logged_throttled_with_name_and_cause_never_the_body(
    agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="carewatch")
    body = f'{{"token": "{PLANTED}"}}'.encode()
    for _ in range(20):
        await agent.post("sms", body, {"X-Sig": PLANTED})
    await agent.post("payments", body, {"Stripe-Signature": stripe(body, at=time.time() - 900)})
    await agent.post("nowhere", body)

    lines = [record.getMessage() for record in caplog.records if record.name == "carewatch"]
    # the signed time is whole seconds: 900 s ago, or 901 once the clock has moved on
    late = re.fullmatch(
        r"callback payments: rejected a request from 127\.0\.0\.1: signed (\d+)s ago, over "
        r"the tolerance of 300s",
        lines[1],
    )
    assert late is not None, lines[1]
    assert int(late.group(1)) in (900, 901)
    assert [lines[0], *lines[2:]] == [
        "callback sms: rejected a request from 127.0.0.1: signature or token missing or wrong",
        "callback 'nowhere': rejected a request from 127.0.0.1: no such callback",
    ]
    assert all(PLANTED not in line for line in caplog.text.splitlines())
