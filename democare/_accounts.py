"""Who may log in to the app, and the customer profile each login belongs to.

There is one demo account, and any other address at the demo domain works with the same
password, each getting a stable profile of its own. That lets several probes run journeys side by
side without seeing each other's tickets::

    authenticate("demo@carewatch.example", DEMO_PASSWORD).customer_id     # "C-10001"
    authenticate("probe-2@carewatch.example", DEMO_PASSWORD).customer_id  # the same id every time
    authenticate("demo@carewatch.example", "wrong")                       # None
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

DEMO_USERNAME: Final = "demo@carewatch.example"
DEMO_PASSWORD: Final = "demo-password"
DEMO_DOMAIN: Final = "@carewatch.example"
BALANCE_CURRENCY: Final = "EUR"

_PLANS: Final = (
    "5G Essential 20 GB",
    "5G Plus 100 GB",
    "5G Unlimited",
    "4G Basic 5 GB",
    "Family Share 200 GB",
)
_DERIVED_ID_BASE: Final = 20_000_000
_DERIVED_ID_SPAN: Final = 80_000_000
_MSISDN_SPAN: Final = 100_000_000
_BALANCE_CENTS_SPAN: Final = 10_000
_CENTS_PER_EURO: Final = 100


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer's account as the app and the agent console show it."""

    customer_id: str
    name: str
    plan: str
    msisdn: str
    balance: float


DEMO_CUSTOMER: Final = Customer(
    customer_id="C-10001",
    name="Camille Martin",
    plan="5G Plus 100 GB",
    msisdn="+33612345678",
    balance=12.50,
)


def authenticate(username: str, password: str) -> Customer | None:
    """The customer ``username`` logs in as, or None when the credentials are wrong."""
    if not hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode()):
        return None
    normalized = username.strip().lower()
    if normalized == DEMO_USERNAME:
        return DEMO_CUSTOMER
    local_part = normalized.removesuffix(DEMO_DOMAIN)
    if local_part == normalized or not local_part:
        return None
    return _derived_customer(normalized, local_part)


def _derived_customer(username: str, local_part: str) -> Customer:
    """A profile derived from the username alone, so the same login always gets the same one."""
    digest = int.from_bytes(hashlib.sha256(username.encode()).digest()[:16], "big")
    words = [word for word in local_part.replace("_", ".").replace("-", ".").split(".") if word]
    return Customer(
        customer_id=f"C-{_DERIVED_ID_BASE + digest % _DERIVED_ID_SPAN}",
        name=" ".join(word.capitalize() for word in words) or local_part,
        plan=_PLANS[digest % len(_PLANS)],
        msisdn=f"+336{(digest >> 32) % _MSISDN_SPAN:08d}",
        balance=((digest >> 64) % _BALANCE_CENTS_SPAN) / _CENTS_PER_EURO,
    )
