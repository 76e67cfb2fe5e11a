"""The reference in docs/ tells the truth: the checks.yaml examples validate, the metric table
matches the contract, and the validation output shown is what the command prints."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from probes import metrics
from probes.model.config import ChannelKind
from probes.model.load import parse_config
from probes.model.schema import ConfigDoc
from tests.conftest import REPO

CHECKS_DOC = (REPO / "docs" / "checks-yaml.md").read_text(encoding="utf-8")
METRICS_DOC = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
CAREWATCH = Path(sys.executable).with_name("carewatch")


def _block(text: str, after: str, language: str = "") -> str:
    start = text.index(f"```{language}\n", text.index(after)) + len(language) + 4
    return text[start : text.index("```", start)]


def _schema_keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    keys: set[str] = set()
    if model in seen:
        return keys
    seen.add(model)
    for name, info in model.model_fields.items():
        keys.add(info.alias or name)
        for inner in _models(info.annotation):
            keys |= _schema_keys(inner, seen)
    return keys


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _used_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _used_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _used_keys(v)}
    return set()


def test_the_complete_example_validates_and_uses_every_key() -> None:
    text = _block(CHECKS_DOC, "## A complete example", "yaml")
    secrets = (
        "CARE_PROBE_PASSWORD",
        "SMS_WEBHOOK_SECRET",
        "PUSH_CALLBACK_TOKEN",
        "EMAIL_CALLBACK_TOKEN",
    )
    config = parse_config(text, file="checks-yaml.md", environ=dict.fromkeys(secrets, "x"))
    assert [j.id for j in config.journeys] == [
        "app/open-ticket",
        "chat/ask-bot",
        "sms/reply-by-sms",
        "voice/ivr-reachable",
        "email/reply-by-email",
    ]
    schema = _schema_keys(ConfigDoc, set()) - {"variables", "devices"}  # their keys are names
    data = yaml.safe_load(text)
    used = _used_keys(data)
    matcher_ops = {"equals", "contains", "exists", "regex", "lt", "le", "gt", "ge"}
    # run_time and stages exclude each other: the example shows stages, docs/loadtests.md run_time.
    missing = schema - used - matcher_ops - {"run_time"}  # operators have their own table
    assert not missing, f"the complete example does not show: {sorted(missing)}"


def test_the_metric_table_is_the_contract() -> None:
    table = set(re.findall(r"^\| `(carewatch_[a-z_]+)` \|", METRICS_DOC, flags=re.MULTILINE))
    contract = {f.name for f in (*metrics.JOURNEY_FAMILIES, *metrics.DEFINITION_FAMILIES)} | {
        metrics.SCHEDULER_LATENESS,
        metrics.SCHEDULER_RUNNING,
        metrics.SCHEDULER_JOURNEYS,
        metrics.CONFIG_RELOAD_SUCCESSFUL,
        metrics.CONFIG_RELOAD_TIMESTAMP,
        metrics.BUILD_INFO,
        metrics.CHANNEL_OPEN.name,
        metrics.CALLBACK_EVENTS.name,
    }
    assert table == contract


def test_the_validation_sample_is_real_output() -> None:
    shown = _block(CHECKS_DOC, "## Validation", "console").splitlines()
    command = shown[0].removeprefix("$ ").split()
    assert command[:2] == ["carewatch", "check"]
    done = subprocess.run(
        [str(CAREWATCH), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 == int(shown[-1])
    assert (done.stdout + done.stderr).splitlines() == shown[1:-2]


def test_there_is_a_valid_example_for_every_channel_kind() -> None:
    text = _block(CHECKS_DOC, "## Examples by channel", "yaml")
    env = {
        k: "x"
        for k in ("SMS_SECRET", "PUSH_TOKEN", "EMAIL_TOKEN", "PROBE_PASSWORD", "SMTP_PASSWORD")
    }
    config = parse_config(text, file="checks-yaml.md", environ=env)
    assert {c.kind for c in config.channels} == set(ChannelKind)
