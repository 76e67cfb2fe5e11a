"""``carewatch dashboards`` (also ``python -m dashboards``): read checks.yaml, write the
dashboards and their provisioning file.

::

    carewatch dashboards [--config checks.yaml] [--out dashboards/generated]

A thin shell: ``probes.load_config``, then ``dashboards.files.generate`` and ``write``. It ends
with ``probes.Exit``: CONFIG (with every located problem) for a broken checks.yaml, FAILED when
the files cannot be written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from alerts.files import write
from dashboards.files import DEFAULT_OUT, generate
from probes import ConfigError, Exit, load_config

DEFAULT_CONFIG: Final = "checks.yaml"


def run(config_path: str, out: str) -> Exit:
    """Generate the dashboards of ``config_path`` into ``out``; the exit code."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Exit.CONFIG
    files = generate(config, source=os.path.normpath(config_path), out=os.path.normpath(out))
    try:
        written = write(files, Path(out))
    except OSError as exc:
        print(f"carewatch dashboards: cannot write to {out}: {exc}", file=sys.stderr)
        return Exit.FAILED
    print(f"{config_path}: wrote {', '.join(str(path) for path in written)}")
    return Exit.OK


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``carewatch dashboards`` and ``python -m dashboards``."""
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, metavar="FILE", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help="where the files go, created as needed (default: %(default)s)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dashboards``: the same as ``carewatch dashboards``."""
    parser = argparse.ArgumentParser(
        prog="python -m dashboards",
        description="Generate Grafana dashboards and their provisioning file from checks.yaml.",
    )
    add_options(parser)
    args = parser.parse_args(argv)
    return int(run(args.config, args.out))
