"""Locust users generated from checks.yaml: one user class per journey, running its own steps.

::

    DEMOCARE_URL=http://127.0.0.1:8901 DEMOCARE_WS_URL=ws://127.0.0.1:8901 \\
        locust -f loadtests/locustfile.py --headless -u 20 -r 10 -t 30s

Read from the environment, as the exporter reads its options and the checks file its secrets:

* ``CAREWATCH_CHECKS``: the checks file (default ``checks.yaml``);
* ``CAREWATCH_LOCATION``: the location label the journeys run as (default ``defaults.location``);
* every ``${env:NAME}`` the checks file names (``DEMOCARE_URL`` in the demo): requests go to the
  URLs the journeys write, so that is how a load test is pointed at a target. ``--host`` is not.

Journeys the Locust engine cannot run (await, SMTP, TCP and DNS steps, ``tls`` options) are left
out, each with its reason, logged when the test starts (see ``loadtests.journeys``).

The top-level ``loadtest:`` section sets the load: its ``users``, ``spawn_rate`` and
``run_time`` are the defaults of ``-u``, ``-r`` and ``-t`` (the command line wins), and its
``stages`` (ramp, hold, spike) become a load shape that ends the test after the last stage (see
``loadtests._load``)::

    CAREWATCH_CHECKS=checks.yaml locust -f loadtests/locustfile.py --headless

When the test ends, the master checks the thresholds (``loadtest:`` sections, else each
journey's SLO) and exits with 99 if one broke; ``--thresholds-junit PATH`` and
``--thresholds-json PATH`` write the verdict for CI (see ``loadtests._verdict``).
"""

from __future__ import annotations

import locust
from locust.env import Environment
from locust.runners import WorkerRunner

import logging
import os
import re
import sys
from typing import Any, Final

from loadtests import _load as load
from loadtests._users import NO_HOST, selected, user_classes
from loadtests._verdict import install
from loadtests.journeys import excluded
from probes import ConfigError, Exit
from probes.model import NAME_PATTERN, load_config

log = logging.getLogger("carewatch.loadtest")


def _fail(message: str) -> None:
    sys.stderr.write(f"carewatch load test: {message}\n")
    raise SystemExit(Exit.CONFIG)  # the checks file is invalid, or nothing in it can run


CHECKS: Final = os.environ.get("CAREWATCH_CHECKS", "checks.yaml")
try:
    config = load_config(CHECKS)
except ConfigError as exc:
    _fail(str(exc))
LOCATION: Final = os.environ.get("CAREWATCH_LOCATION") or config.defaults.location
if not re.match(NAME_PATTERN, LOCATION):
    _fail(f"CAREWATCH_LOCATION: expected letters, digits, '_', '.' or '-', got {LOCATION!r}")
#: The journeys left out of this load test, with why: ``[(journey_id, reason)]``.
EXCLUDED: Final = excluded(config, location=LOCATION)
USERS: Final = user_classes(config, location=LOCATION)
if not USERS:
    _fail(
        f"no journey in {CHECKS} can be load-tested: "
        + "; ".join(f"{journey_id}: {reason}" for journey_id, reason in EXCLUDED)
    )
globals().update(USERS)  # Locust finds the user classes among this module's names
install(locust.events, config, location=LOCATION, excluded=EXCLUDED)
if config.loadtest is not None:
    load.install(locust.events, config.loadtest)  # users, spawn_rate, run_time: -u, -r, -t
    if config.loadtest.stages:
        # Locust runs a shape class it finds here: bound only when there are stages.
        StagesShape = load.shape(config.loadtest.stages)


@locust.events.init.add_listener  # type: ignore[untyped-decorator]  # locust: untyped
def _start(environment: Environment, **_: Any) -> None:
    """Drop the journeys ``--tags`` leaves nothing to run; then say, once and on the master,
    what the load test leaves out and what ``--host`` does."""
    options = environment.parsed_options
    tags = getattr(options, "tags", None) or ()
    exclude_tags = getattr(options, "exclude_tags", None) or ()
    if tags or exclude_tags:
        kept = selected(environment.user_classes, tags=tags, exclude_tags=exclude_tags)
        if kept:  # else Locust says there is nothing to run
            environment.user_classes[:] = kept
    if isinstance(environment.runner, WorkerRunner):
        return
    log.info("load-testing %d journeys from %s as %s", len(USERS), CHECKS, LOCATION)
    for journey_id, reason in EXCLUDED:
        log.warning("not load-tested: %s: %s", journey_id, reason)
    hosts = {user.host for user in USERS.values() if user.host} - {NO_HOST}
    if environment.host and hosts and hosts != {environment.host.rstrip("/")}:
        log.warning(
            "--host %s is not where requests go: the journeys use the URLs of %s (%s); set the "
            "environment variables the file reads (such as DEMOCARE_URL) to change them",
            environment.host,
            CHECKS,
            ", ".join(sorted(hosts)),
        )
