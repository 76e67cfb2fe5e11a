"""SMS and push: replies and receipts POSTed to a real webhook receiver, signed, faulted, bounded.

democare runs on loopback (aiohttp test server); the receiver is a second real aiohttp server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

import aiohttp
import pytest

from democare import create_app
from democare.__main__ import main
from democare._state import DEFAULT_LIMITS

if TYPE_CHECKING:
    from conftest import Client, MakeCare, Receiver

SECRET: Final = "demo-webhook-secret"
CARE_NUMBER: Final = "+33900000000"
CUSTOMER_NUMBER: Final = "+33600000001"
SMS_ID: Final = re.compile(r"SM[0-9a-f]{32}")
PUSH_ID: Final = re.compile(r"PN[0-9a-f]{32}")
REPLY_DELAY_S: Final = 0.3
QUIET_S: Final = 0.6
LATE_MS: Final = 900


async def json_of(response: aiohttp.ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def send_sms(client: Client, body: str = "My data stopped", to: str = CARE_NUMBER) -> Any:
    message = {"from": CUSTOMER_NUMBER, "to": to, "body": body}
    return await json_of(await client.post("/sms/v1/messages", json=message), 202)


async def send_push(client: Client, **extra: object) -> Any:
    notification = {"device_token": "tok-123", "title": "Your bill", "body": "Ready", **extra}
    return await json_of(await client.post("/push/v1/send", json=notification), 202)


async def set_fault(client: Client, **spec: object) -> None:
    await json_of(await client.post("/_faults", json=spec), 200)


# --- sms ----------------------------------------------------------------------------------------


async def test_sms_to_care_is_answered_on_the_webhook_as_a_signed_form(
    make_care: MakeCare, receiver: Receiver
) -> None:
    client = await make_care()
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    accepted = await send_sms(client, body='No data since 9am & "4G" only')
    assert set(accepted) == {"id", "status"}
    assert SMS_ID.fullmatch(accepted["id"])
    assert accepted["status"] == "queued"
    path = f"/sms/v1/messages/{accepted['id']}"
    assert (await json_of(await client.get(path), 200))["status"] == "queued"

    delivery = await receiver.next()
    assert delivery.channel == "sms"
    assert delivery.at - sent_at >= REPLY_DELAY_S
    assert delivery.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert abs(int(delivery.headers["X-Democare-Timestamp"]) - time.time()) < 5
    form = dict(parse_qsl(delivery.body.decode(), strict_parsing=True))
    assert SMS_ID.fullmatch(form.pop("MessageSid"))
    assert form == {
        "From": CARE_NUMBER,
        "To": CUSTOMER_NUMBER,
        "Body": 'Thanks for contacting care. We received: "No data since 9am & "4G" only"',
        "InReplyTo": accepted["id"],
        "NumMedia": "0",
    }
    assert b"From=%2B33900000000" in delivery.body
    assert delivery.headers["X-Democare-Signature"] == signature(delivery.body, SECRET)
    assert delivery.headers["X-Democare-Signature"] != signature(delivery.body, "other-secret")

    await asyncio.sleep(0.05)
    message = await json_of(await client.get(path), 200)
    assert message["status"] == "replied"
    assert SMS_ID.fullmatch(message["reply_id"])
    assert (message["from"], message["to"]) == (CUSTOMER_NUMBER, CARE_NUMBER)


async def test_sms_to_another_number_is_sent_but_not_answered(
    make_care: MakeCare, receiver: Receiver
) -> None:
    client = await make_care()
    accepted = await send_sms(client, to="+33611111111")
    await receiver.assert_quiet(QUIET_S)
    message = await json_of(await client.get(f"/sms/v1/messages/{accepted['id']}"), 200)
    assert message["status"] == "sent"
    assert message["reply_id"] is None


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"to": CARE_NUMBER, "body": "hi"}, "'from' is required"),
        ({"from": "0600000001", "to": CARE_NUMBER, "body": "hi"}, "'from' must be an E.164"),
        ({"from": CUSTOMER_NUMBER, "to": "care", "body": "hi"}, "'to' must be an E.164"),
        ({"from": CUSTOMER_NUMBER, "to": CARE_NUMBER, "body": " "}, "'body' must be a non-empty"),
        ({"from": CUSTOMER_NUMBER, "to": CARE_NUMBER, "body": "x" * 1601}, "at most 1600"),
    ],
)
async def test_sms_fields_are_validated(
    make_care: MakeCare, message: dict[str, object], field: str
) -> None:
    client = await make_care()
    body = await json_of(await client.post("/sms/v1/messages", json=message), 400)
    assert field in body["detail"]
    assert (await client.get("/sms/v1/messages/SM00")).status == 404


# --- push ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [{"ticket": "T-000042", "deep_link": "care://bill"}, None])
async def test_push_gets_a_signed_delivery_receipt(
    make_care: MakeCare, receiver: Receiver, data: dict[str, str] | None
) -> None:
    client = await make_care()
    extra = {} if data is None else {"data": data}
    accepted = await send_push(client, **extra)
    assert set(accepted) == {"id", "status"}
    assert PUSH_ID.fullmatch(accepted["id"])
    assert accepted["status"] == "accepted"

    delivery = await receiver.next()
    assert delivery.channel == "push"
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["X-Democare-Signature"] == signature(delivery.body, SECRET)
    receipt = json.loads(delivery.body)
    delivered_at = datetime.fromisoformat(receipt.pop("delivered_at"))
    assert delivered_at.tzinfo == UTC
    assert receipt == {
        "id": accepted["id"],
        "status": "delivered",
        "device_token": "tok-123",
        "data": data,
    }


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ({"data": ["not", "an", "object"]}, "'data' must be a JSON object"),
        ({"title": 7}, "'title' must be a string"),
        ({"device_token": ""}, "'device_token' must be a non-empty string"),
    ],
)
async def test_push_fields_are_validated(
    make_care: MakeCare, extra: dict[str, object], detail: str
) -> None:
    client = await make_care()
    notification = {"device_token": "tok", "title": "t", "body": "b", **extra}
    body = await json_of(await client.post("/push/v1/send", json=notification), 400)
    assert detail in body["detail"]


# --- reply faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["sms", "push"])
async def test_no_reply_accepts_the_send_but_never_delivers(
    make_care: MakeCare, receiver: Receiver, channel: str
) -> None:
    client = await make_care()
    await set_fault(client, channel=channel, mode="no_reply")
    accepted = await (send_sms(client) if channel == "sms" else send_push(client))
    assert accepted["status"] in {"queued", "accepted"}
    await receiver.assert_quiet(QUIET_S)
    assert await json_of(await client.get("/_deliveries"), 200) == {
        "pending": 0,
        "dropped": 0,
        "attempts": [],
    }


@pytest.mark.parametrize("channel", ["sms", "push"])
async def test_late_reply_delivers_after_the_delay(
    make_care: MakeCare, receiver: Receiver, channel: str
) -> None:
    client = await make_care()
    faults = await json_of(
        await client.post(
            "/_faults", json={"channel": channel, "mode": "late_reply", "delay_ms": LATE_MS}
        ),
        200,
    )
    assert faults["faults"] == [
        {"channel": channel, "mode": "late_reply", "path": None, "delay_ms": LATE_MS}
    ]
    sent_at = asyncio.get_running_loop().time()
    await (send_sms(client) if channel == "sms" else send_push(client))
    delivery = await receiver.next(wait_s=5)
    assert delivery.channel == channel
    assert delivery.at - sent_at >= LATE_MS / 1000


async def test_late_reply_defaults_to_ten_seconds(make_care: MakeCare) -> None:
    client = await make_care()
    body = await json_of(
        await client.post("/_faults", json={"channel": "email", "mode": "late_reply"}), 200
    )
    assert body["faults"][0]["delay_ms"] == 10_000


async def test_request_faults_hit_the_sms_and_push_endpoints(
    make_care: MakeCare, receiver: Receiver
) -> None:
    client = await make_care()
    await set_fault(client, channel="sms", mode="error", status=502)
    await set_fault(client, channel="push", mode="down")
    message = {"from": CUSTOMER_NUMBER, "to": CARE_NUMBER, "body": "hi"}
    response = await client.post("/sms/v1/messages", json=message)
    assert await json_of(response, 502) == {"error": "injected_fault", "channel": "sms"}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.post("/push/v1/send", json={"device_token": "t", "title": "t", "body": "b"})
    await receiver.assert_quiet(0.5)


# --- webhooks and deliveries --------------------------------------------------------------------


async def test_webhooks_are_listed_and_changed_at_run_time(
    make_care: MakeCare, receiver: Receiver
) -> None:
    client = await make_care(webhooks={})
    assert await json_of(await client.get("/_webhooks"), 200) == {
        "sms": None,
        "push": None,
        "email": None,
    }
    await send_push(client)
    await asyncio.sleep(0.4)
    deliveries = await json_of(await client.get("/_deliveries"), 200)
    assert [(a["target"], a["status"], a["error"]) for a in deliveries["attempts"]] == [
        (None, None, "no push webhook configured")
    ]

    urls = {"push": receiver.url("push"), "sms": "http://localhost:1/sms"}
    listed = await json_of(await client.put("/_webhooks", json=urls), 200)
    assert listed == {**urls, "email": None}
    listed = await json_of(await client.put("/_webhooks", json={"sms": None}), 200)
    assert listed == {"sms": None, "push": receiver.url("push"), "email": None}
    await send_push(client)
    assert (await receiver.next()).channel == "push"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"sms": "http://example.com/sms"}, "must point at loopback"),
        ({"sms": "http://10.0.0.1/sms"}, "must point at loopback"),
        ({"sms": "http://[::2]/sms"}, "must point at loopback"),
        ({"sms": "ftp://127.0.0.1/sms"}, "http:// or https://"),
        ({"sms": 12}, "must be a URL string"),
        ({"fax": "http://127.0.0.1/fax"}, "must be one of: sms, push, email"),
        ({"push": "http://127.0.0.1/p", "sms": "http://8.8.8.8/s"}, "must point at loopback"),
    ],
)
async def test_webhooks_must_be_loopback_urls(
    make_care: MakeCare, change: dict[str, object], detail: str
) -> None:
    client = await make_care(webhooks={})
    body = await json_of(await client.put("/_webhooks", json=change), 400)
    assert detail in body["detail"]
    assert await json_of(await client.get("/_webhooks"), 200) == {
        "sms": None,
        "push": None,
        "email": None,
    }


@pytest.mark.parametrize(
    "url", ["http://127.0.0.2:9/x", "https://localhost/x", "http://[::1]:9000/x"]
)
def test_loopback_webhooks_are_accepted_at_creation(url: str) -> None:
    create_app(webhooks={"sms": url})


def test_bad_webhooks_are_refused_at_creation_and_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ValueError, match="loopback"):
        create_app(webhooks={"sms": "http://192.168.1.10/sms"})
    with pytest.raises(ValueError, match="secret"):
        create_app(webhook_secret="")
    for bad in ("sms=http://example.com/x", "fax=http://127.0.0.1/x", "http://127.0.0.1/x"):
        with pytest.raises(SystemExit) as exited:
            main(["--webhook", bad, "--smtp-listen", "off"])
        assert exited.value.code == 2
    errors = capsys.readouterr().err
    assert "must point at loopback" in errors
    assert "must be one of: sms, push, email" in errors
    assert "expected CHANNEL=URL" in errors


async def test_a_down_webhook_is_retried_recorded_and_survived(
    make_care: MakeCare, unused_tcp_port: int
) -> None:
    down = f"http://127.0.0.1:{unused_tcp_port}/sms"
    client = await make_care(webhooks={"sms": down})
    accepted = await send_sms(client)
    deliveries: dict[str, Any] = {}
    for _ in range(40):
        await asyncio.sleep(0.1)
        deliveries = await json_of(await client.get("/_deliveries"), 200)
        if deliveries["pending"] == 0 and deliveries["attempts"]:
            break
    attempts = deliveries["attempts"]
    assert [attempt["attempt"] for attempt in attempts] == [3, 2, 1]
    assert {attempt["target"] for attempt in attempts} == {down}
    assert all(a["status"] is None and "ClientConnectorError" in a["error"] for a in attempts)
    assert len({attempt["delivery_id"] for attempt in attempts}) == 1
    assert await json_of(await client.get("/healthz"), 200) == {"status": "ok"}
    message = await json_of(await client.get(f"/sms/v1/messages/{accepted['id']}"), 200)
    assert message["status"] == "sent"


async def test_server_errors_are_retried_and_client_errors_are_not(
    make_care: MakeCare, receiver: Receiver
) -> None:
    client = await make_care()
    receiver.statuses = [500, 503, 200, 400]
    accepted = await send_sms(client)
    deliveries = [await receiver.next() for _ in range(3)]
    assert len({delivery.body for delivery in deliveries}) == 1
    await asyncio.sleep(0.05)
    message = await json_of(await client.get(f"/sms/v1/messages/{accepted['id']}"), 200)
    assert message["status"] == "replied"

    await send_push(client)
    await receiver.next()
    await receiver.assert_quiet(QUIET_S)
    attempts = (await json_of(await client.get("/_deliveries"), 200))["attempts"]
    assert [(a["channel"], a["attempt"], a["status"]) for a in attempts] == [
        ("push", 1, 400),
        ("sms", 3, 200),
        ("sms", 2, 503),
        ("sms", 1, 500),
    ]


async def test_pending_deliveries_are_bounded_and_overflow_is_counted(
    make_care: MakeCare, receiver: Receiver
) -> None:
    client = await make_care(limits=replace(DEFAULT_LIMITS, max_pending_deliveries=2))
    # Still pending when the test ends: the app's cleanup must cancel them quietly.
    await set_fault(client, channel="push", mode="late_reply", delay_ms=30_000)
    accepted = [await send_push(client) for _ in range(3)]
    assert len({notification["id"] for notification in accepted}) == 3
    deliveries = await json_of(await client.get("/_deliveries"), 200)
    assert (deliveries["pending"], deliveries["dropped"]) == (2, 1)
    await receiver.assert_quiet(0.3)


async def test_the_delivery_log_keeps_the_newest_attempts(
    make_care: MakeCare, receiver: Receiver
) -> None:
    client = await make_care(limits=replace(DEFAULT_LIMITS, max_delivery_log=2))
    for _ in range(3):
        await send_push(client)
    ids = [json.loads((await receiver.next()).body)["id"] for _ in range(3)]
    await asyncio.sleep(0.05)
    deliveries = await json_of(await client.get("/_deliveries"), 200)
    assert deliveries["pending"] == 0
    assert len(deliveries["attempts"]) == 2
    assert len(set(ids)) == 3
    newest = deliveries["attempts"][0]
    assert set(newest) == {"delivery_id", "channel", "target", "attempt", "status", "error", "at"}
    assert (newest["channel"], newest["status"], newest["error"]) == ("push", 200, None)
    assert newest["target"] == receiver.url("push")
