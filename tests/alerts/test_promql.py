"""PromQL text: quoting, numbers without float noise, and durations named as Prometheus
(and Sloth) name them."""

from __future__ import annotations

import pytest

from alerts.promql import number, quote, selector, window


@pytest.mark.parametrize(
    ("days", "name"), [(1, "1d"), (3, "3d"), (7, "1w"), (28, "4w"), (30, "30d"), (90, "90d")]
)
def test_windows_are_named_like_sloths(days: int, name: str) -> None:
    assert window(days * 86400) == name


def test_a_window_that_is_no_whole_unit_is_spelled_out() -> None:
    assert window(5400) == "1h30m"
    with pytest.raises(ValueError, match="positive"):
        window(0)


def test_numbers_lose_their_float_noise() -> None:
    assert number(1 - 0.999) == "0.001"
    assert number(14.4 * (1 - 0.999)) == "0.0144"
    assert number(86400 * 21) == "1814400"
    assert number(0.9990000000000001) == "0.999"


def test_label_values_are_quoted_and_escaped() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert selector("up", job="care") == 'up{job="care"}'
    assert selector("up") == "up"
