"""``carewatch alerts`` (also ``python -m alerts``): read checks.yaml, write the generated files.

::

    carewatch alerts [--config checks.yaml] [--out alerts/generated]

A thin shell: ``probes.load_config``, then ``alerts.files.generate`` and ``write``. It ends with
``probes.Exit``: CONFIG (with every located problem) for a broken checks.yaml, FAILED when the
files cannot be written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

from alerts.files import DEFAULT_OUT, generate, write
from probes import Config, ConfigError, Exit, load_config

DEFAULT_CONFIG: Final = "checks.yaml"


class Generator(Protocol):
    """What a generator offers its command: every file, by name, for ``config``."""

    def __call__(self, config: Config, *, source: str | None, out: str) -> dict[str, str]: ...


def run(config_path: str, out: str) -> Exit:
    """Generate the files of ``config_path`` into ``out``; the exit code."""
    return generate_into("carewatch alerts", generate, config_path, out)


def generate_into(command: str, generator: Generator, config_path: str, out: str) -> Exit:
    """The shell of every generator command (``carewatch alerts``, ``carewatch dashboards``):
    load ``config_path``, write ``generator``'s files into ``out``; the exit code."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Exit.CONFIG
    files = generator(config, source=os.path.normpath(config_path), out=os.path.normpath(out))
    try:
        written = write(files, Path(out))
    except OSError as exc:
        print(f"{command}: cannot write to {out}: {exc}", file=sys.stderr)
        return Exit.FAILED
    print(f"{config_path}: wrote {', '.join(str(path) for path in written)}")
    return Exit.OK


def add_options(parser: argparse.ArgumentParser, default_out: str = DEFAULT_OUT) -> None:
    """The options of ``carewatch alerts`` and ``python -m alerts`` (and of the other
    generators, whose files go to ``default_out``)."""
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, metavar="FILE", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--out",
        default=default_out,
        metavar="DIR",
        help="where the files go, created as needed (default: %(default)s)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alerts``: the same as ``carewatch alerts``."""
    parser = argparse.ArgumentParser(
        prog="python -m alerts",
        description="Generate Prometheus rules, their promtool tests and the Alertmanager "
        "configuration from checks.yaml.",
    )
    add_options(parser)
    args = parser.parse_args(argv)
    return int(run(args.config, args.out))
