"""The README tells the truth: its example validates, its metric table matches the contract,
and the validation output it shows is what the command prints."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from typing import Any

import yaml
from pydantic import BaseModel

from probes import metrics
from probes.model.config import ChannelKind
from probes.model.load import parse_config
from probes.model.schema import ConfigDoc
from tests._support.paths import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _block(after: str, language: str = "") -> str:
    start = README.index(f"```{language}\n", README.index(after)) + len(language) + 4
    return README[start : README.index("```", start)]


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
    text = _block("### A complete example", "yaml")
    secrets = (
        "CARE_PROBE_PASSWORD",
        "SMS_WEBHOOK_SECRET",
        "PUSH_CALLBACK_TOKEN",
        "EMAIL_CALLBACK_TOKEN",
    )
    config = parse_config(text, file="README.md", environ=dict.fromkeys(secrets, "x"))
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
    # run_time and stages exclude each other: the example shows stages, "Load tests" run_time.
    missing = schema - used - matcher_ops - {"run_time"}  # operators have their own table
    assert not missing, f"the README example does not show: {sorted(missing)}"


def test_the_metric_table_is_the_contract() -> None:
    table = set(re.findall(r"^\| `(carewatch_[a-z_]+)` \|", README, flags=re.MULTILINE))
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
    shown = _block("### Validation").splitlines()
    command = shown[0].removeprefix("$ ").split()
    assert command[:2] == ["python", "exporter.py"]
    done = subprocess.run(
        [sys.executable, *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 == int(shown[-1])
    assert (done.stdout + done.stderr).splitlines() == shown[1:-2]


def test_there_is_a_valid_example_for_every_channel_kind() -> None:
    text = _block("### Examples by channel", "yaml")
    env = {
        k: "x"
        for k in ("SMS_SECRET", "PUSH_TOKEN", "EMAIL_TOKEN", "PROBE_PASSWORD", "SMTP_PASSWORD")
    }
    config = parse_config(text, file="README.md", environ=env)
    assert {c.kind for c in config.channels} == set(ChannelKind)
