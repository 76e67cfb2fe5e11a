"""Engine-neutral rendering: a step's ``tls`` options take templates like any other string."""

from __future__ import annotations

import pytest

from probes.config import parse_config
from probes.interpret import render_tls
from probes.steps import HttpStep, SmtpStep, TcpStep, WebSocketStep

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
