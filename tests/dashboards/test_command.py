"""``carewatch dashboards`` / ``python -m dashboards``: files written, or every located problem
and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dashboards import FILES, run
from probes import Exit
from tests._support.commands import COMMAND_SECONDS, environment
from tests._support.paths import FIXTURES, REPO


def test_it_writes_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(FIXTURES / "alerts" / "two-locations.yaml"), str(tmp_path / "out")) == Exit.OK
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)
    assert "wrote" in capsys.readouterr().out


def test_a_broken_checks_yaml_exits_2_with_located_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(str(FIXTURES / "broken.yaml"), str(tmp_path)) == Exit.CONFIG
    assert "broken.yaml:13:9: channels[0].journeys[0].intervall" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_cannot_be_written_exits_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    assert run(str(REPO / "checks.yaml"), str(blocker / "out")) == Exit.FAILED


@pytest.mark.parametrize("command", [["-m", "dashboards"], ["-m", "carewatch", "dashboards"]])
def test_both_commands_write_the_dashboards(tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *command, "--config", str(REPO / "checks.yaml"), "--out", "out"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    assert done.returncode == Exit.OK, done.stderr
    board = json.loads((tmp_path / "out" / "carewatch-overview.json").read_text(encoding="utf-8"))
    assert board["description"].endswith(
        f"carewatch dashboards --config {REPO / 'checks.yaml'} --out out."
    )
