"""Faults an operator injects into a channel, and the table of those currently active.

A fault makes one channel (or one path under it) misbehave the way real backends do, so the
monitoring can be shown to notice::

    faults = FaultTable(seed=7)
    faults.add(parse_fault({"channel": "app", "mode": "error", "status": 502}))
    faults.triggered("/app/v1/login")   # the fault: answer 502
    faults.triggered("/help/v1/search") # None: handle normally

Channels whose answer comes later (chat, sms, push, email) also take ``no_reply`` and
``late_reply``, which leave the request alone and hold back the answer instead::

    faults.add(parse_fault({"channel": "sms", "mode": "late_reply", "delay_ms": 10000}))
    faults.reply_delay_ms("/sms/v1/messages", normal_ms=300)  # 10000

A fault with a ``count`` hits that many requests and then lifts itself, the way a blip does::

    faults.add(parse_fault({"channel": "app", "mode": "error", "count": 1}))
    faults.triggered("/app/v1/login")   # the fault: answer 503
    faults.triggered("/app/v1/login")   # None: it is gone
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from democare._channels import REPLYING_CHANNELS, Channel


class FaultMode(StrEnum):
    """How a faulted channel misbehaves."""

    DOWN = "down"
    """The connection is dropped before any answer."""
    SLOW = "slow"
    """The answer comes after ``delay_ms``."""
    ERROR = "error"
    """Every answer is ``status`` with an ``injected_fault`` error body."""
    FLAKY = "flaky"
    """A ``ratio`` of answers are errors, the others are normal."""
    GARBAGE = "garbage"
    """A 200 labelled JSON whose body is not JSON, like a broken proxy's."""
    NO_REPLY = "no_reply"
    """The message is accepted but its reply (bot answer, webhook delivery) never comes."""
    LATE_REPLY = "late_reply"
    """The reply comes after ``delay_ms`` instead of the channel's normal delay."""


REQUEST_MODES: Final = frozenset(
    {FaultMode.DOWN, FaultMode.SLOW, FaultMode.ERROR, FaultMode.FLAKY, FaultMode.GARBAGE}
)
"""Modes that change how the request itself is answered."""
REPLY_MODES: Final = frozenset({FaultMode.NO_REPLY, FaultMode.LATE_REPLY})
"""Modes that leave the request alone and change the reply that comes later."""

DEFAULT_DELAY_MS: Final = 3000
DEFAULT_LATE_REPLY_MS: Final = 10_000
MAX_DELAY_MS: Final = 60_000
DEFAULT_STATUS: Final = 503
MIN_STATUS: Final = 400
MAX_STATUS: Final = 599
DEFAULT_RATIO: Final = 0.5
MAX_FAULTS: Final = 64
MAX_COUNT: Final = 1000
MAX_PATH_LENGTH: Final = 200

_MODE_PARAMETERS: Final[dict[str, frozenset[FaultMode]]] = {
    "delay_ms": frozenset({FaultMode.SLOW, FaultMode.LATE_REPLY}),
    "status": frozenset({FaultMode.ERROR, FaultMode.FLAKY}),
    "ratio": frozenset({FaultMode.FLAKY}),
    "count": REQUEST_MODES,
}
#: One SMTP session asks the fault table at each command, so "requests" would mean commands.
_COUNTLESS_CHANNELS: Final = frozenset({Channel.EMAIL})
ALLOWED_FIELDS: Final = ("channel", "mode", "path", *_MODE_PARAMETERS)


def modes_of(channel: Channel) -> list[FaultMode]:
    """The fault modes ``channel`` accepts, in declaration order."""
    allowed = REQUEST_MODES | (REPLY_MODES if channel in REPLYING_CHANNELS else frozenset())
    return [mode for mode in FaultMode if mode in allowed]


class FaultSpecError(ValueError):
    """A requested fault that is not valid; the message says what is allowed."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One active fault: which requests it hits and how they misbehave."""

    channel: Channel
    mode: FaultMode
    path: str | None = None
    """A path prefix under the channel (whole segments), or None for the whole channel."""
    delay_ms: int = DEFAULT_DELAY_MS
    status: int = DEFAULT_STATUS
    ratio: float = DEFAULT_RATIO
    count: int | None = None
    """How many more requests it hits before it lifts itself, or None: until deleted."""

    @property
    def key(self) -> tuple[Channel, str | None]:
        """What a fault replaces: the one already set on the same channel and path."""
        return (self.channel, self.path)

    def covers(self, path: str) -> bool:
        """Whether a request for ``path`` is hit by this fault."""
        if not path.startswith(self.channel.prefix):
            return False
        return self.path is None or path == self.path or path.startswith(f"{self.path}/")

    def to_json(self) -> dict[str, object]:
        """The fault as /_faults lists it, with only the parameters its mode uses."""
        described: dict[str, object] = {
            "channel": self.channel.value,
            "mode": self.mode.value,
            "path": self.path,
        }
        parameters = {"delay_ms": self.delay_ms, "status": self.status, "ratio": self.ratio}
        for name, value in parameters.items():
            if self.mode in _MODE_PARAMETERS[name]:
                described[name] = value
        if self.count is not None:
            described["count"] = self.count
        return described


def parse_fault(spec: Mapping[str, object]) -> Fault:
    """The fault described by a POST /_faults body; strict about every field."""
    unknown = sorted(set(spec) - set(ALLOWED_FIELDS))
    if unknown:
        raise FaultSpecError(
            f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(ALLOWED_FIELDS)}"
        )
    channel = Channel(_choice(spec, "channel", [channel.value for channel in Channel]))
    mode = FaultMode(_choice(spec, "mode", [mode.value for mode in FaultMode]))
    if mode not in modes_of(channel):
        repliers = ", ".join(sorted(replying.value for replying in REPLYING_CHANNELS))
        raise FaultSpecError(
            f"mode '{mode.value}' does not apply to channel '{channel.value}', whose modes are: "
            f"{', '.join(allowed.value for allowed in modes_of(channel))} ('no_reply' and "
            f"'late_reply' only apply to channels whose reply comes later: {repliers})"
        )
    for name, modes in _MODE_PARAMETERS.items():
        if name in spec and mode not in modes:
            allowed = " or ".join(sorted(f"'{m.value}'" for m in modes))
            raise FaultSpecError(f"'{name}' only applies to mode {allowed}, not '{mode.value}'")
    if "count" in spec and channel in _COUNTLESS_CHANNELS:
        raise FaultSpecError(f"'count' does not apply to channel '{channel.value}'")
    return Fault(
        channel=channel,
        mode=mode,
        path=_path(spec.get("path"), channel),
        delay_ms=_int(
            spec,
            "delay_ms",
            DEFAULT_LATE_REPLY_MS if mode is FaultMode.LATE_REPLY else DEFAULT_DELAY_MS,
            minimum=0,
            maximum=MAX_DELAY_MS,
        ),
        status=_int(spec, "status", DEFAULT_STATUS, minimum=MIN_STATUS, maximum=MAX_STATUS),
        ratio=_ratio(spec.get("ratio", DEFAULT_RATIO)),
        count=None if "count" not in spec else _int(spec, "count", 1, minimum=1, maximum=MAX_COUNT),
    )


def parse_channel(value: str) -> Channel:
    """The channel named ``value``, or a FaultSpecError listing the channels."""
    allowed = [channel.value for channel in Channel]
    if value not in allowed:
        raise FaultSpecError(f"'channel' must be one of: {', '.join(allowed)}")
    return Channel(value)


class FaultTable:
    """The faults in force, at most one per (channel, path), and the dice for flaky ones.

    ``seed`` makes flaky faults repeat the same pattern of failures from run to run.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._faults: dict[tuple[Channel, str | None], Fault] = {}
        self._random = random.Random(seed)

    def add(self, fault: Fault) -> None:
        """Put ``fault`` in force, replacing any fault on the same channel and path."""
        if fault.key not in self._faults and len(self._faults) >= MAX_FAULTS:
            raise FaultSpecError(f"at most {MAX_FAULTS} faults can be active; delete some first")
        self._faults[fault.key] = fault

    def clear(self, channel: Channel | None = None) -> None:
        """Lift every fault, or only those on ``channel``."""
        for key in [key for key in self._faults if channel in (None, key[0])]:
            del self._faults[key]

    def active(self) -> list[Fault]:
        """The faults in force, by channel then path."""
        return sorted(self._faults.values(), key=lambda fault: (fault.channel, fault.path or ""))

    def covering(self, path: str) -> Fault | None:
        """The most specific fault covering ``path``, without rolling any dice."""
        covering = [fault for fault in self._faults.values() if fault.covers(path)]
        if not covering:
            return None
        return max(covering, key=lambda candidate: len(candidate.path or ""))

    def triggered(self, path: str) -> Fault | None:
        """The fault to apply to a request for ``path`` now, or None to handle it normally.

        The most specific fault covering the path wins. A flaky fault rolls its dice here, and
        is returned only when this request should fail. A fault with a ``count`` spends one of
        its requests here, and lifts itself after its last.
        """
        fault = self.covering(path)
        if fault is None:
            return None
        if fault.mode is FaultMode.FLAKY and self._random.random() >= fault.ratio:
            return None
        if fault.count is not None:
            if fault.count > 1:
                self._faults[fault.key] = replace(fault, count=fault.count - 1)
            else:
                del self._faults[fault.key]
        return fault

    def reply_delay_ms(self, path: str, *, normal_ms: int) -> int | None:
        """How long after a message on ``path`` its reply comes; None when it never does."""
        fault = self.covering(path)
        if fault is None:
            return normal_ms
        if fault.mode is FaultMode.NO_REPLY:
            return None
        if fault.mode is FaultMode.LATE_REPLY:
            return fault.delay_ms
        return normal_ms


def _choice(spec: Mapping[str, object], name: str, allowed: list[str]) -> str:
    value = spec.get(name)
    if not isinstance(value, str) or value not in allowed:
        verb = "is required and must be" if value is None else "must be"
        raise FaultSpecError(f"'{name}' {verb} one of: {', '.join(allowed)}")
    return value


def _path(value: object, channel: Channel) -> str | None:
    if value is None:
        return None
    root = channel.prefix.rstrip("/")
    path = value.rstrip("/") if isinstance(value, str) else ""
    if path == root:
        return None
    if not path.startswith(channel.prefix) or len(path) > MAX_PATH_LENGTH or "?" in path:
        raise FaultSpecError(
            f"'path' must be a path prefix under '{channel.prefix}' without a query, at most "
            f"{MAX_PATH_LENGTH} characters, e.g. '{channel.prefix}v1'"
        )
    return path


def _int(spec: Mapping[str, object], name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise FaultSpecError(f"'{name}' must be an integer from {minimum} to {maximum}")
    return value


def _ratio(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise FaultSpecError("'ratio' must be a number from 0 to 1")
    return float(value)
