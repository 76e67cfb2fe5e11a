"""The secret values of a config, and the one function that hides them: ``Secrets.redact``.

A value is secret when it came from the environment (``${env:NAME}``, never a ``:-default``
written in the file) or sits in a field that holds a secret by its nature (a callback's
``signature.secret`` and ``token.value``, an SMTP step's ``password``). Values shorter than
``MIN_SECRET_CHARS`` are not redacted: hiding every ``1`` would garble messages and protect
nothing. The loader collects them (``Config.secrets``); every message that leaves the process
goes through ``redact`` first (see docs/exporter.md, "Redaction").

>>> secrets = Secrets(frozenset({"S3CR3T-tok"}))
>>> secrets.redact("expected 'ok', got 'Bearer S3CR3T-tok'")
"expected 'ok', got 'Bearer <redacted>'"

Obvious encodings go too, in any case: URL-encoded, JSON- or repr-escaped, and base64 at any
alignment (``Authorization: Basic`` of ``user:S3CR3T-tok``). So does the start of a secret that
a message cut short with ``...`` or ``…``:

>>> secrets.redact("$.Body contains 'S3CR3T-t…'")
"$.Body contains '<redacted>…'"
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote, quote_plus

#: What a secret becomes in a message.
REDACTED: Final = "<redacted>"
#: Shorter values are not redacted (see the module's docstring).
MIN_SECRET_CHARS: Final = 4
#: A base64 run shorter than this is not taken for part of a secret: too likely by chance.
_MIN_BASE64_CHARS: Final = 8
#: What messages write where they cut a long value short (``probes.runs.expect``).
_CUT_MARKS: Final = re.compile(r"\.\.\.|…")


@dataclass(frozen=True, slots=True)
class Secrets:
    """A set of secret values; ``redact`` replaces each in a text, in its obvious encodings."""

    values: frozenset[str] = field(default=frozenset(), repr=False)
    _forms: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kept = {v for v in self.values if len(v) >= MIN_SECRET_CHARS}
        object.__setattr__(self, "values", frozenset(kept))
        forms = sorted({f for v in kept for f in _forms(v)}, key=len, reverse=True)
        object.__setattr__(self, "_forms", tuple(f.lower() for f in forms))
        # Any case: a validator may have upper-cased the value it quotes (an HTTP method).
        pattern = re.compile("|".join(map(re.escape, forms)), re.IGNORECASE) if forms else None
        object.__setattr__(self, "_pattern", pattern)

    def __repr__(self) -> str:
        return f"Secrets(<{len(self.values)} values>)"

    def __bool__(self) -> bool:
        return bool(self.values)

    def __or__(self, other: Secrets) -> Secrets:
        return Secrets(self.values | other.values)

    def redact(self, text: str) -> str:
        """``text`` with every secret, and every secret's start cut short, as ``REDACTED``."""
        if self._pattern is None or not text:
            return text
        text = self._pattern.sub(REDACTED, text)
        return _cut_starts(text, self._forms) if _CUT_MARKS.search(text) else text


#: A config without secrets.
NO_SECRETS: Final = Secrets()


def collect(values: Iterable[object]) -> Secrets:
    """The secrets among ``values``: the strings long enough to redact."""
    return Secrets(frozenset(v for v in values if isinstance(v, str)))


def _forms(value: str) -> Iterator[str]:
    """``value`` as it may appear in a message: as is, escaped, URL-encoded, inside base64."""
    yield value
    yield json.dumps(value)[1:-1]
    yield repr(value)[1:-1]
    yield quote(value, safe="")
    yield quote(value)
    yield quote_plus(value)
    yield from _base64_cores(value.encode())


def _base64_cores(raw: bytes) -> Iterator[str]:
    """The base64 characters that only ``raw`` decides, for each of the three alignments it
    may have in a longer text (``user:secret``), so a secret is found inside Basic auth."""
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode()
        first = -(-8 * offset // 6)  # the first character made of ``raw``'s bits only
        last = 8 * (offset + len(raw)) // 6  # past the last such character
        core = encoded[first:last]
        if len(core) >= _MIN_BASE64_CHARS:
            yield core


def _cut_starts(text: str, forms: tuple[str, ...]) -> str:
    """``text`` with the start of a secret redacted where a cut mark follows it."""
    pieces: list[str] = []
    last = 0
    for mark in _CUT_MARKS.finditer(text):
        end = mark.start()
        start = end - _longest_start(text[last:end], forms)
        pieces.append(text[last:start])
        if start < end:
            pieces.append(REDACTED)
        pieces.append(mark.group())
        last = mark.end()
    pieces.append(text[last:])
    return "".join(pieces)


def _longest_start(before: str, forms: tuple[str, ...]) -> int:
    """The length of the longest end of ``before`` that begins some form, in any case (0 if none
    is at least ``MIN_SECRET_CHARS`` long); ``forms`` are lower-case."""
    best = 0
    for form in forms:
        for length in range(min(len(form) - 1, len(before)), max(best, MIN_SECRET_CHARS - 1), -1):
            if before[len(before) - length :].lower() == form[:length]:
                best = length
                break
    return best
