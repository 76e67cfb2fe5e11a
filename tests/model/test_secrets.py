"""probes.model.secrets: one redactor for every message, and the secrets a config holds."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from probes.errors import ConfigError
from probes.model import NO_SECRETS, REDACTED, Secrets, parse_config

SECRET = "S3CR3T-4f9a c&d/e+f"
SECRETS = Secrets(frozenset({SECRET}))


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        SECRET.upper(),
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
    ],
)
def test_a_secret_is_redacted_in_its_obvious_forms(form: str) -> None:
    assert SECRETS.redact(f"got 'x{form}y'") == f"got 'x{REDACTED}y'"


@pytest.mark.parametrize("user", ["", "a", "ab", "abc", "probe"])
def test_a_secret_is_found_inside_basic_auth_at_any_alignment(user: str) -> None:
    encoded = base64.b64encode(f"{user}:{SECRET}".encode()).decode()
    redacted = SECRETS.redact(f"Authorization: Basic {encoded}")
    assert REDACTED in redacted
    assert encoded not in redacted
    # At most the few characters shared with the user name (and the padding) are left.
    assert len(redacted) < len(f"Authorization: Basic {encoded}") - 10


@pytest.mark.parametrize("mark", ["...", "…"])
def test_the_start_of_a_secret_cut_short_is_redacted(mark: str) -> None:
    assert SECRETS.redact(f"contains '{SECRET[:9]}{mark}'") == f"contains '{REDACTED}{mark}'"
    # Text before it stays, and a mark after ordinary text changes nothing.
    assert SECRETS.redact(f"Bearer {SECRET[:5]}{mark}") == f"Bearer {REDACTED}{mark}"
    assert SECRETS.redact(f"got 'hello{mark}'") == f"got 'hello{mark}'"


def test_short_values_are_not_secrets() -> None:
    """Hiding every '1' and 'eu' would garble messages and protect nothing."""
    secrets = Secrets(frozenset({"1", "eu", "abc"}))
    assert not secrets
    assert secrets.redact("expected 1, got abc in eu...") == "expected 1, got abc in eu..."


def test_no_secrets_changes_nothing_and_a_repr_shows_no_value() -> None:
    assert NO_SECRETS.redact(f"got {SECRET}") == f"got {SECRET}"
    assert SECRET not in repr(SECRETS)
    assert repr(SECRETS) == "Secrets(<1 values>)"


CHECKS = """
variables: {region: "${env:REGION:-eu-west}"}
callbacks:
  sms: {signature: {header: X-Sig, secret: literal-hmac-key}}
  push: {token: {header: X-Token, value: "${env:PUSH_TOKEN}"}}
channels:
  - name: app
    kind: app
    team: mobile
    journeys:
      - name: login
        steps:
          - name: home
            url: "http://127.0.0.1:8900/?key=${env:API_KEY}"
          - name: mail
            smtp: {address: "127.0.0.1:2525", username: probe, password: smtp-literal-pw,
                   from: a@example.com, to: [b@example.com], subject: hi, body: hi}
          - name: mail-again
            smtp: {address: "127.0.0.1:2525", username: probe, password: "${region}",
                   from: a@example.com, to: [b@example.com], subject: hi, body: hi}
"""


def test_a_config_knows_its_environment_values_and_secret_fields() -> None:
    environ = {"API_KEY": "key-from-env", "PUSH_TOKEN": "push-from-env", "UNUSED": "unused-value"}
    config = parse_config(CHECKS, file="checks.yaml", environ=environ)
    assert config.secrets.values == {
        "key-from-env",
        "push-from-env",
        "literal-hmac-key",
        "smtp-literal-pw",
    }  # not a default written in the file, nor a variable the file does not use


def test_a_config_error_does_not_quote_a_value_from_the_environment() -> None:
    text = """
defaults: {retries: "${env:RETRIES}"}
channels:
  - {name: app, kind: app, team: t, journeys: [{name: j, steps: [
      {name: s, url: "http://127.0.0.1/", method: "${env:METHOD}"}]}]}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(
            text, file="checks.yaml", environ={"RETRIES": "S3CR3T-retries", "METHOD": "s3cr3t-verb"}
        )
    message = str(caught.value)
    assert "defaults.retries: expected a valid integer; got '<redacted>'" in message
    assert "method: expected 'GET'" in message
    assert "S3CR3T" not in message.upper()


@pytest.mark.parametrize("key", ["team", "runbook_url"])
def test_what_generated_files_copy_takes_no_value_from_the_environment(key: str) -> None:
    value = "${env:X}" if key == "team" else "https://wiki/${env:X}"
    channel = {"name": "app", "kind": "app", "team": "t", key: value}
    text = json.dumps(
        {
            "channels": [
                {
                    **channel,
                    "journeys": [{"name": "j", "steps": [{"name": "s", "url": "http://h/"}]}],
                }
            ]
        }
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="checks.yaml", environ={"X": "secret-value"})
    assert f"channels[0].{key}: {key} is written into the generated, committed files" in str(
        caught.value
    )
