"""The README and docs/ tell the truth about the code.

* docs/checks-yaml.md: its examples validate, and its key tables are the schema. A key table is
  a Markdown table right under a ``<!-- keys: PATH -->`` comment. ``PATH`` is where in
  checks.yaml the table's keys live: ``(top level)``, or keys joined by dots
  (``channels.journeys``); ``[KEY]`` after a key picks, among the step kinds there, the one
  with the key ``KEY`` (``channels.journeys.steps[tcp]``). Every backticked name in the first
  column of such a table is a documented key; ``a.b`` is the key ``b`` under ``a``. Every
  documented key must exist in the schema, and every key of every model the schema reaches must
  be documented, so removing a key's row fails, and so does a new key without one.
* docs/metrics.md: its metric table is the metric contract, types and labels included.
* README.md: at most 300 lines; its minimal checks.yaml validates and runs against democare;
  every command in its ``console`` blocks runs with the ``carewatch`` script installed beside
  this Python, or is in ``NOT_RUN`` with the reason.
* Every relative link of README.md and docs/ reaches a file, and a heading when it names one.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from probes import metrics
from probes.engine import Engine
from probes.model.config import ChannelKind
from probes.model.load import parse_config
from probes.model.schema import ConfigDoc
from tests._support.paths import REPO

README_FILE: Final = REPO / "README.md"
DOCS: Final = REPO / "docs"
README: Final = README_FILE.read_text(encoding="utf-8")
CHECKS_DOC: Final = (DOCS / "checks-yaml.md").read_text(encoding="utf-8")
METRICS_DOC: Final = (DOCS / "metrics.md").read_text(encoding="utf-8")
MARKDOWN: Final = (README_FILE, *sorted(DOCS.glob("*.md")))

README_MAX_LINES: Final = 300
#: A docs page longer than this opens with a table of contents.
LONG_PAGE_LINES: Final = 60
#: The ``carewatch`` console script of the environment running the tests.
CAREWATCH: Final = Path(sys.executable).with_name("carewatch")
#: Commands the README shows that cannot run inside the suite, and why. Every other command of
#: its console blocks must be a ``carewatch`` command, and runs.
NOT_RUN: Final = {
    "make demo": "creates .venv and leaves democare and the exporter running on the fixed ports "
    "8900, 8925 and 9640; tests/test_channels_e2e.py runs the same two processes on free ports",
    (
        "curl -X POST http://127.0.0.1:8900/_faults -d "
        r"""'{"channel": "app", "mode": "error", "status": 503}'"""
    ): "needs the demo running; tests/test_channels_e2e.py injects faults in every channel",
    (
        "curl -s http://127.0.0.1:9640/metrics | grep -E "
        r"""'carewatch_(journey_up|step_failure_info)\{channel="app"'"""
    ): "needs the demo running; tests/test_channels_e2e.py reads these series",
    "curl -X DELETE http://127.0.0.1:8900/_faults": "needs the demo running",
    "make demo-stop": "stops what `make demo` started",
    "make test": "is the whole suite, this test included",
    "pip install .": "would install into the environment running the tests; the suite runs "
    "from an installed carewatch already (CAREWATCH is its script)",
}
#: Matcher operators have a table of their own, apart from the complete example.
MATCHER_OPERATORS: Final = {"equals", "contains", "exists", "regex", "lt", "le", "gt", "ge"}
TOP_LEVEL: Final = "(top level)"
KEY_TABLE: Final = re.compile(r"^<!-- keys: (.+?) -->\n((?:\|.*\n)+)", re.MULTILINE)
LINK: Final = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCED: Final = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CONSOLE: Final = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


# --- reading Markdown -----------------------------------------------------------------------


def _block(text: str, after: str, language: str = "") -> str:
    """The first fenced block of ``language`` after the line ``after``."""
    start = text.index(f"```{language}\n", text.index(f"\n{after}\n")) + len(language) + 4
    return text[start : text.index("```", start)]


def _headings(text: str, level: int = 0) -> list[str]:
    """The headings outside code blocks, of one ``level`` (``##``: 2) or of all."""
    hashes = "#" * level if level else "#+"
    return re.findall(rf"^{hashes} (.+)$", FENCED.sub("", text), flags=re.MULTILINE)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    for heading in _headings(path.read_text(encoding="utf-8")):
        slug, n = _slug(heading), 1
        while slug in anchors:  # GitHub numbers repeated headings: name, name-1, name-2
            slug, n = f"{_slug(heading)}-{n}", n + 1
        anchors.add(slug)
    return anchors


def _reaches(page: Path, link: str) -> bool:
    """Whether a relative ``link`` of ``page`` names a file that exists, and a heading of it."""
    target, _, anchor = link.partition("#")
    path = (page.parent / target).resolve() if target else page
    if not path.exists():
        return False
    return not anchor or (path.suffix == ".md" and anchor in _anchors(path))


def _links(path: Path) -> list[str]:
    """Relative link targets of a Markdown file, outside code."""
    prose = re.sub(r"`[^`\n]*`", "", FENCED.sub("", path.read_text(encoding="utf-8")))
    return [t for t in LINK.findall(prose) if not re.match(r"^[a-z]+:", t)]


def _commands(block: str) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of a console block, with the output lines shown under it."""
    commands: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append((line.removeprefix("$ "), []))
        else:
            commands[-1][1].append(line)
    return commands


def _console_commands(text: str) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of every console block of ``text``, with its output."""
    return [command for block in CONSOLE.findall(text) for command in _commands(block)]


# --- the schema and the key tables ----------------------------------------------------------


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    """The field that checks.yaml writes as ``key`` (its alias, such as ``finally``)."""
    return next((f for name, f in model.model_fields.items() if (f.alias or name) == key), None)


def _under(model: type[BaseModel], segment: str) -> type[BaseModel]:
    """The model under ``segment`` (``key`` or ``key[selector]``) of ``model``."""
    key, _, selector = segment.removesuffix("]").partition("[")
    field = _field(model, key)
    if field is None:
        raise LookupError(f"{model.__name__} has no key {key!r}")
    found = [m for m in _models(field.annotation) if not selector or _field(m, selector)]
    if len(found) != 1:
        raise LookupError(f"{segment!r} of {model.__name__} is {len(found)} models, not one")
    return found[0]


def _resolve(path: str) -> type[BaseModel]:
    model = ConfigDoc
    for segment in [] if path == TOP_LEVEL else path.split("."):
        model = _under(model, segment)
    return model


def _documented_keys() -> list[tuple[str, str]]:
    """(table path, key) for every key in the first column of a key table of checks-yaml.md."""
    found = []
    for match in KEY_TABLE.finditer(CHECKS_DOC):
        rows = match.group(2).splitlines()[2:]  # past the header and its |---| line
        for row in rows:
            found += [(match.group(1), key) for key in re.findall(r"`([^`]+)`", row.split("|")[1])]
    return found


def _locate(path: str, key: str) -> tuple[type[BaseModel], str]:
    """The model that holds ``key`` (``a.b``: ``b`` under ``a``) of the table at ``path``, and
    the key's last part; LookupError when the schema has no such key."""
    model = _resolve(path)
    *parents, last = key.split(".")
    for parent in parents:
        model = _under(model, parent)
    if _field(model, last) is None:
        raise LookupError(f"{model.__name__} has no key {last!r}")
    return model, last


def _documented() -> set[tuple[type[BaseModel], str]]:
    """(model, key) for every documented key the schema has."""
    found = set()
    for path, key in _documented_keys():
        try:
            found.add(_locate(path, key))
        except LookupError:
            continue  # test_every_documented_key_is_in_the_schema names it
    return found


def _schema(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[tuple[type[BaseModel], str]]:
    """(model, key) for every key of ``model`` and of every model it reaches."""
    if model in seen:
        return set()
    seen.add(model)
    keys = {(model, info.alias or name) for name, info in model.model_fields.items()}
    for info in model.model_fields.values():
        for inner in _models(info.annotation):
            keys |= _schema(inner, seen)
    return keys


def _carewatch(command: str) -> subprocess.CompletedProcess[str]:
    """Run a ``carewatch ...`` command line from the repository, as a user would."""
    argv = shlex.split(command)
    assert argv[0] == "carewatch", command
    assert CAREWATCH.exists(), f"no carewatch script beside {sys.executable}: pip install -e ."
    return subprocess.run(
        [str(CAREWATCH), *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def _used_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _used_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _used_keys(v)}
    return set()


# --- docs/checks-yaml.md --------------------------------------------------------------------


def test_the_complete_example_validates_and_uses_every_key() -> None:
    text = _block(CHECKS_DOC, "## A complete example", "yaml")
    secrets = (
        "CARE_PROBE_PASSWORD",
        "SMS_WEBHOOK_SECRET",
        "PUSH_CALLBACK_TOKEN",
        "EMAIL_CALLBACK_TOKEN",
        "PAYMENTS_WEBHOOK_SECRET",
    )
    config = parse_config(text, file="checks-yaml.md", environ=dict.fromkeys(secrets, "x"))
    assert [j.id for j in config.journeys] == [
        "app/open-ticket",
        "chat/ask-bot",
        "sms/reply-by-sms",
        "voice/ivr-reachable",
        "email/reply-by-email",
    ]
    schema = {key for _, key in _schema(ConfigDoc, set())} - {"variables", "devices"}
    used = _used_keys(yaml.safe_load(text))
    # run_time and stages exclude each other: the example shows stages, docs/loadtests.md run_time.
    missing = schema - used - MATCHER_OPERATORS - {"run_time"}
    assert not missing, f"the complete example does not show: {sorted(missing)}"


def test_there_is_a_valid_example_for_every_channel_kind() -> None:
    text = _block(CHECKS_DOC, "## Examples by channel", "yaml")
    env = {
        k: "x"
        for k in ("SMS_SECRET", "PUSH_TOKEN", "EMAIL_TOKEN", "PROBE_PASSWORD", "SMTP_PASSWORD")
    }
    config = parse_config(text, file="checks-yaml.md", environ=env)
    assert {c.kind for c in config.channels} == set(ChannelKind)


def test_every_documented_key_is_in_the_schema() -> None:
    wrong = []
    for path, key in _documented_keys():
        try:
            _locate(path, key)
        except LookupError as exc:
            wrong.append(f"{path}: `{key}`: {exc}")
    assert not wrong, f"docs/checks-yaml.md documents keys the schema does not have: {wrong}"


def test_every_schema_key_is_documented() -> None:
    missing = _schema(ConfigDoc, set()) - _documented()
    shown = sorted(f"{model.__name__}.{key}" for model, key in missing)
    assert not shown, f"keys without a row in a key table of docs/checks-yaml.md: {shown}"


def test_the_validation_sample_is_real_output() -> None:
    block = _block(CHECKS_DOC, "## Validation", "console")
    (command, output), (echo, code) = _commands(block)
    assert (echo, code) == ("echo $?", ["2"])
    done = _carewatch(command)
    assert done.returncode == 2
    assert (done.stdout + done.stderr).splitlines() == output


# --- docs/metrics.md ------------------------------------------------------------------------


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


def test_the_metric_table_gives_each_family_its_type_and_labels() -> None:
    rows = re.findall(r"^\| `(carewatch_[a-z_]+)` \| (\w+) \| ([\w, ]*) \|", METRICS_DOC, re.M)
    table = {name: (kind, labels) for name, kind, labels in rows}
    families = (*metrics.JOURNEY_FAMILIES, *metrics.DEFINITION_FAMILIES)
    for family in (*families, metrics.CHANNEL_OPEN, metrics.CALLBACK_EVENTS):
        assert table[family.name] == (family.kind, ", ".join(family.labels)), family.name


# --- README.md ------------------------------------------------------------------------------

MINIMAL: Final = _block(README, "## A minimal checks.yaml", "yaml")
COMMANDS: Final = _console_commands(README)
RUNNABLE: Final = [(c, shown) for c, shown in COMMANDS if c not in NOT_RUN]
LONG_PAGES: Final = [
    page
    for page in sorted(DOCS.glob("*.md"))
    if len(page.read_text(encoding="utf-8").splitlines()) > LONG_PAGE_LINES
]


def test_the_readme_is_short() -> None:
    assert len(README.splitlines()) <= README_MAX_LINES


def test_the_minimal_example_is_one_journey_that_validates() -> None:
    config = parse_config(MINIMAL, file="README.md", environ={})
    assert [j.id for j in config.journeys] == ["app/login"]
    assert len(config.channels) == 1


async def test_the_minimal_example_passes_against_democare(democare: str) -> None:
    config = parse_config(MINIMAL, file="README.md", environ={"CARE_URL": democare})
    result = await Engine(config.variables, location="test").run(config.journeys[0])
    assert result.ok, result.final


def test_readme_commands_are_all_in_console_blocks() -> None:
    """A ``sh`` block would hide its commands from the tests below."""
    languages = set(re.findall(r"^```(\w*)$", README, flags=re.MULTILINE)) - {""}
    assert languages <= {"console", "yaml"}, languages


def test_every_readme_command_runs_here_or_says_why_not() -> None:
    shown = {command for command, _ in COMMANDS}
    assert set(NOT_RUN) <= shown, "NOT_RUN lists commands the README no longer shows"
    strays = [c for c, _ in RUNNABLE if not c.startswith("carewatch ")]
    assert not strays, f"neither a carewatch command nor in NOT_RUN: {strays}"


@pytest.mark.parametrize(("command", "shown"), RUNNABLE, ids=[c for c, _ in RUNNABLE])
def test_a_readme_command_runs_and_prints_what_is_shown(command: str, shown: list[str]) -> None:
    done = _carewatch(command)
    assert done.returncode == 0, done.stdout + done.stderr
    if shown and "..." not in shown:
        assert (done.stdout + done.stderr).splitlines() == shown


# --- links and contents -----------------------------------------------------------------------


@pytest.mark.parametrize("page", MARKDOWN, ids=[p.name for p in MARKDOWN])
def test_every_relative_link_reaches_a_file_and_a_heading(page: Path) -> None:
    broken = [link for link in _links(page) if not _reaches(page, link)]
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


def test_the_readme_and_the_index_link_every_docs_page() -> None:
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    from_readme = {Path(t.partition("#")[0]).name for t in _links(README_FILE)}
    from_index = {Path(t.partition("#")[0]).name for t in _links(DOCS / "index.md")}
    assert pages - from_readme == set()
    assert pages - from_index == set()


@pytest.mark.parametrize("page", LONG_PAGES, ids=[p.name for p in LONG_PAGES])
def test_a_long_page_opens_with_its_contents(page: Path) -> None:
    sections = [_slug(h) for h in _headings(page.read_text(encoding="utf-8"), level=2)]
    assert sections[0] == "contents"
    contents = page.read_text(encoding="utf-8").split("\n## Contents\n")[1].split("\n## ")[0]
    assert re.findall(r"^- \[.*\]\(#([^)]+)\)$", contents, flags=re.MULTILINE) == sections[1:]
