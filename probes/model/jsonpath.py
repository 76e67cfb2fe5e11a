"""JSON-path expressions for expectations and captures, compiled once and cached.

jsonpath-ng's extended parser is used, so filters and arithmetic work:
``$.results[?(@.score > 0.5)].id``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonpath_ng.ext.parser import parse as _parse
from jsonpath_ng.jsonpath import Child, Fields, Index, Root, This


@lru_cache(maxsize=4096)
def compile_path(expression: str) -> Any:
    """The compiled expression; raises ValueError with the parser's complaint."""
    try:
        return _parse(expression)
    except Exception as exc:  # jsonpath-ng raises bare Exception subclasses from its lexer
        raise ValueError(f"not a valid JSON path ({exc})") from None


def selects_one(expression: str) -> bool:
    """Whether ``expression`` can select one value at most: no wildcard, slice, filter, union or
    ``..``. ``$.a.b[0]`` selects one; ``$.items[*].id`` may select several, or only one."""
    return _single(compile_path(expression))


def _single(node: Any) -> bool:
    if isinstance(node, Child):
        return _single(node.left) and _single(node.right)
    if isinstance(node, Fields):
        return len(node.fields) == 1 and node.fields[0] != "*"
    if isinstance(node, Index):
        return len(getattr(node, "indices", (None,))) == 1
    return isinstance(node, Root | This)


def find_all(expression: str, document: object) -> list[object]:
    """Every value ``expression`` selects in ``document`` (empty when nothing matches)."""
    return [match.value for match in compile_path(expression).find(document)]
