"""probes.model.templating: ``${name}`` templates, and the built-ins a run's scope provides.

The scope comes from ``probes.runs.scope.new_scope``, the function both engines call, applied to
a journey loaded from a real checks.yaml.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from probes.errors import CarewatchError, MissingVariable
from probes.model.config import Config, Location
from probes.model.load import load_config
from probes.model.templating import (
    BUILTINS,
    Reference,
    TemplateSyntaxError,
    expand_env,
    render,
    render_str,
    render_text,
    scan,
)
from probes.runs.scope import new_scope

CHECKS = """\
variables:
  base_url: http://127.0.0.1:8900
  api: ${base_url}/api/v1
  tag: probe-${run_id}
  page_size: 5
  password: ${env:CARE_PASSWORD}
channels:
  - name: app
    kind: app
    team: mobile
    journeys:
      - name: login
        steps:
          - {name: login, url: "${api}/login"}
"""
HEX_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def config(write_config: Callable[[str], Path]) -> Config:
    return load_config(write_config(CHECKS), environ={"CARE_PASSWORD": "pa${ss}"})


# --- rendering --------------------------------------------------------------------------------


def test_names_in_text_are_replaced() -> None:
    scope = {"token": "abc", "host": "care.example"}
    assert render_text("Bearer ${token}", scope) == "Bearer abc"
    assert render_text("https://${host}/t/${token}?again=${token}", scope) == (
        "https://care.example/t/abc?again=abc"
    )
    assert render_text("no templates here", scope) == "no templates here"


def test_values_inside_text_become_json_like_text() -> None:
    scope = {"n": 7, "x": 1.5, "yes": True, "nothing": None, "obj": {"a": [1, 2]}}
    assert render_text("n=${n} x=${x} yes=${yes} nothing=${nothing}", scope) == (
        "n=7 x=1.5 yes=true nothing=null"
    )
    assert render_text("obj=${obj}", scope) == 'obj={"a":[1,2]}'


@pytest.mark.parametrize("value", [7, 2.5, True, False, None, {"a": 1}, [1, "two"]])
def test_a_lone_reference_keeps_the_value_type(value: object) -> None:
    assert render_text("${v}", {"v": value}) == value


def test_a_number_stays_a_number_in_a_json_body() -> None:
    body = {"ticket": "${ticket_id}", "note": "ticket ${ticket_id}", "tags": ["${tag}", 3]}
    rendered = render(body, {"ticket_id": 42, "tag": "probe"})
    assert rendered == {"ticket": 42, "note": "ticket 42", "tags": ["probe", 3]}
    assert json.dumps(rendered) == '{"ticket": 42, "note": "ticket 42", "tags": ["probe", 3]}'


def test_render_walks_mappings_lists_and_keys_and_leaves_other_values() -> None:
    scope = {"k": "key", "v": 1}
    assert render({"${k}": ("${v}", None, 2.5, False)}, scope) == {"key": [1, None, 2.5, False]}
    assert render(17, scope) == 17
    assert render(None, scope) is None


def test_render_str_is_always_text() -> None:
    assert render_str("${n}", {"n": 5}) == "5"
    assert render_str("${b}", {"b": False}) == "false"
    assert render_str("${d}", {"d": {"a": 1}}) == '{"a":1}'


def test_double_dollar_writes_a_literal_template() -> None:
    scope = {"name": "x"}
    assert render_text("$${name}", scope) == "${name}"
    assert render_text("a $${b} ${name}", scope) == "a ${b} x"
    assert render_text("$$${name}", scope) == "$${name}"
    assert scan("price $${total}") == ([], [])


def test_a_dollar_without_brace_is_plain_text() -> None:
    assert render_text("costs $5 or $$6 or ${n}$", {"n": 1}) == "costs $5 or $$6 or 1$"


def test_a_missing_name_raises_missing_variable() -> None:
    with pytest.raises(MissingVariable) as caught:
        render({"url": "http://x/${ticket_id}"}, {"token": "t"})
    assert caught.value.name == "ticket_id"
    assert str(caught.value) == "${ticket_id} has no value in this run"
    assert isinstance(caught.value, CarewatchError)


def test_rendering_is_not_recursive() -> None:
    # A value that looks like a template is data, not a second template.
    assert render_text("${a}", {"a": "${b}", "b": "no"}) == "${b}"
    assert render_text("x${a}", {"a": "${b}"}) == "x${b}"


# --- scanning ---------------------------------------------------------------------------------


def test_scan_finds_references_env_and_defaults() -> None:
    refs, bad = scan("${base_url}/x/${env:TOKEN}/${env:HOST:-care.example}/${env:E:-}/${a.b}")
    assert refs == [
        Reference("base_url"),
        Reference("TOKEN", env=True),
        Reference("HOST", env=True, default="care.example"),
        Reference("E", env=True, default=""),
        Reference("a.b"),
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("text", "malformed"),
    [
        ("${ name }", "${ name }"),
        ("${}", "${}"),
        ("x ${unclosed", "${unclosed"),
        ("${1abc}", "${1abc}"),
        ("${a-b}", "${a-b}"),
        ("${env:}", "${env:}"),
        ("${env:A-B}", "${env:A-B}"),
        ("${env:A:default}", "${env:A:default}"),
    ],
)
def test_scan_reports_malformed_templates(text: str, malformed: str) -> None:
    refs, bad = scan(text)
    assert (refs, bad) == ([], [TemplateSyntaxError(malformed)])


def test_scan_keeps_going_after_a_malformed_template() -> None:
    refs, bad = scan("${ x } then ${y}")
    assert refs == [Reference("y")]
    assert bad == [TemplateSyntaxError("${ x }")]


def test_malformed_templates_are_left_as_text_when_rendering() -> None:
    assert render_text("${ x } ${y}", {"y": 1}) == "${ x } 1"


# --- environment ------------------------------------------------------------------------------


def test_expand_env_substitutes_set_variables_and_defaults() -> None:
    environ = {"TOKEN": "t0k", "EMPTY": ""}
    text = "${env:TOKEN}|${env:EMPTY:-unused}|${env:UNSET:-fallback}|${env:UNSET2:-}|${name}"
    assert expand_env(text, environ) == ("t0k||fallback||${name}", [])


def test_expand_env_reports_every_missing_name_and_keeps_its_text() -> None:
    assert expand_env("${env:A}/${env:B}/${env:A}", {}) == (
        "${env:A}/${env:B}/${env:A}",
        ["A", "B", "A"],
    )


def test_expand_env_leaves_escapes_alone() -> None:
    assert expand_env("$${env:A}", {"A": "x"}) == ("$${env:A}", [])


def test_env_values_are_literal_after_rendering() -> None:
    expanded, missing = expand_env("${env:PW}", {"PW": "a${b}c$${d"})
    assert missing == []
    assert render_text(expanded, {}) == "a${b}c$${d"
    default, _ = expand_env("${env:NOPE:-x${y}", {})
    assert render_text(default, {}) == "x${y"


# --- built-ins through new_scope --------------------------------------------------------------


def test_scope_provides_every_builtin(config: Config) -> None:
    journey = config.find_journey("app/login")
    here = Location(lat=48.8566, lon=2.3522)
    scope = new_scope(journey, config.variables, location="paris-1", coordinates=here)

    for name in BUILTINS:
        assert render_text(f"${{{name}}}", scope) not in ("", None), name
    assert (scope["location.lat"], scope["location.lon"]) == (48.8566, 2.3522)
    nowhere = new_scope(journey, config.variables, location="paris-1")
    with pytest.raises(MissingVariable):
        render_text("${location.lat}", nowhere)  # no coordinates given for this location
    assert (scope["journey"], scope["channel"], scope["location"]) == ("login", "app", "paris-1")
    assert render_text("${channel}/${journey}@${location}", scope) == "app/login@paris-1"


def test_run_id_is_hex_and_unique_per_scope(config: Config) -> None:
    journey = config.journeys[0]
    scopes = [new_scope(journey, config.variables, location="l") for _ in range(50)]
    run_ids = [s["run_id"] for s in scopes]
    assert all(isinstance(r, str) and HEX_RUN_ID.match(r) for r in run_ids)
    assert len(set(run_ids)) == len(run_ids)
    scope = scopes[0]
    assert render_text("${run_id}", scope) == scope["run_id"]  # the same all run long


def test_uuid_is_fresh_at_every_use(config: Config) -> None:
    scope = new_scope(config.journeys[0], config.variables, location="l")
    first, second = render_text("${uuid}", scope), render_text("${uuid}", scope)
    assert isinstance(first, str)
    assert first != second
    assert str(uuid.UUID(first)) == first
    two = render_text("${uuid} ${uuid}", scope)
    assert isinstance(two, str)
    left, right = two.split()
    assert left != right


def test_timestamp_is_whole_seconds_now(config: Config) -> None:
    scope = new_scope(config.journeys[0], config.variables, location="l")
    before = int(time.time())
    stamp = render_text("${timestamp}", scope)
    after = int(time.time())
    assert type(stamp) is int
    assert before <= stamp <= after
    assert render_text("t=${timestamp}", scope) in {f"t={before}", f"t={after}"}


def test_variables_refer_to_earlier_variables_and_builtins(config: Config) -> None:
    scope = new_scope(config.journeys[0], config.variables, location="l")
    assert config.variables["api"] == "${base_url}/api/v1"  # the model keeps the template
    assert scope["api"] == "http://127.0.0.1:8900/api/v1"
    assert scope["tag"] == f"probe-{scope['run_id']}"
    assert scope["page_size"] == 5
    assert render_text("${api}/login", scope) == "http://127.0.0.1:8900/api/v1/login"


def test_a_secret_that_looks_like_a_template_reaches_the_scope_unchanged(config: Config) -> None:
    scope = new_scope(config.journeys[0], config.variables, location="l")
    assert scope["password"] == "pa${ss}"


def test_unknown_names_are_still_missing_in_a_scope(config: Config) -> None:
    scope = new_scope(config.journeys[0], config.variables, location="l")
    with pytest.raises(MissingVariable):
        render_text("${ticket_id}", scope)
    scope["ticket_id"] = 7  # what an engine does with a step's captures
    assert render({"id": "${ticket_id}"}, scope) == {"id": 7}
