"""The tables that turn a transport's exceptions into a failed step (``probes.runs.reasons``)."""

from __future__ import annotations

from probes.runs.reasons import Caught, classify
from probes.runs.results import Failure, Reason


def test_the_first_row_that_matches_wins_even_before_a_narrower_one() -> None:
    # aiohttp's classes inherit from several at once: the order of the rows decides, as the
    # if-chain the tables replaced did.
    table = (
        Caught(OSError, Reason.CONNECT),
        Caught(ConnectionRefusedError, Reason.INTERNAL),
    )

    assert classify(ConnectionRefusedError("refused"), table, None) == Failure(
        Reason.CONNECT, "refused"
    )


def test_a_row_may_word_the_message_from_the_exception_and_the_target() -> None:
    table = (Caught(ValueError, Reason.PROTOCOL, lambda exc, url: f"invalid URL {url!r} ({exc})"),)

    failure = classify(ValueError("no host"), table, "http://")

    assert failure == Failure(Reason.PROTOCOL, "invalid URL 'http://' (no host)")


def test_a_row_applies_only_when_its_condition_holds() -> None:
    table = (
        Caught(OSError, Reason.TLS, when=lambda exc: "[SSL:" in str(exc)),
        Caught(OSError, Reason.CONNECT),
    )

    assert classify(OSError("[SSL: X] alert"), table, None) == Failure(Reason.TLS, "[SSL: X] alert")
    assert classify(OSError("reset"), table, None) == Failure(Reason.CONNECT, "reset")


def test_an_exception_no_row_knows_is_left_to_the_caller() -> None:
    assert classify(KeyError("x"), (Caught(OSError, Reason.CONNECT),), None) is None
