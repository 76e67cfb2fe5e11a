"""What an HTTP step costs in network terms, measured against a real loopback server, and the
experience estimate the exposition publishes from it."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from probes.engine.engine import Engine
from probes.model.load import parse_config
from probes.model.networks import PROFILES
from probes.runs.experience import estimate, round_trips
from probes.service.exposition import Exposition
from tests._support.servers import ServerFactory, serve

BODY_BYTES = 50_000
THINK_SECONDS = 0.1

JOURNEY = """
networks:
  rural: {{rtt: 250ms, down_kbps: 800, up_kbps: 300}}
channels:
  - name: app
    kind: app
    team: care
    journeys:
      - name: j
        networks: [wifi, 4g, rural]
        steps:
          - {{name: first, url: "http://localhost:{port}/big"}}
          - {{name: again, method: POST, url: "http://localhost:{port}/big",
              json: {{note: "{note}"}}}}
"""


async def big(request: web.Request) -> web.Response:
    await request.read()
    await asyncio.sleep(THINK_SECONDS)
    return web.Response(body=b"x" * BODY_BYTES)


async def run_journey(aiohttp_server: ServerFactory) -> tuple[object, object]:
    base = await serve(aiohttp_server, big=big)
    port = base.rsplit(":", 1)[1]
    config = parse_config(JOURNEY.format(port=port, note="n" * 1000), environ={})
    result = await Engine(config.variables, location="here").run(config.journeys[0])
    return config, result


async def test_a_new_connection_then_a_reused_one(aiohttp_server: ServerFactory) -> None:
    _, result = await run_journey(aiohttp_server)
    first, again = (s.traffic for s in result.final.steps)  # type: ignore[attr-defined]
    assert first is not None
    assert again is not None
    assert (first.dns_lookups, first.new_connections, first.requests) == (1, 1, 1)
    assert (again.dns_lookups, again.new_connections, again.requests) == (0, 0, 1)
    assert first.tls_handshakes == again.tls_handshakes == 0  # plain http
    assert BODY_BYTES < first.bytes_received < BODY_BYTES + 1000  # the body and its headers
    assert again.bytes_sent > 1000 > first.bytes_sent  # the POST carried a 1 kB JSON body
    assert THINK_SECONDS * 0.9 < first.server_seconds < THINK_SECONDS + 0.5


async def test_the_experience_estimate_is_published_per_network(
    aiohttp_server: ServerFactory,
) -> None:
    config, result = await run_journey(aiohttp_server)
    exposition = Exposition()
    exposition.configure(config, location="here")  # type: ignore[arg-type]
    exposition.record(result)  # type: ignore[arg-type]
    published = {
        s.labels["network"]: s.value
        for family in text_string_to_metric_families(exposition.render())
        for s in family.samples
        if s.name == "carewatch_journey_experience_seconds"
    }
    traffic = [s.traffic for s in result.final.steps]  # type: ignore[attr-defined]
    rural = config.journeys[0].networks["rural"]  # type: ignore[attr-defined]
    assert published == {
        "wifi": estimate(traffic, PROFILES["wifi"]),
        "4g": estimate(traffic, PROFILES["4g"]),
        "rural": estimate(traffic, rural),
    }
    assert published["wifi"] < published["4g"] < published["rural"]
    # Round trips: the first step pays DNS, TCP, the request, and 2 of slow start (~50 kB needs
    # windows of 10, 20 and 40 segments); the second, on the same connection, only its request.
    assert [round_trips(t) for t in traffic] == [5, 1]
