"""Ava, the chat bot: what the customer is asking about, and an answer from the help articles.

Pure functions over the text, so the chat channel only has to carry frames::

    reply = answer("I'm going abroad, how much is roaming?")
    reply.intent, reply.article_id  # ("roaming", "KB-102")
    wants_human("can I talk to a person?")  # True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from democare._articles import article, search

GREETING: Final = "Hi, I'm Ava, your care assistant. How can I help?"
FALLBACK: Final = (
    "Sorry, I didn't get that. I can help with roaming, billing, a lost phone or eSIM, "
    "or put you through to an agent."
)

_HUMAN: Final = re.compile(r"\b(agents?|humans?|person|people)\b", re.IGNORECASE)
_FIRST_SENTENCE: Final = re.compile(r"^.*?[.!?](?=\s|$)")


class Intent(StrEnum):
    """What a chat message is about, as the bot understands it."""

    ROAMING = "roaming"
    BILLING = "billing"
    LOST_PHONE = "lost_phone"
    ESIM = "esim"
    UNKNOWN = "unknown"


_KEYWORDS: Final[tuple[tuple[Intent, re.Pattern[str]], ...]] = (
    # First match wins: "I lost my phone abroad" is about the lost phone.
    (Intent.LOST_PHONE, re.compile(r"\b(lost|stolen|steal|theft)\b", re.IGNORECASE)),
    (Intent.ESIM, re.compile(r"\be-?sims?\b", re.IGNORECASE)),
    (
        Intent.ROAMING,
        re.compile(r"\b(roam\w*|abroad|travel\w*|overseas|holiday)\b", re.IGNORECASE),
    ),
    (
        Intent.BILLING,
        re.compile(
            r"\b(bills?|billing|billed|invoices?|payments?|pay|paid|charged?|charges|refund)\b",
            re.IGNORECASE,
        ),
    ),
)
_ARTICLES: Final[dict[Intent, tuple[str, ...]]] = {
    Intent.ROAMING: ("KB-101", "KB-102"),
    Intent.BILLING: ("KB-103", "KB-104"),
    Intent.LOST_PHONE: ("KB-107",),
    Intent.ESIM: ("KB-105", "KB-106"),
}
"""The articles that answer each intent, the default first."""


@dataclass(frozen=True, slots=True)
class BotReply:
    """What the bot answers, the intent it recognised and the article it drew on."""

    text: str
    intent: Intent
    article_id: str | None


def wants_human(text: str) -> bool:
    """Whether the customer asks for a human (an agent, a person)."""
    return _HUMAN.search(text) is not None


def classify(text: str) -> Intent:
    """The intent of ``text``, ``unknown`` when no topic is recognised."""
    for intent, keywords in _KEYWORDS:
        if keywords.search(text):
            return intent
    return Intent.UNKNOWN


def answer(text: str) -> BotReply:
    """The bot's answer to ``text``: the best help article for its intent, summarised."""
    intent = classify(text)
    if intent is Intent.UNKNOWN:
        return BotReply(FALLBACK, intent, None)
    candidates = _ARTICLES[intent]
    ranked = [hit.article.article_id for hit in search(text)]
    article_id = next((found for found in ranked if found in candidates), candidates[0])
    chosen = article(article_id)
    assert chosen is not None, f"{article_id} is in the knowledge base"
    summary = _FIRST_SENTENCE.match(chosen.body)
    first_sentence = summary.group(0) if summary else chosen.body
    return BotReply(
        f"{chosen.title}. {first_sentence} More: /help/v1/articles/{article_id}",
        intent,
        article_id,
    )
