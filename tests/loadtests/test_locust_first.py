"""locust is imported first wherever it is imported, and only by the load tests.

Importing locust makes gevent monkey-patch the standard library, which must happen before
anything imports socket, ssl or threading. ruff keeps it first (pyproject.toml,
``[tool.ruff.lint.isort]``: a ``locust`` section before the standard library, as in the Locust
repository); this test proves the section is there and obeyed, read from the source.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests._support.paths import REPO

#: Where locust may be imported: the load tests, and the script the parity test runs.
LOCUST_HOMES = ("loadtests", "tests/loadtests")


def module_imports(path: Path) -> list[str]:
    """The modules that ``path`` imports at its top level, in order, ``__future__`` left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names.append(node.module or "")
    return names


def is_locust(module: str) -> bool:
    return module == "locust" or module.startswith("locust.")


def test_ruff_sorts_a_locust_section_before_the_standard_library() -> None:
    isort = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]["isort"]
    order = isort["section-order"]
    assert order[:3] == ["future", "locust", "standard-library"]
    assert isort["sections"]["locust"] == ["locust"]


def test_locust_comes_first_in_every_module_that_imports_it() -> None:
    importers = []
    for path in sorted(REPO.glob("**/*.py")):
        if ".venv" in path.parts or not any(is_locust(m) for m in module_imports(path)):
            continue
        importers.append(path.relative_to(REPO).as_posix())
        assert is_locust(module_imports(path)[0]), f"{path}: locust is not imported first"
    assert "loadtests/locustfile.py" in importers  # the check sees the modules it checks
    assert "loadtests/_ws.py" in importers
    outside = [p for p in importers if not p.startswith(tuple(f"{h}/" for h in LOCUST_HOMES))]
    assert outside == []
