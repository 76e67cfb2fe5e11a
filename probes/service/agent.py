"""The exporter as a service: schedules the journeys and serves what they found.

Endpoints: ``/metrics``, ``/-/healthy``, ``/-/ready``, ``POST /-/reload``,
``/probe?journey=NAME`` (run one journey now and return every step as JSON) and
``POST /callbacks/<name>`` (webhooks for await steps, see ``probes.service.receiver``).
``carewatch serve`` runs it (``probes.service.server``); tests build it in-process:

>>> service = Service("checks.yaml", location="paris")   # doctest: +SKIP
>>> await service.start()                                # doctest: +SKIP
>>> web.run_app(service.app())                           # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import html
import json
import logging
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

from probes import metrics as m
from probes.engine.engine import Engine
from probes.engine.webhooks import WebhookHub
from probes.errors import ConfigError, Problem
from probes.model.config import Config, Journey
from probes.model.load import load_config
from probes.model.secrets import NO_SECRETS, Secrets
from probes.model.steps import HttpStep, SmtpStep, TcpStep, WebSocketStep
from probes.runs.results import RunResult
from probes.service.exposition import Exposition
from probes.service.receiver import WebhookCollector, WebhookReceiver
from probes.service.scheduler import DEFAULT_MAX_CONCURRENCY, Scheduler

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: The longest a scrape holds the event loop before letting the probes' timers run. Each turn
#: given away costs the scrape a loop iteration of probe work, so not after every piece.
SCRAPE_SLICE_SECONDS: Final = 0.005
#: ``/probe`` runs in progress at once, at most, by default (beyond it: 429). They come on top
#: of the scheduled runs, which ``--max-concurrency`` bounds.
DEFAULT_MAX_PROBES: Final = 4
#: HTTP methods a journey may use and still be run by ``GET /probe``: they change nothing.
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: How long a reload lets the loop run between its steps that hold it (for thousands of
#: journeys, tenths of a second each): long enough for a timer's callback to run its task.
YIELD_SECONDS: Final = 0.01
#: The longest cause of a failed reload that is logged and answered.
CAUSE_CHARS: Final = 500
#: A full collection's threshold while a config loads: never (see ``_no_full_collection``).
_NO_FULL_COLLECTION: Final = 2**31 - 1
log = logging.getLogger("carewatch")


def _version() -> str:
    try:
        return version("carewatch")
    except PackageNotFoundError:
        return "unknown"


class Service:
    """One carewatch agent: a config, an engine, a scheduler and their metrics."""

    def __init__(
        self,
        config_path: str | Path,
        *,
        location: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        webhooks: WebhookHub | None = None,
        probe_endpoint: bool = True,
        max_probes: int = DEFAULT_MAX_PROBES,
    ) -> None:
        self.config_path = str(config_path)
        self.probe_endpoint = probe_endpoint
        self.max_probes = max_probes
        self._probes: set[asyncio.Task[RunResult]] = set()  # /probe runs in progress
        self._stopping = False
        self._scheduled = 0  # the journeys the running config gives this agent's location
        self._location_arg = location
        self.config: Config | None = None
        self.engine: Engine | None = None
        self.exposition = Exposition()
        self._reload_lock = asyncio.Lock()
        self._last_up: dict[str, bool] = {}
        self.registry = CollectorRegistry()
        process_collector.ProcessCollector(registry=self.registry)
        platform_collector.PlatformCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        # One hub for the agent's life: runs waiting across a reload keep waiting.
        self.webhooks = WebhookHub() if webhooks is None else webhooks
        self._receiver = WebhookReceiver(
            self.webhooks, lambda: self.config.callbacks if self.config else {}
        )
        self.registry.register(
            WebhookCollector(self.webhooks, lambda: self.config.callbacks if self.config else ())
        )
        self._lateness = Histogram(
            m.SCHEDULER_LATENESS,
            "Delay from a run's scheduled time to its start (timer lag and waiting for a slot).",
            buckets=m.LATENESS_BUCKETS,
            registry=self.registry,
        )
        Gauge(
            m.SCHEDULER_RUNNING, "Journey runs in progress.", registry=self.registry
        ).set_function(lambda: self.scheduler.running)
        Gauge(
            m.SCHEDULER_JOURNEYS, "Journeys scheduled on this agent.", registry=self.registry
        ).set_function(lambda: self.scheduler.journeys)
        self._reload_ok = Gauge(
            m.CONFIG_RELOAD_SUCCESSFUL,
            "1 if the last configuration load succeeded.",
            registry=self.registry,
        )
        self._reload_time = Gauge(
            m.CONFIG_RELOAD_TIMESTAMP,
            "Unix time of the last successful configuration load.",
            registry=self.registry,
        )
        # Labelled once a config gives the location (see _locate), before ``serve`` listens:
        # a location guessed earlier would leave a wrong series behind.
        self._build_info = Gauge(
            m.BUILD_INFO,
            "Always 1: the carewatch version and the agent's location.",
            m.BUILD_INFO_LABELS,
            registry=self.registry,
        )
        self._build_location: str | None = None
        self.scheduler = Scheduler(
            self._run,
            on_result=self._publish,
            on_skip=lambda journey: self.exposition.skipped(journey.id),
            on_lateness=self._lateness.observe,
            max_concurrency=max_concurrency,
        )

    @property
    def location(self) -> str:
        if self._location_arg:
            return self._location_arg
        return self.config.defaults.location if self.config else "local"

    @property
    def secrets(self) -> Secrets:
        """What the running config hides from every message (``probes.model.secrets``)."""
        return self.config.secrets if self.config else NO_SECRETS

    async def start(self) -> None:
        """Load the config and start scheduling; ConfigError if the first load fails."""
        problems = await self.reload()
        if problems:
            raise ConfigError(problems)

    async def stop(self) -> None:
        """Stop scheduling and cancel every run in progress, ``/probe`` runs included."""
        self._stopping = True
        self.scheduler.stop()
        for task in self._probes:
            task.cancel()
        gc.unfreeze()

    async def reload(self) -> list[Problem]:
        """Load the config file again. On problems, log them and keep the running config.

        All or nothing: whatever fails (a located problem in the file, or a value the model
        let through that the schedule cannot take), the running config and its schedule stay
        as they were and ``carewatch_config_last_reload_successful`` says 0.
        """
        async with self._reload_lock:
            try:
                with _no_full_collection():
                    return await self._apply()
            except Exception as exc:  # a value the model let through, or a bug: never half done
                cause = self.secrets.redact(_bounded(f"{type(exc).__name__}: {exc}"))
                problem = Problem(self.config_path, None, None, "", f"cannot apply: {cause}")
                self._reload_ok.set(0)
                log.error("config reload failed, keeping the running config: %s", problem)
                log.debug("where the reload failed", exc_info=exc)  # a bug's trace, on demand
                return [problem]

    async def _apply(self) -> list[Problem]:
        try:
            config = await asyncio.to_thread(load_config, self.config_path)  # the loop probes on
        except ConfigError as exc:
            self._reload_ok.set(0)
            log.error("config reload rejected, keeping the running config:\n%s", exc)
            return list(exc.problems)
        location = self._location_arg or config.defaults.location
        if config.locations and location not in config.locations:
            problem = Problem(
                config.source,
                None,
                None,
                "locations",
                f"this agent's location {location!r} is not defined "
                f"(known: {', '.join(sorted(config.locations))})",
            )
            self._reload_ok.set(0)
            log.error("config reload rejected, keeping the running config:\n%s", problem)
            return [problem]
        engine = Engine(
            config.variables,
            location=location,
            coordinates=config.locations.get(location),
            webhooks=self.webhooks,
            secrets=config.secrets,
        )
        here = [j for j in config.journeys if j.runs_at(location)]
        prepared = await asyncio.to_thread(self.exposition.prepare, config, location=location)
        self.scheduler.schedule(here)  # all or nothing: raises before changing anything
        try:
            self.exposition.configure(config, location=location, prepared=prepared)
        except Exception:
            self._restore()
            raise
        self.config, self.engine, self._scheduled = config, engine, len(here)
        self._locate(location)
        kept = {j.id for j in config.journeys}  # a set: thousands of journeys, one pass
        self._last_up = {k: v for k, v in self._last_up.items() if k in kept}
        del (
            config,
            engine,
            here,
            kept,
            prepared,
        )  # the old config's last references go before the collection
        await asyncio.sleep(YIELD_SECONDS)  # the loop's turn between two long pieces of work
        _settle_heap()
        self._reload_ok.set(1)
        self._reload_time.set(time.time())
        assert self.config is not None
        log.info(
            "config loaded from %s: %d channels, %d journeys, location %s",
            self.config_path,
            len(self.config.channels),
            len(self.config.journeys),
            self.location,
        )
        for warning in self.config.warnings:  # once per load, as carewatch check prints them
            log.warning("%s", warning)
        return []

    def _restore(self) -> None:
        """Put the running config back in the scheduler and the exposition after a failure."""
        old = self.config
        if old is None:
            self.scheduler.schedule(())
            return
        location = self.location
        self.scheduler.schedule(j for j in old.journeys if j.runs_at(location))
        self.exposition.configure(old, location=location)

    def _locate(self, location: str) -> None:
        """Put the agent's location on BUILD_INFO, replacing the one a previous config gave."""
        if location != self._build_location:
            self._build_info.clear()
            self._build_info.labels(_version(), location).set(1)
            self._build_location = location

    async def _run(self, journey: Journey) -> RunResult:
        assert self.engine is not None
        return await self.engine.run(journey)

    def _publish(self, result: RunResult) -> None:
        self.exposition.record(result)
        journey_id = f"{result.channel}/{result.journey}"
        was_up = self._last_up.get(journey_id)
        self._last_up[journey_id] = result.ok
        if result.ok and was_up is False:
            log.info("journey %s recovered", journey_id)
        elif not result.ok and was_up is not False:
            failed = result.final.failed_step
            assert failed is not None
            log.warning(
                "journey %s failed at step %s: %s: %s",
                journey_id,
                failed.name,
                failed.reason,
                failed.message,
            )

    # --- HTTP -----------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application serving the endpoints."""
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/-/healthy", self._healthy)
        app.router.add_get("/-/ready", self._ready)
        app.router.add_post("/-/reload", self._reload)
        app.router.add_get("/probe", self._probe, allow_head=False)
        app.router.add_post("/probe", self._probe)
        app.router.add_post("/callbacks/{name}", self._receiver.handle)
        return app

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        # 100k+ series are tens of MB: written a piece at a time, letting the loop run the
        # probes' timers in between, instead of one body that holds the loop for the whole
        # render and copy (see bench.scrape, B3).
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        await response.prepare(request)
        await response.write(generate_latest(self.registry))
        slice_ends = loop.time() + SCRAPE_SLICE_SECONDS
        for piece in self.exposition.pieces():
            await response.write(piece.encode())
            if loop.time() >= slice_ends:
                await asyncio.sleep(0)
                slice_ends = loop.time() + SCRAPE_SLICE_SECONDS
        await response.write_eof()
        return response

    async def _healthy(self, _: web.Request) -> web.Response:
        return web.Response(text="Healthy.\n")

    async def _ready(self, _: web.Request) -> web.Response:
        if self.config is None:
            return web.Response(status=503, text="Not ready: no config loaded.\n")
        if not self.scheduler.alive:
            return web.Response(status=503, text="Not ready: the scheduler is stopped.\n")
        if self.scheduler.journeys != self._scheduled:
            return web.Response(
                status=503,
                text=f"Not ready: {self.scheduler.journeys} of the config's {self._scheduled} "
                "journeys are scheduled.\n",
            )
        return web.Response(text="Ready.\n")

    async def _reload(self, _: web.Request) -> web.Response:
        problems = await self.reload()
        if problems:
            return web.json_response(
                {"status": "rejected", "errors": [str(p) for p in problems]}, status=400
            )
        return web.json_response({"status": "reloaded"})

    async def _probe(self, request: web.Request) -> web.Response:
        if not self.probe_endpoint:
            return _error(403, "the /probe endpoint is disabled (--web.disable probe)")
        name = request.query.get("journey", "")
        if self._stopping:
            return _error(503, "the agent is stopping")
        if self.config is None or self.engine is None:
            return _error(503, "no config loaded")
        try:
            journey = self.config.find_journey(name)
        except KeyError:
            return web.json_response(
                {
                    "error": f"no journey {name!r}; use channel/journey",
                    "journeys": [j.id for j in self.config.journeys],
                },
                status=404,
            )
        changing = changing_step(journey)
        if request.method != "POST" and changing is not None:
            return _error(
                405,
                f"journey {journey.id} changes the target (step {changing}): "
                f"run it with POST /probe?journey={journey.id}",
                headers={"Allow": "POST"},
            )
        if len(self._probes) >= self.max_probes:
            return _error(
                429,
                f"{len(self._probes)} /probe runs are in progress, the most this agent allows "
                "(--web.max-probes); try again when one ends",
                headers={"Retry-After": "1"},
            )
        run = asyncio.ensure_future(self.engine.run(journey))
        self._probes.add(run)
        try:
            result = await run  # cancelled with the request, or by ``stop``
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return _error(503, "the agent is stopping: the run was cancelled")
        finally:
            self._probes.discard(run)
        text = self.config.secrets.redact(json.dumps(result.to_dict(), indent=2))
        return web.Response(text=text + "\n", content_type="application/json")

    async def _index(self, _: web.Request) -> web.Response:
        journeys = self.config.journeys if self.config else ()
        rows = "".join(
            f"<li>{self._run_now(j)} {_state(self._last_up.get(j.id))}</li>" for j in journeys
        )
        page = (
            "<!doctype html><title>carewatch</title><h1>carewatch</h1>"
            f"<p>location {html.escape(self.location)}, config {html.escape(self.config_path)}</p>"
            '<p><a href="/metrics">/metrics</a> · <a href="/-/healthy">/-/healthy</a> · '
            '<a href="/-/ready">/-/ready</a></p>'
            f"<h2>Journeys (run now)</h2><ul>{rows}</ul>"
        )
        return web.Response(text=page, content_type="text/html")

    def _run_now(self, journey: Journey) -> str:
        """The journey's name on the status page: a link that runs it, a button if it changes
        the target (a POST), plain text when ``/probe`` is disabled."""
        name = html.escape(journey.id)
        if not self.probe_endpoint:
            return name
        if changing_step(journey) is None:
            return f'<a href="/probe?journey={name}">{name}</a>'
        return (
            f'<form method="post" action="/probe?journey={name}" style="display:inline">'
            f"{name} <button>run (changes the target)</button></form>"
        )


def changing_step(journey: Journey) -> str | None:
    """The name of the first step whose run changes the target, or None if no step does.

    A step changes the target when it sends something that is not a read: an HTTP method
    other than GET, HEAD or OPTIONS, an email, text over TCP, or a WebSocket message.
    ``GET /probe`` refuses such a journey; ``POST /probe`` runs it.
    """
    for step in (*journey.steps, *journey.finally_steps):
        if isinstance(step, HttpStep) and step.method not in SAFE_METHODS:
            return step.name
        if isinstance(step, SmtpStep):
            return step.name
        if isinstance(step, TcpStep) and step.tcp.send is not None:
            return step.name
        if isinstance(step, WebSocketStep) and any(e.send for e in step.conversation):
            return step.name
    return None


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _bounded(text: str) -> str:
    """``text``, cut to ``CAUSE_CHARS`` characters: a 100,000-digit value makes no message."""
    if len(text) <= CAUSE_CHARS:
        return text
    return f"{text[:CAUSE_CHARS]}... ({len(text) - CAUSE_CHARS} more characters)"


@contextlib.contextmanager
def _no_full_collection() -> Iterator[None]:
    """No automatic full garbage collection while a config loads; young ones still run.

    The loading thread shares the interpreter's lock, which the loop gets back every few
    milliseconds, except during a collection: a file of thousands of journeys grows the heap
    enough to set off full collections, each walking everything (0.5-1 s for 5,000 journeys)
    while the loop waits. ``_settle_heap`` makes the one full collection a reload needs.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], _NO_FULL_COLLECTION)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _settle_heap() -> None:
    """Collect the old config's garbage once, then exempt what is left from collection.

    The model, the exposition's series and the engine live until the next reload: tens of
    thousands of objects for thousands of journeys. Left in the oldest generation, every full
    collection walks them all, holding the event loop for 100+ ms every few seconds at
    500 runs/s (B2). Frozen, a full collection walks only what the runs left behind. A reload
    unfreezes first, so the config it replaces is collected, not kept forever.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _state(up: bool | None) -> str:
    return {None: "(no run yet)", True: "up", False: "<b>DOWN</b>"}[up]
