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
import gc
import html
import json
import logging
import time
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
from probes.runs.results import RunResult
from probes.service.exposition import Exposition
from probes.service.receiver import WebhookCollector, WebhookReceiver
from probes.service.scheduler import DEFAULT_MAX_CONCURRENCY, Scheduler

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: The longest a scrape holds the event loop before letting the probes' timers run. Each turn
#: given away costs the scrape a loop iteration of probe work, so not after every piece.
SCRAPE_SLICE_SECONDS: Final = 0.005
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
    ) -> None:
        self.config_path = str(config_path)
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
        self.scheduler.stop()
        gc.unfreeze()

    async def reload(self) -> list[Problem]:
        """Load the config file again. On problems, log them and keep the running config."""
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            try:
                config = await loop.run_in_executor(None, load_config, self.config_path)
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
            self.config = config
            self.engine = Engine(
                config.variables,
                location=location,
                coordinates=config.locations.get(location),
                webhooks=self.webhooks,
                secrets=config.secrets,
            )
            self.exposition.configure(config, location=location)
            self._locate(location)
            self.scheduler.schedule(j for j in config.journeys if j.runs_at(location))
            _settle_heap()
            self._last_up = {
                k: v for k, v in self._last_up.items() if any(j.id == k for j in config.journeys)
            }
            self._reload_ok.set(1)
            self._reload_time.set(time.time())
            log.info(
                "config loaded from %s: %d channels, %d journeys, location %s",
                self.config_path,
                len(config.channels),
                len(config.journeys),
                self.location,
            )
            for warning in config.warnings:  # once per load, as carewatch check prints them
                log.warning("%s", warning)
            return []

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
        app.router.add_get("/probe", self._probe)
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
        return web.Response(text="Ready.\n")

    async def _reload(self, _: web.Request) -> web.Response:
        problems = await self.reload()
        if problems:
            return web.json_response(
                {"status": "rejected", "errors": [str(p) for p in problems]}, status=400
            )
        return web.json_response({"status": "reloaded"})

    async def _probe(self, request: web.Request) -> web.Response:
        name = request.query.get("journey", "")
        if self.config is None or self.engine is None:
            return web.json_response({"error": "no config loaded"}, status=503)
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
        result = await self.engine.run(journey)
        text = self.config.secrets.redact(json.dumps(result.to_dict(), indent=2))
        return web.Response(text=text + "\n", content_type="application/json")

    async def _index(self, _: web.Request) -> web.Response:
        journeys = self.config.journeys if self.config else ()
        rows = "".join(
            f'<li><a href="/probe?journey={html.escape(j.id)}">{html.escape(j.id)}</a> '
            f"{_state(self._last_up.get(j.id))}</li>"
            for j in journeys
        )
        page = (
            "<!doctype html><title>carewatch</title><h1>carewatch</h1>"
            f"<p>location {html.escape(self.location)}, config {html.escape(self.config_path)}</p>"
            '<p><a href="/metrics">/metrics</a> · <a href="/-/healthy">/-/healthy</a> · '
            '<a href="/-/ready">/-/ready</a></p>'
            f"<h2>Journeys (run now)</h2><ul>{rows}</ul>"
        )
        return web.Response(text=page, content_type="text/html")


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
