"""Typed keys for what the application shares with its handlers and middlewares.

Handlers reach the shared state through these, so mypy knows what they get back::

    state = request.app[STATE]
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from democare._conversations import Conversations
from democare._deliveries import Deliverer
from democare._faults import FaultTable
from democare._sms_messages import SmsMessages
from democare._state import CareState
from democare._timings import Timings
from democare._video_sessions import VideoSessions
from democare._voice_callbacks import VoiceCallbacks
from democare._webhooks import Webhooks

STATE: Final = web.AppKey("state", CareState)
"""Sessions, customers and tickets."""
FAULTS: Final = web.AppKey("faults", FaultTable)
"""The faults in force."""
TIMINGS: Final = web.AppKey("timings", Timings)
"""The normal delays of the channels whose reply comes later."""
WEBHOOKS: Final = web.AppKey("webhooks", Webhooks)
"""Where sms, push and email deliver, and the signing secret."""
DELIVERER: Final = web.AppKey("deliverer", Deliverer)
"""The background webhook deliveries."""
SMS_MESSAGES: Final = web.AppKey("sms_messages", SmsMessages)
"""Messages the SMS gateway accepted."""
CONVERSATIONS: Final = web.AppKey("conversations", Conversations)
"""Chat conversations and their handovers."""
VOICE_CALLBACKS: Final = web.AppKey("voice_callbacks", VoiceCallbacks)
"""Voice call-backs booked."""
VIDEO_SESSIONS: Final = web.AppKey("video_sessions", VideoSessions)
"""Video sessions opened."""
