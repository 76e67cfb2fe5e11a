"""Chat conversations and their handovers to human agents, which carry the context along.

A handover keeps what the agent needs: who the customer is (when they logged in), what they
asked about, the transcript, and the voice call-backs and video sessions booked for it since::

    conversations = Conversations(limits=DEFAULT_LIMITS, clock=utc_now)
    conversation = conversations.start(customer_id="C-10001")
    conversations.record(conversation, Speaker.CUSTOMER, "My bill is wrong")
    handover = conversations.hand_over(conversation)
    conversations.attach_voice_callback(handover.context_id, "CB-...")
"""

from __future__ import annotations

import itertools
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from democare._state import DEFAULT_LIMITS, Clock, Limits, trim_oldest, utc_now

AGENT_NAME: Final = "Sam"
UNKNOWN_INTENT: Final = "unknown"
_ID_BYTES: Final = 8


class Speaker(StrEnum):
    """Who said a line of a transcript."""

    CUSTOMER = "customer"
    BOT = "bot"


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a chat transcript."""

    speaker: Speaker
    text: str
    at: datetime


@dataclass(slots=True)
class Conversation:
    """A chat between a customer and the bot, then maybe an agent."""

    conversation_id: str
    customer_id: str | None
    started_at: datetime
    transcript: deque[Line]
    intent: str = UNKNOWN_INTENT
    """The last topic the bot recognised, or ``unknown``."""
    handover: Handover | None = None


@dataclass(slots=True)
class Handover:
    """A conversation handed to an agent; its ``context_id`` ties later channels to it."""

    context_id: str
    conversation: Conversation
    agent: str
    created_at: datetime
    voice_callback_ids: deque[str] = field(default_factory=deque)
    video_session_ids: deque[str] = field(default_factory=deque)


class Conversations:
    """The newest conversations and handovers, each collection bounded by ``Limits``."""

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS, clock: Clock = utc_now) -> None:
        self._limits = limits
        self._clock = clock
        self._conversations: OrderedDict[str, Conversation] = OrderedDict()
        self._handovers: OrderedDict[str, Handover] = OrderedDict()

    def start(self, *, customer_id: str | None) -> Conversation:
        """A new conversation, linked to ``customer_id`` when the customer is known."""
        conversation = Conversation(
            conversation_id=f"CV-{secrets.token_hex(_ID_BYTES)}",
            customer_id=customer_id,
            started_at=self._clock(),
            transcript=deque(maxlen=self._limits.max_transcript),
        )
        self._conversations[conversation.conversation_id] = conversation
        trim_oldest(self._conversations, self._limits.max_conversations)
        return conversation

    def record(self, conversation: Conversation, speaker: Speaker, text: str) -> None:
        """Add a line to the transcript (the oldest lines go past ``Limits.max_transcript``)."""
        conversation.transcript.append(Line(speaker, text, self._clock()))

    def hand_over(self, conversation: Conversation) -> Handover:
        """Hand the conversation to an agent; asking again returns the same handover."""
        if conversation.handover is not None:
            return conversation.handover
        handover = Handover(
            context_id=f"CTX-{secrets.token_hex(_ID_BYTES)}",
            conversation=conversation,
            agent=AGENT_NAME,
            created_at=self._clock(),
            voice_callback_ids=deque(maxlen=self._limits.max_attached),
            video_session_ids=deque(maxlen=self._limits.max_attached),
        )
        conversation.handover = handover
        self._handovers[handover.context_id] = handover
        trim_oldest(self._handovers, self._limits.max_handovers)
        return handover

    def handover(self, context_id: str) -> Handover | None:
        """The handover with this context id, if still remembered."""
        return self._handovers.get(context_id)

    def recent_handovers(self, customer_id: str) -> list[Handover]:
        """The customer's newest handovers, newest first, at most ``Limits.max_recent``."""
        theirs = (
            handover
            for handover in reversed(self._handovers.values())
            if handover.conversation.customer_id == customer_id
        )
        return list(itertools.islice(theirs, self._limits.max_recent))

    def attach_voice_callback(self, context_id: str, callback_id: str) -> None:
        """List a voice call-back booked for this context in its handover."""
        handover = self._handovers.get(context_id)
        if handover is not None:
            handover.voice_callback_ids.append(callback_id)

    def attach_video_session(self, context_id: str, session_id: str) -> None:
        """List a video session opened for this context in its handover."""
        handover = self._handovers.get(context_id)
        if handover is not None:
            handover.video_session_ids.append(session_id)
