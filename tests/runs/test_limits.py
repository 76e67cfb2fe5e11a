"""The limits both engines share (``probes.runs.limits``)."""

from __future__ import annotations

import dataclasses

import pytest

from probes.runs import DEFAULT_LIMITS, Limits
from probes.runs.limits import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_REDIRECTS


def test_the_defaults_are_the_named_limits() -> None:
    assert (DEFAULT_LIMITS.body_bytes, DEFAULT_LIMITS.header_bytes, DEFAULT_LIMITS.redirects) == (
        MAX_BODY_BYTES,
        MAX_HEADER_BYTES,
        MAX_REDIRECTS,
    )
    assert (MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_REDIRECTS) == (4 * 1024 * 1024, 64 * 1024, 10)


def test_limits_are_frozen_and_changed_through_replace() -> None:
    small = dataclasses.replace(DEFAULT_LIMITS, body_bytes=1024)

    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.body_bytes = 1  # type: ignore[misc]
    assert small == Limits(body_bytes=1024)
    assert DEFAULT_LIMITS.body_bytes == MAX_BODY_BYTES
    with pytest.raises(TypeError):
        Limits(1024)  # type: ignore[misc]  # keyword-only: a bare number says nothing
