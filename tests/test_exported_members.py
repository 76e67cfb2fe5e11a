"""What ``probes`` and each of its subpackages offer: exactly the names in their ``__all__``.

As in httpx's ``tests/test_exported_members.py``: a package's ``__all__`` lists every public name
its ``__init__`` defines or imports (submodules aside), each of them exists, and the list is in
the order ruff's RUF022 keeps it (CONSTANTS, then Classes, then functions, each alphabetical).
``probes.__all__`` is the public API: it is pinned below, so that it changes only on purpose.
"""

from __future__ import annotations

import importlib
import types
from typing import Final

import pytest

import probes

PACKAGES: Final = (
    "probes",
    "probes.model",
    "probes.runs",
    "probes.net",
    "probes.engine",
    "probes.service",
)

#: ``probes.__all__``, one name a line: adding, renaming or removing a public name is one edit here.
PUBLIC_API: Final = (
    "Attempt",
    "AwaitStep",
    "Capture",
    "CarewatchError",
    "Channel",
    "ChannelKind",
    "Config",
    "ConfigError",
    "Defaults",
    "Device",
    "DnsStep",
    "Exit",
    "Expect",
    "HttpStep",
    "Journey",
    "MissingVariable",
    "Outcome",
    "Phase",
    "Problem",
    "Reason",
    "RunResult",
    "Slo",
    "SmtpStep",
    "Step",
    "StepResult",
    "TcpStep",
    "Tls",
    "WebSocketStep",
    "load_config",
    "parse_config",
)


def public_names(package: types.ModuleType) -> set[str]:
    """What ``package`` defines or imports under a public name, its submodules aside (and the
    ``annotations`` that ``from __future__ import annotations`` leaves behind)."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"
    }


def ruff_order(name: str) -> tuple[int, str]:
    """RUF022's isort-style order: SCREAMING_CASE, then CamelCase, then the rest."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    package = importlib.import_module(name)
    assert sorted(package.__all__) == sorted(public_names(package))
    assert len(set(package.__all__)) == len(package.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_name_in_all_exists(name: str) -> None:
    package = importlib.import_module(name)
    missing = [member for member in package.__all__ if not hasattr(package, member)]
    assert missing == []
    assert package.__all__  # a package that offers nothing has no reason to be one


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted(name: str) -> None:
    package = importlib.import_module(name)
    assert list(package.__all__) == sorted(package.__all__, key=ruff_order)


def test_the_public_api_changes_only_on_purpose() -> None:
    assert sorted(probes.__all__) == sorted(PUBLIC_API)


def test_a_star_import_gives_the_public_api() -> None:
    namespace: dict[str, object] = {}
    exec("from probes import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PUBLIC_API)
