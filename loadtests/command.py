"""How a process that must not import locust runs carewatch's locustfile.

``carewatch loadtest`` and ``make loadtest`` (``loadtests.demo``) start Locust as a process on
``loadtests/locustfile.py``, found next to this module wherever the package is installed, so the
user never names it. Importing locust instead would let gevent monkey-patch the caller's
standard library.

>>> command = locust_command(["--headless", "-u", "1"])
>>> command[1:4], Path(command[4]).name, command[5:]
(['-m', 'locust', '-f'], 'locustfile.py', ['--headless', '-u', '1'])
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

LOCUSTFILE: Final = Path(__file__).with_name("locustfile.py")
#: The environment variable the locustfile reads the checks file from (default checks.yaml).
CHECKS_VARIABLE: Final = "CAREWATCH_CHECKS"


def locust_command(options: Sequence[str]) -> list[str]:
    """The argv that runs Locust on ``LOCUSTFILE`` in this interpreter, ``options`` last."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *options]
