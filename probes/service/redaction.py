"""Logs without secrets: a filter that redacts every record a handler writes.

Messages are redacted where they are made (step results, config errors); this filter is the
last boundary, for whatever else a record carries: its arguments and a traceback's text.

>>> import logging
>>> from probes.model import Secrets
>>> record = logging.LogRecord("carewatch", logging.WARNING, "", 0, "got %r", ("S3CR3T-x",), None)
>>> RedactingFilter(lambda: Secrets(frozenset({"S3CR3T-x"}))).filter(record)
True
>>> record.getMessage()
"got '<redacted>'"
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from probes.model.secrets import Secrets


class RedactingFilter(logging.Filter):
    """Rewrites each record with the secrets ``source`` gives at that moment (the running
    config's: they change on reload)."""

    def __init__(self, source: Callable[[], Secrets]) -> None:
        super().__init__()
        self._source = source

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._source()
        if not secrets:
            return True
        record.msg = secrets.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = secrets.redact(record.exc_text)
        return True
