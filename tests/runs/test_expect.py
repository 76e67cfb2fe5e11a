"""probes.runs.expect: a response checked against a step's ``expect``, and its ``capture`` taken.

The module is pure, so these tests build ``Response`` objects directly; expectations are written
as they would be in checks.yaml and validated by the model. The engine's tests run the same code
against real servers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from probes.errors import MissingVariable
from probes.model.steps import Capture, Expect
from probes.runs.expect import Response, check, take
from probes.runs.results import Failure, Reason

TICKETS = {
    "token": "tok-1",
    "count": 3,
    "ratio": 0.25,
    "active": True,
    "missing_value": None,
    "user": {"id": 42, "name": "demo", "roles": ["agent", "admin"]},
    "items": [{"id": 1, "status": "open"}, {"id": 2, "status": "closed"}, {"id": 3}],
    "one": [{"id": "T-12"}],
    "price": "12.50",
}


def response(
    body: object = b"",
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    duration: float = 0.05,
) -> Response:
    """A Response; a body that is not bytes is sent as JSON. Header names are lower-cased, as
    both engines do."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    return Response(status=status, headers=lowered, body=raw, duration=duration)


def expect(**doc: Any) -> Expect:
    """``expect:`` as written in checks.yaml (use ``json_`` for ``json``)."""
    if "json_" in doc:
        doc["json"] = doc.pop("json_")
    return Expect.model_validate(doc)


def verdict(
    expectation: Expect, answer: Response, scope: Mapping[str, object] | None = None
) -> tuple[Reason, str] | None:
    failure = check(expectation, answer, scope or {})
    return None if failure is None else (failure.reason, failure.message)


def json_check(
    assertion: dict[str, Any], document: object = TICKETS, **scope: object
) -> str | None:
    """The message of a single JSON-path assertion on ``document`` (always an ASSERTION)."""
    failure = check(expect(json_=[assertion]), response(document), scope)
    if failure is None:
        return None
    assert failure.reason is Reason.ASSERTION
    return failure.message


# --- status -----------------------------------------------------------------------------------


def test_exact_status() -> None:
    assert verdict(expect(status=200), response(status=200)) is None
    assert verdict(expect(status=200), response(status=503)) == (
        Reason.HTTP_STATUS,
        "expected status 200, got 503",
    )


def test_status_list() -> None:
    spec = expect(status=[200, 201])
    assert verdict(spec, response(status=201)) is None
    assert verdict(spec, response(status=404)) == (
        Reason.HTTP_STATUS,
        "expected status 200 or 201, got 404",
    )


def test_status_class() -> None:
    spec = expect(status="3xx")
    assert [
        code for code in (200, 300, 301, 399, 400) if verdict(spec, response(status=code)) is None
    ] == [
        300,
        301,
        399,
    ]
    assert verdict(expect(status=[204, "4XX"]), response(status=500)) == (
        Reason.HTTP_STATUS,
        "expected status 204 or 4xx, got 500",
    )


def test_any_2xx_passes_by_default() -> None:
    assert verdict(Expect(), response(status=204)) is None
    assert verdict(Expect(), response(status=302)) == (
        Reason.HTTP_STATUS,
        "expected status 2xx, got 302",
    )


def test_status_is_checked_first() -> None:
    spec = expect(status=200, body={"contains": "ok"}, max_duration="1ms")
    assert verdict(spec, response(b"no", status=500, duration=9.0)) == (
        Reason.HTTP_STATUS,
        "expected status 200, got 500",
    )


# --- headers ----------------------------------------------------------------------------------

HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "X-Request-Id": "req-77",
    "X-Count": "5",
    "X-Flag": "true",
}


def header_check(matcher: object, name: str = "Content-Type") -> tuple[Reason, str] | None:
    return verdict(expect(headers={name: matcher}), response(headers=HEADERS))


def test_header_bare_value_means_equals_and_names_ignore_case() -> None:
    assert header_check("req-77", "x-request-id") is None
    assert header_check("req-77", "X-REQUEST-ID") is None
    assert header_check("text/html") == (
        Reason.ASSERTION,
        "header Content-Type: expected 'text/html', got 'application/json; charset=utf-8'",
    )


def test_header_equals_a_number_or_a_flag_compares_as_text() -> None:
    # YAML reads 'X-Count: 5' as a number and 'X-Flag: true' as a boolean; headers are text.
    assert header_check(5, "X-Count") is None
    assert header_check(True, "X-Flag") is None
    assert header_check(6, "X-Count") == (Reason.ASSERTION, "header X-Count: expected 6, got '5'")
    assert header_check(False, "X-Flag") == (
        Reason.ASSERTION,
        "header X-Flag: expected false, got 'true'",
    )


def test_header_contains() -> None:
    assert header_check({"contains": "application/json"}) is None
    assert header_check({"contains": "xml"}) == (
        Reason.ASSERTION,
        "header Content-Type: expected to contain 'xml', got 'application/json; charset=utf-8'",
    )


def test_header_regex() -> None:
    assert header_check({"regex": r"^req-\d+$"}, "X-Request-Id") is None
    assert header_check({"regex": r"^id-"}, "X-Request-Id") == (
        Reason.ASSERTION,
        "header X-Request-Id: expected to match /^id-/, got 'req-77'",
    )


def test_header_exists() -> None:
    assert header_check({"exists": True}, "X-Request-Id") is None
    assert header_check({"exists": False}, "X-Debug") is None
    assert header_check({"exists": True}, "X-Debug") == (
        Reason.ASSERTION,
        "header X-Debug: expected to exist",
    )
    assert header_check({"exists": False}, "x-request-id") == (
        Reason.ASSERTION,
        'header x-request-id: expected not to exist, got ["req-77"]',
    )


def test_a_missing_header_fails_any_comparison() -> None:
    assert header_check("x", "X-Debug") == (Reason.ASSERTION, "header X-Debug: missing")
    assert header_check({"contains": "x"}, "X-Debug") == (
        Reason.ASSERTION,
        "header X-Debug: missing",
    )


def test_every_operator_of_a_matcher_must_hold() -> None:
    matcher = {"exists": True, "contains": "json", "regex": "^text/"}
    assert header_check(matcher) == (
        Reason.ASSERTION,
        "header Content-Type: expected to match /^text//, got 'application/json; charset=utf-8'",
    )
    assert header_check({**matcher, "regex": "^application/"}) is None


# --- body -------------------------------------------------------------------------------------


def test_body_contains_and_regex() -> None:
    spec = expect(body={"contains": ["ticket", "open"], "regex": [r"T-\d+", "^Your"]})
    assert verdict(spec, response(b"Your ticket T-12 is open")) is None
    assert verdict(spec, response(b"Your ticket T-12 is closed")) == (
        Reason.ASSERTION,
        "body: expected to contain 'open'",
    )
    assert verdict(spec, response(b"Your ticket T-? is open")) == (
        Reason.ASSERTION,
        r"body: expected to match /T-\d+/",
    )


def test_body_expectations_are_templates() -> None:
    spec = expect(body={"contains": "ticket ${ticket_id}", "regex": "^${ticket_id} "})
    scope = {"ticket_id": "T-7"}
    assert verdict(spec, response(b"T-7 ok: ticket T-7"), scope) is None
    assert verdict(spec, response(b"T-8 ok: ticket T-8"), scope) == (
        Reason.ASSERTION,
        "body: expected to contain 'ticket T-7'",
    )
    assert verdict(spec, response(b"ok: ticket T-7"), scope) == (
        Reason.ASSERTION,
        "body: expected to match /^T-7 /",
    )


def test_body_template_values_are_written_as_json_text() -> None:
    spec = expect(body={"contains": "${closed}"})  # a lone template: the value itself
    assert verdict(spec, response(b'{"closed": true}'), {"closed": True}) is None
    assert verdict(spec, response(b"closed: None"), {"closed": None}) == (
        Reason.ASSERTION,
        "body: expected to contain 'null'",
    )


def test_body_regex_made_invalid_by_a_value_is_a_failure_not_an_exception() -> None:
    spec = expect(body={"regex": "id=${id}"})
    assert verdict(spec, response(b"id=("), {"id": "("}) == (
        Reason.ASSERTION,
        "body: /id=(/ is not a valid regular expression (missing ), unterminated subpattern at "
        "position 3)",
    )


def test_body_is_decoded_leniently() -> None:
    spec = expect(body={"contains": "caf"})
    assert verdict(spec, response(b"caf\xe9 \xff")) is None


# --- JSON paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$.token", "tok-1"),
        ("$.count", 3),
        ("$.count", 3.0),
        ("$.ratio", 0.25),
        ("$.active", True),
        ("$.missing_value", None),
        ("$.user.roles", ["agent", "admin"]),
        ("$.items[0]", {"id": 1, "status": "open"}),
        ("$.user.roles[-1]", "admin"),
    ],
)
def test_json_equals_passes(path: str, value: object) -> None:
    assert json_check({"path": path, "equals": value}) is None


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("$.token", "tok-2", "$.token: expected 'tok-2', got 'tok-1'"),
        ("$.count", 4, "$.count: expected 4, got 3"),
        ("$.active", 1, "$.active: expected 1, got true"),
        ("$.count", True, "$.count: expected true, got 3"),
        ("$.user.roles", ["agent"], '$.user.roles: expected ["agent"], got ["agent", "admin"]'),
        ("$.items[2]", {"id": 4}, '$.items[2]: expected {"id": 4}, got {"id": 3}'),
        ("$.nope", "x", "$.nope: expected to exist"),
    ],
)  # fmt: skip
def test_json_equals_fails(path: str, value: object, message: str) -> None:
    assert json_check({"path": path, "equals": value}) == message


def test_json_contains_on_text_lists_and_objects() -> None:
    assert json_check({"path": "$.token", "contains": "ok-"}) is None
    assert json_check({"path": "$.user.roles", "contains": "admin"}) is None
    assert json_check({"path": "$.user", "contains": "roles"}) is None  # a key of the object
    assert json_check({"path": "$.token", "contains": "xyz"}) == (
        "$.token: expected to contain 'xyz', got 'tok-1'"
    )
    assert json_check({"path": "$.user.roles", "contains": "root"}) == (
        '$.user.roles: expected to contain \'root\', got ["agent", "admin"]'
    )
    assert json_check({"path": "$.user", "contains": "email"}) == (
        "$.user: expected to contain 'email', got "
        '{"id": 42, "name": "demo", "roles": ["agent", "admin"]}'
    )
    assert json_check({"path": "$.count", "contains": 3}) == "$.count: expected to contain 3, got 3"


def test_json_exists() -> None:
    assert json_check({"path": "$.token", "exists": True}) is None
    assert json_check({"path": "$.missing_value", "exists": True}) is None  # null is a value
    assert json_check({"path": "$.nope", "exists": False}) is None
    assert json_check({"path": "$.nope", "exists": True}) == "$.nope: expected to exist"
    assert json_check({"path": "$.token", "exists": False}) == (
        '$.token: expected not to exist, got ["tok-1"]'
    )


def test_json_regex_on_text_and_on_other_values() -> None:
    assert json_check({"path": "$.user.name", "regex": "^de"}) is None
    assert json_check({"path": "$.user.id", "regex": r"^\d{2}$"}) is None  # 42 is matched as text
    assert json_check({"path": "$.active", "regex": "^true$"}) is None
    assert json_check({"path": "$.user.name", "regex": "^admin"}) == (
        "$.user.name: expected to match /^admin/, got 'demo'"
    )


@pytest.mark.parametrize(
    ("operator", "operand", "passes"),
    [
        ("lt", 4, True),
        ("lt", 3, False),
        ("le", 3, True),
        ("le", 2.5, False),
        ("gt", 2, True),
        ("gt", 3, False),
        ("ge", 3, True),
        ("ge", 3.5, False),
    ],
)
def test_json_number_comparisons(operator: str, operand: float, passes: bool) -> None:
    message = json_check({"path": "$.count", operator: operand})
    symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[operator]
    assert message == (None if passes else f"$.count: expected {symbol} {operand:g}, got 3")


def test_json_number_comparisons_read_numeric_text() -> None:
    assert json_check({"path": "$.price", "gt": 12}) is None
    assert json_check({"path": "$.price", "lt": 12}) == "$.price: expected < 12, got '12.50'"
    assert json_check({"path": "$.ratio", "le": 0.25, "gt": 0}) is None


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("$.token", "'tok-1'"),
        ("$.active", "true"),
        ("$.missing_value", "null"),
        ("$.user.roles", '["agent", "admin"]'),
    ],
)
def test_json_number_comparisons_on_non_numbers(path: str, shown: str) -> None:
    assert json_check({"path": path, "gt": 0}) == f"{path}: expected a number, got {shown}"


def test_json_path_with_several_matches() -> None:
    assert json_check({"path": "$.items[*].id", "contains": 2}) is None
    assert json_check({"path": "$.items[*].id", "contains": 9}) == (
        "$.items[*].id: expected to contain 9, got [1, 2, 3]"
    )
    assert json_check({"path": "$.items[*].id", "equals": [1, 2, 3]}) is None
    assert json_check({"path": "$.items[?(@.status == 'open')].id", "equals": 1}) is None
    assert json_check({"path": "$..status", "contains": "closed"}) is None


def test_json_contains_on_a_many_valued_path_with_one_match_looks_among_the_values() -> None:
    # One match must behave like many: an element test, not a substring or a failure.
    assert json_check({"path": "$.one[*].id", "contains": "T-12"}) is None
    assert json_check({"path": "$.one[*].id", "contains": "T-1"}) == (
        "$.one[*].id: expected to contain 'T-1', got [\"T-12\"]"
    )
    assert json_check({"path": "$.items[?(@.status == 'open')].id", "contains": 1}) is None


def test_json_assertions_are_checked_in_order() -> None:
    spec = expect(json_=[{"path": "$.token", "exists": True}, {"path": "$.count", "gt": 5}])
    assert verdict(spec, response(TICKETS)) == (Reason.ASSERTION, "$.count: expected > 5, got 3")


def test_body_not_json() -> None:
    spec = expect(json_=[{"path": "$.token", "exists": True}])
    assert verdict(spec, response(b"<html>\n<b>Maintenance</b>\n</html>")) == (
        Reason.ASSERTION,
        "$.token: body is not JSON ('<html> <b>Maintenance</b> </html>')",
    )
    assert verdict(spec, response(b"")) == (Reason.ASSERTION, "$.token: body is not JSON ('')")
    long = b"x" * 200
    assert verdict(spec, response(long)) == (
        Reason.ASSERTION,
        f"$.token: body is not JSON ('{'x' * 80}...')",
    )


def test_templated_operands() -> None:
    assert json_check({"path": "$.token", "equals": "${token}"}, token="tok-1") is None
    assert json_check({"path": "$.token", "equals": "${token}"}, token="tok-9") == (
        "$.token: expected 'tok-9', got 'tok-1'"
    )
    # A lone template keeps the captured value's type: 3 equals 3, not '3'.
    assert json_check({"path": "$.count", "equals": "${n}"}, n=3) is None
    assert json_check({"path": "$.items[*].id", "contains": "${n}"}, n=3) is None
    assert json_check({"path": "$.user.name", "regex": "^${prefix}"}, prefix="de") is None
    assert json_check({"path": "$.user.name", "contains": "id ${n}"}, n=3) == (
        "$.user.name: expected to contain 'id 3', got 'demo'"
    )


def test_templated_json_path() -> None:
    path = "$.items[?(@.status == '${status}')].id"
    assert json_check({"path": path, "equals": 2}, status="closed") is None
    assert json_check({"path": path, "equals": 1}, status="closed") == (
        "$.items[?(@.status == 'closed')].id: expected 1, got 2"
    )
    assert json_check({"path": path, "exists": False}, status="lost") is None


def test_json_path_made_invalid_by_a_value_is_a_failure() -> None:
    path = "$.items[?(@.status == '${status}')].id"
    message = json_check({"path": path, "equals": 1}, status="'")
    assert message is not None
    assert message.startswith("$.items[?(@.status == ''')].id: not a valid JSON path (")


def test_a_regex_operand_made_invalid_by_a_value_is_a_failure() -> None:
    assert json_check({"path": "$.token", "regex": "${pattern}"}, pattern="[") == (
        "$.token: /[/ is not a valid regular expression (unterminated character set at position 0)"
    )


def test_an_operand_naming_a_missing_value_raises_missing_variable() -> None:
    # Engines treat MissingVariable as "the capture was never taken" (a skipped finally step).
    with pytest.raises(MissingVariable):
        json_check({"path": "$.token", "equals": "${never_captured}"})


# --- duration ---------------------------------------------------------------------------------


def test_max_duration() -> None:
    spec = expect(max_duration="1s")
    assert verdict(spec, response(duration=1.0)) is None
    assert verdict(spec, response(duration=1.5)) == (
        Reason.SLOW,
        "took 1.5s, expected at most 1s",
    )
    assert verdict(expect(max_duration="200ms"), response(duration=0.2504)) == (
        Reason.SLOW,
        "took 250ms, expected at most 200ms",
    )


def test_a_broken_assertion_outranks_slowness() -> None:
    spec = expect(max_duration="100ms", json_=[{"path": "$.token", "exists": False}])
    assert verdict(spec, response(TICKETS, duration=5.0)) == (
        Reason.ASSERTION,
        '$.token: expected not to exist, got ["tok-1"]',
    )


def test_a_response_that_meets_everything_passes() -> None:
    spec = expect(
        status=[200, 201],
        max_duration="2s",
        headers={"Content-Type": {"contains": "json"}, "X-Request-Id": {"exists": True}},
        body={"contains": "tok-1"},
        json_=[
            {"path": "$.token", "exists": True, "regex": "^tok-"},
            {"path": "$.count", "gt": 0, "le": 3},
            {"path": "$.items[*].status", "contains": "open"},
        ],
    )
    assert check(spec, response(TICKETS, headers=HEADERS, duration=0.3), {}) is None


# --- captures ---------------------------------------------------------------------------------


def captures(**specs: dict[str, str]) -> dict[str, Capture]:
    return {name: Capture.model_validate(spec) for name, spec in specs.items()}


def test_capture_from_json_keeps_the_type_and_takes_the_first_match() -> None:
    values, failure = take(
        captures(
            token={"json": "$.token"},
            count={"json": "$.count"},
            user={"json": "$.user"},
            first_id={"json": "$.items[*].id"},
            nothing={"json": "$.missing_value"},
        ),
        response(TICKETS),
    )
    assert failure is None
    assert values == {
        "token": "tok-1",
        "count": 3,
        "user": TICKETS["user"],
        "first_id": 1,
        "nothing": None,
    }


def test_capture_from_a_header_ignores_case() -> None:
    values, failure = take(
        captures(request_id={"header": "X-REQUEST-ID"}), response(headers=HEADERS)
    )
    assert (values, failure) == ({"request_id": "req-77"}, None)


def test_capture_from_a_regex_takes_the_first_group_or_the_whole_match() -> None:
    body = b"Welcome! session=abc123; ticket T-77 opened"
    values, failure = take(
        captures(session={"regex": r"session=(\w+)"}, ticket={"regex": r"T-\d+"}),
        response(body),
    )
    assert (values, failure) == ({"session": "abc123", "ticket": "T-77"}, None)


@pytest.mark.parametrize(
    ("spec", "answer", "message"),
    [
        ({"json": "$.token"}, response(b"<html>"), "token: body is not JSON ('<html>')"),
        ({"json": "$.token"}, response({"other": 1}), "token: $.token matched nothing"),
        ({"header": "X-Token"}, response(headers=HEADERS), "token: no X-Token header"),
        (
            {"regex": r"token=(\w+)"},
            response(b"no token here"),
            r"token: /token=(\w+)/ matched nothing",
        ),
    ],
)
def test_capture_failures(spec: dict[str, str], answer: Response, message: str) -> None:
    values, failure = take(captures(token=spec), answer)
    assert values == {}
    assert failure == Failure(Reason.CAPTURE, message)


def test_capture_stops_at_the_first_failure_keeping_what_it_took() -> None:
    values, failure = take(
        captures(token={"json": "$.token"}, ticket={"json": "$.ticket"}, count={"json": "$.count"}),
        response(TICKETS),
    )
    assert values == {"token": "tok-1"}
    assert failure == Failure(Reason.CAPTURE, "ticket: $.ticket matched nothing")


def test_no_captures_take_nothing() -> None:
    assert take({}, response(b"not json")) == ({}, None)
