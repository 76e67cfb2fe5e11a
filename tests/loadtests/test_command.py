"""loadtests.command: the Locust argv on the locustfile shipped with the package."""

from __future__ import annotations

import doctest
from pathlib import Path

import loadtests.command
from loadtests.command import LOCUSTFILE, locust_command


def test_the_locustfile_is_the_packages_own() -> None:
    assert LOCUSTFILE.is_file()
    assert LOCUSTFILE.parent == Path(loadtests.command.__file__).parent
    assert doctest.testmod(loadtests.command).failed == 0


def test_the_options_come_last_unchanged() -> None:
    options = ["--headless", "-u", "1", "--config", "locust.conf"]
    command = locust_command(options)
    assert command[-len(options) :] == options
    assert command.count("-f") == 1
