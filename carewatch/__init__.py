"""The ``carewatch`` command: one entry point for the exporter, config checks, load tests and
the demo stack.

``pip install .`` installs it as a console script (``carewatch.cli:main``); ``python -m
carewatch`` runs the same thing. The command is a thin shell: each subcommand parses its
arguments, calls one function of ``probes.service``, ``loadtests`` or ``democare``, and maps the
outcome to one of the exit codes of ``probes.Exit``.
"""
