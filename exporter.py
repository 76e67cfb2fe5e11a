"""carewatch exporter: probes customer-care journeys and publishes the results to Prometheus.

A thin alias of ``carewatch serve`` and ``carewatch check`` (``carewatch.cli``), kept because
deployments and the product's layout name it::

    python exporter.py --config checks.yaml [--listen HOST:PORT] [--location NAME]
    python exporter.py --config checks.yaml --check
"""

from __future__ import annotations

import argparse
import sys

from carewatch import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exporter.py", description=__doc__.splitlines()[0])
    cli.add_serve_options(parser)
    parser.add_argument(
        "--check", action="store_true", help="validate the config and exit (carewatch check)"
    )
    args = parser.parse_args(argv)
    return int(cli.check(args.config) if args.check else cli.serve_command(args))


if __name__ == "__main__":
    sys.exit(main())
