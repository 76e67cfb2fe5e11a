"""The notification templates: every definition alertmanager.yaml names exists, and amtool
renders each one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alerts import alertmanager_config, notification_templates, write
from alerts.files import generate
from probes import Config
from tests._support.tools import run_tool

DEFINED = set(re.findall(r'\{\{ define "([^"]+)"', notification_templates()))


def test_every_template_alertmanager_uses_is_defined(two_locations: Config) -> None:
    used = set(re.findall(r'template "([^"]+)"', str(alertmanager_config(two_locations))))
    assert used
    assert used <= DEFINED


def test_the_texts_carry_the_description_runbook_and_dashboard() -> None:
    text = notification_templates()
    for part in (
        ".Annotations.description",
        ".Annotations.runbook_url",
        ".Annotations.dashboard_url",
    ):
        assert part in text


@pytest.mark.parametrize("name", sorted(DEFINED))
def test_amtool_renders_each_template(name: str, two_locations: Config, tmp_path: Path) -> None:
    """On amtool's example notification (whose status is neither firing nor resolved): the
    templates of one alert for each of its alerts."""
    write(generate(two_locations), tmp_path)
    text = f'{{{{ template "{name}" . }}}}'
    if name.endswith(".alert") or name.endswith(".alert.text"):
        text = f"{{{{ range .Alerts }}}}{text}{{{{ end }}}}"
    done = run_tool(
        "amtool",
        "template",
        "render",
        "--template.glob=templates/carewatch.tmpl",
        f"--template.text={text}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout
    if name.endswith(("alert", "alert.text", "runbook_url")):
        # amtool's example alerts have no runbook_url: the text says so instead of a bare link
        assert "no runbook" in done.stdout, done.stdout
