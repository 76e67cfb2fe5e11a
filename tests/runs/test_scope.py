"""Engine-neutral rendering: a step's ``tls`` options take templates like any other string; what
an engine may work out once per journey (a constant request, its scopes) is what it would
render on every run."""

from __future__ import annotations

import re

import pytest

from probes.model.config import Journey, Location
from probes.model.load import parse_config
from probes.model.steps import HttpStep, SmtpStep, TcpStep, WebSocketStep
from probes.runs.scope import (
    Scopes,
    constant_request,
    new_scope,
    referenced,
    render_request,
    render_tls,
)

STEPS = """
variables: {{ca: /etc/care/ca.pem, host: care.example.com}}
channels:
  - name: app
    kind: app
    team: t
    journeys:
      - name: j
        steps:
          - {step}
"""
TLS = '{ca_file: "${ca}", server_name: "${host}"}'


@pytest.mark.parametrize(
    ("step", "kind"),
    [
        (f"{{name: s, url: 'https://x/', tls: {TLS}}}", HttpStep),
        (
            f"{{name: s, websocket: 'wss://x/', tls: {TLS}, "
            "conversation: [{send: {text: hi}}]}",
            WebSocketStep,
        ),
        (f"{{name: s, tcp: {{address: 'x:5061', tls: {TLS}}}}}", TcpStep),
        (
            f"{{name: s, smtp: {{address: 'x:25', tls: {TLS}, from: a@x, to: b@x, subject: s}}}}",
            SmtpStep,
        ),
    ],
)
def test_tls_options_are_rendered_for_every_kind(step: str, kind: type) -> None:
    config = parse_config(STEPS.format(step=step), environ={})
    (original,) = config.journeys[0].steps
    assert isinstance(original, kind)
    rendered = render_tls(original, {"ca": "/etc/care/ca.pem", "host": "care.example.com"})
    block = getattr(rendered, {TcpStep: "tcp", SmtpStep: "smtp"}.get(kind, ""), rendered)
    assert (block.tls.ca_file, block.tls.server_name) == ("/etc/care/ca.pem", "care.example.com")
    assert original != rendered  # the model is frozen: rendering makes a new step


def test_a_step_without_templates_is_returned_as_it_is() -> None:
    config = parse_config(
        STEPS.format(step="{name: s, url: 'https://x/', tls: {insecure: true}}"), environ={}
    )
    (step,) = config.journeys[0].steps
    assert render_tls(step, {}) is step


# --- what an engine may work out once per journey ----------------------------------------------

REQUESTS = """
variables: {{host: care.example.com, n: 5{extra}}}
devices:
  phone: {{user_agent: "{agent}", headers: {{X-Platform: ios}}}}
channels:
  - name: app
    kind: app
    team: t
    journeys:
      - name: j
        device: phone
        steps:
          - {step}
        finally:
          - {{name: bye, url: "https://x/bye"}}
"""
CONSTANT = (
    "{name: s, method: POST, url: 'https://x/a?b=1', headers: {x-platform: web, X-L: '$${lit}'}, "
    "query: {q: [1, two], on: true}, json: {a: [1, null], b: {c: x}}}"
)


def journey_of(step: str, *, agent: str = "CareApp/1.0", extra: str = "") -> Journey:
    config = parse_config(REQUESTS.format(step=step, agent=agent, extra=extra), environ={})
    return config.journeys[0]


def test_a_step_without_templates_renders_once_as_in_any_scope() -> None:
    journey = journey_of(CONSTANT)
    (step,) = journey.steps
    assert isinstance(step, HttpStep)
    constant = constant_request(step, journey.device)
    scope = new_scope(journey, {"host": "h"}, location="paris")
    assert constant is not None
    assert constant == render_request(step, scope, journey.device)
    assert constant.headers == {"User-Agent": "CareApp/1.0", "x-platform": "web", "X-L": "${lit}"}


@pytest.mark.parametrize(
    ("step", "agent"),
    [
        ("{name: s, url: 'https://${host}/'}", "CareApp/1.0"),
        ("{name: s, url: 'https://x/', headers: {X-Id: '${uuid}'}}", "CareApp/1.0"),
        ("{name: s, url: 'https://x/', query: {t: '${timestamp}'}}", "CareApp/1.0"),
        ("{name: s, method: POST, url: 'https://x/', json: {n: '${n}'}}", "CareApp/1.0"),
        ("{name: s, method: POST, url: 'https://x/', body: 'run ${run_id}'}", "CareApp/1.0"),
        ("{name: s, url: 'https://x/'}", "CareApp/1.0 (${location})"),
    ],
)
def test_a_step_naming_a_variable_is_not_constant(step: str, agent: str) -> None:
    journey = journey_of(step, agent=agent)
    (http,) = journey.steps
    assert isinstance(http, HttpStep)
    assert constant_request(http, journey.device) is None


def test_referenced_names_every_template_of_the_journey() -> None:
    journey = journey_of(
        "{name: s, url: 'https://${host}/', expect: {body: {contains: '${run_id}'}}}",
        agent="CareApp (${location})",
        extra=", label: '${channel}-${env:HOME:-x}'",
    )
    variables = {"host": "h", "label": "${channel}"}
    assert referenced(journey, variables) == {"host", "run_id", "location", "channel"}
    assert "run_id" not in referenced(journey_of(CONSTANT), {"host": "h"})


def test_scopes_make_what_new_scope_makes() -> None:
    journey = journey_of(CONSTANT)
    here = Location(lat=1.5, lon=2.5)
    variables = {"host": "care.example.com", "n": 5}
    scopes = Scopes(journey, variables, location="paris", coordinates=here)
    first, second = scopes.new(), scopes.new()
    expected = new_scope(journey, variables, location="paris", coordinates=here)
    assert {k: v for k, v in first.items() if k != "run_id"} == {
        k: v for k, v in expected.items() if k != "run_id"
    }
    assert first["run_id"] != second["run_id"]
    assert re.fullmatch("[0-9a-f]{32}", str(first["run_id"]))
    first["token"] = "captured"
    assert "token" not in scopes.new()  # every attempt starts afresh
    assert "run_id" not in Scopes(journey, variables, location="paris", run_id=False).new()


def test_scopes_render_templated_variables_for_each_attempt() -> None:
    journey = journey_of(CONSTANT)
    variables = {"order": "o-${run_id}", "id": "${uuid}"}
    scope_a, scope_b = (
        Scopes(journey, variables, location="paris").new(),
        Scopes(journey, variables, location="paris").new(),
    )
    assert scope_a["order"] == f"o-{scope_a['run_id']}"
    assert scope_a["id"] != scope_b["id"]


def test_a_variable_named_run_id_replaces_the_builtin_as_in_new_scope() -> None:
    journey = journey_of(CONSTANT)
    for variables in ({"run_id": "fixed"}, {"seen": "${run_id}", "run_id": "fixed"}):
        made = Scopes(journey, variables, location="paris").new()
        expected = new_scope(journey, variables, location="paris")
        assert made["run_id"] == expected["run_id"] == "fixed"
        assert ("seen" in made) == ("seen" in expected)
