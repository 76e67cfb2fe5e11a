"""Video sessions with an agent: a session id, a secret join token, and fifteen minutes to join.

::

    sessions = VideoSessions(limits=DEFAULT_LIMITS, clock=utc_now)
    session = sessions.open(context_id=None)
    sessions.check_token(session, session.join_token)  # True
    sessions.end(session.session_id).status             # VideoStatus.ENDED
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from democare._state import DEFAULT_LIMITS, Clock, Limits, trim_oldest, utc_now

JOIN_TOKEN_TTL: Final = timedelta(minutes=15)
_ID_BYTES: Final = 8
_TOKEN_BYTES: Final = 24


class VideoStatus(StrEnum):
    """Where a video session is in its life."""

    WAITING_FOR_AGENT = "waiting_for_agent"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class VideoSession:
    """A video call room the customer joins with its token."""

    session_id: str
    join_token: str
    context_id: str | None
    status: VideoStatus
    created_at: datetime
    expires_at: datetime


class VideoSessions:
    """The newest ``Limits.max_video_sessions`` sessions, by id."""

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS, clock: Clock = utc_now) -> None:
        self._max = limits.max_video_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, VideoSession] = OrderedDict()

    def open(self, *, context_id: str | None) -> VideoSession:
        """A new session waiting for an agent, joinable for ``JOIN_TOKEN_TTL``."""
        now = self._clock()
        session = VideoSession(
            session_id=f"VS-{secrets.token_hex(_ID_BYTES)}",
            join_token=secrets.token_urlsafe(_TOKEN_BYTES),
            context_id=context_id,
            status=VideoStatus.WAITING_FOR_AGENT,
            created_at=now,
            expires_at=now + JOIN_TOKEN_TTL,
        )
        self._sessions[session.session_id] = session
        trim_oldest(self._sessions, self._max)
        return session

    def get(self, session_id: str) -> VideoSession | None:
        """The session with this id, if still remembered."""
        return self._sessions.get(session_id)

    def check_token(self, session: VideoSession, token: str) -> bool:
        """Whether ``token`` joins ``session`` now: the right token, not yet expired."""
        right = hmac.compare_digest(token.encode(), session.join_token.encode())
        return right and self._clock() < session.expires_at

    def end(self, session_id: str) -> VideoSession | None:
        """End the session; ending it again changes nothing."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        ended = replace(session, status=VideoStatus.ENDED)
        self._sessions[session_id] = ended
        return ended
