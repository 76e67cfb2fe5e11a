"""The tables that turn a transport's exceptions into a failed step (``probes.runs.reasons``)."""

from __future__ import annotations

import errno
from typing import Final

import pytest

from probes.errors import ConnectFailed, ConnectionLost, WireError
from probes.runs.reasons import Caught, classify, exhausted
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


#: A table that would blame the target for any OSError.
TARGET_TABLE: Final = (
    Caught((OSError, ConnectFailed), Reason.CONNECT),
    Caught(WireError, Reason.PROTOCOL),
)


def wrapped(cause: OSError) -> ConnectFailed:
    """``cause`` wrapped as the transport wraps it: raised from it."""
    try:
        raise ConnectFailed("care.example:443", cause.strerror or str(cause)) from cause
    except ConnectFailed as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "what"),
    [
        (OSError(errno.EMFILE, "Too many open files"), "file descriptors (Too many open files)"),
        (wrapped(OSError(errno.ENFILE, "x")), "the system's file descriptors"),
        (ConnectionLost(OSError(errno.ENOBUFS, "x")), "socket buffer space"),
        (MemoryError(), "memory"),
    ],
    ids=["emfile", "wrapped-enfile", "lost-enobufs", "memory"],
)
def test_the_agents_own_exhaustion_comes_before_any_table(exc: BaseException, what: str) -> None:
    failure = classify(exc, TARGET_TABLE, "care.example")

    assert failure is not None
    assert failure.reason is Reason.AGENT_RESOURCES
    assert failure.message.startswith(f"the agent ran out of {what}")


def test_a_targets_failure_is_not_the_agents() -> None:
    refused = wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))

    assert exhausted(refused) is None
    assert classify(refused, TARGET_TABLE, "care.example") == Failure(
        Reason.CONNECT, "cannot connect to care.example:443: Connection refused"
    )
