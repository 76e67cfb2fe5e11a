"""``carewatch``: --version, --help, each subcommand's outcome mapped to one exit code."""

from __future__ import annotations

import doctest
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

import pytest

import probes.exits
from loadtests.command import LOCUSTFILE
from probes import Exit, load_config
from tests._support.commands import Carewatch, environment
from tests._support.paths import FIXTURES, REPO

SUBCOMMANDS = ("serve", "check", "loadtest", "alerts", "demo")
#: Locust's start and stop around a 2 s run, on a loaded 2-core machine.
LOCUST_SECONDS = 90.0

JOURNEY = """
defaults: {{interval: 1s, timeout: 1s, retries: 0, location: ci}}
channels:
  - name: web
    kind: web
    team: digital
    journeys:
      - name: home
        steps:
          - {{name: home, url: "http://{address}/"}}
"""


def test_exit_codes_are_one_enum_with_locusts_99() -> None:
    assert {code.name: int(code) for code in Exit} == {
        "OK": 0,
        "FAILED": 1,
        "CONFIG": 2,
        "THRESHOLDS": 99,
    }
    assert doctest.testmod(probes.exits).failed == 0


def test_version_is_the_installed_distributions(carewatch: Carewatch) -> None:
    done = carewatch("--version")
    assert done.returncode == Exit.OK, done.stderr
    assert done.stdout == f"carewatch {version('carewatch')}\n"


def test_help_lists_every_subcommand_and_exit_code(carewatch: Carewatch) -> None:
    done = carewatch("--help")
    assert done.returncode == Exit.OK, done.stderr
    for name in SUBCOMMANDS:
        assert f"\n    {name} " in done.stdout, done.stdout
    for code in Exit:
        assert f"  {code.value:<3} {code.name:<11} {code.meaning}" in done.stdout, done.stdout


def test_check_counts_what_the_file_holds(carewatch: Carewatch) -> None:
    config = load_config(REPO / "checks.yaml")
    steps = sum(len(j.steps) + len(j.finally_steps) for j in config.journeys)
    done = carewatch("check", cwd=REPO)  # FILE defaults to checks.yaml
    assert done.returncode == Exit.OK, done.stderr
    assert done.stdout == (
        f"checks.yaml: OK: {len(config.channels)} channels, {len(config.journeys)} journeys, "
        f"{steps} steps\n"
    )


def test_check_locates_every_problem_of_a_broken_file(carewatch: Carewatch) -> None:
    done = carewatch("check", "tests/fixtures/broken.yaml", cwd=REPO)
    assert done.returncode == Exit.CONFIG
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == "4 problems in config"
    assert lines[1].startswith(
        "tests/fixtures/broken.yaml:13:9: channels[0].journeys[0].intervall: unknown key"
    )
    assert all(line.startswith("tests/fixtures/broken.yaml:") for line in lines[1:])


BAD_VALUE = """\
defaults: {{interval: {value}}}
channels:
  - name: web
    kind: web
    team: digital
    journeys:
      - name: home
        steps:
          - {{name: home, url: "http://127.0.0.1:8900/"}}
"""


@pytest.mark.parametrize("value", [".nan", ".inf", "0", "9" * 400, "9" * 100_000])
def test_check_refuses_a_bad_duration_with_a_located_problem(
    carewatch: Carewatch, tmp_path: Path, value: str
) -> None:
    # Issue 12, defects 1 and 2: .nan passed (exit 0), a huge integer was a traceback (exit 1).
    (tmp_path / "checks.yaml").write_text(BAD_VALUE.format(value=value), encoding="utf-8")
    done = carewatch("check", "checks.yaml")
    assert (done.returncode, done.stdout) == (Exit.CONFIG, "")
    assert "Traceback" not in done.stderr
    head, problem = done.stderr.splitlines()
    assert head == "1 problem in config"
    assert problem.startswith("checks.yaml:1:22: defaults.interval: ")
    assert len(problem) < 200


def test_check_refuses_a_device_at_once(carewatch: Carewatch) -> None:
    # Issue 12, defect 2: --config /dev/zero read until a MemoryError.
    done = carewatch("check", "/dev/zero", timeout=30)
    assert (done.returncode, done.stdout) == (Exit.CONFIG, "")
    assert done.stderr.splitlines() == [
        "1 problem in config",
        "/dev/zero: cannot read the file: it is not a regular file (a device or a FIFO?)",
    ]


def test_check_prints_a_warning_for_a_journey_that_may_not_fit_and_exits_0(
    carewatch: Carewatch, tmp_path: Path
) -> None:
    # Issue 12, defect 8: timeout x (retries + 1) > interval was accepted without a word.
    text = BAD_VALUE.format(value="10s").replace("{interval: 10s}", "{interval: 10s, timeout: 6s}")
    (tmp_path / "checks.yaml").write_text(text, encoding="utf-8")
    done = carewatch("check", "checks.yaml")
    assert done.returncode == Exit.OK, done.stderr
    assert done.stdout == "checks.yaml: OK: 1 channel, 1 journey, 1 step\n"
    assert done.stderr.splitlines() == [
        "warning: checks.yaml:7:9: channels[0].journeys[0]: web/home may run for 12s (2 attempts "
        "x 6s timeout), longer than its 10s interval: runs are skipped while the target is slow"
    ]


def test_alerts_writes_the_generated_files_or_locates_every_problem(
    carewatch: Carewatch, tmp_path: Path
) -> None:
    done = carewatch("alerts", "--config", str(REPO / "checks.yaml"), "--out", "out")
    assert done.returncode == Exit.OK, done.stderr
    assert (tmp_path / "out" / "rules.yaml").is_file()
    assert (tmp_path / "out" / "templates" / "carewatch.tmpl").is_file()
    broken = carewatch("alerts", "--config", "tests/fixtures/broken.yaml", cwd=REPO)
    assert broken.returncode == Exit.CONFIG
    assert broken.stderr.splitlines()[0] == "4 problems in config"


def test_exporter_py_is_an_alias_of_check(carewatch: Carewatch) -> None:
    alias = subprocess.run(
        [sys.executable, "exporter.py", "--config", "checks.yaml", "--check"],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (alias.returncode, alias.stdout) == (Exit.OK, carewatch("check", cwd=REPO).stdout)


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        [],
        ["check", "checks.yaml", "--bogus"],
        ["serve", "--listen", "nowhere"],
        ["serve", "--web.disable", "metrics"],
        ["serve", "--web.protect", "reload,everything"],
        ["demo", "restart"],
    ],
)
def test_a_bad_command_line_exits_config(carewatch: Carewatch, argv: list[str]) -> None:
    done = carewatch(*argv)
    assert done.returncode == Exit.CONFIG, done.stdout + done.stderr
    assert "usage: carewatch" in done.stderr


def test_serve_exits_config_on_a_broken_file(carewatch: Carewatch) -> None:
    done = carewatch("serve", "--config", str(FIXTURES / "broken.yaml"), "--listen", "127.0.0.1:0")
    assert done.returncode == Exit.CONFIG
    assert "broken.yaml:13:9: channels[0].journeys[0].intervall" in done.stderr


@pytest.mark.parametrize(
    ("option", "given", "said"),
    [
        ("--web.read-timeout", "0s", "expected a duration from 1ms to 1h, got '0s'"),
        ("--web.read-timeout", "soon", "expected a duration such as"),
        ("--web.max-connections", "0", "expected a whole number of at least 1, got '0'"),
    ],
)
def test_serve_refuses_a_connection_limit_that_would_not_hold(
    carewatch: Carewatch, option: str, given: str, said: str
) -> None:
    done = carewatch("serve", option, given, "--listen", "127.0.0.1:0")
    assert done.returncode == Exit.CONFIG
    assert said in done.stderr


def test_serve_exits_config_on_a_broken_web_config(carewatch: Carewatch, tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  alice: hunter2\n")
    done = carewatch(
        *("serve", "--config", str(REPO / "checks.yaml"), "--listen", "127.0.0.1:0"),
        *("--web.config.file", str(web)),
    )
    assert done.returncode == Exit.CONFIG, done.stderr
    assert f"{web}:2: basic_auth_users.alice: expected a bcrypt hash" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_protect_without_users(carewatch: Carewatch) -> None:
    done = carewatch(
        *("serve", "--config", str(REPO / "checks.yaml"), "--listen", "127.0.0.1:0"),
        *("--web.protect", "reload,probe"),
    )
    assert done.returncode == Exit.CONFIG, done.stderr
    assert "--web.protect needs basic_auth_users in --web.config.file" in done.stderr


def test_serve_exits_config_on_a_file_it_cannot_schedule(
    carewatch: Carewatch, tmp_path: Path
) -> None:
    config = tmp_path / "checks.yaml"
    config.write_text(
        JOURNEY.format(address="127.0.0.1:9").replace("interval: 1s", "interval: .nan")
    )
    done = carewatch("serve", "--config", str(config), "--listen", "127.0.0.1:0")
    assert done.returncode == Exit.CONFIG
    assert "interval" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_exits_failed_naming_a_taken_port(carewatch: Carewatch, tmp_path: Path) -> None:
    config = tmp_path / "checks.yaml"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config.write_text(JOURNEY.format(address=f"127.0.0.1:{port}"))
        done = carewatch("serve", "--config", str(config), "--listen", f"127.0.0.1:{port}")
    assert done.returncode == Exit.FAILED
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_the_command_never_imports_locust() -> None:
    """gevent would monkey-patch the exporter's standard library: loadtest runs Locust apart."""
    code = "import sys, carewatch.cli; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    assert "carewatch" in loaded
    assert loaded.isdisjoint({"locust", "gevent"})


def test_loadtest_help_is_locusts_on_the_packaged_locustfile(carewatch: Carewatch) -> None:
    done = carewatch("loadtest", "--help")
    assert done.returncode == Exit.OK, done.stderr
    assert f"Runs Locust on {LOCUSTFILE}" in done.stdout
    assert "--headless" in done.stdout  # Locust's own options follow


class Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    """``HOST:PORT`` of an HTTP server on loopback that answers 200 to every GET."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
def test_loadtest_passes_options_and_locusts_exit_code_through(
    carewatch: Carewatch, site: str, tmp_path: Path
) -> None:
    config = tmp_path / "load.yaml"
    impossible = '\nloadtest: {thresholds: ["rps > 1000000"]}\n'
    config.write_text(JOURNEY.format(address=site) + impossible)
    done = carewatch(
        *("loadtest", "--config", str(config), "--headless", "-u", "1", "-r", "1", "-t", "2s"),
        *("--stop-timeout", "1", "--only-summary"),
        timeout=LOCUST_SECONDS,
    )
    output = done.stdout + done.stderr
    assert done.returncode == Exit.THRESHOLDS, output
    assert "web/home" in output  # the journeys of --config, not of checks.yaml
    assert "rps > 1000000" in output
