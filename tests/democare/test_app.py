"""democare served on loopback by aiohttp's test server, driven by a real aiohttp client."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from democare import create_app
from democare.__main__ import main
from democare._app import build_app
from democare._channels import Channel, channel_of
from democare._server import ListenAddress, parse_listen
from democare._state import DEFAULT_LIMITS, Limits
from tests._support.timing import CLOCK_SLACK

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]

DEMO_USERNAME: Final = "demo@carewatch.example"
DEMO_PASSWORD: Final = "demo-password"
DEMO_CUSTOMER_ID: Final = "C-10001"
INVALID_CREDENTIALS: Final = "invalid_credentials"
AGENT_HEADERS: Final = {"X-Agent-Key": "demo-agent-key"}
PARIS: Final = {"lat": "48.8566", "lon": "2.3522"}
STORE_FIELDS: Final = {"id", "name", "address", "lat", "lon", "distance_km", "open_now", "services"}
LYON_STORES: Final = {"S-11", "S-12", "S-13"}
SEED: Final = 7
MAX_BODY_BYTES: Final = 64 * 1024
REQUEST_ID: Final = re.compile(r"^[0-9a-f]{32}$")
REPO_ROOT: Final = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S: Final = 10.0
SHUTDOWN_TIMEOUT_S: Final = 5.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
async def make_client(aiohttp_client: Any) -> MakeClient:
    async def make(app: web.Application) -> Client:
        client: Client = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(create_app(seed=SEED))


async def json_of(response: aiohttp.ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def login(client: Client, username: str = DEMO_USERNAME) -> tuple[str, str]:
    response = await client.post(
        "/app/v1/login", json={"username": username, "password": DEMO_PASSWORD}
    )
    body = await json_of(response, 200)
    return body["token"], body["customer_id"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def open_ticket(client: Client, token: str, subject: str = "No mobile data") -> Any:
    response = await client.post(
        "/app/v1/tickets",
        json={"subject": subject, "body": "Since this morning, 4G only.", "category": "network"},
        headers=bearer(token),
    )
    return await json_of(response, 201)


async def agent_context(client: Client, customer_id: str) -> Any:
    response = await client.get(f"/agent/v1/customers/{customer_id}/context", headers=AGENT_HEADERS)
    return await json_of(response, 200)


async def set_fault(client: Client, **spec: object) -> list[dict[str, object]]:
    body = await json_of(await client.post("/_faults", json=spec), 200)
    faults: list[dict[str, object]] = body["faults"]
    return faults


# --- app and agent channels -------------------------------------------------------------------


async def test_ticket_opened_in_app_shows_in_agent_console_until_closed(client: Client) -> None:
    token, customer_id = await login(client)
    assert customer_id == DEMO_CUSTOMER_ID

    account = await json_of(await client.get("/app/v1/account", headers=bearer(token)), 200)
    assert account["customer_id"] == DEMO_CUSTOMER_ID
    assert account["balance"]["currency"] == "EUR"
    assert isinstance(account["balance"]["amount"], float)
    assert account["msisdn"].startswith("+33")

    opened = await open_ticket(client, token)
    assert re.fullmatch(r"T-\d{6}", opened["id"])
    assert opened["status"] == "open"
    assert opened["category"] == "network"
    assert datetime.fromisoformat(opened["created_at"]).tzinfo == UTC

    context = await agent_context(client, customer_id)
    assert context["open_tickets"] == 1
    assert context["recent"] == [
        {
            "type": "ticket",
            "id": opened["id"],
            "subject": "No mobile data",
            "status": "open",
            "channel": "app",
            "at": opened["created_at"],
        }
    ]

    fetched = await json_of(
        await client.get(f"/app/v1/tickets/{opened['id']}", headers=bearer(token)), 200
    )
    assert fetched == {**opened, "updated_at": opened["created_at"]}

    close_path = f"/app/v1/tickets/{opened['id']}/close"
    closed = await json_of(await client.post(close_path, headers=bearer(token)), 200)
    assert closed["status"] == "closed"
    closed_again = await json_of(await client.post(close_path, headers=bearer(token)), 200)
    assert closed_again == closed

    context = await agent_context(client, customer_id)
    assert context["open_tickets"] == 0
    assert [entry["status"] for entry in context["recent"]] == ["closed"]


async def test_each_demo_address_is_its_own_customer(client: Client) -> None:
    alice_token, alice = await login(client, "alice.durand@carewatch.example")
    _, alice_again = await login(client, "Alice.Durand@carewatch.example")
    bob_token, bob = await login(client, "bob@carewatch.example")
    assert alice == alice_again
    assert len({alice, bob, DEMO_CUSTOMER_ID}) == 3

    account = await json_of(await client.get("/app/v1/account", headers=bearer(alice_token)), 200)
    assert account["name"] == "Alice Durand"

    ticket = await open_ticket(client, alice_token)
    for method, path in (
        ("GET", f"/app/v1/tickets/{ticket['id']}"),
        ("POST", f"/app/v1/tickets/{ticket['id']}/close"),
    ):
        response = await client.request(method, path, headers=bearer(bob_token))
        assert await json_of(response, 404) == {"error": "not_found"}
    assert (await agent_context(client, bob))["recent"] == []
    assert (await agent_context(client, alice))["open_tickets"] == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"username": DEMO_USERNAME, "password": "wrong"}, 401, INVALID_CREDENTIALS),
        (
            {"username": "demo@elsewhere.example", "password": DEMO_PASSWORD},
            401,
            INVALID_CREDENTIALS,
        ),
        ({"username": "@carewatch.example", "password": DEMO_PASSWORD}, 401, INVALID_CREDENTIALS),
        ({"username": DEMO_USERNAME}, 401, INVALID_CREDENTIALS),
        ({}, 401, INVALID_CREDENTIALS),
        ({"username": DEMO_USERNAME, "password": 12345}, 400, "bad_request"),
        (["not", "an", "object"], 400, "bad_request"),
    ],
)
async def test_login_rejects_bad_credentials(
    client: Client, body: object, status: int, error: str
) -> None:
    response = await client.post("/app/v1/login", json=body)
    assert (await json_of(response, status))["error"] == error


async def test_login_rejects_a_body_that_is_not_json(client: Client) -> None:
    response = await client.post("/app/v1/login", data=b"username=demo")
    body = await json_of(response, 400)
    assert body["error"] == "bad_request"
    assert "JSON" in body["detail"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic ZGVtbzpkZW1v"}, {"Authorization": "Bearer"}, bearer("forged")],
)
async def test_app_needs_a_valid_bearer_token(client: Client, headers: dict[str, str]) -> None:
    for response in (
        await client.get("/app/v1/account", headers=headers),
        await client.post("/app/v1/tickets", json={"subject": "x", "body": "y"}, headers=headers),
    ):
        assert await json_of(response, 401) == {"error": "unauthorized"}


async def test_tokens_expire_after_an_hour(make_client: MakeClient) -> None:
    clock = FakeClock(datetime(2025, 6, 2, 9, 0, tzinfo=UTC))
    client = await make_client(build_app(seed=SEED, clock=clock))
    response = await client.post(
        "/app/v1/login", json={"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    )
    session = await json_of(response, 200)
    assert session["expires_in"] == 3600

    clock.advance(timedelta(seconds=3599))
    await json_of(await client.get("/app/v1/account", headers=bearer(session["token"])), 200)
    clock.advance(timedelta(seconds=1))
    response = await client.get("/app/v1/account", headers=bearer(session["token"]))
    assert await json_of(response, 401) == {"error": "unauthorized"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"body": "no subject"}, "subject"),
        ({"subject": "   ", "body": "blank subject"}, "subject"),
        ({"subject": "ok", "body": 42}, "body"),
        ({"subject": "ok", "body": "ok", "category": ["network"]}, "category"),
    ],
)
async def test_ticket_fields_are_validated(client: Client, body: object, field: str) -> None:
    token, _ = await login(client)
    response = await client.post("/app/v1/tickets", json=body, headers=bearer(token))
    error = await json_of(response, 400)
    assert error["error"] == "bad_request"
    assert f"'{field}'" in error["detail"]


async def test_unknown_ticket_is_not_found(client: Client) -> None:
    token, _ = await login(client)
    response = await client.get("/app/v1/tickets/T-999999", headers=bearer(token))
    assert await json_of(response, 404) == {"error": "not_found"}


async def test_agent_console_needs_the_key_and_a_known_customer(client: Client) -> None:
    path = f"/agent/v1/customers/{DEMO_CUSTOMER_ID}/context"
    for headers in ({}, {"X-Agent-Key": "guess"}):
        response = await client.get(path, headers=headers)
        assert await json_of(response, 401) == {"error": "unauthorized"}
    response = await client.get("/agent/v1/customers/C-00000/context", headers=AGENT_HEADERS)
    assert await json_of(response, 404) == {"error": "not_found"}
    context = await agent_context(client, DEMO_CUSTOMER_ID)
    assert context == {
        "customer_id": DEMO_CUSTOMER_ID,
        "name": "Camille Martin",
        "open_tickets": 0,
        "recent": [],
    }


async def test_agent_context_lists_the_20_newest_tickets(client: Client) -> None:
    token, customer_id = await login(client)
    opened = [(await open_ticket(client, token, f"Issue {n}"))["id"] for n in range(25)]
    context = await agent_context(client, customer_id)
    assert context["open_tickets"] == 25
    assert [entry["id"] for entry in context["recent"]] == opened[::-1][:20]


# --- self_service channel ---------------------------------------------------------------------


async def test_help_search_ranks_title_matches_first(client: Client) -> None:
    response = await client.get("/help/v1/search", params={"q": "roaming", "limit": "2"})
    body = await json_of(response, 200)
    assert body["query"] == "roaming"
    assert body["total"] > 2
    assert [result["id"] for result in body["results"]] == ["KB-101", "KB-102"]
    scores = [result["score"] for result in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert body["results"][0]["url"] == "/help/v1/articles/KB-101"

    response = await client.get("/help/v1/search", params={"q": "roaming outside the EU"})
    assert (await json_of(response, 200))["results"][0]["id"] == "KB-102"
    response = await client.get("/help/v1/search", params={"q": "esim"})
    top = (await json_of(response, 200))["results"][0]
    assert "eSIM" in top["title"]


async def test_help_search_without_matches_is_empty(client: Client) -> None:
    response = await client.get("/help/v1/search", params={"q": "zeppelin"})
    assert await json_of(response, 200) == {"query": "zeppelin", "total": 0, "results": []}


@pytest.mark.parametrize(
    "params",
    [{}, {"q": "  "}, {"q": "bill", "limit": "0"}, {"q": "bill", "limit": "many"}],
)
async def test_help_search_rejects_bad_queries(client: Client, params: dict[str, str]) -> None:
    response = await client.get("/help/v1/search", params=params)
    assert (await json_of(response, 400))["error"] == "bad_request"


async def test_help_article_by_id(client: Client) -> None:
    article = await json_of(await client.get("/help/v1/articles/KB-107"), 200)
    assert set(article) == {"id", "title", "body", "updated_at"}
    assert "stolen" in article["title"].lower()
    response = await client.get("/help/v1/articles/KB-999")
    assert await json_of(response, 404) == {"error": "not_found"}


# --- locator channel --------------------------------------------------------------------------


async def test_nearby_stores_are_sorted_by_distance_within_the_radius(client: Client) -> None:
    response = await client.get("/stores/v1/nearby", params={**PARIS, "limit": "50"})
    body = await json_of(response, 200)
    distances = [store["distance_km"] for store in body["stores"]]
    assert body["count"] == len(body["stores"]) == 9
    assert distances == sorted(distances)
    assert all(distance <= 10 for distance in distances)
    assert body["stores"][0]["id"] == "S-01"
    assert "S-09" in {store["id"] for store in body["stores"]}  # La Défense, 9.2 km
    assert set(body["stores"][0]) == STORE_FIELDS

    response = await client.get("/stores/v1/nearby", params={**PARIS, "radius_km": "20"})
    wider = await json_of(response, 200)
    assert "S-10" in {store["id"] for store in wider["stores"]}  # Versailles, 17.3 km

    response = await client.get("/stores/v1/nearby", params={**PARIS, "limit": "3"})
    assert (await json_of(response, 200))["count"] == 3

    lyon = {"lat": "45.7640", "lon": "4.8357", "radius_km": "5"}
    response = await client.get("/stores/v1/nearby", params=lyon)
    assert {store["id"] for store in (await json_of(response, 200))["stores"]} == LYON_STORES


async def test_open_now_follows_paris_opening_hours(make_client: MakeClient) -> None:
    sunday_noon_in_paris = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    client = await make_client(build_app(clock=FakeClock(sunday_noon_in_paris)))
    response = await client.get("/stores/v1/nearby", params={**PARIS, "limit": "50"})
    open_now = {
        store["id"]: store["open_now"] for store in (await json_of(response, 200))["stores"]
    }
    assert open_now["S-01"] is True  # a mall, open on Sundays
    assert open_now["S-04"] is False  # a high-street shop, closed on Sundays


@pytest.mark.parametrize(
    "params",
    [
        {"lon": "2.35"},
        {"lat": "48.85"},
        {"lat": "north", "lon": "2.35"},
        {"lat": "91", "lon": "2.35"},
        {"lat": "48.85", "lon": "nan"},
        {**PARIS, "radius_km": "-1"},
        {**PARIS, "limit": "0"},
    ],
)
async def test_nearby_rejects_bad_coordinates(client: Client, params: dict[str, str]) -> None:
    response = await client.get("/stores/v1/nearby", params=params)
    assert (await json_of(response, 400))["error"] == "bad_request"


# --- fault injection --------------------------------------------------------------------------


async def test_down_drops_the_connection_without_an_answer(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    await set_fault(client, channel="locator", mode="down")
    with caplog.at_level(logging.WARNING):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await client.get("/stores/v1/nearby", params=PARIS)
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await client.post("/stores/v1/nearby", data=b"x" * 1024)
        await json_of(await client.get("/help/v1/search", params={"q": "bill"}), 200)
    assert [record.getMessage() for record in caplog.records] == []


async def test_slow_answers_after_the_delay(client: Client) -> None:
    await set_fault(client, channel="self_service", mode="slow", delay_ms=300)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await json_of(await client.get("/help/v1/articles/KB-101"), 200)
    assert loop.time() - started >= 0.3 - CLOCK_SLACK
    started = loop.time()
    await json_of(await client.get("/stores/v1/nearby", params=PARIS), 200)
    assert loop.time() - started < 0.3


async def test_error_answers_the_injected_status(client: Client) -> None:
    faults = await set_fault(client, channel="agent", mode="error", status=502)
    assert faults == [{"channel": "agent", "mode": "error", "path": None, "status": 502}]
    response = await client.get(
        f"/agent/v1/customers/{DEMO_CUSTOMER_ID}/context", headers=AGENT_HEADERS
    )
    assert await json_of(response, 502) == {"error": "injected_fault", "channel": "agent"}


@pytest.mark.parametrize(("ratio", "expected"), [(0, {200}), (1, {503})])
async def test_flaky_with_ratio_0_never_fails_and_1_always_fails(
    client: Client, ratio: float, expected: set[int]
) -> None:
    await set_fault(client, channel="self_service", mode="flaky", ratio=ratio)
    statuses = set()
    for _ in range(20):
        response = await client.get("/help/v1/articles/KB-101")
        statuses.add(response.status)
    assert statuses == expected


async def test_flaky_repeats_the_same_failures_for_the_same_seed(make_client: MakeClient) -> None:
    patterns = []
    for _ in range(2):
        client = await make_client(create_app(seed=SEED))
        await set_fault(client, channel="self_service", mode="flaky", ratio=0.5, status=500)
        patterns.append([(await client.get("/help/v1/articles/KB-101")).status for _ in range(30)])
    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {200, 500}


async def test_garbage_is_labelled_json_but_is_not(client: Client) -> None:
    await set_fault(client, channel="app", mode="garbage")
    response = await client.post(
        "/app/v1/login", json={"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    )
    assert response.status == 200
    assert response.content_type == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(await response.text())


async def test_a_path_narrows_the_fault_and_the_most_specific_wins(client: Client) -> None:
    token, _ = await login(client)
    await set_fault(client, channel="app", mode="error", path="/app/v1/tickets/", status=502)
    await json_of(await client.get("/app/v1/account", headers=bearer(token)), 200)
    for response in (
        await client.post("/app/v1/tickets", json={}, headers=bearer(token)),
        await client.get("/app/v1/tickets/T-000001", headers=bearer(token)),
    ):
        assert response.status == 502

    faults = await set_fault(client, channel="app", mode="error", status=500)
    assert [(fault["path"], fault["status"]) for fault in faults] == [
        (None, 500),
        ("/app/v1/tickets", 502),
    ]
    assert (await client.get("/app/v1/account", headers=bearer(token))).status == 500
    assert (await client.get("/app/v1/tickets/T-1", headers=bearer(token))).status == 502


async def test_a_counted_fault_hits_that_many_requests_then_lifts_itself(client: Client) -> None:
    token, _ = await login(client)
    faults = await set_fault(client, channel="app", mode="error", path="/app/v1/account", count=2)
    assert faults == [
        {"channel": "app", "mode": "error", "path": "/app/v1/account", "status": 503, "count": 2}
    ]
    assert (await client.get("/app/v1/account", headers=bearer(token))).status == 503
    await login(client)  # outside its path: neither hit nor spent
    listed = await json_of(await client.get("/_faults"), 200)
    assert [fault["count"] for fault in listed["faults"]] == [1]
    assert (await client.get("/app/v1/account", headers=bearer(token))).status == 503

    assert await json_of(await client.get("/_faults"), 200) == {"faults": []}
    await json_of(await client.get("/app/v1/account", headers=bearer(token)), 200)


async def test_a_counted_flaky_fault_spends_only_the_requests_it_fails(
    make_client: MakeClient,
) -> None:
    client = await make_client(create_app(seed=SEED))
    await set_fault(client, channel="self_service", mode="flaky", ratio=0.5, count=3)
    statuses = [(await client.get("/help/v1/articles/KB-101")).status for _ in range(40)]
    last_failure = max(i for i, status in enumerate(statuses) if status == 503)
    assert statuses.count(503) == 3
    assert 200 in statuses[:last_failure]  # the answers it let through spent nothing
    assert await json_of(await client.get("/_faults"), 200) == {"faults": []}


async def test_a_new_fault_replaces_the_one_on_the_same_channel_and_path(client: Client) -> None:
    await set_fault(client, channel="locator", mode="error")
    faults = await set_fault(client, channel="locator", mode="slow", delay_ms=10)
    assert faults == [{"channel": "locator", "mode": "slow", "path": None, "delay_ms": 10}]
    await json_of(await client.get("/stores/v1/nearby", params=PARIS), 200)


async def test_faults_are_deleted_by_channel_or_all_at_once(client: Client) -> None:
    await set_fault(client, channel="app", mode="error")
    await set_fault(client, channel="agent", mode="error")
    listed = await json_of(await client.get("/_faults"), 200)
    assert {fault["channel"] for fault in listed["faults"]} == {"app", "agent"}

    remaining = await json_of(await client.delete("/_faults", params={"channel": "app"}), 200)
    assert [fault["channel"] for fault in remaining["faults"]] == ["agent"]
    await login(client)

    assert await json_of(await client.delete("/_faults"), 200) == {"faults": []}
    await agent_context(client, DEMO_CUSTOMER_ID)


async def test_faults_never_touch_healthz_or_the_operator_endpoints(client: Client) -> None:
    for channel in Channel:
        await set_fault(client, channel=channel.value, mode="down")
    assert await json_of(await client.get("/healthz"), 200) == {"status": "ok"}
    assert len((await json_of(await client.get("/_faults"), 200))["faults"]) == len(Channel)
    await json_of(await client.get("/_webhooks"), 200)
    await json_of(await client.put("/_webhooks", json={}), 200)
    await json_of(await client.get("/_deliveries"), 200)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"channel": "fax", "mode": "down"}, "app, self_service, locator, agent, chat, sms"),
        ({"mode": "down"}, "'channel' is required"),
        ({"channel": "app", "mode": "broken"}, "down, slow, error, flaky, garbage"),
        ({"channel": "app", "mode": "down", "colour": "red"}, "allowed: channel, mode, path"),
        (
            {"channel": "app", "mode": "error", "delay_ms": 10},
            "only applies to mode 'late_reply' or 'slow'",
        ),
        ({"channel": "app", "mode": "no_reply"}, "does not apply to channel 'app'"),
        ({"channel": "voice", "mode": "late_reply"}, "chat, email, push, sms"),
        ({"channel": "video", "mode": "no_reply"}, "whose modes are: down, slow, error"),
        ({"channel": "sms", "mode": "no_reply", "delay_ms": 10}, "'delay_ms' only applies"),
        ({"channel": "chat", "mode": "late_reply", "delay_ms": 60_001}, "from 0 to 60000"),
        ({"channel": "app", "mode": "slow", "delay_ms": "10"}, "'delay_ms' must be an integer"),
        ({"channel": "app", "mode": "slow", "delay_ms": -1}, "'delay_ms' must be an integer"),
        ({"channel": "app", "mode": "error", "status": 200}, "from 400 to 599"),
        ({"channel": "app", "mode": "flaky", "ratio": 1.5}, "'ratio' must be a number"),
        ({"channel": "app", "mode": "flaky", "ratio": True}, "'ratio' must be a number"),
        ({"channel": "app", "mode": "down", "path": "/help/v1"}, "under '/app/'"),
        ({"channel": "app", "mode": "error", "count": 0}, "'count' must be an integer from 1"),
        ({"channel": "app", "mode": "error", "count": 1001}, "from 1 to 1000"),
        ({"channel": "sms", "mode": "no_reply", "count": 1}, "'count' only applies to mode"),
        ({"channel": "email", "mode": "error", "count": 1}, "not apply to channel 'email'"),
    ],
)
async def test_fault_specs_are_validated_strictly(
    client: Client, spec: dict[str, object], message: str
) -> None:
    body = await json_of(await client.post("/_faults", json=spec), 400)
    assert body["error"] == "bad_request"
    assert message in body["detail"]
    assert await json_of(await client.get("/_faults"), 200) == {"faults": []}


async def test_fault_api_rejects_bad_bodies_and_queries(client: Client) -> None:
    assert (await client.post("/_faults", data=b"{down")).status == 400
    assert (await client.post("/_faults", json=["app", "down"])).status == 400
    body = await json_of(await client.delete("/_faults", params={"channel": "fax"}), 400)
    assert "app, self_service" in body["detail"]
    body = await json_of(await client.delete("/_faults", params={"mode": "down"}), 400)
    assert "allowed: channel" in body["detail"]


# --- limits and cross-cutting behaviour -------------------------------------------------------


async def test_the_oldest_tickets_are_forgotten_first(make_client: MakeClient) -> None:
    client = await make_client(build_app(limits=replace(DEFAULT_LIMITS, max_tickets=3)))
    token, customer_id = await login(client)
    opened = [(await open_ticket(client, token, f"Issue {n}"))["id"] for n in range(4)]

    response = await client.get(f"/app/v1/tickets/{opened[0]}", headers=bearer(token))
    assert response.status == 404
    await json_of(await client.get(f"/app/v1/tickets/{opened[1]}", headers=bearer(token)), 200)
    context = await agent_context(client, customer_id)
    assert context["open_tickets"] == 3
    assert [entry["id"] for entry in context["recent"]] == opened[:0:-1]


async def test_the_oldest_tokens_are_forgotten_first(make_client: MakeClient) -> None:
    client = await make_client(build_app(limits=Limits(max_sessions=2)))
    tokens = [(await login(client))[0] for _ in range(3)]
    statuses = [
        (await client.get("/app/v1/account", headers=bearer(token))).status for token in tokens
    ]
    assert statuses == [401, 200, 200]


async def test_bodies_over_64_kib_are_refused(client: Client) -> None:
    oversized = json.dumps({"username": "x" * MAX_BODY_BYTES, "password": "y"}).encode()
    response = await client.post("/app/v1/login", data=oversized)
    assert (await json_of(response, 413))["error"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * MAX_BODY_BYTES

    response = await client.post("/app/v1/login", data=chunks())
    assert (await json_of(response, 413))["error"] == "payload_too_large"

    padded = {"username": DEMO_USERNAME, "password": "wrong", "pad": "x" * (MAX_BODY_BYTES - 200)}
    response = await client.post("/app/v1/login", json=padded)
    assert (await json_of(response, 401))["error"] == INVALID_CREDENTIALS


async def test_every_answer_is_json_with_a_request_id(client: Client) -> None:
    await set_fault(client, channel="agent", mode="error")
    responses = [
        await client.get("/healthz"),
        await client.get("/no/such/path"),
        await client.delete("/healthz"),
        await client.post("/app/v1/login", data=b"x" * (MAX_BODY_BYTES + 1)),
        await client.get("/agent/v1/customers/C-10001/context"),
    ]
    assert [response.status for response in responses] == [200, 404, 405, 413, 503]
    request_ids = {response.headers["X-Request-Id"] for response in responses}
    assert len(request_ids) == len(responses)
    assert all(REQUEST_ID.match(request_id) for request_id in request_ids)
    assert all(response.content_type == "application/json" for response in responses)
    assert await responses[1].json() == {"error": "not_found"}
    assert await responses[2].json() == {"error": "method_not_allowed"}


def test_every_channel_endpoint_lives_under_its_channel_prefix() -> None:
    paths = {resource.canonical for resource in create_app().router.resources()}
    assert {path for path in paths if channel_of(path) is None} == {
        "/healthz",
        "/_faults",
        "/_webhooks",
        "/_deliveries",
    }
    assert {channel_of(path) for path in paths} == {*Channel, None}


# --- command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8900", ListenAddress("127.0.0.1", 8900)),
        ("[::1]:8901", ListenAddress("::1", 8901)),
        ("localhost:0", ListenAddress("localhost", 0)),
    ],
)
def test_listen_addresses_are_parsed(value: str, expected: ListenAddress) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize(
    "value", ["8900", "127.0.0.1", ":8900", "::1:8900", "host:http", "h:70000"]
)
def test_malformed_listen_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="PORT"):
        parse_listen(value)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _wait_until_healthy(session: aiohttp.ClientSession, base_url: str, process: Any) -> None:
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_S
    while True:
        try:
            async with session.get(f"{base_url}/healthz") as response:
                assert await response.json() == {"status": "ok"}
                return
        except aiohttp.ClientConnectionError:
            assert process.returncode is None, "democare exited before serving"
            assert asyncio.get_running_loop().time() < deadline, "democare never served"
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_cli_serves_until_a_stop_signal_and_exits_0(
    stop_signal: signal.Signals, tmp_path: Path
) -> None:
    port, smtp_port = _free_port(), _free_port()
    base_url = f"http://127.0.0.1:{port}"
    cert = tmp_path / "smtp-ca.pem"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "democare",
        "--listen",
        f"127.0.0.1:{port}",
        "--seed",
        str(SEED),
        "--smtp-listen",
        f"127.0.0.1:{smtp_port}",
        "--smtp-cert-out",
        str(cert),
        "--webhook",
        "sms=http://127.0.0.1:9/sms",
        cwd=REPO_ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_until_healthy(session, base_url, process)
            async with session.get(f"{base_url}/email/v1/tls-ca") as response:
                assert await response.text() == cert.read_text()
            async with session.get(f"{base_url}/_webhooks") as response:
                assert (await response.json())["sms"] == "http://127.0.0.1:9/sms"
            _, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
            writer.close()
            # A request stuck in a slow fault must not hold up the exit.
            fault = {"channel": "app", "mode": "slow", "delay_ms": 60_000}
            async with session.post(f"{base_url}/_faults", json=fault) as response:
                assert response.status == 200
            stuck = asyncio.ensure_future(session.get(f"{base_url}/app/v1/account"))
            await asyncio.sleep(0.2)
            process.send_signal(stop_signal)
            assert await asyncio.wait_for(process.wait(), SHUTDOWN_TIMEOUT_S) == 0
            with pytest.raises(aiohttp.ClientConnectionError):
                await stuck
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert f"democare listening on {base_url}" in log


def test_cli_exits_1_when_the_smtp_address_is_taken(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        smtp_port = taken.getsockname()[1]
        argv = ["--listen", "127.0.0.1:0", "--smtp-listen", f"127.0.0.1:{smtp_port}"]
        assert main(argv) == 1
    assert "cannot start" in caplog.text
    assert "address already in use" in caplog.text


def test_cli_rejects_a_bad_smtp_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--smtp-listen", "nowhere"])
    assert exited.value.code == 2
    assert "HOST:PORT" in capsys.readouterr().err
