"""Where the repository and the test fixtures are."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
#: Files the tests read: sample checks.yaml documents, good and bad.
FIXTURES: Final = REPO / "tests" / "fixtures"
