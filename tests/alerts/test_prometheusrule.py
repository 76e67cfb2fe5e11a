"""The PrometheusRule: the very groups of rules.yaml, which promtool accepts."""

from __future__ import annotations

from pathlib import Path

import yaml

from alerts.files import PROMETHEUS_RULE, RULES
from tests._support.tools import run_tool


def test_it_wraps_the_same_groups_as_rules_yaml(output: Path) -> None:
    resource = yaml.safe_load((output / PROMETHEUS_RULE).read_text(encoding="utf-8"))
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["name"] == "carewatch"
    rules = yaml.safe_load((output / RULES).read_text(encoding="utf-8"))
    assert resource["spec"]["groups"] == rules["groups"]


def test_promtool_accepts_its_groups(output: Path, tmp_path: Path) -> None:
    resource = yaml.safe_load((output / PROMETHEUS_RULE).read_text(encoding="utf-8"))
    (tmp_path / "groups.yaml").write_text(yaml.safe_dump(resource["spec"]), encoding="utf-8")
    done = run_tool("promtool", "check", "rules", "groups.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "SUCCESS" in done.stdout
