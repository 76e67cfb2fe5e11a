"""``${name}`` templates in checks.yaml strings.

Forms:

* ``${name}``: a variable, a capture of an earlier step, or a built-in (see ``BUILTINS``).
* ``${env:NAME}`` and ``${env:NAME:-default}``: an environment variable, read once when the
  config is loaded (this is how secrets get in). Its value is taken literally: a ``${`` in a
  secret is not a template.
* ``$${`` writes a literal ``${``.

A string that is exactly one ``${name}`` renders to the value itself, so a captured number stays
a number inside a JSON body; anywhere else values are turned into text.

>>> render("Bearer ${token}", {"token": "abc"})
'Bearer abc'
>>> render({"id": "${n}"}, {"n": 7})
{'id': 7}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from probes.errors import MissingVariable

NAME_PATTERN: Final = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*"
_TOKEN: Final = re.compile(
    r"\$\$\{"  # escaped ${
    r"|\$\{env:(?P<env>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
    rf"|\$\{{(?P<name>{NAME_PATTERN})\}}"
    r"|\$\{(?P<bad>[^}]*)\}?"
)

#: Names every journey run provides, with what they hold.
BUILTINS: Final[Mapping[str, str]] = {
    "run_id": "unique id of this run attempt (hex); correlate test data with it",
    "uuid": "a fresh random UUID at every use",
    "timestamp": "Unix time in whole seconds at the moment of use",
    "journey": "the journey's name",
    "channel": "the channel's name",
    "location": "the location this agent runs as",
    "location.lat": "its latitude, when checks.yaml gives the location coordinates",
    "location.lon": "its longitude, likewise",
}


@dataclass(frozen=True, slots=True)
class Reference:
    """One ``${...}`` found in a string: a variable name, or an environment variable."""

    name: str
    env: bool = False
    default: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateSyntaxError:
    """A ``${`` that is not a valid reference, with the text found."""

    text: str


def scan(text: str) -> tuple[list[Reference], list[TemplateSyntaxError]]:
    """Every reference in ``text``, and every malformed ``${...}``."""
    refs: list[Reference] = []
    bad: list[TemplateSyntaxError] = []
    for match in _TOKEN.finditer(text):
        if match.group("env"):
            refs.append(Reference(match.group("env"), env=True, default=match.group("default")))
        elif match.group("name"):
            refs.append(Reference(match.group("name")))
        elif match.group("bad") is not None:
            bad.append(TemplateSyntaxError(match.group(0)))
    return refs, bad


def expand_env(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with every ``${env:...}`` replaced, and the names that were missing.

    A ``${`` in a value comes out escaped (``$${``), so rendering gives it back unchanged.

    >>> expand_env("${env:PW}/${env:NOPE:-x}", {"PW": "a${b"})
    ('a$${b/x', [])
    """
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("env")
        if not name:
            return match.group(0)
        if name in environ:
            return environ[name].replace("${", "$${")
        if match.group("default") is not None:
            return match.group("default").replace("${", "$${")
        missing.append(name)
        return match.group(0)

    return _TOKEN.sub(replace, text), missing


@lru_cache(maxsize=8192)
def _parts(text: str) -> tuple[str | tuple[str], ...]:
    """``text`` split into literal strings and 1-tuples holding a variable name."""
    parts: list[str | tuple[str]] = []
    last = 0
    for match in _TOKEN.finditer(text):
        if match.group("name"):
            parts.append(text[last : match.start()])
            parts.append((match.group("name"),))
        elif match.group(0) == "$${":
            parts.append(text[last : match.start()] + "${")
        else:
            continue
        last = match.end()
    parts.append(text[last:])
    return tuple(p for p in parts if p != "")


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def render_text(text: str, scope: Mapping[str, object]) -> object:
    """One string rendered against ``scope``; a lone ``${name}`` keeps the value's type."""
    if "$" not in text:
        return text
    parts = _parts(text)
    values: list[object] = []
    for part in parts:
        if isinstance(part, tuple):
            try:
                values.append(scope[part[0]])
            except KeyError:
                raise MissingVariable(part[0]) from None
        else:
            values.append(part)
    if len(parts) == 1 and isinstance(parts[0], tuple):
        return values[0]
    return "".join(_text(v) for v in values)


def render(value: object, scope: Mapping[str, object]) -> object:
    """``value`` (a string, or lists and mappings of them) rendered against ``scope``."""
    if isinstance(value, str):
        return render_text(value, scope)
    if isinstance(value, Mapping):
        return {render_str(k, scope): render(v, scope) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(v, scope) for v in value]
    return value


def render_str(text: str, scope: Mapping[str, object]) -> str:
    """Like ``render_text`` but always text: for URLs, headers, query values and names."""
    return _text(render_text(text, scope))
