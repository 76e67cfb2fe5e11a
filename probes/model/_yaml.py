"""YAML loading that remembers where every value came from, for located config errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from probes.errors import ConfigError, Problem, shorten
from probes.model.durations import MAX_SHOWN_CHARS, shown

Path = tuple[str | int, ...]

#: Deeper nesting than this is certainly a mistake, and would exhaust Python's stack.
MAX_DEPTH: Final = 64
#: Values a document may expand to. Aliases can multiply a small file ("billion laughs"); a
#: config of 10,000 rich journeys stays well below this. It is counted on the parsed nodes,
#: before anything is expanded, so a file over it is refused in milliseconds.
MAX_VALUES: Final = 1_000_000


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


class _Loader(yaml.SafeLoader):
    """PyYAML's composer recurses once per level: it stops at MAX_DEPTH, where the node is,
    instead of exhausting Python's stack (and losing the line) at 10,000 ``[``."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self._file = file
        self._path: list[str | int] = []

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        part: str | int | None = None
        if parent is not None:  # the root has no part; a mapping key's part is "?"
            part = index if isinstance(index, int) else _key_part(index)
        if part is not None:
            self._path.append(part)
        try:
            if len(self._path) > MAX_DEPTH:
                event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
                mark = event.start_mark
                line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
                where = format_path(tuple(self._path))
                raise _Invalid(Problem(self._file, line, column, where, _TOO_DEEP))
            # PyYAML passes a mapping's key node as ``index`` too; its stub says int only.
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            if part is not None:
                self._path.pop()


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def load_located(text: str, file: str) -> tuple[Located, list[Problem]]:
    """Parse one YAML document; syntax errors and duplicate keys come back as problems.

    After a syntax error ``data`` is None; after a duplicate key it holds the first value.
    """
    try:
        loader = _Loader(text, file)
    except yaml.reader.ReaderError as exc:  # a control character, raised before any parsing
        return Located(None), [_reader_problem(text, file, exc)]
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
    except RecursionError:  # not expected since _Loader stops at MAX_DEPTH: a last guard
        return Located(None), [Problem(file, None, None, "", _TOO_DEEP)]
    except _Invalid as exc:  # nested too deep
        return Located(None), [exc.problem]
    finally:
        loader.dispose()
    located = Located(None)
    problems: list[Problem] = []
    if root is not None:
        try:
            _count_values(root, file)
            located.data = _build(root, (), loader, located, problems, file, frozenset())
        except _Invalid as exc:
            return Located(None), [exc.problem]
    return located, problems


_TOO_DEEP: Final = f"invalid YAML: nested deeper than {MAX_DEPTH} levels"
_TOO_MANY: Final = f"invalid YAML: expands to more than {MAX_VALUES:,} values (aliases?)"
_MERGE: Final = "tag:yaml.org,2002:merge"


class _Invalid(ConfigError):
    """A node that cannot become data (bad tag, bad value, recursive alias): stops the build."""

    def __init__(self, problem: Problem) -> None:
        super().__init__([problem])
        self.problem = problem


def _reader_problem(text: str, file: str, exc: yaml.reader.ReaderError) -> Problem:
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - text.rfind("\n", 0, exc.position)
    code = ord(exc.character) if isinstance(exc.character, str) else exc.character
    return Problem(file, line, column, "", f"invalid YAML: character #x{code:04x} is not allowed")


def _count_values(root: yaml.Node, file: str) -> None:
    """Refuse a document whose aliases expand it beyond MAX_VALUES, counting on the node graph
    (each node once, however many aliases share it) instead of expanding it."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node, path: Path) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            return 1  # an alias to itself: _build reports it, where it is
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            children = [(value, (*path, _key_part(key))) for key, value in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, (*path, i)) for i, item in enumerate(node.value)]
        else:
            children = []
        for child, child_path in children:
            total += size(child, child_path)
            if total > MAX_VALUES:
                raise _Invalid(_problem(file, node, path, _TOO_MANY))
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root, ())


def _key_part(node: object) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "?"


def _build(
    node: yaml.Node,
    path: Path,
    loader: yaml.SafeLoader,
    located: Located,
    problems: list[Problem],
    file: str,
    open_nodes: frozenset[int],
) -> Any:
    if id(node) in open_nodes:
        raise _Invalid(_problem(file, node, path, "invalid YAML: an alias refers to itself"))
    if len(path) > MAX_DEPTH:
        raise _Invalid(_problem(file, node, path, _TOO_DEEP))
    located.values.setdefault(path, _mark(node))
    if len(located.values) > MAX_VALUES:
        raise _Invalid(_problem(file, node, path, _TOO_MANY))
    inside = open_nodes | {id(node)}
    if isinstance(node, yaml.MappingNode):
        own = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE)
        try:
            loader.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor)
        except yaml.MarkedYAMLError as exc:
            raise _Invalid(_problem(file, node, path, f"invalid YAML: {exc.problem}")) from None
        merged = len(node.value) - own  # flatten_mapping puts the merged pairs first
        pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        written: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = _construct(key_node, path, loader, file)
            if not isinstance(key, str | int | float | bool) or key is None:
                problems.append(_problem(file, key_node, path, "mapping keys must be plain text"))
                continue
            key = str(key) if not isinstance(key, str) else key
            if index >= merged:  # a key written here, which overrides a merged one
                if key in written:
                    problems.append(
                        _problem(file, key_node, (*path, key), f"duplicate key {key!r}")
                    )
                    continue
                written.add(key)
            pairs[key] = (key_node, value_node)
        out: dict[str, Any] = {}
        for key, (key_node, value_node) in pairs.items():
            located.keys[(*path, key)] = _mark(key_node)
            out[key] = _build(value_node, (*path, key), loader, located, problems, file, inside)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, i), loader, located, problems, file, inside)
            for i, item in enumerate(node.value)
        ]
    return _construct(node, path, loader, file)


def _construct(node: yaml.Node, path: Path, loader: yaml.SafeLoader, file: str) -> Any:
    """A scalar's value; an unknown tag or a value its tag rejects (``!!int abc``, a timestamp
    such as ``2024-13-45``) is a problem, not a traceback."""
    if not isinstance(node, yaml.ScalarNode):  # a mapping or list used as a key
        return None
    try:
        value = loader.construct_object(node, deep=True)
        if isinstance(value, str) and not is_text(value):
            message = _SURROGATE
        else:
            return value
    except yaml.MarkedYAMLError as exc:
        message = f"invalid YAML: {exc.problem}"
    except Exception as exc:  # PyYAML's constructors raise whatever int(), datetime() etc. raise
        kind = shorten(node.tag.rsplit(":", 1)[-1], MAX_SHOWN_CHARS)
        why = shorten(str(exc), MAX_SHOWN_CHARS * 2)
        message = f"invalid YAML: {shown(node.value)} is not a valid {kind} ({why})"
    raise _Invalid(_problem(file, node, path, message))


_SURROGATE: Final = "invalid YAML: a \\u escape that is not a character (a surrogate)"


def is_text(value: str) -> bool:
    """False for a string with a lone surrogate (``"\\ud800"`` in YAML, or bytes that are not
    UTF-8 in the environment): nothing can encode it, not a request, a label or pydantic."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
