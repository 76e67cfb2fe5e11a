"""JSON-path expressions for expectations and captures, compiled once and cached.

jsonpath-ng's extended parser is used, so filters and arithmetic work:
``$.results[?(@.score > 0.5)].id``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonpath_ng.ext import parse as _parse


@lru_cache(maxsize=4096)
def compile_path(expression: str) -> Any:
    """The compiled expression; raises ValueError with the parser's complaint."""
    try:
        return _parse(expression)
    except Exception as exc:  # jsonpath-ng raises bare Exception subclasses from its lexer
        raise ValueError(f"not a valid JSON path ({exc})") from None


def find_all(expression: str, document: object) -> list[object]:
    """Every value ``expression`` selects in ``document`` (empty when nothing matches)."""
    return [match.value for match in compile_path(expression).find(document)]
