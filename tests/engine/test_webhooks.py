"""Webhooks (checks.yaml's ``callbacks:``) and await steps: the receiver of a real in-process
Service, fed by real HTTP POSTs from a test SMS gateway on loopback; the hub on its own; and the
config rules around them.

The gateway answers ``POST /send`` at once and, like a real SMS gateway, posts the reply to the
agent's ``/callbacks/sms-inbound`` later, signed, as a form.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import re
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from probes.engine.engine import Engine
from probes.engine.webhooks import Event, Result, WebhookHub
from probes.errors import ConfigError, WebhookTimeout
from probes.model.load import parse_config
from probes.runs.results import Outcome, Phase, Reason, RunResult, StepResult
from probes.service.agent import Service
from probes.service.receiver import MAX_WEBHOOK_BYTES, document
from tests._support.servers import ServerFactory
from tests._support.timing import CLOCK_SLACK, SLACK

SECRET: Final = "test-webhook-secret"
SIGNATURE: Final = "X-Democare-Signature"
RUNS: Final = 50
WAIT_SECONDS: Final = 10.0

CONFIG: Final = """\
defaults: {{interval: 60s, timeout: 5s, retries: 0}}
variables: {{gateway: "{gateway}"}}
callbacks:
  sms-inbound:
    signature:
      header: X-Democare-Signature
      secret: "${{env:CAREWATCH_TEST_SECRET:-test-webhook-secret}}"
      algorithm: sha256
      prefix: "sha256="
      encoding: hex
  push-receipts:
    token: {{header: X-Callback-Token, value: push-token}}
  email-inbound:
    token: {{query: token, value: mail-token}}
  lab:
    unsigned: true
channels:
  - name: sms
    kind: sms
    team: messaging
    journeys:
      - name: reply
        steps:
          - name: send
            method: POST
            url: ${{gateway}}/send
            json: {{to: "+33600000000", body: "carewatch ${{run_id}}"}}
          - name: reply-arrives
            await:
              callback: sms-inbound
              within: {within}
              match: [{{path: $.Body, contains: "${{run_id}}"}}]
            capture: {{reply: {{json: $.Body}}, sid: {{json: $.MessageSid}}}}
          - name: ack
            url: ${{gateway}}/ack?run=${{run_id}}&reply=${{reply}}&sid=${{sid}}
"""


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Gateway:
    """A test SMS gateway: replies to each sent SMS through the agent's receiver."""

    url: str = ""
    receiver: str = ""  # the agent's /callbacks/sms-inbound
    delay: Callable[[], float] = lambda: 0.1
    mode: str = "later"  # later: after the delay; first: before answering /send; never
    noise: int = 0  # unrelated signed events posted with each reply
    delays: dict[str, float] = field(default_factory=dict)  # run id -> delay used
    acks: dict[str, dict[str, str]] = field(default_factory=dict)  # run id -> what came back
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None

    async def post(self, fields: dict[str, str]) -> None:
        assert self.session is not None
        body = urlencode(fields).encode()
        headers = {SIGNATURE: sign(body), "Content-Type": "application/x-www-form-urlencoded"}
        async with self.session.post(self.receiver, data=body, headers=headers) as response:
            assert response.status == 200, await response.text()

    async def reply(self, run_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.post(
            {"From": "+33600000000", "Body": f"Re: carewatch {run_id}", "MessageSid": f"SM{run_id}"}
        )

    async def send(self, request: web.Request) -> web.Response:
        run_id = (await request.json())["body"].removeprefix("carewatch ")
        delay = self.delay()
        self.delays[run_id] = delay
        if self.mode == "first":
            await self.reply(run_id, 0)
        elif self.mode == "later":
            self._spawn(self.reply(run_id, delay))
        for n in range(self.noise):
            self._spawn(self.post({"Body": f"STOP {n}", "MessageSid": f"noise-{n}"}))
        return web.json_response({"queued": True})

    async def ack(self, request: web.Request) -> web.Response:
        self.acks[request.query["run"]] = dict(request.query)
        return web.Response(text="ok")

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


@dataclass
class Agent:
    service: Service
    url: str
    gateway: Gateway
    session: aiohttp.ClientSession

    async def run(self) -> RunResult:
        assert self.service.engine is not None
        assert self.service.config is not None
        return await self.service.engine.run(self.service.config.journeys[0])

    async def metrics(self) -> str:
        async with self.session.get(f"{self.url}/metrics") as response:
            return await response.text()

    async def events(self, webhook: str) -> dict[str, float]:
        """``carewatch_callback_events_total`` of ``webhook``, by result."""
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(await self.metrics()):
            for sample in family.samples:
                if (
                    sample.name == "carewatch_callback_events_total"
                    and sample.labels["callback"] == webhook
                ):
                    out[sample.labels["result"]] = sample.value
        return out


@asynccontextmanager
async def started_agent(
    aiohttp_server: ServerFactory,
    write_config: Callable[[str], Path],
    *,
    within: str = "3s",
    hub: WebhookHub | None = None,
) -> AsyncIterator[Agent]:
    gateway = Gateway()
    app = web.Application()
    app.router.add_post("/send", gateway.send)
    app.router.add_get("/ack", gateway.ack)
    gateway.url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    service = Service(
        write_config(CONFIG.format(gateway=gateway.url, within=within)),
        location="test",
        webhooks=hub,
    )
    await service.start()
    await service.stop()  # no scheduled runs: each test runs the journey itself
    url = str((await aiohttp_server(service.app())).make_url("")).rstrip("/")
    gateway.receiver = f"{url}/callbacks/sms-inbound"
    async with aiohttp.ClientSession() as session:
        gateway.session = session
        yield Agent(service, url, gateway, session)
        for task in list(gateway.tasks):
            task.cancel()
        await asyncio.gather(*gateway.tasks, return_exceptions=True)


@pytest.fixture
async def agent(
    aiohttp_server: ServerFactory, write_config: Callable[[str], Path]
) -> AsyncIterator[Agent]:
    async with started_agent(aiohttp_server, write_config) as started:
        yield started


def step(result: RunResult, name: str) -> StepResult:
    return next(s for s in result.final.steps if s.name == name)


# --- the round trip -------------------------------------------------------------------------------


async def test_fifty_runs_at_once_each_get_their_own_reply(
    aiohttp_server: ServerFactory, write_config: Callable[[str], Path]
) -> None:
    shuffled = random.Random(7)
    hub = WebhookHub(keep_for=0.3)  # so unmatched noise is counted within the test
    async with started_agent(aiohttp_server, write_config, hub=hub) as agent:
        agent.gateway.delay = lambda: shuffled.uniform(0.05, 0.6)  # replies come back shuffled
        noise_runs = 3

        results = await asyncio.gather(*(agent.run() for _ in range(RUNS)))
        for n in range(noise_runs):  # replies to nobody's run: an SMS sent by a customer
            await agent.gateway.post({"Body": f"HELP {n}", "MessageSid": f"customer-{n}"})

        assert all(r.ok for r in results), [r.to_dict() for r in results if not r.ok][:1]
        assert len(agent.gateway.acks) == RUNS
        for run_id, ack in agent.gateway.acks.items():
            assert ack["reply"] == f"Re: carewatch {run_id}"
            assert ack["sid"] == f"SM{run_id}"
        for result in results:
            waited = step(result, "reply-arrives")
            assert set(waited.phases) == {Phase.WAIT, Phase.DELIVERY, Phase.TOTAL}
            assert 0 < waited.phases[Phase.DELIVERY] < 0.6 + SLACK

        deadline = time.monotonic() + WAIT_SECONDS
        while (events := await agent.events("sms-inbound")).get("unmatched") != noise_runs:
            assert time.monotonic() < deadline, events
            await asyncio.sleep(0.1)
        assert events == {"matched": RUNS, "unmatched": noise_runs, "rejected": 0}


async def test_delivery_is_the_time_from_the_send_to_the_reply(agent: Agent) -> None:
    agent.gateway.delay = lambda: 0.4
    result = await agent.run()

    assert result.ok, result.to_dict()
    waited = step(result, "reply-arrives")
    assert 0.4 - 0.05 <= waited.phases[Phase.DELIVERY] < 0.4 + SLACK
    # the step began as the send ended, and ended as the reply came
    assert waited.phases[Phase.TOTAL] == pytest.approx(waited.phases[Phase.DELIVERY], abs=0.05)
    assert waited.status is None  # nothing was asked of a target


async def test_a_reply_that_comes_before_the_wait_begins_still_matches(agent: Agent) -> None:
    agent.gateway.mode = "first"  # the reply is in before /send has even answered
    result = await agent.run()

    assert result.ok, result.to_dict()
    waited = step(result, "reply-arrives")
    assert waited.phases[Phase.DELIVERY] == 0  # it came before the send step was over
    assert waited.phases[Phase.TOTAL] < 0.05
    assert (await agent.events("sms-inbound"))["matched"] == 1


async def test_no_reply_in_time_is_callback_timeout(
    aiohttp_server: ServerFactory, write_config: Callable[[str], Path]
) -> None:
    async with started_agent(aiohttp_server, write_config, within="500ms") as agent:
        agent.gateway.mode = "never"
        agent.gateway.noise = 2
        result = await agent.run()

        waited = step(result, "reply-arrives")
        assert waited.outcome is Outcome.FAILED
        assert waited.reason is Reason.CALLBACK_TIMEOUT
        assert re.fullmatch(
            r"no sms-inbound callback matching \$\.Body contains '[0-9a-f]{16}…' within 500ms "
            r"\(2 unmatched events arrived\)",
            waited.message,
        ), waited.message
        assert 0.4 - CLOCK_SLACK <= waited.phases[Phase.TOTAL] < 0.5 + SLACK
        assert Phase.DELIVERY not in waited.phases
        assert [s.name for s in result.final.steps] == ["send", "reply-arrives"]


async def test_an_engine_without_a_receiver_says_so() -> None:
    config = parse_config(CONFIG.format(gateway="http://127.0.0.1:9", within="1s"), environ={})
    journey = config.journeys[0]
    engine = Engine(config.variables, location="test")
    result = await engine.run(replace(journey, steps=journey.steps[1:2]))

    failed = result.final.failed_step
    assert failed is not None
    assert failed.reason is Reason.INTERNAL
    assert failed.message == "no callback receiver in this engine"


# --- the receiver ---------------------------------------------------------------------------------


async def post(
    agent: Agent,
    webhook: str,
    body: bytes = b'{"status": "delivered"}',
    *,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> tuple[int, object]:
    url = f"{agent.url}/callbacks/{webhook}{query}"
    async with agent.session.post(url, data=body, headers=headers or {}) as response:
        return response.status, await response.json()


async def test_a_signature_is_checked(agent: Agent) -> None:
    body = b'{"Body": "hello"}'
    good = await post(agent, "sms-inbound", body, headers={SIGNATURE: sign(body)})
    upper = await post(agent, "sms-inbound", body, headers={SIGNATURE: sign(body).upper()})
    wrong_secret = await post(agent, "sms-inbound", body, headers={SIGNATURE: sign(body, "x")})
    other_body = await post(agent, "sms-inbound", body + b" ", headers={SIGNATURE: sign(body)})
    missing = await post(agent, "sms-inbound", body)

    assert good == (200, {"matched": False})  # genuine; nobody waits for it
    assert upper[0] == 200  # hex digits in either case
    assert wrong_secret[0] == other_body[0] == missing[0] == 401
    assert missing[1] == {"error": "signature or token missing or wrong"}
    events = await agent.events("sms-inbound")
    assert (events["rejected"], events["matched"], events["unmatched"]) == (3, 0, 0)


async def test_a_token_in_a_header_or_the_query_is_checked(agent: Agent) -> None:
    async def status(webhook: str, headers: dict[str, str] | None = None, query: str = "") -> int:
        return (await post(agent, webhook, headers=headers, query=query))[0]

    assert await status("push-receipts", headers={"X-Callback-Token": "push-token"}) == 200
    assert await status("push-receipts", headers={"x-callback-token": "push-token"}) == 200
    assert await status("push-receipts", headers={"X-Callback-Token": "nope"}) == 401
    assert await status("push-receipts", query="?token=push-token") == 401
    assert await status("email-inbound", query="?token=mail-token") == 200
    assert await status("email-inbound", query="?token=mail-tokens") == 401
    assert await status("email-inbound", headers={"token": "mail-token"}) == 401
    assert await status("lab") == 200  # unsigned: anything goes
    assert (await agent.events("push-receipts"))["rejected"] == 2
    assert (await agent.events("email-inbound"))["rejected"] == 2


async def test_unknown_names_and_large_bodies_are_refused(agent: Agent) -> None:
    assert await post(agent, "nobody") == (404, {"error": "no such callback"})
    large = b"x" * (MAX_WEBHOOK_BYTES + 1)
    status, answer = await post(agent, "lab", large)
    assert status == 413
    assert answer == {"error": f"body larger than {MAX_WEBHOOK_BYTES} bytes"}
    assert (await post(agent, "lab", b"x" * MAX_WEBHOOK_BYTES))[0] == 200
    text = await agent.metrics()
    assert 'carewatch_callback_events_total{callback="lab",result="rejected"} 1.0' in text
    assert "nobody" not in text  # a name from outside never becomes a label


def test_an_event_reads_as_json_or_as_form_fields() -> None:
    form = "application/x-www-form-urlencoded"
    assert document("application/json", b'{"Body": "hi", "n": 2}') == {"Body": "hi", "n": 2}
    assert document("text/plain", b"[1, 2]") == [1, 2]  # JSON whatever it claims to be
    assert document(form, b"Body=hi+there&From=%2B33&Body=again&Empty=") == {
        "Body": "hi there",
        "From": "+33",
        "Empty": "",
    }
    assert document("text/plain", b"not json") is None
    assert document("application/json", b"[" * 100_000) is None


# --- the hub --------------------------------------------------------------------------------------


def event(body: str, at: float | None = None) -> Event:
    return Event(
        received_at=time.perf_counter() if at is None else at,
        headers={},
        body=body.encode(),
        document={"Body": body},
    )


def about(word: str) -> Callable[[Event], bool]:
    return lambda e: word in e.body.decode()


async def test_the_first_waiter_that_matches_takes_the_event() -> None:
    hub = WebhookHub()
    first = asyncio.ensure_future(hub.wait("sms", about("a"), 1))
    second = asyncio.ensure_future(hub.wait("sms", about("a"), 1))
    other = asyncio.ensure_future(hub.wait("sms", about("b"), 1))
    await asyncio.sleep(0)  # all three wait

    assert hub.deliver("sms", event("a1"))
    assert hub.deliver("sms", event("b1"))
    assert hub.deliver("sms", event("a2"))
    assert not hub.deliver("sms", event("a3"))  # nobody left: kept
    assert not hub.deliver("push", event("a4"))  # another webhook's waiters are not asked

    assert (await first).body == b"a1"
    assert (await second).body == b"a2"
    assert (await other).body == b"b1"
    assert hub.count("sms", Result.MATCHED) == 3


async def test_kept_events_are_bounded_in_number_bytes_and_time() -> None:
    hub = WebhookHub(keep=3, keep_for=0.2, keep_bytes=10)
    for n in range(5):
        hub.deliver("sms", event(f"n{n}"))  # 2 bytes each
    assert hub.count("sms", Result.UNMATCHED) == 2  # the oldest two made room

    hub.deliver("sms", event("x" * 9))  # 9 + the last three (6) > 10 bytes
    assert hub.count("sms", Result.UNMATCHED) == 5

    taken = await hub.wait("sms", about("x"), 0)
    assert taken.body == b"x" * 9

    hub.deliver("sms", event("old", at=time.perf_counter() - 1))
    hub.expire()
    assert hub.count("sms", Result.UNMATCHED) == 6
    with pytest.raises(WebhookTimeout) as caught:
        await hub.wait("sms", about("old"), 0.05)
    assert caught.value.unmatched == 0


async def test_a_timed_out_waiter_says_how_many_others_it_saw() -> None:
    hub = WebhookHub()
    waiting = asyncio.ensure_future(hub.wait("sms", about("mine"), 0.2))
    await asyncio.sleep(0)
    hub.deliver("sms", event("theirs"))
    hub.deliver("sms", event("spam"))

    with pytest.raises(WebhookTimeout) as caught:
        await waiting
    assert caught.value.unmatched == 2
    assert not hub._waiters  # nothing left behind


# --- config ---------------------------------------------------------------------------------------


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), environ={})
    return {p.path: p.message for p in caught.value.problems}


def test_an_await_step_names_a_defined_webhook_and_waits_no_longer_than_the_journey() -> None:
    found = problems(
        """\
        defaults: {timeout: 10s}
        callbacks:
          sms-inbound: {token: {header: X-Token, value: t}}
        channels:
          - name: sms
            kind: sms
            team: messaging
            journeys:
              - name: reply
                steps:
                  - name: wait
                    await: {callback: sms-inbuond, within: 5s}
                  - name: wait-long
                    await: {callback: sms-inbound, within: 30s}
        """
    )
    assert found == {
        "channels[0].journeys[0].steps[0].await.callback": (
            "unknown callback 'sms-inbuond' (known: sms-inbound)"
        ),
        "channels[0].journeys[0].steps[1].await.within": (
            "within 30s is longer than the journey's timeout 10s, which would cut the wait "
            "short; shorten within or lengthen the timeout"
        ),
    }


def test_a_webhook_checks_exactly_one_way_with_secrets_from_the_environment() -> None:
    found = problems(
        """\
        callbacks:
          both:
            token: {header: X-Token, value: t}
            signature: {header: X-Sig, secret: s}
          none: {}
          vague: {token: {value: t}}
          templated: {signature: {header: X-Sig, secret: "${webhook_secret}"}}
        channels:
          - name: sms
            kind: sms
            team: messaging
            journeys:
              - name: j
                steps: [{name: s, url: "http://127.0.0.1:9/"}]
        """
    )
    assert found == {
        "callbacks.both": "expected exactly one of signature, token or unsigned: true; "
        "got signature, token",
        "callbacks.none": "expected exactly one of signature, token or unsigned: true; got none",
        "callbacks.vague.token": "expected exactly one of header, query",
        "callbacks.templated.signature.secret": (
            "${webhook_secret} is not defined (expected ${env:NAME}: callbacks are checked "
            "outside any run)"
        ),
    }


def test_a_secret_from_the_environment_is_taken_as_it_is() -> None:
    config = parse_config(
        CONFIG.format(gateway="http://127.0.0.1:9", within="1s"),
        environ={"CAREWATCH_TEST_SECRET": "s3cr${et"},
    )
    signature = config.callbacks["sms-inbound"].signature
    assert signature is not None
    assert signature.secret == "s3cr${et"
    assert set(config.callbacks) == {"sms-inbound", "push-receipts", "email-inbound", "lab"}


def test_a_timed_signature_has_a_known_scheme_and_a_finite_tolerance() -> None:
    found = problems(
        """\
        callbacks:
          nan: {signature: {scheme: stripe, header: S, secret: s, tolerance: .nan}}
          zero: {signature: {scheme: stripe, header: S, secret: s, tolerance: 0}}
          forever: {signature: {scheme: stripe, header: S, secret: s, tolerance: 25h}}
          twilio: {signature: {scheme: twilio, header: S, secret: s}}
        channels:
          - name: sms
            kind: sms
            team: messaging
            journeys:
              - name: j
                steps: [{name: s, url: "http://127.0.0.1:9/"}]
        """
    )
    assert set(found) == {
        "callbacks.nan.signature.tolerance",
        "callbacks.zero.signature.tolerance",
        "callbacks.forever.signature.tolerance",
        "callbacks.twilio.signature.scheme",
    }
    assert found["callbacks.zero.signature.tolerance"] == (
        "expected a duration longer than 0s; got 0s"
    )
    assert "86400" in found["callbacks.forever.signature.tolerance"]
