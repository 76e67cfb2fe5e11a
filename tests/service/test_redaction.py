"""probes.service.redaction: no log record leaves with a secret, whatever it carries."""

from __future__ import annotations

import io
import logging

from probes.model import Secrets
from probes.service.redaction import RedactingFilter

SECRET = "S3CR3T-log-7e1d"


def _logged(secrets: Secrets, emit: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(lambda: secrets))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        assert callable(emit)
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_arguments_and_tracebacks_are_redacted() -> None:
    def emit(logger: logging.Logger) -> None:
        logger.warning("journey failed: %s", f"got 'Bearer {SECRET}'")
        try:
            raise ValueError(f"invalid URL 'http://h/?token={SECRET}'")
        except ValueError:
            logger.exception("run crashed")

    text = _logged(Secrets(frozenset({SECRET})), emit)
    assert "journey failed: got 'Bearer <redacted>'" in text
    assert "ValueError: invalid URL 'http://h/?token=<redacted>'" in text
    assert SECRET not in text


def test_the_secrets_are_read_at_each_record() -> None:
    """A reload changes them: the filter asks its source every time."""
    current = [Secrets()]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(lambda: current[0]))
    record = logging.LogRecord("x", logging.INFO, "", 0, "token %s", (SECRET,), None)
    handler.handle(record)
    current[0] = Secrets(frozenset({SECRET}))
    handler.handle(logging.LogRecord("x", logging.INFO, "", 0, "token %s", (SECRET,), None))
    assert stream.getvalue().splitlines() == [f"token {SECRET}", "token <redacted>"]
