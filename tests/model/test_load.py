"""probes.model.load: checks.yaml into the journey model, or every problem located.

Bad samples live in ``fixtures/config/bad/``, one problem family per file. Each file states the
problems it must produce in leading comments::

    # expect: 12:9 channels[0].journeys[0].steps[1].expect.status: expected an HTTP status

that is ``line:column path: message`` (the path is empty for problems with the whole file), and
the message is a prefix of the one reported. The file must produce those problems and no other.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from probes.errors import (
    MAX_MESSAGE_CHARS,
    MAX_PATH_CHARS,
    MAX_PROBLEMS_SHOWN,
    CarewatchError,
    ConfigError,
    Problem,
)
from probes.model.config import MAX_FILE_BYTES, ChannelKind, Config, Device, Slo
from probes.model.load import load_config, parse_config
from probes.model.steps import status_matches
from tests._support.paths import FIXTURES, REPO

BAD = FIXTURES / "config" / "bad"
GOOD = FIXTURES / "config" / "good"
EXPECT_LINE = re.compile(
    r"^# expect: (?P<line>\d+):(?P<column>\d+) (?P<path>\S*): (?P<message>.+)$"
)
#: A ``--check`` problem line: ``file:line:col: path: message`` (no path for whole-file problems).
PROBLEM_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<rest>.+)$")
#: What full.yaml reads from the environment.
FULL_ENV = {"CAREWATCH_FULL_PASSWORD": "s3cret"}
#: A subprocess starts Python and imports aiohttp: generous on a loaded CI machine.
CLI_TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Expected:
    """One ``# expect:`` line of a bad fixture."""

    line: int
    column: int
    path: str
    message: str

    def matches(self, problem: Problem) -> bool:
        return (problem.line, problem.column, problem.path) == (
            self.line,
            self.column,
            self.path,
        ) and problem.message.startswith(self.message)

    def __str__(self) -> str:
        return f"{self.line}:{self.column} {self.path}: {self.message}"


def expected_problems(path: Path) -> list[Expected]:
    """The ``# expect:`` lines among the leading comments of ``path``."""
    found: list[Expected] = []
    for text in path.read_text(encoding="utf-8").splitlines():
        if not text.startswith("#"):
            break
        match = EXPECT_LINE.match(text)
        if match:
            found.append(
                Expected(int(match["line"]), int(match["column"]), match["path"], match["message"])
            )
        else:
            assert not text.startswith("# expect"), f"{path.name}: malformed line {text!r}"
    return found


def problems_of(path: Path, *, environ: dict[str, str] | None = None) -> tuple[Problem, ...]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={} if environ is None else environ)
    return caught.value.problems


# --- bad samples ------------------------------------------------------------------------------


BAD_FILES = sorted(BAD.glob("*.yaml"))


def test_there_are_bad_samples() -> None:
    assert len(BAD_FILES) >= 25


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_sample_reports_exactly_its_expected_problems(path: Path) -> None:
    expected = expected_problems(path)
    assert expected, f"{path.name} states no '# expect:' problems"

    problems = problems_of(path)

    assert {p.file for p in problems} == {str(path)}
    unmatched = list(problems)
    missing: list[Expected] = []
    for want in expected:
        hit = next((p for p in unmatched if want.matches(p)), None)
        if hit is None:
            missing.append(want)
        else:
            unmatched.remove(hit)
    report = "\n".join(str(p) for p in problems)
    assert not missing, f"not reported: {[str(m) for m in missing]}\nreported:\n{report}"
    assert not unmatched, f"reported but not expected:\n{report}"
    assert len(problems) == len(expected)


def test_problems_are_sorted_by_position_and_counted_in_the_message() -> None:
    path = BAD / "several_problems.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    error = caught.value

    positions = [(p.line or 0, p.column or 0) for p in error.problems]
    assert positions == sorted(positions)
    lines = str(error).splitlines()
    assert lines[0] == f"{len(error.problems)} problems in config"
    assert lines[1:] == [str(p) for p in error.problems]
    assert isinstance(error, CarewatchError)


def test_problem_prints_as_file_line_column_path_message() -> None:
    problem = Problem("checks.yaml", 12, 9, "channels[0].name", "duplicate channel name 'app'")
    assert str(problem) == "checks.yaml:12:9: channels[0].name: duplicate channel name 'app'"
    assert str(Problem("checks.yaml", 3, 1, "", "invalid YAML")) == "checks.yaml:3:1: invalid YAML"
    assert str(Problem("checks.yaml", None, None, "", "cannot read")) == "checks.yaml: cannot read"


def test_one_problem_reads_singular() -> None:
    error = ConfigError([Problem("f.yaml", 1, 1, "", "expected a mapping")])
    assert str(error).splitlines()[0] == "1 problem in config"


# --- problems that are awkward to keep in a file ----------------------------------------------


def test_control_character_is_a_located_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("channels: []\nname: a\x00b\n", file="f.yaml", environ={})
    assert [str(p) for p in caught.value.problems] == [
        "f.yaml:2:8: invalid YAML: character #x0000 is not allowed"
    ]


@pytest.mark.parametrize("depth", [70, 2000, 10_000])
@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ("{a: ", "}"), ("[{a: ", "}]")])
def test_deep_nesting_is_a_located_problem_not_a_recursion_error(
    depth: int, opening: str, closing: str
) -> None:
    # Issue 12, defect 2: 10,000 levels gave a problem without a line (a RecursionError caught).
    text = "channels: " + opening * depth + "1" + closing * depth + "\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="f.yaml", environ={})
    (problem,) = caught.value.problems
    assert problem.message == "invalid YAML: nested deeper than 64 levels"
    assert problem.line == 1
    assert problem.column is not None
    assert problem.column <= 66 * len(opening) + len("channels: ")
    assert problem.path.startswith("channels")


def test_several_documents_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("channels: []\n---\nchannels: []\n", file="f.yaml", environ={})
    assert [str(p) for p in caught.value.problems] == [
        "f.yaml:2:1: invalid YAML: expected a single document in the stream but found another "
        "document"
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "~\n", "just text\n", "42\n"])
def test_a_document_that_is_not_a_mapping_is_one_problem(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="f.yaml", environ={})
    assert [str(p) for p in caught.value.problems] == [
        "f.yaml:1:1: expected a mapping with at least a 'channels' key"
    ]


def test_unreadable_files_are_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("channels: [caf\xe9]\n".encode("latin-1"))

    for path in (missing, latin1, tmp_path):
        (problem,) = problems_of(path)
        assert (problem.file, problem.line, problem.path) == (str(path), None, "")
        assert problem.message.startswith("cannot read the file: "), problem


# --- hostile input: every value bounded, every problem located and short (issue 12) ---------

ONE_JOURNEY = """\
defaults: {defaults}
channels:
  - name: app
    kind: app
    team: mobile
    journeys:
      - name: login
        steps:
          - {{name: home, url: "http://127.0.0.1:8900/"}}
"""
#: Where ``defaults: {key: value}`` puts the value, for a key of ``len(key)`` characters.
FLOW_VALUE_COLUMN = len("defaults: {") + 1


def only_problem(text: str) -> Problem:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="f.yaml", environ={})
    (problem,) = caught.value.problems
    return problem


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("interval", ".nan", "a finite one; got nan"),
        ("interval", ".inf", "a finite one; got inf"),
        ("interval", "-.inf", "a finite one; got -inf"),
        ("interval", "0", "expected an interval of at least 1s; got 0s"),
        ("interval", "25h", "expected a duration of at most 24h; got '25h'"),
        ("interval", "9" * 400, "expected a duration of at most 24h; got 999"),
        ("interval", "-" + "9" * 400, "not negative; got -999"),
        ("interval", f"'{'9' * 400}s'", "expected a duration of at most 24h; got '999"),
        ("timeout", "0", "expected a duration longer than 0s; got 0s"),
        ("timeout", "0ms", "expected a duration longer than 0s; got 0s"),
        ("timeout", "-1", "not negative; got -1"),
        ("timeout", ".nan", "a finite one; got nan"),
        ("timeout", "2h", "expected a duration of at most 1h; got '2h'"),
        ("apdex_t", ".nan", "a finite one; got nan"),
        ("apdex_t", ".inf", "a finite one; got inf"),
        ("apdex_t", "0", "expected a duration longer than 0s; got 0s"),
    ],
)
def test_a_duration_must_be_finite_positive_and_sane(key: str, value: str, message: str) -> None:
    # Issue 12, defects 1, 2 and 8: .nan and .inf passed, 0 passed, a huge integer raised
    # OverflowError, and a NaN apdex_t gave duplicate histogram buckets.
    problem = only_problem(ONE_JOURNEY.format(defaults=f"{{{key}: {value}}}"))
    assert (problem.line, problem.column, problem.path) == (
        1,
        FLOW_VALUE_COLUMN + len(key) + 2,
        f"defaults.{key}",
    )
    assert message in problem.message
    assert len(str(problem)) < 200


def test_the_repository_files_are_within_every_bound() -> None:
    for path in [REPO / "checks.yaml", *sorted(GOOD.glob("*.yaml"))]:
        load_config(path, environ=dict.fromkeys(FULL_ENV, "x"))


def test_a_value_of_100_000_digits_gives_a_short_message() -> None:
    # Issue 12, defect 2: the value was printed whole, a 100 KB message.
    for value in ["9" * 100_000, f"'{'9' * 100_000}s'", "!!int " + "1" * 100_000]:
        problem = only_problem(ONE_JOURNEY.format(defaults=f"{{interval: {value}}}"))
        assert (problem.line, problem.path) == (1, "defaults.interval")
        assert len(str(problem)) < 300, str(problem)[:1000]


def test_an_unknown_key_of_100_000_characters_gives_a_short_message() -> None:
    # An explicit key (?): YAML allows implicit keys of at most 1,024 characters.
    problem = only_problem(ONE_JOURNEY.format(defaults=f"{{? {'k' * 100_000}: 1}}"))
    assert (problem.line, problem.column) == (1, FLOW_VALUE_COLUMN + 2)
    assert "unknown key 'kkk" in problem.message
    assert len(str(problem)) <= MAX_PATH_CHARS + MAX_MESSAGE_CHARS + 20


def test_a_problem_and_an_error_are_cut_to_their_bounds() -> None:
    problem = Problem("f.yaml", 1, 2, "a" * 10_000, "m" * 10_000)
    assert len(problem.path) <= MAX_PATH_CHARS
    assert len(problem.message) <= MAX_MESSAGE_CHARS
    # Only the end is cut: a secret's start before the mark is what redaction recognises.
    assert problem.message.startswith("mmm")
    assert problem.message.endswith("more)")
    error = ConfigError([Problem("f.yaml", i, 1, "", "bad") for i in range(1, 1001)])
    lines = str(error).splitlines()
    assert lines[0] == "1000 problems in config"
    assert len(lines) == 1 + MAX_PROBLEMS_SHOWN + 1
    assert lines[-1] == f"... and {1000 - MAX_PROBLEMS_SHOWN:,} more"
    assert len(error.problems) == 1000  # the list stays whole, for /-/reload and tests


def test_a_lone_surrogate_is_a_located_problem_not_a_unicode_error() -> None:
    # Found by bench.fuzz_config: "\ud800" reached pydantic, which raised UnicodeEncodeError.
    problem = only_problem(ONE_JOURNEY.format(defaults='{location: "a\\ud800b"}'))
    assert (problem.line, problem.column, problem.path) == (1, 22, "defaults.location")
    assert problem.message == "invalid YAML: a \\u escape that is not a character (a surrogate)"
    # As a key too: a header name that no request could send was accepted.
    text = ONE_JOURNEY.replace("{{name: home,", '{{headers: {{"\\udc80": x}}, name: home,')
    problem = only_problem(text.format(defaults="{}"))
    assert (problem.line, problem.path) == (9, "channels[0].journeys[0].steps[0].headers")
    assert problem.message == "invalid YAML: a \\u escape that is not a character (a surrogate)"
    # The environment may hold one too: os.environ decodes bad bytes to surrogates.
    text = ONE_JOURNEY.format(defaults='{location: "${env:BAD}"}')
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="f.yaml", environ={"BAD": "caf\udce9"})
    problem = caught.value.problems[0]
    assert (problem.line, problem.path) == (1, "defaults.location")
    assert problem.message == "the environment gives a value here that is not valid UTF-8"
    str(caught.value).encode("utf-8")  # what is printed never holds the surrogate


def test_a_long_secret_cut_short_in_a_message_is_still_redacted() -> None:
    # The cut keeps a value's start, which redaction recognises before the mark (issue 12).
    secret = "Zq9" + "x7Kp2" * 40
    text = ONE_JOURNEY.format(defaults='{interval: "${env:LONG}"}')
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="f.yaml", environ={"LONG": secret})
    (problem,) = caught.value.problems
    assert problem.message.endswith("got '<redacted>…(176 more)")
    assert secret[:4] not in str(caught.value)
    assert secret[-4:] not in str(caught.value)


def test_aliases_that_expand_to_billions_are_refused_fast() -> None:
    # Issue 12, defect 6: a billion-laughs file cost seconds of CPU before it was refused.
    started = time.perf_counter()
    problems = problems_of(BAD / "yaml_billion_laughs.yaml")
    assert time.perf_counter() - started < 0.5
    assert [(p.line, p.column, p.path) for p in problems] == [(9, 4, "g")]
    # Twelve levels of twelve: 9e12 values, counted on the 150 nodes of the file.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 12)}]" for i in range(1, 12)]
    started = time.perf_counter()
    problem = only_problem("\n".join(lines) + "\nchannels: [*a11]\n")
    assert time.perf_counter() - started < 0.5
    assert problem.message.startswith("invalid YAML: expands to more than 1,000,000 values")
    assert problem.line is not None


def test_a_file_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    # Issue 12, defect 2: the size of the file was not bounded.
    path = tmp_path / "large.yaml"
    path.write_bytes(b"# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    (problem,) = problems_of(path)
    assert (problem.file, problem.line, problem.path) == (str(path), None, "")
    assert problem.message == "the file is larger than 8,388,608 bytes (8 MiB)"
    with pytest.raises(ConfigError) as caught:
        parse_config(" " * (MAX_FILE_BYTES + 1), file="f.yaml", environ={})
    assert "larger than 8,388,608 characters" in str(caught.value)


def test_a_device_or_a_fifo_is_refused_without_reading_it(tmp_path: Path) -> None:
    # Issue 12, defect 2: --config /dev/zero ended in a MemoryError; a FIFO blocked forever.
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        outcome: list[BaseException] = []
        reader = threading.Thread(target=_load_into, args=(path, outcome), daemon=True)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), f"load_config({path}) is still reading"
        (error,) = outcome
        assert isinstance(error, ConfigError), repr(error)
        (problem,) = error.problems
        assert problem.message == (
            "cannot read the file: it is not a regular file (a device or a FIFO?)"
        )


def _load_into(path: Path, outcome: list[BaseException]) -> None:
    try:
        load_config(path, environ={})
    except BaseException as exc:  # the test reports whatever it was
        outcome.append(exc)


WARNED = """\
defaults: {{interval: 10s, timeout: {timeout}, retries: {retries}}}
channels:
  - name: app
    kind: app
    team: mobile
    journeys:
      - name: login
        steps:
          - {{name: home, url: "http://127.0.0.1:8900/"}}
{finally_}
"""
FINALLY = """\
        finally:
          - {name: logout, url: "http://127.0.0.1:8900/logout"}
"""


@pytest.mark.parametrize(
    ("timeout", "retries", "finally_", "warned"),
    [
        ("5s", 1, "", None),  # 2 x 5s fits 10s exactly
        ("6s", 1, "", "may run for 12s (2 attempts x 6s timeout), longer than its 10s interval"),
        ("4s", 2, "", "may run for 12s (3 attempts x 4s timeout)"),
        ("10s", 0, "", None),
        ("3s", 1, FINALLY, "may run for 12s (2 attempts x 3s timeout, x 2 for the finally steps)"),
        ("2s", 1, FINALLY, None),
    ],
)
def test_a_journey_that_may_not_fit_its_interval_loads_with_a_warning(
    timeout: str, retries: int, finally_: str, warned: str | None
) -> None:
    # Issue 12, defect 8: timeout x (retries + 1) > interval was accepted without a word.
    text = WARNED.format(timeout=timeout, retries=retries, finally_=finally_)
    config = parse_config(text, file="f.yaml", environ={})
    if warned is None:
        assert config.warnings == ()
        return
    (warning,) = config.warnings
    assert (warning.file, warning.line, warning.path) == ("f.yaml", 7, "channels[0].journeys[0]")
    assert warning.message.startswith("app/login " + warned), warning.message
    assert warning.message.endswith("runs are skipped while the target is slow")


# --- environment ------------------------------------------------------------------------------


ENV_CONFIG = """\
variables:
  base_url: ${env:CARE_URL:-http://127.0.0.1:8900}
  password: ${env:CARE_PASSWORD}
channels:
  - name: app
    kind: app
    team: mobile
    journeys:
      - name: login
        steps:
          - {name: login, url: "${base_url}/login", headers: {X-Pw: "${password}"}}
"""


def test_env_default_applies_only_when_the_variable_is_unset() -> None:
    unset = parse_config(ENV_CONFIG, environ={"CARE_PASSWORD": "pw"})
    assert unset.variables == {"base_url": "http://127.0.0.1:8900", "password": "pw"}

    both = parse_config(ENV_CONFIG, environ={"CARE_PASSWORD": "pw", "CARE_URL": "https://care"})
    assert both.variables == {"base_url": "https://care", "password": "pw"}

    empty = parse_config(ENV_CONFIG, environ={"CARE_PASSWORD": "", "CARE_URL": ""})
    assert empty.variables == {"base_url": "", "password": ""}


def test_missing_env_variable_without_default_is_a_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(ENV_CONFIG, file="f.yaml", environ={})
    assert [str(p) for p in caught.value.problems] == [
        "f.yaml:3:13: variables.password: environment variable CARE_PASSWORD is not set (set it, "
        "or write ${env:CARE_PASSWORD:-default})"
    ]


def test_env_value_is_literal_even_when_it_looks_like_a_template() -> None:
    # A secret such as 'pa${ss}' must neither fail validation nor be rendered.
    config = parse_config(ENV_CONFIG, environ={"CARE_PASSWORD": "pa${ss}word$${x}"})
    assert config.variables["password"] == "pa$${ss}word$$${x}"  # escaped; renders back as set


def test_load_config_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch, write_config: Callable[[str], Path]
) -> None:
    monkeypatch.setenv("CARE_PASSWORD", "from-the-process")
    monkeypatch.delenv("CARE_URL", raising=False)
    config = load_config(write_config(ENV_CONFIG))
    assert config.variables["password"] == "from-the-process"


# --- good samples -----------------------------------------------------------------------------


def test_minimal_config_takes_every_default() -> None:
    path = GOOD / "minimal.yaml"
    config = load_config(path, environ={})

    assert config.source == str(path)
    assert (config.variables, config.devices) == ({}, {})
    d = config.defaults
    assert (d.interval, d.timeout, d.retries, d.location, d.device, d.apdex_t) == (
        60.0,
        10.0,
        1,
        "local",
        None,
        2.0,
    )
    assert d.slo == Slo(availability=99.5, latency_threshold=4.0, latency_target=95.0)

    (channel,) = config.channels
    assert (channel.name, channel.kind, channel.team, channel.runbook_url) == (
        "app",
        ChannelKind.APP,
        "mobile",
        None,
    )
    (journey,) = channel.journeys
    assert config.journeys == (journey,)
    assert (journey.id, journey.interval, journey.timeout, journey.retries) == (
        "app/home",
        60.0,
        10.0,
        1,
    )
    assert (journey.device_name, journey.device, journey.slo, journey.apdex_t) == (
        None,
        None,
        d.slo,
        2.0,
    )
    assert journey.finally_steps == ()

    (step,) = journey.steps
    assert (step.name, step.method, step.url) == ("home", "GET", "http://127.0.0.1:8900/")
    assert (step.headers, step.query, step.form, step.body, step.timeout) == (
        {},
        {},
        None,
        None,
        None,
    )
    assert step.has_json_body is False
    assert step.follow_redirects is True
    assert step.expect.status == ("2xx",)
    assert (step.expect.max_duration, step.expect.headers, step.expect.body) == (None, {}, None)
    assert (step.expect.json_, step.capture) == ((), {})


@pytest.fixture(scope="module")
def full() -> Config:
    return load_config(GOOD / "full.yaml", environ=FULL_ENV)


def test_full_defaults_variables_and_devices(full: Config) -> None:
    d = full.defaults
    assert (d.interval, d.timeout, d.retries, d.location, d.device, d.apdex_t) == (
        30.0,
        5.0,
        2,
        "paris-1",
        "android",
        0.5,
    )
    assert d.slo == Slo(availability=99.9, latency_threshold=2.0, latency_target=90.0)
    assert full.variables == {
        "base_url": "http://127.0.0.1:8900",  # the ${env:...:-default}
        "api": "${base_url}/api/v1",  # rendered per run, see test_templating
        "username": "demo@carewatch.example",
        "password": "s3cret",
        "page_size": 5,
        "verbose": True,
        "ratio": 0.5,
    }
    assert full.devices == {
        "android": Device(
            user_agent="CareApp/5.2.0 (Android 14; Pixel 8)",
            headers={"X-App-Version": "5.2.0", "X-Run": "${run_id}"},
        ),
        "iphone": Device(user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"),
    }


def test_full_journey_inherits_defaults(full: Config) -> None:
    login = full.find_journey("app/login")
    assert login is full.channel("app").journeys[0]
    assert (login.interval, login.timeout, login.retries, login.apdex_t) == (30.0, 5.0, 2, 0.5)
    assert login.device_name == "android"
    assert login.device is full.devices["android"]
    assert login.slo == full.defaults.slo


def test_full_journey_overrides_defaults_and_merges_a_partial_slo(full: Config) -> None:
    form = full.find_journey("contact-form")
    assert form.id == "help/contact-form"
    assert full.channel("help").kind is ChannelKind.SELF_SERVICE
    assert (form.interval, form.timeout, form.retries, form.apdex_t) == (120.0, 20.0, 0, 1.0)
    assert form.device_name == "iphone"
    assert form.device == Device(
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"
    )
    # Only latency_threshold was written; the rest comes from defaults.slo, not from built-ins.
    assert form.slo == Slo(availability=99.9, latency_threshold=3.0, latency_target=90.0)
    assert (form.slo.availability_ratio, form.slo.latency_ratio) == pytest.approx((0.999, 0.9))


def test_full_journey_keeps_steps_and_finally_steps_in_order(full: Config) -> None:
    login = full.find_journey("login")
    assert [s.name for s in login.steps] == ["login", "tickets"]
    assert [s.name for s in login.finally_steps] == ["logout"]
    (logout,) = login.finally_steps
    assert (logout.method, logout.url) == ("DELETE", "${api}/session/${session}")
    assert logout.expect.status == ("204",)
    assert full.channel("app").runbook_url == "https://runbooks.example.com/carewatch/app"
    assert full.channel("app").team == "mobile-app"


def test_full_step_request_keys(full: Config) -> None:
    login, tickets = full.find_journey("login").steps
    assert login.method == "POST"  # written 'post'
    assert login.url == "${api}/login"
    assert login.headers == {"Accept": "application/json"}
    assert login.has_json_body
    assert login.json_ == {
        "username": "${username}",
        "password": "${password}",
        "size": "${page_size}",
    }
    assert (login.timeout, login.follow_redirects) == (2.0, False)
    assert tickets.query == {"status": ["open", "pending"], "limit": "${page_size}", "all": False}
    assert (tickets.timeout, tickets.follow_redirects, tickets.has_json_body) == (None, True, False)

    send, note = full.find_journey("contact-form").steps
    assert (send.method, send.form, send.body) == (
        "PUT",
        {"subject": "probe ${run_id}", "count": 1},
        None,
    )
    assert (note.method, note.form, note.body) == ("PATCH", None, "plain text at ${timestamp}")


def test_full_step_expectations(full: Config) -> None:
    expect = full.find_journey("login").steps[0].expect
    assert expect.status == ("200", "201", "3xx")  # '3XX' is read as a class
    assert expect.max_duration == 1.5

    headers = {name: matcher.operators() for name, matcher in expect.headers.items()}
    assert headers == {
        "Content-Type": [("equals", "application/json")],  # a bare value means equals
        "X-Request-Id": [("exists", True)],
        "Server": [("contains", "care"), ("regex", "^care")],
        "X-Retry-After": [("exists", False)],
    }

    assert expect.body is not None
    assert expect.body.contains == ("token",)  # one string is a list of one
    assert expect.body.regex == ('"token":', "expires_in")

    assert [(a.path, a.operators()) for a in expect.json_] == [
        ("$.token", [("exists", True)]),
        ("$.expires_in", [("le", 3600.0), ("gt", 0.0)]),
        ("$.scopes", [("contains", "tickets")]),
        ("$.user.id", [("equals", 42)]),
        ("$.user.name", [("regex", "^demo")]),
        ("$.balance", [("lt", 1000000.0), ("ge", 0.0)]),
    ]


def test_full_step_captures(full: Config) -> None:
    capture = full.find_journey("login").steps[0].capture
    assert {name: (c.json_, c.header, c.regex) for name, c in capture.items()} == {
        "token": ("$.token", None, None),
        "request_id": (None, "X-Request-Id", None),
        "session": (None, None, r"session=(\w+)"),
    }


def test_status_classes_and_lists(full: Config) -> None:
    spec = full.find_journey("login").steps[0].expect.status
    assert [
        code for code in (200, 201, 202, 301, 304, 399, 404, 500) if status_matches(spec, code)
    ] == [
        200,
        201,
        301,
        304,
        399,
    ]
    assert status_matches(("2xx",), 204)
    assert not status_matches(("2xx",), 2000)
    assert not status_matches(("2xx",), 20)


def test_full_env_value_is_required(full: Config) -> None:
    (problem,) = problems_of(GOOD / "full.yaml", environ={})
    assert (problem.line, problem.path) == (18, "variables.password")
    assert problem.message.startswith("environment variable CAREWATCH_FULL_PASSWORD is not set")


def test_model_is_frozen(full: Config) -> None:
    journey = full.journeys[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        journey.interval = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        journey.steps[0].url = "http://elsewhere"  # type: ignore[misc]
    changed = dataclasses.replace(journey, interval=1.0)
    assert (changed.interval, journey.interval) == (1.0, 30.0)


def test_find_journey_refuses_ambiguous_and_unknown_names(
    write_config: Callable[[str], Path],
) -> None:
    config = load_config(
        write_config(
            """\
            channels:
              - name: app
                kind: app
                team: mobile
                journeys: [{name: login, steps: [{name: s, url: "http://x"}]}]
              - name: web
                kind: web
                team: web
                journeys: [{name: login, steps: [{name: s, url: "http://x"}]}]
            """
        ),
        environ={},
    )
    assert config.find_journey("web/login").channel == "web"
    with pytest.raises(KeyError):
        config.find_journey("login")
    with pytest.raises(KeyError):
        config.find_journey("logout")
    with pytest.raises(KeyError):
        config.channel("sms")


def test_yaml_merge_keys_are_resolved(write_config: Callable[[str], Path]) -> None:
    config = load_config(
        write_config(
            """\
            channels:
              - name: app
                kind: app
                team: mobile
                journeys:
                  - name: login
                    steps:
                      - &base {name: a, url: "http://x/a", headers: {Accept: text/plain}}
                      - {<<: *base, name: b}
            """
        ),
        environ={},
    )
    a, b = config.journeys[0].steps
    assert (b.name, b.url, b.headers) == ("b", a.url, {"Accept": "text/plain"})


def test_repository_checks_yaml_loads() -> None:
    config = load_config(REPO / "checks.yaml", environ={})
    assert config.journeys, "checks.yaml defines no journey"
    assert len({j.id for j in config.journeys}) == len(config.journeys)
    for journey in config.journeys:
        if journey.device_name is not None:
            assert journey.device is config.devices[journey.device_name]
        assert journey.timeout <= journey.interval
        assert journey.steps


# --- the CLI ----------------------------------------------------------------------------------


def run_check(config: Path) -> subprocess.CompletedProcess[str]:
    """``exporter.py --config <config> --check`` in a fresh interpreter, from the repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREWATCH_")}
    return subprocess.run(
        [sys.executable, "exporter.py", "--config", str(config), "--check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.parametrize(
    "name", ["several_problems.yaml", "invalid_yaml.yaml", "yaml_recursive_alias.yaml"]
)
def test_check_prints_located_problems_and_exits_2(name: str) -> None:
    path = BAD / name
    expected = expected_problems(path)

    done = run_check(path)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    head, *lines = done.stderr.splitlines()
    assert head == f"{len(expected)} problem{'s' if len(expected) > 1 else ''} in config"
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected, strict=True):
        match = PROBLEM_LINE.match(line)
        assert match, line
        assert (match["file"], int(match["line"]), int(match["column"])) == (
            str(path),
            want.line,
            want.column,
        )
        prefix = f"{want.path}: {want.message}" if want.path else want.message
        assert match["rest"].startswith(prefix), line


def test_check_reports_an_unreadable_file(tmp_path: Path) -> None:
    done = run_check(tmp_path / "nope.yaml")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{tmp_path / 'nope.yaml'}: cannot read the file" in done.stderr


@pytest.mark.parametrize(
    "path", [GOOD / "minimal.yaml", REPO / "checks.yaml"], ids=["minimal", "checks"]
)
def test_check_of_a_good_file_exits_0(path: Path) -> None:
    done = run_check(path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith(f"{path}: OK: ")


# --- garbage never escapes as anything but ConfigError ----------------------------------------

SCHEMA_WORDS = [
    "defaults", "variables", "devices", "channels", "name", "kind", "team", "journeys", "steps",
    "finally", "url", "method", "expect", "status", "json", "path", "capture", "headers", "body",
    "form", "query", "interval", "timeout", "device", "slo", "regex", "equals", "exists", "app",
]  # fmt: skip
YAML_BITS = [
    ": ", "- ", "\n", "\n  ", "\n    ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: ", "!!int ",
    "!!str ", "!tag ", "? ", "|\n  ", ">\n  ", "'", '"', "#", "---\n", "...", "%YAML 1.1\n",
    "${", "${x}", "${env:X}", "$${", "2024-13-45", "0x1F", "1e9", "-1s", "250ms", "2xx", "6xx",
    "~", "null", "true", "no", "$.a[", "(", "\t", "\x00", "\x85", "\ufeff", "\\",
]  # fmt: skip
yaml_ish = st.lists(st.sampled_from(SCHEMA_WORDS + YAML_BITS), max_size=40).map("".join)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)
)
documents = st.recursive(
    scalars | st.sampled_from(SCHEMA_WORDS),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(SCHEMA_WORDS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=25,
)


def parse_or_config_error(text: str) -> None:
    """Parse ``text``: it may be valid, or raise ConfigError with located problems; nothing else."""
    try:
        parse_config(text, file="fuzz.yaml", environ={"X": "1"})
    except ConfigError as exc:
        problems = exc.problems
    else:
        return
    assert problems
    assert all(isinstance(p, Problem) and p.file == "fuzz.yaml" for p in problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | yaml_ish)
def test_garbage_text_raises_only_config_error(text: str) -> None:
    parse_or_config_error(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_yaml_documents_raise_only_config_error(document: object) -> None:
    parse_or_config_error(yaml.safe_dump(document, allow_unicode=True))


def _paths(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(node, dict):
        children = node.items()
    elif isinstance(node, list):
        children = enumerate(node)  # type: ignore[assignment]
    else:
        return [prefix]
    return [prefix, *(p for key, value in children for p in _paths(value, (*prefix, key)))]


FULL_DATA = yaml.safe_load((GOOD / "full.yaml").read_text(encoding="utf-8"))
FULL_PATHS = [p for p in _paths(FULL_DATA) if p]


def _replace(document: object, path: tuple[str | int, ...], value: object) -> object:
    document = copy.deepcopy(document)
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return document


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FULL_PATHS), documents), min_size=1, max_size=3))
def test_a_valid_file_with_random_values_raises_only_config_error(
    changes: list[tuple[tuple[str | int, ...], object]],
) -> None:
    # Garbage deep inside an otherwise valid file reaches every validator, not just the first.
    document: object = FULL_DATA
    for path, value in changes:
        with contextlib.suppress(KeyError, IndexError, TypeError):  # an earlier change moved it
            document = _replace(document, path, value)
    parse_or_config_error(yaml.safe_dump(document, allow_unicode=True))


def test_many_problems_are_reported_quickly(write_config: Callable[[str], Path]) -> None:
    head = "channels: [{name: app, kind: app, team: t, journeys: [{name: j, steps: [\n"
    steps = [f"  {{name: s, url: 'http://x/${{v{i}}}', expcet: 1}},\n" for i in range(300)]
    path = write_config(head + "".join(steps) + "]}]}]\n")
    started = time.perf_counter()
    problems = problems_of(path)
    assert time.perf_counter() - started < 5
    # per step: the unknown key, the undefined variable, and (after the first) a duplicate name
    assert len(problems) == 300 * 3 - 1
