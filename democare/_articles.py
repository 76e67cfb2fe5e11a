"""The help centre's articles and the term-matching search over them.

A small, realistic knowledge base, so a self-service journey can search for "roaming" and open the
best hit::

    hits = search("roaming outside EU")
    hits[0].article.article_id  # "KB-102"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Article:
    """A help-centre article."""

    article_id: str
    title: str
    body: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    """An article matching a search, with how well it matched (higher is better)."""

    article: Article
    score: float


TITLE_WEIGHT: Final = 3.0
BODY_WEIGHT: Final = 1.0
PREFIX_WEIGHT: Final = 0.5
"""A word that only starts with the query term ("billing" for "bill") counts half."""
MIN_PREFIX_TERM_LENGTH: Final = 4
SCORE_DECIMALS: Final = 3

_WORD: Final = re.compile(r"[a-z0-9]+")
_STOP_WORDS: Final = frozenset(
    {"a", "an", "and", "are", "can", "do", "does", "for", "how", "i", "in", "is", "it", "my"}
    | {"of", "on", "or", "the", "to", "what", "when", "with", "your"}
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


ARTICLES: Final[tuple[Article, ...]] = (
    Article(
        "KB-101",
        "Roaming in the EU: use your plan abroad",
        "When you travel in the European Union, roaming is included: calls, texts and mobile data "
        "come out of your plan as at home. Turn on data roaming in your phone settings before you "
        "leave. A fair-use limit applies to data roaming on unlimited plans.",
        "2025-03-04T09:00:00Z",
    ),
    Article(
        "KB-102",
        "Roaming outside the EU: rates and travel passes",
        "Outside the EU, roaming is charged per minute and per megabyte unless you add a travel "
        "pass. Travel passes give you a daily or weekly data allowance in over 100 countries. "
        "Buy a pass in the app under Plan > Travel before you switch on roaming.",
        "2025-02-18T14:30:00Z",
    ),
    Article(
        "KB-103",
        "Understanding your monthly bill",
        "Your bill shows your plan price, any options, calls and data used outside your plan, and "
        "one-off charges. Charges for roaming outside the EU appear a few days after your trip. "
        "Download past bills as PDF from the app under Billing.",
        "2025-01-10T08:15:00Z",
    ),
    Article(
        "KB-104",
        "Paying your bill: direct debit, card and payment dates",
        "Pay your bill by direct debit, bank card or bank transfer. Direct debit is taken on the "
        "5th of each month. If a payment fails we retry after three days and send you a text. "
        "Change your payment method in the app under Billing > Payment.",
        "2025-04-01T10:00:00Z",
    ),
    Article(
        "KB-105",
        "Activating an eSIM on your phone",
        "An eSIM is a digital SIM built into your phone. Order an eSIM in the app, then scan the "
        "QR code we send you from Settings > Mobile data > Add eSIM. Activation takes up to 15 "
        "minutes. Check that your phone supports eSIM before you order.",
        "2025-05-12T16:45:00Z",
    ),
    Article(
        "KB-106",
        "Moving your eSIM to a new phone",
        "To move your eSIM to a new phone, request a transfer in the app under SIM > Transfer "
        "eSIM. The old phone's eSIM stops working once the new one is active. Keep both phones "
        "charged and on Wi-Fi during the transfer.",
        "2025-05-12T16:50:00Z",
    ),
    Article(
        "KB-107",
        "Lost or stolen phone: block your SIM and phone",
        "If your phone is lost or stolen, block your SIM at once in the app or by calling care "
        "from another phone. Report a stolen phone to the police and give us the IMEI so we can "
        "block the device. Order a replacement SIM or eSIM with the same number.",
        "2025-03-22T11:20:00Z",
    ),
    Article(
        "KB-108",
        "Choosing a data plan",
        "Our data plans range from 5 GB to unlimited 5G data. Compare plans in the app under Plan "
        "> Change plan. A new data plan starts at once and the price is prorated on your next "
        "bill. Unused data does not roll over.",
        "2025-04-15T09:30:00Z",
    ),
    Article(
        "KB-109",
        "Checking your data usage and setting alerts",
        "See how much mobile data you have left on the app home screen. Set alerts at 80% and "
        "100% of your data allowance. When your data runs out you can add a data top-up or wait "
        "for your plan to renew.",
        "2025-02-02T13:00:00Z",
    ),
    Article(
        "KB-110",
        "PIN and PUK codes: unlocking your SIM",
        "After three wrong PIN codes your SIM is locked. Find your PUK code in the app under SIM "
        "> Codes, or ask care. Ten wrong PUK codes block the SIM for good and you will need a "
        "replacement SIM.",
        "2024-12-05T15:10:00Z",
    ),
    Article(
        "KB-111",
        "Keeping your number when you switch operator",
        "To keep your number, get your RIO code by calling 3179 from your phone and give it to "
        "your new operator. Number porting takes about three working days. Your old plan ends "
        "when the number moves.",
        "2025-01-28T10:40:00Z",
    ),
    Article(
        "KB-112",
        "5G coverage and compatible phones",
        "5G covers most large cities and is growing every month. Check the coverage map in the "
        "app. You need a 5G-compatible phone and a 5G plan; otherwise your phone uses 4G. 5G "
        "data comes out of your usual data allowance.",
        "2025-05-30T17:05:00Z",
    ),
    Article(
        "KB-113",
        "Calling abroad from France",
        "International calls from France to the EU are included in most plans. Calls to other "
        "countries are charged per minute; see the international rates in the app under Plan > "
        "Rates. Dial + and the country code before the number.",
        "2025-03-09T12:00:00Z",
    ),
)

_BY_ID: Final = {article.article_id: article for article in ARTICLES}
_WORDS: Final = {
    article.article_id: (_words(article.title), _words(article.body)) for article in ARTICLES
}


def article(article_id: str) -> Article | None:
    """The article with this id, or None."""
    return _BY_ID.get(article_id)


def search(query: str) -> list[SearchHit]:
    """Every article matching ``query``, best first (ties by id).

    Each query term found in the title scores more than one found in the body; a word that
    merely starts with the term ("billing" for "bill") scores half.
    """
    terms = {term for term in _words(query) if term not in _STOP_WORDS}
    hits = []
    for candidate in ARTICLES:
        title_words, body_words = _WORDS[candidate.article_id]
        score = sum(
            TITLE_WEIGHT * _matches(term, title_words) + BODY_WEIGHT * _matches(term, body_words)
            for term in terms
        )
        if score > 0:
            hits.append(SearchHit(candidate, round(score, SCORE_DECIMALS)))
    hits.sort(key=lambda hit: (-hit.score, hit.article.article_id))
    return hits


def _matches(term: str, words: tuple[str, ...]) -> float:
    exact = sum(1 for word in words if word == term)
    if len(term) < MIN_PREFIX_TERM_LENGTH:
        return float(exact)
    prefixed = sum(1 for word in words if word != term and word.startswith(term))
    return exact + PREFIX_WEIGHT * prefixed
