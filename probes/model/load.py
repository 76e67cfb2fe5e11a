"""Load checks.yaml into the journey model, or fail with every problem located.

In the repository's root, with its checks.yaml:

>>> config = load_config("checks.yaml")           # doctest: +SKIP
>>> [j.id for j in config.journeys][:2]           # doctest: +SKIP
['app/login', 'help/search-article']

Bad input raises one ``ConfigError`` listing every problem, never another exception. Each
problem names the file, the line and column, the path (``channels[1].journeys[0]
.steps[2].expect.status``) and what was expected:

>>> parse_config('''
... channels:
...   - name: app
...     kind: app
...     team: mobile
...     journeys:
...       - name: login
...         steps:
...           - {name: home, url: "http://127.0.0.1:8900/"}
...           - {name: home, url: "http://127.0.0.1:8900/login"}
... ''', file="checks.yaml", environ={})
Traceback (most recent call last):
...
probes.errors.ConfigError: 1 problem in config
checks.yaml:10:20: channels[0].journeys[0].steps[1].name: duplicate step name 'home'
"""

from __future__ import annotations

import datetime
import difflib
import os
import stat
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Final, Union

from pydantic import BaseModel, ValidationError

from probes.errors import ConfigError, Problem
from probes.model import templating
from probes.model._yaml import Located, format_path, is_text, load_located
from probes.model._yaml import Path as DataPath
from probes.model.alerting import (
    DEFAULT_FAILED_RUNS,
    AlertPolicy,
    JourneyAlert,
    default_min_failed_locations,
)
from probes.model.config import (
    MAX_FILE_BYTES,
    Channel,
    Config,
    Defaults,
    Journey,
    Slo,
    Webhook,
)
from probes.model.durations import shown
from probes.model.networks import PROFILES
from probes.model.schema import (
    DEFAULT_AVAILABILITY,
    DEFAULT_LATENCY_TARGET,
    DEFAULT_LATENCY_THRESHOLD,
    ConfigDoc,
    JourneyDoc,
    SloDoc,
)
from probes.model.secrets import Secrets, collect
from probes.model.steps import AwaitStep, Step
from probes.model.types import NAME_PATTERN, VARIABLE_PATTERN

#: Step keys whose strings are never templates: names are labels, capture specs are patterns.
_NOT_TEMPLATED: Final = frozenset({"name", "capture"})
#: What a name must look like, by the pattern pydantic reports.
_PATTERN_EXPECTED: Final = {
    NAME_PATTERN: "expected a name of letters, digits, '_', '.' or '-' (at most 64, starting with "
    "a letter or digit, no spaces or slashes)",
    VARIABLE_PATTERN: "expected a variable name of letters, digits and '_', not starting with a "
    "digit",
}
#: pydantic's words for YAML's shapes.
_SHAPES: Final = {
    "model_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
}


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Config:
    """The validated model of the file at ``path``; ConfigError lists every problem.

    The file must be a regular file of at most ``MAX_FILE_BYTES``: a device (``/dev/zero``) or
    a FIFO is refused before it is read, since reading it could take forever or all memory.
    """
    file = str(path)
    try:
        text = _read(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(file, None, None, "", f"cannot read the file: {exc}")]) from None
    return parse_config(text, file=file, environ=os.environ if environ is None else environ)


def _read(path: str | os.PathLike[str]) -> str:
    """The file's text; ConfigError if it is not a regular file or larger than MAX_FILE_BYTES."""
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a device or a FIFO?)"
        raise ConfigError(
            [Problem(str(path), None, None, "", f"cannot read the file: it is {kind}")]
        )
    with open(fd, "rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([Problem(str(path), None, None, "", _too_large("bytes"))])
    return data.decode("utf-8")


def _too_large(unit: str) -> str:
    return f"the file is larger than {MAX_FILE_BYTES:,} {unit} ({MAX_FILE_BYTES // 2**20} MiB)"


def parse_config(text: str, *, file: str = "<string>", environ: Mapping[str, str]) -> Config:
    """Like ``load_config``, for YAML already in memory (at most MAX_FILE_BYTES characters)."""
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError([Problem(file, None, None, "", _too_large("characters"))])
    located, problems = load_located(text, file)
    if problems and located.data is None:  # a syntax error: there is nothing more to check
        raise ConfigError(problems)
    if not isinstance(located.data, dict):
        expected = "expected a mapping with at least a 'channels' key"
        raise ConfigError([*problems, Problem(file, 1, 1, "", expected)])
    problems.extend(_alerting_templates(located, file))
    problems.extend(_labelled_templates(located, file))
    data, env_problems, from_env = _expand_env(located, file, environ)
    problems.extend(env_problems)
    # Known before anything is checked: a problem may quote a value (``got '...'``).
    secrets = collect([*from_env, *_secret_fields(data, ())])
    problems.extend(_Checker(data, located, file).problems())
    try:
        doc = ConfigDoc.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, located, file))
        raise ConfigError(_redacted(_unique(problems), secrets)) from None
    problems.extend(_timing_problems(doc, located, file))
    problems.extend(_alert_problems(doc, located, file))
    if problems:
        raise ConfigError(_redacted(_unique(problems), secrets))
    warnings = _redacted(list(_timing_warnings(doc, located, file)), secrets)
    return replace(_resolve(doc, file), secrets=secrets, warnings=tuple(warnings))


# --- secrets ----------------------------------------------------------------------------------

#: The fields that hold a secret by their nature, as the last two keys of their path.
_SECRET_FIELDS: Final = frozenset(
    {("signature", "secret"), ("token", "value"), ("smtp", "password")}
)


def _secret_fields(value: Any, path: DataPath) -> Iterator[str]:
    """The strings written in a secret field (``_SECRET_FIELDS``), even without ``${env:}``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _secret_fields(item, (*path[-1:], key))
    elif isinstance(value, list):
        for item in value:
            yield from _secret_fields(item, ())
    elif isinstance(value, str) and path in _SECRET_FIELDS and "${" not in value:
        yield value  # a template's values are secret when they come from the environment


def _redacted(problems: list[Problem], secrets: Secrets) -> list[Problem]:
    """``problems`` with no secret in their messages: they go to logs, ``carewatch check`` and
    the ``/-/reload`` answer."""
    return [replace(p, message=secrets.redact(p.message)) for p in problems]


# --- environment and template syntax ----------------------------------------------------------


def _alerting_templates(located: Located, file: str) -> list[Problem]:
    """``alerting:`` is written into committed files, so nothing in it comes from the
    environment: a secret goes in a file that Alertmanager reads (the ``*_file`` keys)."""
    section = located.data.get("alerting") if isinstance(located.data, dict) else None
    return [
        _at(
            located,
            file,
            ("alerting", *path),
            "alerting: is written into the generated, committed files, so it takes no "
            "${...}; put a secret in a file and name it with a *_file key",
        )
        for path, value in _strings(section, ())
        if "${" in value
    ]


#: A channel's keys that the generated, committed files copy (alert labels and annotations).
_COPIED_KEYS: Final = ("team", "runbook_url")


def _labelled_templates(located: Located, file: str) -> list[Problem]:
    """A channel's ``team`` and ``runbook_url`` go into the generated rules as they are: a
    value from the environment would put a secret in committed files."""
    channels = located.data.get("channels") if isinstance(located.data, dict) else None
    return [
        _at(
            located,
            file,
            ("channels", ci, key),
            f"{key} is written into the generated, committed files, so it takes no ${{...}}",
        )
        for ci, channel in enumerate(_sequence(channels))
        for key in _COPIED_KEYS
        if isinstance(value := _mapping(channel).get(key), str) and "${" in value
    ]


def _expand_env(
    located: Located, file: str, environ: Mapping[str, str]
) -> tuple[Any, list[Problem], list[str]]:
    """The data with ``${env:...}`` expanded, its problems, and the values that came from the
    environment (secrets, see ``probes.model.secrets``)."""
    problems: list[Problem] = []
    used: list[str] = []

    def walk(value: Any, path: DataPath) -> Any:
        if path == ("alerting",):
            return value  # never from the environment: see _alerting_templates
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        refs, bad = templating.scan(value)
        # A value that is not text is refused below, and quoted nowhere: not kept as a secret.
        used.extend(
            environ[r.name]
            for r in refs
            if r.env and r.name in environ and is_text(environ[r.name])
        )
        for syntax in bad:
            problems.append(
                _at(
                    located,
                    file,
                    path,
                    f"malformed template {syntax.text!r}: expected ${{name}}, "
                    "${env:NAME} or ${env:NAME:-default} (write $${ for a literal ${)",
                )
            )
        expanded, missing = templating.expand_env(value, environ)
        problems.extend(
            _at(
                located,
                file,
                path,
                f"environment variable {name} is not set "
                f"(set it, or write ${{env:{name}:-default}})",
            )
            for name in missing
        )
        if not is_text(expanded):
            problems.append(
                _at(
                    located,
                    file,
                    path,
                    "the environment gives a value here that is not valid UTF-8",
                )
            )
            return ""
        return expanded

    return walk(located.data, ()), problems, used


# --- pydantic errors as located problems ------------------------------------------------------


def _pydantic_problems(exc: ValidationError, located: Located, file: str) -> list[Problem]:
    """One problem per path: a value that fits none of a union's types gets one message that
    lists them all, not one contradicting line per type."""
    by_path: dict[str, list[Problem]] = {}
    for problem in _each_pydantic_problem(exc, located, file):
        by_path.setdefault(problem.path, []).append(problem)
    return [_merge(problems) for problems in by_path.values()]


def _merge(problems: list[Problem]) -> Problem:
    if len(problems) == 1:
        return problems[0]
    wanted: list[str] = []
    got = ""
    for problem in problems:
        head, _, tail = problem.message.partition("; got ")
        phrase = head.removeprefix("expected ").removeprefix("a valid ")
        phrase = phrase if phrase.startswith(("a ", "an ")) else f"{_article(phrase)} {phrase}"
        if phrase not in wanted:
            wanted.append(phrase)
        got = got or (f"; got {tail}" if tail else "")
    listed = ", ".join(wanted[:-1]) + f" or {wanted[-1]}" if len(wanted) > 1 else wanted[0]
    first = problems[0]
    return Problem(first.file, first.line, first.column, first.path, f"expected {listed}{got}")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _each_pydantic_problem(exc: ValidationError, located: Located, file: str) -> Iterator[Problem]:
    errors = exc.errors(include_url=False)
    for error in errors:
        if error["type"] == "too_short" and _has_nested(error["loc"], errors):
            continue  # "at least 1 item" only because its items failed: they are reported
        path = _data_path(located.data, error["loc"], keep_last=error["type"] == "missing")
        kind = error["type"]
        if kind == "extra_forbidden":
            message = _unknown_key(path, located)
        elif kind == "missing":
            message = f"missing required key {path[-1]!r}"
        else:
            message = _message(error)
        at_key = kind in ("extra_forbidden", "missing") or error["loc"][-1] == "[key]"
        yield _at(located, file, path, message, key=at_key)


def _has_nested(loc: tuple[int | str, ...], errors: list[Any]) -> bool:
    return any(len(e["loc"]) > len(loc) and e["loc"][: len(loc)] == loc for e in errors)


def _data_path(data: Any, loc: tuple[int | str, ...], *, keep_last: bool) -> DataPath:
    """pydantic's ``loc`` without the union and validator tags it adds, as a path into ``data``."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif keep_last and i == len(loc) - 1:
            pass
        else:
            continue
        path.append(part)
    if keep_last and (not path or path[-1] != loc[-1]):
        path.append(loc[-1])
    return tuple(path)


def _message(error: Any) -> str:
    text: str = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    kind = error["type"]
    got = error.get("input")
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        text = _PATTERN_EXPECTED.get(pattern, f"expected text matching {pattern}")
    elif kind in _SHAPES:
        text = _SHAPES[kind]
    elif kind in ("too_short", "too_long") and isinstance(got, list | tuple):
        limit = error.get("ctx", {}).get("min_length" if kind == "too_short" else "max_length")
        return (
            f"expected {'at least' if kind == 'too_short' else 'at most'} {limit}; got {len(got)}"
        )
    else:
        text = text.replace("Input should be", "expected").replace("Input should", "expected to")
    if isinstance(got, str | int | float | bool) or got is None:
        text += f"; got {shown(got)}"
    elif isinstance(got, dict):
        text += "; got a mapping"
    elif isinstance(got, list):
        text += "; got a list"
    elif isinstance(got, datetime.date):  # YAML reads 2024-01-02 as a date: say so
        text += f"; got the date {got.isoformat()} (quote it to make it text)"
    return text


def _unknown_key(path: DataPath, located: Located) -> str:
    key = str(path[-1])
    allowed = _allowed_keys(path[:-1], located.data)
    message = f"unknown key {shown(key)}"
    if allowed:
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        message += f" (allowed here: {', '.join(allowed)})"
    return message


def _allowed_keys(path: DataPath, data: Any) -> list[str]:
    """The keys the schema allows at ``path``, found by walking the pydantic models."""
    annotation: Any = ConfigDoc
    node = data
    for part in path:
        annotation = _child(annotation, part, node)
        if annotation is None:
            return []
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        node = node[part] if (isinstance(node, dict) and part in node) or in_list else None
    model = _model_of(annotation, node)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _unwrap(annotation: Any) -> list[Any]:
    """An annotation's alternatives, without Annotated, Optional and None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [alt for arg in typing.get_args(annotation) for alt in _unwrap(arg)]
    return [] if annotation is type(None) else [annotation]


def _model_of(annotation: Any, data: Any) -> type[BaseModel] | None:
    for alt in _by_fit(annotation, data):
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            return alt
    return None


def _by_fit(annotation: Any, data: Any) -> list[Any]:
    """A union's alternatives, the model sharing most keys with ``data`` first (step kinds)."""
    keys = set(data) if isinstance(data, dict) else set()

    def fit(alt: Any) -> int:
        if not (isinstance(alt, type) and issubclass(alt, BaseModel)):
            return 0
        return len(keys & {info.alias or name for name, info in alt.model_fields.items()})

    return sorted(_unwrap(annotation), key=fit, reverse=True)


def _child(annotation: Any, part: str | int, data: Any) -> Any:
    for alt in _by_fit(annotation, data):
        if isinstance(alt, type) and issubclass(alt, BaseModel) and isinstance(part, str):
            for name, info in alt.model_fields.items():
                if part in (name, info.alias):
                    return (
                        info.annotation
                        if not info.metadata
                        else typing.Annotated[info.annotation, *info.metadata]
                    )
        origin = typing.get_origin(alt)
        args = typing.get_args(alt)
        if origin in (tuple, list) and isinstance(part, int) and args:
            return args[0]
        if origin in (dict, Mapping, typing.Mapping) and len(args) == 2:
            return args[1]
    return None


# --- checks pydantic cannot make: names, references, templates --------------------------------


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


#: Where a ``${name}`` may get its value, by where it is written.
_ABOVE: Final = "a variable defined above it or a built-in such as ${run_id}"
_VARIABLES: Final = "a name under 'variables' or a built-in such as ${run_id}"
_EARLIER: Final = (
    "a name under 'variables', a built-in such as ${run_id}, or a value captured by an earlier step"
)
_ANY_STEP: Final = (
    "a name under 'variables', a built-in such as ${run_id}, or a value captured by a step"
)


class _Checker:
    """Cross-field checks, made on the raw data so they report even when the schema does not
    validate: every problem in one pass."""

    def __init__(self, data: dict[str, Any], located: Located, file: str) -> None:
        self.data = data
        self.located = located
        self.file = file
        self.found: list[Problem] = []
        self.devices = set(_mapping(data.get("devices")))
        self.variables = [k for k in _mapping(data.get("variables")) if isinstance(k, str)]

    def problems(self) -> list[Problem]:
        defaults = _mapping(self.data.get("defaults"))
        self._device(defaults.get("device"), ("defaults", "device"))
        self._networks(defaults.get("networks"), ("defaults", "networks"))
        for name in _mapping(self.data.get("networks")):
            if name in PROFILES:
                self.add(
                    ("networks", name), f"{name!r} is a built-in network; name yours otherwise"
                )
        self._variables()
        self._device_headers()
        self._webhook_secrets()
        channels = _sequence(self.data.get("channels"))
        self._unique(channels, ("channels",), "channel")
        for ci, channel in enumerate(channels):
            path: DataPath = ("channels", ci)
            journeys = _sequence(_mapping(channel).get("journeys"))
            self._unique(journeys, (*path, "journeys"), "journey")
            for ji, journey in enumerate(journeys):
                self._journey(_mapping(journey), (*path, "journeys", ji))
        return self.found

    def add(self, path: DataPath, message: str) -> None:
        self.found.append(_at(self.located, self.file, path, message))

    def _networks(self, names: Any, path: DataPath) -> None:
        known = set(PROFILES) | set(_mapping(self.data.get("networks")))
        for i, name in enumerate(_sequence(names)):
            if isinstance(name, str) and name not in known:
                listed = ", ".join(sorted(known))
                self.add((*path, i), f"unknown network {name!r} (known: {listed})")

    def _device(self, name: Any, path: DataPath) -> None:
        if isinstance(name, str) and name not in self.devices:
            known = ", ".join(sorted(self.devices)) or "none are defined under 'devices'"
            self.add(path, f"unknown device {name!r} (known: {known})")

    def _unique(self, items: list[Any], path: DataPath, what: str) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            name = _mapping(item).get("name")
            if isinstance(name, str) and name in seen:
                self.add((*path, i, "name"), f"duplicate {what} name {name!r}")
            seen.add(name) if isinstance(name, str) else None

    def _variables(self) -> None:
        defined = set(templating.BUILTINS)
        for name, value in _mapping(self.data.get("variables")).items():
            if isinstance(value, str):
                self._references(value, ("variables", name), defined, _ABOVE)
            defined.add(name)

    def _device_headers(self) -> None:
        # A device's headers go on every request, the first included: no capture is taken yet.
        defined = set(templating.BUILTINS) | set(self.variables)
        for name, device in _mapping(self.data.get("devices")).items():
            path: DataPath = ("devices", name, "headers")
            for sub, text in _strings(_mapping(device).get("headers"), path):
                self._references(text, sub, defined, _VARIABLES)

    def _webhook_secrets(self) -> None:
        # The receiver checks an event outside any run: no variable or capture has a value there.
        for sub, text in _strings(self.data.get("callbacks"), ("callbacks",)):
            self._references(text, sub, set(), "${env:NAME}: callbacks are checked outside any run")

    def _awaited_webhook(self, step: dict[str, Any], path: DataPath) -> None:
        name = _mapping(step.get("await")).get("callback")
        known = _mapping(self.data.get("callbacks"))
        if isinstance(name, str) and name not in known:
            listed = ", ".join(sorted(map(str, known))) or "none are defined under 'callbacks'"
            self.add((*path, "await", "callback"), f"unknown callback {name!r} (known: {listed})")

    def _journey(self, journey: dict[str, Any], path: DataPath) -> None:
        self._device(journey.get("device"), (*path, "device"))
        self._networks(journey.get("networks"), (*path, "networks"))
        known = _mapping(self.data.get("locations"))
        for i, name in enumerate(_sequence(journey.get("locations"))):
            if isinstance(name, str) and name not in known:
                listed = ", ".join(sorted(known)) or "none are defined under 'locations'"
                self.add((*path, "locations", i), f"unknown location {name!r} (known: {listed})")
        sections = [
            (section, i, _mapping(step))
            for section in ("steps", "finally")
            for i, step in enumerate(_sequence(journey.get(section)))
        ]
        names: set[str] = set()
        defined = set(templating.BUILTINS) | set(self.variables)
        for section, i, step in sections:
            step_path: DataPath = (*path, section, i)
            name = step.get("name")
            if isinstance(name, str):
                if name in names:
                    self.add((*step_path, "name"), f"duplicate step name {name!r}")
                names.add(name)
            self._awaited_webhook(step, step_path)
            sources = _EARLIER if section == "steps" else _ANY_STEP
            for key, value in step.items():
                if key in _NOT_TEMPLATED or key == "conversation":
                    continue
                for sub, text in _strings(value, (key,)):
                    self._references(text, (*step_path, *sub), defined, sources)
            # A conversation's lines see the captures of the lines before them.
            for li, line in enumerate(_sequence(step.get("conversation"))):
                line_path: DataPath = (*step_path, "conversation", li)
                for key, value in _mapping(line).items():
                    if key != "capture":
                        for sub, text in _strings(value, (key,)):
                            self._references(text, (*line_path, *sub), defined, sources)
                defined |= _captured(_mapping(line))
            defined |= _captured(step)

    def _references(self, text: str, path: DataPath, defined: set[str], sources: str) -> None:
        """``sources`` says where a value may come from here, for the message."""
        refs, _ = templating.scan(text)
        for ref in refs:
            if not ref.env and ref.name not in defined:
                close = difflib.get_close_matches(ref.name, sorted(defined), n=1)
                maybe = f"; did you mean ${{{close[0]}}}?" if close else ""
                self.add(path, f"${{{ref.name}}} is not defined (expected {sources}){maybe}")


_DEFAULT_INTERVAL: Final[DataPath] = ("defaults", "interval")
_DEFAULT_TIMEOUT: Final[DataPath] = ("defaults", "timeout")


def _captured(step: dict[str, Any]) -> set[str]:
    return {k for k in _mapping(step.get("capture")) if isinstance(k, str)}


def _timing_problems(doc: ConfigDoc, located: Located, file: str) -> Iterator[Problem]:
    """Intervals and timeouts that cannot work, once every duration has parsed."""
    d = doc.defaults
    for ci, channel in enumerate(doc.channels):
        for ji, journey in enumerate(channel.journeys):
            path: DataPath = ("channels", ci, "journeys", ji)
            interval = d.interval if journey.interval is None else journey.interval
            timeout = d.timeout if journey.timeout is None else journey.timeout
            # Point at the key the journey wrote, or at the default it inherits (said once).
            at_interval = (*path, "interval") if journey.interval is not None else _DEFAULT_INTERVAL
            at_timeout = (*path, "timeout") if journey.timeout is not None else _DEFAULT_TIMEOUT
            if timeout > interval:
                yield _at(
                    located,
                    file,
                    at_timeout
                    if journey.timeout is not None or journey.interval is None
                    else at_interval,
                    f"timeout {timeout:g}s is longer than the interval {interval:g}s, so runs "
                    "would be skipped; shorten the timeout or lengthen the interval",
                )
            for section, steps in (("steps", journey.steps), ("finally", journey.finally_)):
                for si, step in enumerate(steps):
                    if isinstance(step, AwaitStep) and step.await_.within > timeout:
                        yield _at(
                            located,
                            file,
                            (*path, section, si, "await", "within"),
                            f"within {step.await_.within:g}s is longer than the journey's timeout "
                            f"{timeout:g}s, which would cut the wait short; shorten within or "
                            "lengthen the timeout",
                        )


def _timing_warnings(doc: ConfigDoc, located: Located, file: str) -> Iterator[Problem]:
    """Journeys whose slowest run is longer than their interval: legitimate (a slow journey
    probed often), but a slow target then makes runs skip ticks, so it is said."""
    d = doc.defaults
    for ci, channel in enumerate(doc.channels):
        for ji, journey in enumerate(channel.journeys):
            interval = d.interval if journey.interval is None else journey.interval
            timeout = d.timeout if journey.timeout is None else journey.timeout
            retries = d.retries if journey.retries is None else journey.retries
            budgets = 2 if journey.finally_ else 1  # finally steps get a fresh timeout
            longest = timeout * budgets * (retries + 1)
            if longest <= interval:
                continue
            path: DataPath = ("channels", ci, "journeys", ji)
            finally_ = ", x 2 for the finally steps" if budgets == 2 else ""
            yield _at(
                located,
                file,
                (*path, "interval") if journey.interval is not None else path,
                f"{channel.name}/{journey.name} may run for {longest:g}s ({retries + 1} "
                f"attempt{'s' if retries else ''} x {timeout:g}s timeout{finally_}), longer than "
                f"its {interval:g}s interval: runs are skipped while the target is slow",
            )


def _strings(value: Any, path: DataPath) -> Iterator[tuple[DataPath, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))
    elif isinstance(value, str):
        yield path, value


# --- resolution -------------------------------------------------------------------------------


def _resolve(doc: ConfigDoc, file: str) -> Config:
    d = doc.defaults
    base_slo = _slo(
        d.slo, Slo(DEFAULT_AVAILABILITY, DEFAULT_LATENCY_THRESHOLD, DEFAULT_LATENCY_TARGET)
    )
    defaults = Defaults(
        interval=d.interval,
        timeout=d.timeout,
        retries=d.retries,
        location=d.location,
        device=d.device,
        slo=base_slo,
        apdex_t=d.apdex_t,
    )
    channels = tuple(
        Channel(
            name=c.name,
            kind=c.kind,
            team=c.team,
            runbook_url=c.runbook_url,
            journeys=tuple(
                replace(_journey(j, c.name, defaults, doc), hours=c.hours) for j in c.journeys
            ),
            hours=c.hours,
        )
        for c in doc.channels
    )
    return Config(
        source=file,
        defaults=defaults,
        variables=dict(doc.variables),
        devices=dict(doc.devices),
        channels=channels,
        locations=dict(doc.locations),
        loadtest=doc.loadtest,
        alerting=doc.alerting,
        # Secrets from the environment come in escaped ($${): the receiver needs them as sent.
        callbacks={
            name: Webhook.model_validate(templating.render(webhook.model_dump(), {}))
            for name, webhook in doc.callbacks.items()
        },
    )


def _slo(doc: SloDoc | None, base: Slo) -> Slo:
    if doc is None:
        return base
    return Slo(
        availability=base.availability if doc.availability is None else doc.availability,
        latency_threshold=(
            base.latency_threshold if doc.latency_threshold is None else doc.latency_threshold
        ),
        latency_target=base.latency_target if doc.latency_target is None else doc.latency_target,
    )


def _alert_problems(doc: ConfigDoc, located: Located, file: str) -> list[Problem]:
    """A journey that could never page: more failed locations wanted than run it."""
    found = []
    for ci, channel in enumerate(doc.channels):
        for ji, journey in enumerate(channel.journeys):
            wanted = (journey.alert or JourneyAlert()).min_failed_locations
            wanted = wanted or doc.defaults.alert.min_failed_locations
            runs_at = _location_count(journey, doc)
            if wanted is not None and wanted > runs_at:
                where = (
                    ("channels", ci, "journeys", ji, "alert", "min_failed_locations")
                    if journey.alert and journey.alert.min_failed_locations
                    else ("defaults", "alert", "min_failed_locations")
                )
                found.append(
                    _at(
                        located,
                        file,
                        where,
                        f"{channel.name}/{journey.name} runs at {runs_at} location"
                        f"{'' if runs_at == 1 else 's'}, so it could never fail at {wanted}; "
                        f"lower min_failed_locations to {runs_at} or fewer",
                    )
                )
    return found


def _location_count(j: JourneyDoc, doc: ConfigDoc) -> int:
    """How many locations run ``j``: its own list, else every location named, else one."""
    if j.locations is not None:
        return len(j.locations)
    return max(1, len(doc.locations))


def _alert(j: JourneyDoc, base: JourneyAlert, locations: int) -> AlertPolicy:
    own = j.alert or JourneyAlert()
    failed_runs = own.failed_runs or base.failed_runs or DEFAULT_FAILED_RUNS
    at_least = own.min_failed_locations or base.min_failed_locations
    page = own.page if own.page is not None else base.page
    return AlertPolicy(
        failed_runs=failed_runs,
        min_failed_locations=at_least or default_min_failed_locations(locations),
        page=True if page is None else page,
    )


def _journey(j: JourneyDoc, channel: str, d: Defaults, doc: ConfigDoc) -> Journey:
    device_name = j.device if j.device is not None else d.device
    steps: tuple[Step, ...] = j.steps
    return Journey(
        name=j.name,
        channel=channel,
        interval=d.interval if j.interval is None else j.interval,
        timeout=d.timeout if j.timeout is None else j.timeout,
        retries=d.retries if j.retries is None else j.retries,
        device_name=device_name,
        device=doc.devices[device_name] if device_name is not None else None,
        slo=_slo(j.slo, d.slo),
        apdex_t=d.apdex_t if j.apdex_t is None else j.apdex_t,
        steps=steps,
        finally_steps=j.finally_,
        locations=j.locations,
        loadtest=j.loadtest,
        alert=_alert(j, doc.defaults.alert, _location_count(j, doc)),
        networks={
            name: doc.networks.get(name) or PROFILES[name]
            for name in (j.networks if j.networks is not None else doc.defaults.networks)
        },
    )


# --- helpers ----------------------------------------------------------------------------------


def _at(located: Located, file: str, path: DataPath, message: str, *, key: bool = False) -> Problem:
    mark = located.mark(path, key=key)
    return Problem(
        file, mark.line if mark else None, mark.column if mark else None, format_path(path), message
    )


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out: list[Problem] = []
    for problem in problems:
        if (problem.path, problem.message) not in seen:
            seen.add((problem.path, problem.message))
            out.append(problem)
    return sorted(out, key=lambda p: (p.line or 0, p.column or 0))
