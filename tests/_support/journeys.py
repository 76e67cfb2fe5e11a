"""checks.yaml documents of one journey, parsed as the exporter parses them, and run on a fresh
engine, so that a test writes only the steps it is about.

>>> config = one_journey({"name": "s", "url": "${base}/hello"}, base="http://127.0.0.1:8900")
>>> journey = config.journeys[0]
>>> journey.id, [step.name for step in journey.steps]
('app/j', ['s'])

In an async test: ``result = await run(one_step("${base}/hello"), retries=1, base=base)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from probes.engine.engine import Engine
from probes.model.config import Config
from probes.model.load import parse_config
from probes.runs.limits import MAX_BODY_BYTES, Limits
from probes.runs.results import Outcome, RunResult, StepResult

Step = dict[str, Any]

DEFAULTS: Final = {"interval": "60s", "timeout": "5s", "retries": 0}
#: The device profile ``device: android`` names; every document declares it.
ANDROID_AGENT: Final = "CareApp/5.2.0 (Android 14; Pixel 8)"
DEVICES: Final = {
    "android": {
        "user_agent": ANDROID_AGENT,
        "headers": {"X-App-Version": "5.2.0", "X-Platform": "android"},
    }
}
#: The channel a journey belongs to: ``name``, ``kind`` and ``team``.
APP: Final = {"name": "app", "kind": "app", "team": "care"}
CHAT: Final = {"name": "chat", "kind": "chat", "team": "care"}
VOICE: Final = {"name": "voice", "kind": "voice", "team": "telephony"}
EMAIL: Final = {"name": "email", "kind": "email", "team": "care-email"}
#: A host that cannot exist, and that fails without the network. A short name under
#: ``.invalid`` is sent to the configured name server (glibc special-cases nothing), which
#: answers at once here but can hang for seconds per try on a machine without network. This
#: name has labels of legal length (URL parsers and IDNA accept it) but is longer than the 255
#: bytes a DNS query can carry, so the resolver rejects it before sending anything.
UNRESOLVABLE: Final = ".".join(c * 63 for c in "abcd") + ".invalid"


def one_journey(
    *steps: Step,
    channel: Mapping[str, str] = APP,
    cleanup: Sequence[Step] = (),
    name: str = "j",
    device: str | None = None,
    retries: int | None = None,
    timeout: str | None = None,
    **variables: Any,
) -> Config:
    """A config of one journey ``name`` of ``steps`` on ``channel``, with ``cleanup`` as its
    ``finally`` steps, and ``variables`` (``base=url``) for the steps to template.

    ``device``, ``retries`` and ``timeout`` set the journey's own, when given.
    """
    journey: dict[str, Any] = {"name": name, "steps": list(steps)}
    if cleanup:
        journey["finally"] = list(cleanup)
    for key, value in {"device": device, "retries": retries, "timeout": timeout}.items():
        if value is not None:
            journey[key] = value
    document = {
        "defaults": DEFAULTS,
        "devices": DEVICES,
        "variables": variables,
        "channels": [{**channel, "journeys": [journey]}],
    }
    return parse_config(json.dumps(document), environ={})


async def run_journey(config: Config, *, max_body_bytes: int = MAX_BODY_BYTES) -> RunResult:
    """Run the first journey of ``config`` with a fresh engine at location ``test``."""
    engine = Engine(config.variables, location="test", limits=Limits(body_bytes=max_body_bytes))
    return await engine.run(config.journeys[0])


async def run(*steps: Step, max_body_bytes: int = MAX_BODY_BYTES, **options: Any) -> RunResult:
    """Run ``one_journey(*steps, **options)`` with a fresh engine."""
    return await run_journey(one_journey(*steps, **options), max_body_bytes=max_body_bytes)


def one_step(url: str, **fields: Any) -> Step:
    """A step ``s`` getting ``url``; ``fields`` join it (``expect={...}``, ``timeout="1s"``)."""
    return {"name": "s", "url": url, **fields}


def failed(result: RunResult) -> StepResult:
    """The step the run's final attempt blames; the run must have failed."""
    assert not result.ok
    step = result.final.failed_step
    assert step is not None
    assert step.outcome is Outcome.FAILED
    return step
