"""Locust user classes built from the journey model: one class per journey.

A user is one simulated customer: it runs its journey, waits (the journey's ``loadtest.wait``),
and runs it again until the test ends. The class is named after the journey (``app/login``), so
``locust -f loadtests/locustfile.py app/login`` runs that journey alone, and ``--tags app`` the
journeys of the app channel (see ``loadtests.journeys.tags``).

>>> classes = user_classes(config, location="local")      # doctest: +SKIP
>>> sorted(classes)[:2], classes["app/login"].weight       # doctest: +SKIP
(['agent-console/ticket-reaches-agent', 'app/login'], 1)
"""

from __future__ import annotations

from locust import User, between, tag, task
from locust.contrib.fasthttp import FastHttpUser

from collections.abc import Collection, Mapping, Sequence
from typing import ClassVar
from urllib.parse import urlsplit

from loadtests._interpreter import Interpreter
from loadtests.journeys import included, settings, tags
from probes import MissingVariable
from probes.model import (
    NO_SECRETS,
    Config,
    HttpStep,
    Journey,
    Location,
    Scalar,
    Secrets,
    WebSocketStep,
    render_str,
)
from probes.runs import DEFAULT_LIMITS, new_scope

#: The host of a user whose journey names none Locust can use. Requests use full URLs, so the
#: host is only what Locust shows, and what ``--host`` would replace (to no effect).
NO_HOST = "http://localhost"


class JourneyUser(FastHttpUser):
    """A simulated customer who runs one journey again and again. Subclassed per journey."""

    abstract = True
    journey: ClassVar[Journey]
    journey_tags: ClassVar[tuple[str, ...]] = ()  # the tags of its one task
    variables: ClassVar[Mapping[str, Scalar]]
    secrets: ClassVar[Secrets] = NO_SECRETS
    location: ClassVar[str]
    coordinates: ClassVar[Location | None] = None
    insecure = False  # verify certificates, as the probes do
    max_redirects = DEFAULT_LIMITS.redirects  # what the interpreter's limits say
    max_retries = 0  # a journey retries itself (``retries:``); the client never does

    def on_start(self) -> None:
        self.interpreter = Interpreter(
            self.client,
            variables=self.variables,
            secrets=self.secrets,
            location=self.location,
            coordinates=self.coordinates,
        )

    def run_journey(self) -> None:
        """One run of the journey, retries included: what its task does between waits."""
        self.interpreter.simulate(self.journey)


def user_classes(config: Config, *, location: str) -> dict[str, type[JourneyUser]]:
    """A user class per journey that a load test run as ``location`` can run, by journey id."""
    coordinates = config.locations.get(location)
    classes: dict[str, type[JourneyUser]] = {}
    for journey in included(config, location=location):
        own = settings(journey)
        labels = tags(journey, config.channel(journey.channel).kind.value)

        def run(user: JourneyUser) -> None:
            user.interpreter.simulate(user.journey)  # run_journey, one call less per run

        run.__name__ = run.__qualname__ = journey.id  # what Locust's task listings show
        namespace = {
            "__module__": __name__,
            "__doc__": f"Runs {journey.id} from {config.source}.",
            "journey": journey,
            "journey_tags": labels,
            "variables": config.variables,
            "secrets": config.secrets,
            "location": location,
            "coordinates": coordinates,
            "weight": own.weight,
            "wait_time": between(own.wait.min, own.wait.max),
            "host": origin(journey, config.variables, location=location),
            "network_timeout": journey.timeout,
            "connection_timeout": journey.timeout,
            "tasks": [tag(*labels)(task(run))],
        }
        classes[journey.id] = type(journey.id, (JourneyUser,), namespace)
    return classes


def selected(
    classes: Sequence[type[User]], *, tags: Collection[str], exclude_tags: Collection[str]
) -> list[type[User]]:
    """The journey users that ``--tags`` / ``--exclude-tags`` leave their task to.

    Locust filters tasks, not users: a user whose only task is filtered out would still be
    spawned, and fail with "No tasks defined". Dropping it before the test starts avoids that.
    """
    kept: list[type[User]] = []
    for cls in classes:
        labels = set(getattr(cls, "journey_tags", ()))
        if tags and not labels & set(tags):
            continue
        if labels & set(exclude_tags):
            continue
        kept.append(cls)
    return kept


def origin(journey: Journey, variables: Mapping[str, Scalar], *, location: str) -> str:
    """``scheme://host:port`` of the journey's first URL (``ws`` as ``http``), for Locust's
    ``host``; ``NO_HOST`` when it cannot be told before the run (the URL needs a capture)."""
    scope = new_scope(journey, variables, location=location)
    for step in journey.steps:
        written = step.url if isinstance(step, HttpStep) else None
        if isinstance(step, WebSocketStep):
            written = step.websocket
        if written is None:
            continue
        try:
            parts = urlsplit(render_str(written, scope))
        except (MissingVariable, ValueError):
            return NO_HOST
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        return f"{scheme}://{parts.netloc}" if parts.netloc else NO_HOST
    return NO_HOST
