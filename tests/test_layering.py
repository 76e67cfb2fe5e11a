"""The shape of the system, enforced over whole packages.

Inside ``probes/`` the layers are ``model`` <- ``runs`` <- ``net`` <- ``engine`` <- ``service``:
a module may import its own layer and the layers to its left, never one to its right.
``probes.errors`` and ``probes.exits`` sit under every layer, ``probes.metrics`` beside the model.

Outside ``probes/``, code imports packages, not modules: ``loadtests/``, ``democare/`` and the
generators (``alerts/``, ``dashboards/``) only ``probes``, ``probes.model``, ``probes.runs`` and
``probes.metrics``; the entry points (``exporter.py``, ``carewatch/``, ``bench/``) may add
``probes.engine`` and ``probes.service``. Nothing outside a package imports its ``_private``
modules, tests included.

Under ``tests/``, a module imports from ``tests`` only ``tests._support``: never another test
module, nor a ``conftest.py``. And the tests mirror the packages: ``tests/engine/test_dns_step.py``
tests ``probes/engine/dns_step.py``, ``tests/democare/test_app.py`` tests ``democare/_app.py``.

The rules are read from the source (every ``import`` statement, functions included), so a new
module is covered the day it is written. A last check imports each layer in a fresh interpreter,
so what the test process already imported cannot hide an engine the model would pull in.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from tests._support.paths import REPO

#: Left to right: each layer may import those before it, and itself.
LAYERS: Final = ("errors", "exits", "model", "metrics", "runs", "net", "engine", "service")
#: What code outside probes/ may import, by package.
CONSUMER: Final = frozenset({"probes", "probes.model", "probes.runs", "probes.metrics"})
ENTRY_POINT: Final = CONSUMER | {"probes.engine", "probes.service"}
ALLOWED: Final = {
    "loadtests": CONSUMER,
    "democare": CONSUMER,
    "alerts": CONSUMER,
    "dashboards": CONSUMER,
    "carewatch": ENTRY_POINT,
    "bench": ENTRY_POINT,
    "exporter.py": ENTRY_POINT,
}
#: Packages probes/ must never import: they all build on it.
ABOVE_PROBES: Final = (
    "loadtests",
    "democare",
    "bench",
    "alerts",
    "dashboards",
    "carewatch",
    "tests",
)
ENGINES: Final = ("aiohttp", "locust", "gevent", "uvloop")


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module that ``path`` imports, absolute, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            assert node.module is not None
            yield node.lineno, node.module
            # `from probes.model import steps` imports the module probes.model.steps
            for alias in node.names:
                if (REPO / node.module.replace(".", "/") / f"{alias.name}.py").exists():
                    yield node.lineno, f"{node.module}.{alias.name}"


def sources(*tops: str) -> list[Path]:
    found: list[Path] = []
    for top in tops:
        path = REPO / top
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(path.rglob("*.py")))
    return found


def layer_of(module: str) -> str:
    """``probes.model.steps`` -> ``model``; ``probes`` itself is the public face, above all."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "service"


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    return name.removesuffix(".__init__")


def test_every_probes_module_is_in_a_layer() -> None:
    for path in sources("probes"):
        name = module_name(path)
        if name != "probes":
            assert layer_of(name) in LAYERS, f"{name} is in no layer: add it to LAYERS or move it"


def test_probes_layers_import_only_to_their_left() -> None:
    broken = []
    for path in sources("probes"):
        name = module_name(path)
        if name == "probes":
            continue
        mine = LAYERS.index(layer_of(name))
        for line, imported in imports(path):
            if imported.split(".")[0] in ABOVE_PROBES:
                broken.append(f"{name}:{line} imports {imported}, which builds on probes")
            elif imported.startswith("probes.") and LAYERS.index(layer_of(imported)) > mine:
                broken.append(f"{name}:{line} ({layer_of(name)}) imports {imported}")
    assert broken == []


@pytest.mark.parametrize("top", sorted(ALLOWED))
def test_code_outside_probes_imports_only_public_packages(top: str) -> None:
    allowed = ALLOWED[top]
    broken = [
        f"{path.relative_to(REPO)}:{line} imports {imported}"
        for path in sources(top)
        for line, imported in imports(path)
        if imported.split(".")[0] == "probes" and imported not in allowed
    ]
    assert broken == [], f"{top} may import only {sorted(allowed)}"


def test_nothing_outside_a_package_imports_its_private_modules() -> None:
    outside = [path for path in sources(*ALLOWED, "tests") if "probes" not in path.parts[:1]]
    broken = []
    for path in outside:
        for line, imported in imports(path):
            parts = imported.split(".")
            if parts[0] == "probes" and any(part.startswith("_") for part in parts):
                broken.append(f"{path.relative_to(REPO)}:{line} imports {imported}")
    # inside probes, a _private module is its own subpackage's business
    for path in sources("probes"):
        mine = module_name(path).split(".")[:2]
        for line, imported in imports(path):
            parts = imported.split(".")
            private = [i for i, part in enumerate(parts) if part.startswith("_")]
            if parts[0] == "probes" and private and parts[: private[0]] != mine[: private[0]]:
                broken.append(f"{module_name(path)}:{line} imports {imported}")
    assert broken == []


def test_the_checks_see_what_they_check() -> None:
    """The rules above would pass vacuously if the import reader missed imports."""
    seen = {imported for _, imported in imports(REPO / "probes" / "service" / "agent.py")}
    assert {"probes.engine.engine", "probes.model.load", "aiohttp"} <= seen
    assert len(sources("probes")) > 40


def imported_by(module: str) -> set[str]:
    code = (
        f"import sys, {module}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("module", ["probes", "probes.model", "probes.runs", "probes.metrics"])
def test_what_consumers_import_loads_no_engine(module: str) -> None:
    assert imported_by(module).isdisjoint(ENGINES)


def test_the_asyncio_engine_never_imports_gevent_or_locust() -> None:
    loaded = imported_by("probes.service")
    assert "aiohttp" in loaded  # the check can see an engine when there is one
    assert loaded.isdisjoint({"gevent", "locust"})


# --- tests/ ---------------------------------------------------------------------------------------


#: Test files that test no one module, and what they test instead.
ACROSS_MODULES: Final = {
    "tests/test_layering.py": "the import rules of the whole tree",
    "tests/test_readme.py": "the README against the code",
    "tests/test_exported_members.py": "the __all__ of probes and of each subpackage",
    "tests/test_doctests.py": "the examples in the docstrings of every probes, alerts and "
    "dashboards module",
    "tests/test_channels_e2e.py": "every channel end to end, democare and the exporter running",
    "tests/test_redaction_e2e.py": "a planted secret in no output of the exporter or of "
    "carewatch check",
    "tests/test_hostile.py": "hostile targets against a running exporter: reasons, timing, memory",
    "tests/loadtests/test_parity.py": "the two engines (probes.engine, loadtests) agree",
    "tests/loadtests/test_locust_first.py": "locust is imported first wherever it is imported",
    "tests/democare/test_messaging.py": "democare's sms and push channels, which share deliveries",
    "tests/democare/test_voice_video.py": "democare's voice and video, joined by a chat handover",
    "tests/service/test_reload_under_load.py": "reloads while the agent probes: the agent, its "
    "scheduler and its exposition together",
    "tests/carewatch/test_demo.py": "carewatch demo: the command and democare.launch together",
    "tests/carewatch/test_install.py": "the wheel that pip install . builds, in a fresh venv",
    "tests/alerts/test_end_to_end.py": "the generated alerts with democare, two exporters, "
    "Prometheus and Alertmanager running",
    "tests/dashboards/test_structure.py": "every generated dashboard's ids, layout, queries' "
    "refIds and datasources, variables and links, and the alerts' dashboard_url",
    "tests/dashboards/test_promql.py": "every panel query parses, its variables substituted",
    "tests/dashboards/test_grafana_types.py": "Grafana's own types accept every dashboard",
    "tests/dashboards/test_live.py": "every panel of the generated dashboards against democare, "
    "an exporter and Prometheus running",
}


def modules_tested_from(folder: Path) -> list[Path]:
    """The modules a test file in ``folder`` may be named after: ``tests/engine`` mirrors
    ``probes/engine``, ``tests/democare`` the ``democare`` package (subpackages included), and
    ``tests`` itself the modules at the top of ``probes`` and of the repository."""
    if folder == REPO / "tests":
        return sorted([*(REPO / "probes").glob("*.py"), *REPO.glob("*.py")])
    package = REPO / "probes" / folder.name
    if not package.is_dir():
        package = REPO / folder.name
    return sorted(package.rglob("*.py"))


def test_test_modules_import_only_the_test_support() -> None:
    """The rule for tests/: a module under tests/ imports from ``tests`` only ``tests._support``.

    So no test module imports another test module, a ``conftest.py`` (pytest hands its fixtures
    to the tests that name them) or a script such as ``tests/loadtests/locust_once.py``; what
    test modules share is in ``tests/_support``, which imports nothing else of tests/ either.
    """
    broken = []
    support = 0
    for path in sources("tests"):
        for line, imported in imports(path):
            parts = imported.split(".")
            if parts[0] != "tests":
                continue
            if parts[:2] == ["tests", "_support"]:
                support += 1
            else:
                broken.append(f"{path.relative_to(REPO)}:{line} imports {imported}")
    assert broken == [], "move what they share to tests/_support, or make it a fixture"
    assert support > 20  # the check sees the imports it allows


def test_tests_mirror_the_packages() -> None:
    """``tests/<package>/test_<module>.py`` tests ``<module>`` of ``<package>``
    (``probes/<package>`` for a layer, else a top-level package), and ``tests/test_<module>.py``
    a module at the top of ``probes`` or of the repository (``exporter.py``); a private module
    drops its underscore. Files that test no one module say what they test in
    ``ACROSS_MODULES``."""
    misplaced = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        relative = str(path.relative_to(REPO))
        if relative in ACROSS_MODULES:
            continue
        tested = path.stem.removeprefix("test_")
        names = {module.stem.lstrip("_") for module in modules_tested_from(path.parent)}
        if tested not in names:
            misplaced.append(f"{relative}: no module {tested} where {path.parent.name}/ points")
    assert misplaced == [], "move the file, or say in ACROSS_MODULES what it tests"
    assert set(ACROSS_MODULES) <= {
        str(path.relative_to(REPO)) for path in (REPO / "tests").rglob("test_*.py")
    }
