"""A config loaded with a distinctive secret in every environment variable it names, for the
tests that search an output for it (``SECRET_MARK``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from probes import Config, load_config

#: What every planted secret starts with: any of it in an output is a leak.
SECRET_MARK: Final = "S3CR3T"
_ENV: Final = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)")


def planted(path: Path) -> Config:
    """The config at ``path``, each ``${env:NAME}`` given ``S3CR3T-NAME-…``."""
    names = set(_ENV.findall(path.read_text()))
    environ = {name: f"{SECRET_MARK}-{name}-9c2f" for name in names}
    config = load_config(path, environ=environ)
    assert config.secrets.values >= set(environ.values()), "every planted value is a secret"
    return config
