"""YAML loading that remembers where every value came from, for located config errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from probes.errors import Problem

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """1-based line and column of a value (or of a mapping key) in the file."""

    line: int
    column: int


@dataclass(slots=True)
class Located:
    """Plain data (dicts, lists, scalars) plus the mark of every path in it."""

    data: Any
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)

    def mark(self, path: Path, *, key: bool = False) -> Mark | None:
        """The mark of ``path``, or of its nearest ancestor present in the file."""
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            found = (self.keys.get(prefix) if key else None) or self.values.get(prefix)
            if found:
                return found
        return None


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def load_located(text: str, file: str) -> tuple[Located, list[Problem]]:
    """Parse one YAML document; syntax errors and duplicate keys come back as problems."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        return Located(None), [Problem(file, line, column, "", f"invalid YAML: {what}")]
    except yaml.YAMLError as exc:
        return Located(None), [Problem(file, None, None, "", f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    located = Located(None)
    problems: list[Problem] = []
    if root is not None:
        located.data = _build(root, (), loader, located, problems, file)
    return located, problems


def _build(
    node: yaml.Node,
    path: Path,
    loader: yaml.SafeLoader,
    located: Located,
    problems: list[Problem],
    file: str,
) -> Any:
    located.values.setdefault(path, _mark(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                problems.append(_problem(file, key_node, path, "mapping keys must be plain text"))
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                problems.append(_problem(file, key_node, (*path, key), f"duplicate key {key!r}"))
                continue
            located.keys[(*path, key)] = _mark(key_node)
            out[key] = _build(value_node, (*path, key), loader, located, problems, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, i), loader, located, problems, file)
            for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def _problem(file: str, node: yaml.Node, path: Path, message: str) -> Problem:
    mark = _mark(node)
    return Problem(file, mark.line, mark.column, format_path(path), message)


def format_path(path: Path) -> str:
    """``("channels", 1, "journeys", 0)`` -> ``channels[1].journeys[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
