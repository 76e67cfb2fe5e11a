"""Run journeys on the Locust engine and print what happened, as JSON.

    python tests/loadtests/locust_once.py CHECKS [--runs N] JOURNEY_ID [JOURNEY_ID ...]

The parity test runs this in a subprocess, so the pytest process is never monkey-patched by
gevent. It uses the load test's own user classes (``loadtests._users``), in a bare Locust
``Environment``: one user per journey, one run each (``--runs``: that user runs it N times, as
a simulated customer does), no spawning. Output, ``result`` being the last run's::

    {"app/login": {"result": RunResult.to_dict(), "entries": [[type, name, error], ...]}}
"""

from __future__ import annotations

from locust.env import Environment

import json
import sys
from typing import Any

from loadtests._users import user_classes
from probes.model.load import load_config


def main(checks: str, journey_ids: list[str], *, runs: int = 1) -> dict[str, Any]:
    config = load_config(checks)
    classes = user_classes(config, location=config.defaults.location)
    environment = Environment(user_classes=list(classes.values()))
    entries: list[list[Any]] = []

    def record(request_type: str, name: str, exception: Exception | None, **_: Any) -> None:
        entries.append([request_type, name, None if exception is None else repr(exception)])

    environment.events.request.add_listener(record)
    out: dict[str, Any] = {}
    for journey_id in journey_ids:
        user = classes[journey_id](environment)
        user.on_start()
        entries.clear()
        for _ in range(runs):
            result = user.interpreter.run(user.journey)
        out[journey_id] = {"result": result.to_dict(), "entries": list(entries)}
    return out


if __name__ == "__main__":
    checks, ids = sys.argv[1], sys.argv[2:]
    runs = 1
    if ids[:1] == ["--runs"]:
        runs, ids = int(ids[1]), ids[2:]
    print(json.dumps(main(checks, ids, runs=runs)))
