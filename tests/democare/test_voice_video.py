"""Voice call-backs and video sessions, alone and attached to a chat handover's context."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import pytest

from democare._app import build_app
from democare._voice_callbacks import next_slot

if TYPE_CHECKING:
    from conftest import Client, MakeCare

AGENT_HEADERS: Final = {"X-Agent-Key": "demo-agent-key"}
MSISDN: Final = "+33612345678"
CALLBACK_ID: Final = re.compile(r"CB-[0-9a-f]{16}")
SESSION_ID: Final = re.compile(r"VS-[0-9a-f]{16}")
START: Final = datetime(2025, 6, 2, 9, 3, 20, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def json_of(response: aiohttp.ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def handover(client: Client) -> str:
    """A chat escalated to an agent; its context id."""
    socket = await client.ws_connect("/chat/v1/ws")
    await socket.receive_json()
    await socket.send_json({"type": "message", "text": "I need an agent about my esim"})
    context_id: str = (await socket.receive_json())["context_id"]
    await socket.close()
    return context_id


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        ("09:03:20", "09:15:00"),
        ("09:05:00", "09:15:00"),
        ("09:05:00.001", "09:30:00"),
        ("09:50:00", "10:00:00"),
        ("23:55:00", "00:15:00"),
    ],
)
def test_the_slot_is_the_next_quarter_hour_at_least_ten_minutes_away(now: str, slot: str) -> None:
    moment = datetime.fromisoformat(f"2025-06-02T{now}+00:00")
    assert next_slot(moment).time().isoformat() == slot
    assert next_slot(moment) - moment >= timedelta(minutes=10)


async def test_a_callback_is_scheduled_fetched_and_cancelled(aiohttp_client: Any) -> None:
    client: Client = await aiohttp_client(build_app(clock=FakeClock(START)))
    request = {"msisdn": MSISDN, "reason": "Roaming bill"}
    scheduled = await json_of(await client.post("/voice/v1/callbacks", json=request), 201)
    assert CALLBACK_ID.fullmatch(scheduled.pop("id"))
    assert scheduled == {
        "status": "scheduled",
        "slot": "2025-06-02T09:15:00.000Z",
        "context_id": None,
        "msisdn": MSISDN,
        "reason": "Roaming bill",
    }
    callback_id = (await json_of(await client.post("/voice/v1/callbacks", json=request), 201))["id"]
    path = f"/voice/v1/callbacks/{callback_id}"
    assert (await json_of(await client.get(path), 200))["status"] == "scheduled"
    cancelled = await json_of(await client.delete(path), 200)
    assert cancelled["status"] == "cancelled"
    assert await json_of(await client.delete(path), 200) == cancelled
    assert await json_of(await client.get(path), 200) == cancelled
    for method in ("GET", "DELETE"):
        response = await client.request(method, "/voice/v1/callbacks/CB-0")
        assert await json_of(response, 404) == {"error": "not_found"}


@pytest.mark.parametrize(
    ("request_body", "status", "detail"),
    [
        ({}, 400, "'msisdn' is required"),
        ({"msisdn": "0612345678"}, 400, "'msisdn' must be an E.164 number"),
        ({"msisdn": MSISDN, "reason": 5}, 400, "'reason' must be a string"),
        ({"msisdn": MSISDN, "context_id": "CTX-0"}, 404, "no handover 'CTX-0'"),
    ],
)
async def test_callback_requests_are_validated(
    make_care: MakeCare, request_body: dict[str, object], status: int, detail: str
) -> None:
    client = await make_care()
    response = await client.post("/voice/v1/callbacks", json=request_body)
    assert detail in (await json_of(response, status))["detail"]


async def test_a_video_session_is_joined_with_its_token_until_it_ends(
    aiohttp_client: Any,
) -> None:
    clock = FakeClock(START)
    client: Client = await aiohttp_client(build_app(clock=clock))
    created = await json_of(await client.post("/video/v1/sessions", json={}), 201)
    assert set(created) == {"session_id", "join_token", "join_url", "expires_at", "context_id"}
    session_id, token = created["session_id"], created["join_token"]
    assert SESSION_ID.fullmatch(session_id)
    assert created["expires_at"] == "2025-06-02T09:18:20.000Z"
    assert created["context_id"] is None
    assert created["join_url"] == f"/video/v1/join/{session_id}?token={token}"

    joined = await json_of(await client.get(created["join_url"]), 200)
    assert joined == {"session_id": session_id, "status": "waiting_for_agent", "context_id": None}
    join_path = f"/video/v1/join/{session_id}"
    for params in ({}, {"token": "wrong"}, {"token": token[:-1]}):
        response = await client.get(join_path, params=params)
        assert (await json_of(response, 403))["error"] == "forbidden"
    assert (await client.get("/video/v1/join/VS-0", params={"token": token})).status == 404

    clock.now = START + timedelta(minutes=15)
    assert (await client.get(created["join_url"])).status == 403
    clock.now = START

    ended = await json_of(await client.delete(f"/video/v1/sessions/{session_id}"), 200)
    assert ended == {**joined, "status": "ended"}
    assert await json_of(await client.delete(f"/video/v1/sessions/{session_id}"), 200) == ended
    response = await client.get(created["join_url"])
    assert await json_of(response, 410) == {"error": "session_ended"}
    assert (await client.delete("/video/v1/sessions/VS-0")).status == 404


async def test_callbacks_and_video_sessions_keep_the_handover_context(
    make_care: MakeCare,
) -> None:
    client = await make_care()
    context_id = await handover(client)
    callback = await json_of(
        await client.post("/voice/v1/callbacks", json={"msisdn": MSISDN, "context_id": context_id}),
        201,
    )
    assert callback["context_id"] == context_id
    video = await json_of(
        await client.post("/video/v1/sessions", json={"context_id": context_id}), 201
    )
    assert video["context_id"] == context_id
    joined = await json_of(await client.get(video["join_url"]), 200)
    assert joined["context_id"] == context_id
    unrelated = await json_of(await client.post("/video/v1/sessions", json={}), 201)
    cancelled = await json_of(await client.delete(f"/voice/v1/callbacks/{callback['id']}"), 200)

    context = await json_of(
        await client.get(f"/agent/v1/handovers/{context_id}", headers=AGENT_HEADERS), 200
    )
    assert context["intent"] == "esim"
    assert context["transcript"][-1] == {
        "from": "customer",
        "text": "I need an agent about my esim",
        "at": context["transcript"][-1]["at"],
    }
    assert context["callbacks"] == [cancelled]
    assert context["video_sessions"] == [
        {
            "session_id": video["session_id"],
            "status": "waiting_for_agent",
            "context_id": context_id,
            "expires_at": video["expires_at"],
        }
    ]
    assert unrelated["session_id"] not in str(context)

    response = await client.post("/video/v1/sessions", json={"context_id": "CTX-0"})
    assert (await json_of(response, 404))["detail"] == "no handover 'CTX-0'"


@pytest.mark.parametrize(
    ("channel", "method", "path", "body"),
    [
        ("voice", "POST", "/voice/v1/callbacks", {"msisdn": MSISDN}),
        ("video", "POST", "/video/v1/sessions", {}),
    ],
)
async def test_request_faults_hit_voice_and_video(
    make_care: MakeCare, channel: str, method: str, path: str, body: dict[str, str]
) -> None:
    client = await make_care()
    fault = {"channel": channel, "mode": "error", "status": 504}
    await json_of(await client.post("/_faults", json=fault), 200)
    response = await client.request(method, path, json=body)
    assert await json_of(response, 504) == {"error": "injected_fault", "channel": channel}
    await json_of(await client.post("/_faults", json={"channel": channel, "mode": "garbage"}), 200)
    response = await client.request(method, path, json=body)
    assert response.status == 200
    with pytest.raises(ValueError, match="Expecting value"):
        await response.json()
