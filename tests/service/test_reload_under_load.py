"""Reloads while the agent probes: a reload never stops, resets or delays the journeys.

* Under load: 200 journeys against a local target, a reload every second, valid and invalid
  files in turn. Across every scrape: no counter goes down (0 resets), every journey runs in
  every window of a few intervals (0 lost runs), and no journey of the config loses its series
  (0 stale series).
* A large file: while thousands of journeys parse, ``/-/healthy`` answers and a control
  journey starts on time, measured against the length of the reload itself.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from probes.service.agent import Service
from tests._support.scrape import samples
from tests._support.servers import ServerFactory, serve

JOURNEYS = 200
INTERVAL_SECONDS = 2.0
RELOAD_EVERY_SECONDS = 1.0
RELOADS = 40
#: Every journey must have run in any span of this many intervals (one run in two may be
#: skipped or late on a loaded machine; a journey the reload unscheduled has none at all).
WINDOW_INTERVALS = 4
RUNS = "carewatch_journey_runs_total"

CONFIG = """
defaults: {{interval: {interval}s, timeout: 1s, retries: 0}}
variables: {{base: "{base}", flavour: "{flavour}"}}
channels:
{channels}
"""
CHANNEL = """  - name: c{channel}
    kind: app
    team: care
    journeys:
{journeys}"""
JOURNEY = '      - {{name: j{n}, steps: [{{name: s, url: "${{base}}/fast?f=${{flavour}}"}}]}}\n'
EXTRA = """  - name: extra
    kind: web
    team: care
    journeys:
      - {name: only-in-b, steps: [{name: s, url: "${base}/fast"}]}
"""


def config(base: str, *, journeys: int = JOURNEYS, flavour: str = "a", extra: bool = False) -> str:
    """``journeys`` journeys in channels of 50, each one GET of ``base/fast``."""
    channels = [
        CHANNEL.format(
            channel=c,
            journeys="".join(
                JOURNEY.format(n=n) for n in range(c * 50, min(journeys, c * 50 + 50))
            ),
        )
        for c in range((journeys + 49) // 50)
    ]
    text = CONFIG.format(
        interval=INTERVAL_SECONDS, base=base, flavour=flavour, channels="".join(channels)
    )
    return text + EXTRA if extra else text


def invalid_files(good: str) -> list[tuple[str, str]]:
    """Broken versions of ``good``, each broken in another way, with what breaks it."""
    return [
        ("yaml syntax", good.replace("channels:", "channels: [", 1)),
        ("unknown kind", good.replace("kind: app", "kind: teleport", 1)),
        ("nan interval", good.replace(f"interval: {INTERVAL_SECONDS}s", "interval: .nan", 1)),
        ("wrong type", good.replace("retries: 0", "retries: lots", 1)),
    ]


Runs = dict[str, float]


def runs_by_journey(text: str) -> Runs:
    """Each journey's runs, every result summed, by ``channel/journey``.

    Only the runs family is parsed, with prometheus-client's parser: the whole exposition of
    200 journeys each second would cost the loop that runs them more than the runs do.
    """
    family = "".join(
        line + "\n"
        for line in text.splitlines()
        if line.startswith((RUNS + "{", f"# HELP {RUNS} ", f"# TYPE {RUNS} "))
    )
    runs: Runs = {}
    for (name, labels), count in samples(family).items():
        if name == RUNS:
            found = dict(labels)
            journey = f"{found['channel']}/{found['journey']}"
            runs[journey] = runs.get(journey, 0.0) + count
    return runs


async def test_reloads_every_second_lose_no_run_reset_no_counter_and_leave_no_series_stale(
    aiohttp_server: ServerFactory,
    write_config: Callable[[str], Path],
    aiohttp_client: Callable[..., object],
) -> None:
    async def fast(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    base = await serve(aiohttp_server, fast=fast)
    valid = [config(base), config(base, flavour="b", extra=True)]
    path = write_config(valid[0])
    service = Service(path, location="test")
    await service.start()
    loop = asyncio.get_running_loop()
    try:
        client: TestClient = await aiohttp_client(service.app())  # type: ignore[operator]
        wanted = {f"c{n // 50}/j{n}" for n in range(JOURNEYS)}
        await asyncio.sleep(INTERVAL_SECONDS + 1.0)  # every journey has run once
        scrapes: list[tuple[float, Runs]] = []
        statuses: dict[str, list[int]] = {"valid": [], "invalid": []}
        broken = invalid_files(valid[0])
        for n in range(RELOADS):
            if n % 2 == 0:
                path.write_text(valid[(n // 2) % 2])
            else:
                path.write_text(broken[(n // 2) % len(broken)][1])
            started = loop.time()
            response = await client.post("/-/reload")
            statuses["valid" if n % 2 == 0 else "invalid"].append(response.status)
            text = await (await client.get("/metrics")).text()
            scrapes.append((loop.time(), runs_by_journey(text)))
            await asyncio.sleep(max(0.0, RELOAD_EVERY_SECONDS - (loop.time() - started)))
    finally:
        await service.stop()

    runs = sum(scrapes[-1][1][j] - scrapes[0][1][j] for j in wanted)
    print(
        f"{RELOADS} reloads in {scrapes[-1][0] - scrapes[0][0]:.1f} s, {runs:.0f} runs of"
        f" {len(wanted)} journeys, statuses {statuses}"
    )
    assert set(statuses["valid"]) == {200}, statuses
    assert set(statuses["invalid"]) == {400}, statuses
    stale = [(i, sorted(wanted - set(runs))[:3]) for i, (_, runs) in enumerate(scrapes)]
    assert [s for s in stale if s[1]] == [], "series vanished for journeys still in the config"
    resets = [
        (journey, before[journey], after[journey])
        for (_, before), (_, after) in itertools.pairwise(scrapes)
        for journey in wanted
        if after[journey] < before[journey]
    ]
    assert resets == [], resets[:5]
    window = WINDOW_INTERVALS * INTERVAL_SECONDS
    lost = []
    for at, before in scrapes:
        later = [runs for when, runs in scrapes if when >= at + window]
        if later:
            lost += [(at, j) for j in wanted if later[0][j] <= before[j]]
    assert lost == [], f"{len(lost)} journey windows without a run, first {lost[:5]}"
    assert scrapes[-1][0] - scrapes[0][0] >= (RELOADS - 1) * RELOAD_EVERY_SECONDS * 0.9


# --- a large file ----------------------------------------------------------------------------

LARGE_JOURNEYS = 4000
#: The longest a health check or the control journey may be held up, as a share of the whole
#: reload: the one full garbage collection left on the loop (``_settle_heap``) takes about 1/30
#: of it; the full collections that the growing parse set off took up to 1/12 each.
STALL_SHARE = 1 / 20

#: The loop's stalls longer than this are counted (a thread's turn with the lock is 5 ms).
STALL_SECONDS = 0.05
#: The longest all the loop's stalls may last together, as a share of the whole reload: about
#: 1/18 after the fix, 1/3 before (the parse's full collections, then the commit in one block).
STALLED_SHARE = 1 / 8


async def watch_the_loop(stalls: list[float]) -> None:
    """Note each time the loop came back more than STALL_SECONDS late, until cancelled."""
    while True:
        asked = time.monotonic()
        await asyncio.sleep(0.01)
        late = time.monotonic() - asked - 0.01
        if late > STALL_SECONDS:
            stalls.append(late)


CONTROL = """
defaults: {{interval: 1s, timeout: 1s, retries: 0}}
channels:
  - name: control
    kind: web
    team: care
    journeys:
      - {{name: home, steps: [{{name: s, url: "{base}/control"}}]}}
"""
BULK = "  - name: bulk\n    kind: app\n    team: care\n    journeys:\n"
QUIET = (
    '      - {{name: j{n}, interval: 24h, steps: [{{name: s, url: "http://127.0.0.1:9/a?b=c",'
    ' headers: {{X-Care: "{n}"}}, expect: {{status: 200, json: [{{path: $.x, exists: true}}]}}}},'
    ' {{name: t, method: POST, url: "http://127.0.0.1:9/", json: {{a: 1, b: [1, 2, 3]}}}}]}}\n'
)


async def test_a_large_reload_neither_stalls_health_checks_nor_delays_the_control_journey(
    aiohttp_server: ServerFactory,
    write_config: Callable[[str], Path],
    aiohttp_client: Callable[..., object],
) -> None:
    arrivals: list[float] = []

    async def control(_: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return web.Response(text="ok")

    base = await serve(aiohttp_server, control=control)
    small = CONTROL.format(base=base)
    path = write_config(small)
    service = Service(path, location="test")
    await service.start()
    try:
        client: TestClient = await aiohttp_client(service.app())  # type: ignore[operator]
        quiet = "".join(QUIET.format(n=n) for n in range(LARGE_JOURNEYS))
        path.write_text(small + BULK + quiet)
        await asyncio.sleep(2.5)  # the control journey runs on its own first
        assert len(arrivals) >= 2
        stalls: list[float] = []
        watch = asyncio.ensure_future(watch_the_loop(stalls))
        reload = asyncio.ensure_future(client.post("/-/reload"))
        started = time.monotonic()
        waits: list[float] = []
        took = 0.0  # set when the reload answers; the checks go on for a second after it
        while not took or time.monotonic() < started + took + 1.0:
            asked = time.monotonic()
            response = await client.get("/-/healthy")
            assert response.status == 200
            waits.append(time.monotonic() - asked)
            if reload.done() and not took:
                took = time.monotonic() - started
            await asyncio.sleep(0.02)
        watch.cancel()
        assert (await reload).status == 200
        assert service.scheduler.journeys == LARGE_JOURNEYS + 1
        await asyncio.sleep(1.0)  # the control journey's next run, after the reload
        large = gc.get_freeze_count()  # after a reload, every live object (see _settle_heap)
        path.write_text(small)
        assert (await client.post("/-/reload")).status == 200
        freed = large - gc.get_freeze_count()
        assert freed > 10 * LARGE_JOURNEYS, f"{freed} objects freed: the large config is held"
        assert service.scheduler.journeys == 1
    finally:
        await service.stop()
    gaps = [b - a for a, b in itertools.pairwise(arrivals) if b >= started]
    late = max(gaps) - 1.0
    print(
        f"reload {took:.2f} s, /-/healthy at most {max(waits):.3f} s, control late {late:.3f} s,"
        f" stalls {sorted(round(s, 3) for s in stalls)}, {freed} objects freed after"
    )
    assert took > 2.0, f"the reload took {took:.2f} s: too small a file to measure anything"
    assert sum(stalls) < took * STALLED_SHARE, f"the loop stalled {stalls} in a {took:.2f} s reload"
    assert max(waits) < took * STALL_SHARE, (
        f"/-/healthy waited {max(waits):.3f} s during a {took:.2f} s reload"
    )
    assert late < took * STALL_SHARE, f"control started {late:.3f} s late in a {took:.2f} s reload"
