"""The exporter service in-process, against the demo care stack: endpoints, reload, metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from probes import metrics as m
from probes.errors import ConfigError
from probes.runs.results import Attempt, Outcome, Phase, RunResult, StepResult
from probes.service import exposition as exposition_module
from probes.service import scheduler as scheduler_module
from probes.service.agent import Service
from tests._support.scrape import samples, value
from tests._support.servers import ServerFactory, serve

WAIT_SECONDS = 10.0

JOURNEYS = """
defaults: {{interval: 1s, timeout: 900ms, retries: 0}}
variables: {{base: "{base}"}}
channels:
  - name: help
    kind: self_service
    team: digital
    journeys:
      - name: search
        steps:
          - name: search
            url: ${{base}}/help/v1/search?q=roaming
            expect: {{json: [{{path: $.total, gt: 0}}]}}
  - name: stores
    kind: locator
    team: retail
    journeys:
      - name: nearby
        steps:
          - name: nearby
            url: ${{base}}/stores/v1/nearby?lat=48.8566&lon=2.3522
"""


async def scrape(client: TestClient) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await response.text()


async def wait_for(client: TestClient, check: Callable[[str], bool]) -> str:
    """Scrape until ``check`` holds; fails after WAIT_SECONDS."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        text = await scrape(client)
        if check(text):
            return text
        assert asyncio.get_running_loop().time() < deadline, f"never held; last scrape:\n{text}"
        await asyncio.sleep(0.2)


@pytest.fixture
async def running(
    democare: str, write_config: Callable[[str], Path], aiohttp_client: Callable[..., object]
) -> AsyncIterator[tuple[Service, TestClient, Path]]:
    path = write_config(JOURNEYS.format(base=democare))
    service = Service(path, location="test")
    await service.start()
    client = await aiohttp_client(service.app())  # type: ignore[operator]
    yield service, client, path
    await service.stop()


async def test_metrics_publish_the_contract(running: tuple[Service, TestClient, Path]) -> None:
    _, client, _ = running
    text = await wait_for(
        client,
        lambda t: (
            value(t, "carewatch_journey_up", journey="nearby") is not None
            and value(t, "carewatch_journey_up", journey="search") is not None
        ),
    )
    labels = {"channel": "help", "journey": "search", "location": "test"}
    assert value(text, "carewatch_journey_up", **labels) == 1
    assert value(text, "carewatch_journey_runs_total", result="success", **labels) >= 1
    assert value(text, "carewatch_journey_runs_total", result="failure", **labels) == 0
    assert value(text, "carewatch_journey_duration_seconds_count", **labels) >= 1
    assert value(text, "carewatch_journey_duration_seconds_bucket", le="+Inf", **labels) >= 1
    assert value(text, "carewatch_journey_last_run_timestamp_seconds", **labels) > 1.7e9
    assert value(text, "carewatch_journey_apdex_total", zone="satisfied", **labels) >= 1
    assert (
        value(text, "carewatch_journey_info", channel="help", kind="self_service", team="digital")
        == 1
    )
    assert value(text, "carewatch_journey_slo_objective_ratio", channel="help") == 0.995
    assert value(text, "carewatch_step_up", step="search", **labels) == 1
    assert value(text, "carewatch_step_http_status_code", step="search", **labels) == 200
    for phase in ("dns", "connect", "wait", "receive", "total"):
        assert (
            value(text, "carewatch_step_duration_seconds", step="search", phase=phase, **labels)
            is not None
        )
    assert value(text, "carewatch_config_last_reload_successful") == 1
    assert value(text, "carewatch_scheduler_lateness_seconds_count") >= 2
    assert value(text, "carewatch_build_info", location="test") == 1


async def test_a_failing_channel_names_step_and_reason(
    running: tuple[Service, TestClient, Path], democare: str
) -> None:
    _, client, _ = running
    async with client.session.post(
        f"{democare}/_faults", json={"channel": "locator", "mode": "error"}
    ) as response:
        assert response.status == 200
    text = await wait_for(
        client,
        lambda t: (
            value(t, "carewatch_journey_up", journey="nearby") == 0
            and value(t, "carewatch_journey_up", journey="search") is not None
        ),
    )
    assert value(text, "carewatch_step_failure_info", step="nearby", reason="http_status") == 1
    assert value(text, "carewatch_step_failures_total", step="nearby", reason="http_status") >= 1
    assert value(text, "carewatch_step_http_status_code", step="nearby") == 503
    assert value(text, "carewatch_journey_up", journey="search") == 1


async def test_probe_runs_a_journey_now(running: tuple[Service, TestClient, Path]) -> None:
    _, client, _ = running
    response = await client.get("/probe", params={"journey": "help/search"})
    assert response.status == 200
    result = await response.json()
    assert result["success"] is True
    assert result["channel"] == "help"
    assert [s["step"] for s in result["attempts"][0]["steps"]] == ["search"]
    assert set(result["attempts"][0]["steps"][0]["phases_seconds"]) >= {"connect", "wait", "total"}
    bare = await client.get("/probe", params={"journey": "nearby"})
    assert (await bare.json())["journey"] == "nearby"
    missing = await client.get("/probe", params={"journey": "nope"})
    assert missing.status == 404
    assert "help/search" in (await missing.json())["journeys"]


async def test_health_and_readiness(running: tuple[Service, TestClient, Path]) -> None:
    _, client, _ = running
    assert (await client.get("/-/healthy")).status == 200
    assert (await client.get("/-/ready")).status == 200
    index = await client.get("/")
    assert "help/search" in await index.text()


async def test_a_bad_reload_keeps_the_old_config(running: tuple[Service, TestClient, Path]) -> None:
    service, client, path = running
    await wait_for(client, lambda t: value(t, "carewatch_journey_up", journey="search") == 1)
    good = path.read_text()
    path.write_text(good.replace("kind: locator", "kind: teleport"))
    response = await client.post("/-/reload")
    assert response.status == 400
    errors = (await response.json())["errors"]
    assert any("channels[1].kind" in e and "teleport" in e for e in errors), errors
    assert [j.id for j in service.config.journeys] == ["help/search", "stores/nearby"]
    before = value(
        await scrape(client), "carewatch_journey_runs_total", journey="search", result="success"
    )
    text = await wait_for(
        client,
        lambda t: (
            value(t, "carewatch_journey_runs_total", journey="search", result="success") > before
        ),
    )
    assert value(text, "carewatch_config_last_reload_successful") == 0


async def test_reload_keeps_counters_and_drops_removed_series(
    running: tuple[Service, TestClient, Path],
) -> None:
    service, client, path = running
    text = await wait_for(
        client,
        lambda t: (
            (value(t, "carewatch_journey_runs_total", journey="search", result="success") or 0) >= 2
            and value(t, "carewatch_journey_up", journey="nearby") is not None
        ),
    )
    runs = value(text, "carewatch_journey_runs_total", journey="search", result="success")
    stores_at = path.read_text().index("  - name: stores")
    path.write_text(path.read_text()[:stores_at])
    response = await client.post("/-/reload")
    assert response.status == 200, await response.text()
    text = await scrape(client)
    assert value(text, "carewatch_journey_runs_total", journey="search", result="success") >= runs
    assert not any(labels and ("journey", "nearby") in labels for (_, labels) in samples(text))
    assert value(text, "carewatch_config_last_reload_successful") == 1
    assert [j.id for j in service.config.journeys] == ["help/search"]


LOCATED = """
defaults: {{interval: 1s, timeout: 900ms, retries: 0, location: paris}}
locations:
  paris: {{lat: 48.8566, lon: 2.3522}}
  lyon: {{lat: 45.764, lon: 4.8357}}
channels:
  - name: stores
    kind: locator
    team: retail
    journeys:
      - name: near-me
        steps:
          - name: nearby
            url: "{base}/stores/v1/nearby"
            query: {{lat: "${{location.lat}}", lon: "${{location.lon}}", radius_km: 10}}
            expect:
              json: [{{path: "$.stores[0].name", exists: true}}]
            capture: {{first: {{json: "$.stores[0].id"}}}}
      - name: lyon-only
        locations: [lyon]
        steps:
          - {{name: home, url: "{base}/healthz"}}
"""


async def test_an_agent_runs_the_journeys_of_its_location_with_its_coordinates(
    democare: str, write_config: Callable[[str], Path], aiohttp_client: Callable[..., object]
) -> None:
    path = write_config(LOCATED.format(base=democare))
    paris = Service(path)
    await paris.start()
    try:
        assert [j.id for j in paris.config.journeys if j.runs_at(paris.location)] == [
            "stores/near-me"
        ]
        result = await paris.engine.run(paris.config.find_journey("stores/near-me"))
        assert result.ok, result.to_dict()
        assert result.location == "paris"
        client = await aiohttp_client(paris.app())  # type: ignore[operator]
        text = await wait_for(
            client, lambda t: value(t, "carewatch_journey_up", journey="near-me") == 1
        )
        assert value(text, "carewatch_journey_up", journey="lyon-only") is None
        assert value(text, "carewatch_journey_info", journey="lyon-only") is None
    finally:
        await paris.stop()
    lyon = Service(path, location="lyon")
    await lyon.start()
    try:
        assert lyon.scheduler.journeys == 2
        lat = lyon.engine.coordinates.lat if lyon.engine and lyon.engine.coordinates else None
        assert lat == 45.764
    finally:
        await lyon.stop()


async def test_an_agent_at_an_unknown_location_is_refused(
    democare: str, write_config: Callable[[str], Path]
) -> None:
    service = Service(write_config(LOCATED.format(base=democare)), location="lille")
    with pytest.raises(ConfigError) as refused:
        await service.start()
    assert "'lille' is not defined (known: lyon, paris)" in str(refused.value)


# --- the heap and the streamed /metrics ------------------------------------------------------

QUIET = """
defaults: {{interval: 1h, timeout: 1s, retries: 0}}
channels:
  - name: app
    kind: app
    team: care
    journeys:
{journeys}
"""


def quiet_config(journeys: int) -> str:
    """Journeys that will not run during a test: hourly, against a closed port."""
    lines = "\n".join(
        f'      - {{name: j{n}, steps: [{{name: s, url: "http://127.0.0.1:9/"}}]}}'
        for n in range(journeys)
    )
    return QUIET.format(journeys=lines)


def frozen(obj: object) -> bool:
    """True when the collector no longer walks ``obj``: it is in the permanent generation."""
    assert gc.is_tracked(obj)
    return all(o is not obj for o in gc.get_objects())


class _Garbage:
    """A cycle only the cyclic collector can free, and a weak reference to watch it go."""

    def __init__(self) -> None:
        self.me = self


async def test_a_reload_freezes_the_new_config_and_lets_the_old_garbage_go(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config(quiet_config(3))
    service = Service(path, location="test")
    await service.start()
    try:
        assert gc.get_freeze_count() > 0
        assert frozen(service.config)
        garbage = _Garbage()
        gone = weakref.ref(garbage)
        assert await service.reload() == []  # freezes ``garbage`` with everything else
        del garbage
        path.write_text(quiet_config(4))
        assert await service.reload() == []
        assert frozen(service.config)
        assert service.config is not None
        assert len(service.config.journeys) == 4
        assert gone() is None
    finally:
        await service.stop()
    assert gc.get_freeze_count() == 0


async def test_a_journey_that_may_not_fit_its_interval_is_logged_once_per_load(
    write_config: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 12, defect 8: carewatch check prints the warning; the exporter logs it at each load.
    path = write_config(
        quiet_config(2).replace("timeout: 1s, retries: 0", "timeout: 40m, retries: 1")
    )
    service = Service(path, location="test")
    with caplog.at_level(logging.WARNING, logger="carewatch"):
        await service.start()
        try:
            assert await service.reload() == []
        finally:
            await service.stop()
    warned = [r.getMessage() for r in caplog.records if "may run for" in r.getMessage()]
    assert len(warned) == 2 * 2  # two journeys, two loads
    assert warned[0].startswith(f"{path}:")
    assert "app/j0 may run for 4800s (2 attempts x 2400s timeout)" in warned[0]


async def test_metrics_streams_exactly_what_the_exposition_renders(
    write_config: Callable[[str], Path],
    aiohttp_client: Callable[..., object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exposition_module, "PIECE_JOURNEYS", 2)  # many pieces from 5 journeys
    service = Service(write_config(quiet_config(5)), location="test")
    await service.start()
    service.scheduler.stop()  # nothing changes between the scrape and the render below
    assert service.config is not None
    for n, journey in enumerate(service.config.journeys):
        steps = (StepResult("s", Outcome.PASSED, {Phase.TOTAL: 0.001 * n}, status=200),)
        attempt = Attempt(1, steps, 0.001 * n)
        service.exposition.record(RunResult("app", journey.name, "test", 1.7e9, (attempt,)))
    client = await aiohttp_client(service.app())  # type: ignore[operator]
    try:
        text = await scrape(client)
        journeys = service.exposition.render()
        assert len(list(service.exposition.pieces())) > len(m.JOURNEY_FAMILIES)
        assert text.endswith(journeys)
        assert "carewatch_scheduler_lateness_seconds" in text[: -len(journeys)]
        assert value(text, "carewatch_journey_up", journey="j4") == 1
    finally:
        await service.stop()


# --- consecutive failures, the failure message, the agent's location -------------------------

GATED = """
defaults: {{interval: 1s, timeout: 900ms, retries: 0}}
channels:
  - name: app
    kind: app
    team: mobile
    journeys:
      - name: status
        steps:
          - name: state
            url: "{base}/state"
            expect: {{status: 200, json: [{{path: $.state, equals: open}}]}}
"""
ANOTHER = """
      - name: home
        steps:
          - {{name: home, url: "{base}/home"}}
"""
STATUS = {"channel": "app", "journey": "status", "location": "test"}


class Gate:
    """A target that answers each request with the next answer the test releases.

    A run cannot finish before the test has read the metrics the previous run left, so each
    value of a gauge is seen however slowly the test runs; once ``recover`` is called, every
    request gets the healthy answer at once.
    """

    def __init__(self) -> None:
        self.answers: asyncio.Queue[tuple[int, object]] = asyncio.Queue()
        self.recovered = False

    def release(self, status: int, body: object) -> None:
        self.answers.put_nowait((status, body))

    def recover(self) -> None:
        self.recovered = True
        self.release(200, {"state": "open"})

    async def state(self, _: web.Request) -> web.Response:
        if self.recovered and self.answers.empty():
            return web.json_response({"state": "open"})
        status, body = await self.answers.get()
        return web.json_response(body, status=status)


def failure_info(text: str) -> set[tuple[str, str, str]]:
    """(step, reason, message) of every carewatch_step_failure_info series of the status journey."""
    return {
        (labels["step"], labels["reason"], labels["message"])
        for (name, found), _ in samples(text).items()
        if name == m.STEP_FAILURE_INFO.name
        for labels in [dict(found)]
        if labels["journey"] == "status"
    }


async def test_consecutive_failures_count_real_runs_and_a_success_resets_them(
    aiohttp_server: ServerFactory,
    write_config: Callable[[str], Path],
    aiohttp_client: Callable[..., object],
) -> None:
    gate = Gate()

    async def home(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    base = await serve(aiohttp_server, state=gate.state, home=home)
    path = write_config(GATED.format(base=base))
    service = Service(path, location="test")
    await service.start()
    try:
        client = await aiohttp_client(service.app())  # type: ignore[operator]

        def failures(n: int) -> Callable[[str], bool]:
            return lambda t: value(t, m.JOURNEY_CONSECUTIVE_FAILURES.name, **STATUS) == n

        text = await scrape(client)  # the first run waits for the gate: nothing has run yet
        assert value(text, m.JOURNEY_CONSECUTIVE_FAILURES.name, **STATUS) == 0
        assert value(text, "carewatch_journey_up", **STATUS) is None

        gate.release(503, {"state": "open"})
        text = await wait_for(client, failures(1))
        assert value(text, "carewatch_journey_up", **STATUS) == 0
        info = failure_info(text)
        assert info == {("state", "http_status", "expected status 200, got 503")}, info

        gate.release(200, {"state": f"closed by {uuid.uuid4()}"})
        text = await wait_for(client, failures(2))
        first = failure_info(text)
        assert first == {("state", "assertion", "$.state: expected 'open', got 'closed by <uuid>'")}

        # A reload that adds a journey keeps the count of the one it keeps.
        path.write_text(path.read_text() + ANOTHER.format(base=base))
        response = await client.post("/-/reload")
        assert response.status == 200, await response.text()
        text = await scrape(client)
        assert value(text, m.JOURNEY_CONSECUTIVE_FAILURES.name, **STATUS) == 2
        assert value(text, m.JOURNEY_CONSECUTIVE_FAILURES.name, journey="home") == 0

        gate.release(200, {"state": f"closed by {uuid.uuid4()}"})
        text = await wait_for(client, failures(3))
        assert failure_info(text) == first  # another id, the same series

        gate.recover()
        text = await wait_for(client, failures(0))
        assert value(text, "carewatch_journey_up", **STATUS) == 1
        assert failure_info(text) == set()
        assert value(text, "carewatch_journey_runs_total", result="failure", **STATUS) == 3
    finally:
        await service.stop()


async def test_build_info_names_the_agents_location_and_follows_a_reload(
    democare: str, write_config: Callable[[str], Path], aiohttp_client: Callable[..., object]
) -> None:
    path = write_config(LOCATED.format(base=democare))
    service = Service(path)  # no --location: the config's defaults.location, paris
    await service.start()
    try:
        client = await aiohttp_client(service.app())  # type: ignore[operator]
        text = await scrape(client)
        info = [labels for (name, labels) in samples(text) if name == m.BUILD_INFO]
        assert [dict(labels)["location"] for labels in info] == ["paris"]
        assert set(dict(info[0])) == set(m.BUILD_INFO_LABELS)
        path.write_text(path.read_text().replace("location: paris", "location: lyon"))
        response = await client.post("/-/reload")
        assert response.status == 200, await response.text()
        text = await scrape(client)
        info = [labels for (name, labels) in samples(text) if name == m.BUILD_INFO]
        assert [dict(labels)["location"] for labels in info] == ["lyon"]
        assert value(text, m.BUILD_INFO, location="lyon") == 1
    finally:
        await service.stop()


# --- a reload is all or nothing; readiness is what is scheduled ------------------------------


async def test_a_reload_the_schedule_cannot_take_keeps_the_old_config_and_says_why(
    running: tuple[Service, TestClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, client, path = running
    await wait_for(client, lambda t: value(t, "carewatch_journey_up", journey="search") == 1)

    def overflow(journey_id: str, interval: float, now: float) -> float:
        raise OverflowError("cannot convert float infinity to integer")

    # A value the model accepts and the schedule cannot take: placing a new tick fails.
    monkeypatch.setattr(scheduler_module, "first_tick", overflow)
    path.write_text(path.read_text().replace("interval: 1s", "interval: 2s"))
    response = await client.post("/-/reload")
    assert response.status == 400, await response.text()
    errors = (await response.json())["errors"]
    assert errors == [
        f"{path}: cannot apply: OverflowError: cannot convert float infinity to integer"
    ]
    assert service.scheduler.journeys == 2
    assert [j.interval for j in service.config.journeys] == [1.0, 1.0]
    assert (await client.get("/-/ready")).status == 200
    text = await scrape(client)
    assert value(text, "carewatch_config_last_reload_successful") == 0
    assert value(text, "carewatch_scheduler_journeys") == 2
    before = value(text, "carewatch_journey_runs_total", journey="search", result="success")
    await wait_for(
        client,
        lambda t: (
            value(t, "carewatch_journey_runs_total", journey="search", result="success") > before
        ),
    )
    monkeypatch.undo()
    response = await client.post("/-/reload")
    assert response.status == 200, await response.text()
    assert value(await scrape(client), "carewatch_config_last_reload_successful") == 1


async def test_a_nan_interval_is_refused_and_the_journeys_keep_running(
    running: tuple[Service, TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    service, client, path = running
    await wait_for(client, lambda t: value(t, "carewatch_journey_up", journey="search") == 1)
    good = path.read_text()
    for bad in (".nan", ".inf"):
        path.write_text(good.replace("interval: 1s", f"interval: {bad}"))
        response = await client.post("/-/reload")
        assert response.status == 400, await response.text()
        assert "interval" in " ".join((await response.json())["errors"])
        assert service.scheduler.journeys == 2
        assert (await client.get("/-/ready")).status == 200
        text = await scrape(client)
        assert value(text, "carewatch_config_last_reload_successful") == 0
        assert value(text, "carewatch_scheduler_journeys") == 2
    assert "keeping the running config" in caplog.text
    before = value(
        await scrape(client), "carewatch_journey_runs_total", journey="search", result="success"
    )
    await wait_for(
        client,
        lambda t: (
            value(t, "carewatch_journey_runs_total", journey="search", result="success") > before
        ),
    )


async def test_a_reload_that_fails_after_scheduling_puts_the_old_schedule_back(
    running: tuple[Service, TestClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, client, path = running
    configure = service.exposition.configure

    def fails(*args: object, **kwargs: object) -> None:
        monkeypatch.setattr(service.exposition, "configure", configure)  # once
        raise RuntimeError("exposition bug")

    monkeypatch.setattr(service.exposition, "configure", fails)
    stores_at = path.read_text().index("  - name: stores")
    path.write_text(path.read_text()[:stores_at])  # one journey fewer
    response = await client.post("/-/reload")
    assert response.status == 400
    assert (await response.json())["errors"] == [
        f"{path}: cannot apply: RuntimeError: exposition bug"
    ]
    assert service.scheduler.journeys == 2
    assert (await client.get("/-/ready")).status == 200
    text = await wait_for(
        client, lambda t: value(t, "carewatch_journey_up", journey="nearby") is not None
    )
    assert value(text, "carewatch_config_last_reload_successful") == 0


async def test_a_first_load_the_schedule_cannot_take_is_a_config_error(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def overflow(journey_id: str, interval: float, now: float) -> float:
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(scheduler_module, "first_tick", overflow)
    service = Service(write_config(quiet_config(2)), location="test")
    with pytest.raises(ConfigError) as refused:
        await service.start()
    assert "cannot apply: OverflowError" in str(refused.value)
    assert service.config is None
    assert service.scheduler.journeys == 0


async def test_ready_says_no_when_the_journeys_are_not_scheduled(
    running: tuple[Service, TestClient, Path],
) -> None:
    service, client, _ = running
    assert (await client.get("/-/ready")).status == 200
    service.scheduler.schedule([])  # the config still has two journeys
    response = await client.get("/-/ready")
    assert response.status == 503
    assert await response.text() == "Not ready: 0 of the config's 2 journeys are scheduled.\n"
    assert service.config is not None
    service.scheduler.schedule(service.config.journeys)
    assert (await client.get("/-/ready")).status == 200
    service.scheduler.stop()
    response = await client.get("/-/ready")
    assert response.status == 503
    assert "the scheduler is stopped" in await response.text()


# --- /probe: bounded, cancelled on stop, POST for a journey that changes the target ----------

PROBED = """
defaults: {{interval: 1h, timeout: 30s, retries: 0}}
channels:
  - name: app
    kind: app
    team: mobile
    journeys:
      - name: slow
        steps:
          - {{name: wait, url: "{base}/slow"}}
      - name: order
        steps:
          - {{name: look, url: "{base}/slow", method: head}}
          - {{name: buy, url: "{base}/orders", method: POST, json: {{sku: 1}}}}
"""


class Held:
    """A target whose ``/slow`` answers only when the test lets it, counting the requests."""

    def __init__(self) -> None:
        self.arrived = 0
        self.orders = 0
        self.go = asyncio.Event()
        self._counted = asyncio.Condition()

    async def reached(self, requests: int) -> None:
        """Wait until ``/slow`` has received ``requests`` requests."""
        async with self._counted:
            await self._counted.wait_for(lambda: self.arrived >= requests)

    async def slow(self, _: web.Request) -> web.Response:
        async with self._counted:
            self.arrived += 1
            self._counted.notify_all()
        await self.go.wait()
        return web.Response(text="ok")

    async def orders_(self, request: web.Request) -> web.Response:
        self.orders += 1
        return web.json_response({"method": request.method}, status=201)


@pytest.fixture
async def held(
    aiohttp_server: ServerFactory,
    write_config: Callable[[str], Path],
    aiohttp_client: Callable[..., object],
) -> AsyncIterator[tuple[Service, TestClient, Held]]:
    target = Held()
    base = await serve(aiohttp_server, slow=target.slow, orders=target.orders_)
    service = Service(write_config(PROBED.format(base=base)), location="test", max_probes=2)
    await service.start()
    service.scheduler.stop()  # only /probe runs
    client = await aiohttp_client(service.app())  # type: ignore[operator]
    yield service, client, target
    target.go.set()
    await service.stop()


async def test_probe_runs_at_most_its_cap_and_answers_429_beyond(
    held: tuple[Service, TestClient, Held],
) -> None:
    _, client, target = held
    runs = [
        asyncio.ensure_future(client.get("/probe", params={"journey": "app/slow"}))
        for _ in range(2)
    ]
    await asyncio.wait_for(target.reached(2), WAIT_SECONDS)
    refused = await client.get("/probe", params={"journey": "app/slow"})
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"
    assert "2 /probe runs are in progress" in (await refused.json())["error"]
    assert target.arrived == 2
    target.go.set()
    for response in await asyncio.gather(*runs):
        assert response.status == 200
        assert (await response.json())["success"] is True
    again = await client.get("/probe", params={"journey": "app/slow"})
    assert again.status == 200


async def test_a_journey_that_changes_the_target_runs_only_on_post(
    held: tuple[Service, TestClient, Held],
) -> None:
    _, client, target = held
    target.go.set()
    refused = await client.get("/probe", params={"journey": "app/order"})
    assert refused.status == 405
    assert refused.headers["Allow"] == "POST"
    assert (await refused.json())["error"] == (
        "journey app/order changes the target (step buy): run it with POST /probe?journey=app/order"
    )
    assert (await client.head("/probe", params={"journey": "app/slow"})).status == 405
    assert target.orders == 0
    ran = await client.post("/probe", params={"journey": "app/order"})
    assert ran.status == 200
    assert (await ran.json())["success"] is True
    assert target.orders == 1
    page = await (await client.get("/")).text()
    assert '<form method="post" action="/probe?journey=app/order"' in page
    assert '<a href="/probe?journey=app/slow">' in page


async def test_stop_cancels_a_probe_run_in_flight(held: tuple[Service, TestClient, Held]) -> None:
    service, client, target = held
    run = asyncio.ensure_future(client.get("/probe", params={"journey": "app/slow"}))
    await asyncio.wait_for(target.reached(1), WAIT_SECONDS)
    started = asyncio.get_running_loop().time()
    await service.stop()
    response = await asyncio.wait_for(run, 5)
    assert asyncio.get_running_loop().time() - started < 1.0  # not the step's 30 s timeout
    assert response.status == 503
    assert "stopping" in (await response.json())["error"]
    later = await client.get("/probe", params={"journey": "app/slow"})
    assert later.status == 503


async def test_the_probe_endpoint_can_be_disabled(
    write_config: Callable[[str], Path], aiohttp_client: Callable[..., object]
) -> None:
    service = Service(write_config(quiet_config(1)), location="test", probe_endpoint=False)
    await service.start()
    try:
        client = await aiohttp_client(service.app())  # type: ignore[operator]
        for method in ("GET", "POST"):
            response = await client.request(method, "/probe", params={"journey": "app/j0"})
            assert response.status == 403
            assert "--web.disable probe" in (await response.json())["error"]
        assert "/probe" not in await (await client.get("/")).text()
    finally:
        await service.stop()
