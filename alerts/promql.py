"""Small builders for PromQL text, so every generated expression quotes and spells alike.

>>> selector("carewatch_journey_up", channel="app", journey="login")
'carewatch_journey_up{channel="app",journey="login"}'
>>> number(14.4 * 0.001), number(6.0), number(0.9990000000000001)
('0.0144', '6', '0.999')
>>> [window(s) for s in (300, 3600, 86400, 7 * 86400, 28 * 86400, 30 * 86400, 365 * 86400)]
['5m', '1h', '1d', '1w', '4w', '30d', '1y']
"""

from __future__ import annotations

from typing import Final

#: Significant digits kept in a generated number: 0.999 stays 0.999, 1 - 0.999 is 0.001 and not
#: 0.0010000000000000009.
DIGITS: Final = 12
#: Prometheus's duration units, largest first, as ``model.Duration`` prints them. Years and weeks
#: are used only when they divide the duration exactly (90 days stays ``90d``), so Sloth names a
#: 28-day window ``4w`` and a 30-day one ``30d``; carewatch names its windows the same way.
_EXACT_UNITS: Final = (("y", 365 * 86400), ("w", 7 * 86400))
_UNITS: Final = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def quote(value: str) -> str:
    """A PromQL (and Alertmanager matcher) string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(metric: str, **labels: str) -> str:
    """``metric{label="value",...}``, the labels in the order given."""
    if not labels:
        return metric
    inner = ",".join(f"{name}={quote(value)}" for name, value in labels.items())
    return f"{metric}{{{inner}}}"


def number(value: float) -> str:
    """A number as PromQL reads it, without float noise: ``6``, ``0.0144``, ``1e-05``."""
    rounded = float(f"{value:.{DIGITS}g}")
    if rounded == int(rounded) and abs(rounded) < 1e15:
        return str(int(rounded))
    return repr(rounded)


def window(seconds: int) -> str:
    """A duration as Prometheus prints it (``model.Duration``): ``30d``, ``4w``, ``1h30m``."""
    if seconds <= 0:
        raise ValueError(f"expected a positive duration, got {seconds}s")
    for unit, size in _EXACT_UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    text = ""
    for unit, size in _UNITS:
        if seconds >= size:
            text += f"{seconds // size}{unit}"
            seconds %= size
    return text
