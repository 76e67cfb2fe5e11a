"""``carewatch dashboards`` (also ``python -m dashboards``): read checks.yaml, write the
dashboards and their provisioning file.

::

    carewatch dashboards [--config checks.yaml] [--out dashboards/generated]

A thin shell, the alerts' (``alerts.command.generate_into``) around
``dashboards.files.generate``: it ends with ``probes.Exit``, CONFIG (with every located
problem) for a broken checks.yaml, FAILED when the files cannot be written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from alerts.command import add_options as _generator_options
from alerts.command import generate_into
from dashboards.files import DEFAULT_OUT, generate
from probes import Exit


def run(config_path: str, out: str) -> Exit:
    """Generate the dashboards of ``config_path`` into ``out``; the exit code."""
    return generate_into("carewatch dashboards", generate, config_path, out)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``carewatch dashboards`` and ``python -m dashboards``."""
    _generator_options(parser, DEFAULT_OUT)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dashboards``: the same as ``carewatch dashboards``."""
    parser = argparse.ArgumentParser(
        prog="python -m dashboards",
        description="Generate Grafana dashboards and their provisioning file from checks.yaml.",
    )
    add_options(parser)
    args = parser.parse_args(argv)
    return int(run(args.config, args.out))
