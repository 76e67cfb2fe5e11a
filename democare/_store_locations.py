"""The shops customers can walk into, and finding the nearest ones.

Ten shops in and around Paris and three in Lyon, with their opening hours, so a locator journey
gets realistic answers::

    nearest = nearby(48.8566, 2.3522, radius_km=10, limit=5)
    nearest[0].store.store_id            # "S-01", Châtelet, 0.7 km away
    nearest[0].store.is_open(utc_now())  # True on a weekday afternoon
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time
from typing import Final
from zoneinfo import ZoneInfo

EARTH_RADIUS_KM: Final = 6371.0088
STORE_TIMEZONE: Final = ZoneInfo("Europe/Paris")

Hours = tuple[time, time] | None
"""Opening and closing time for one day, or None when closed all day."""
WeeklyHours = tuple[Hours, Hours, Hours, Hours, Hours, Hours, Hours]
"""Hours from Monday to Sunday, local time."""


def _weekly(*, monday_to_saturday: Hours, sunday: Hours) -> WeeklyHours:
    day = monday_to_saturday
    return (day, day, day, day, day, day, sunday)


_HIGH_STREET: Final = _weekly(monday_to_saturday=(time(10), time(19, 30)), sunday=None)
_STATION: Final = _weekly(monday_to_saturday=(time(8), time(20)), sunday=(time(10), time(18)))
_MALL: Final = _weekly(monday_to_saturday=(time(10), time(20, 30)), sunday=(time(11), time(19)))


@dataclass(frozen=True, slots=True)
class RetailStore:
    """A shop: where it is, when it is open and what it can do for a customer."""

    store_id: str
    name: str
    address: str
    lat: float
    lon: float
    services: tuple[str, ...]
    hours: WeeklyHours

    def is_open(self, at: datetime) -> bool:
        """Whether the shop is open at the aware datetime ``at``."""
        local = at.astimezone(STORE_TIMEZONE)
        today = self.hours[local.weekday()]
        return today is not None and today[0] <= local.time() < today[1]


@dataclass(frozen=True, slots=True)
class NearbyStore:
    """A shop found by :func:`nearby`, with its distance from the search point."""

    store: RetailStore
    distance_km: float


_FULL: Final = ("sales", "repairs", "esim", "sim_replacement", "device_pickup")
_EXPRESS: Final = ("sales", "esim", "sim_replacement")

# fmt: off
STORES: Final[tuple[RetailStore, ...]] = (
    RetailStore("S-01", "Carewatch Châtelet", "Forum des Halles, 101 Porte Berger, 75001 Paris",
                48.8619, 2.3470, _FULL, _MALL),
    RetailStore("S-02", "Carewatch Opéra", "30 Boulevard des Capucines, 75009 Paris",
                48.8708, 2.3318, _FULL, _HIGH_STREET),
    RetailStore("S-03", "Carewatch Champs-Élysées", "92 Avenue des Champs-Élysées, 75008 Paris",
                48.8718, 2.3020, (*_FULL, "business_desk"), _MALL),
    RetailStore("S-04", "Carewatch Bastille", "5 Rue du Faubourg Saint-Antoine, 75011 Paris",
                48.8533, 2.3712, _FULL, _HIGH_STREET),
    RetailStore("S-05", "Carewatch Montparnasse", "Centre Gaîté, 68 Avenue du Maine, 75014 Paris",
                48.8389, 2.3223, _FULL, _MALL),
    RetailStore("S-06", "Carewatch Express Gare de Lyon", "Hall 1, Place Louis-Armand, 75012 Paris",
                48.8443, 2.3743, _EXPRESS, _STATION),
    RetailStore("S-07", "Carewatch Express Saint-Lazare", "Gare Saint-Lazare, 75008 Paris",
                48.8766, 2.3250, _EXPRESS, _STATION),
    RetailStore("S-08", "Carewatch Italie 2", "30 Avenue d'Italie, 75013 Paris",
                48.8292, 2.3556, _FULL, _MALL),
    RetailStore("S-09", "Carewatch La Défense", "15 Parvis de la Défense, 92800 Puteaux",
                48.8918, 2.2380, (*_FULL, "business_desk"), _MALL),
    RetailStore("S-10", "Carewatch Versailles", "10 Rue de la Paroisse, 78000 Versailles",
                48.8049, 2.1290, _FULL, _HIGH_STREET),
    RetailStore("S-11", "Carewatch Lyon Part-Dieu", "17 Rue du Docteur Bouchut, 69003 Lyon",
                45.7609, 4.8566, (*_FULL, "business_desk"), _MALL),
    RetailStore("S-12", "Carewatch Lyon Bellecour", "2 Place Bellecour, 69002 Lyon",
                45.7578, 4.8320, _FULL, _HIGH_STREET),
    RetailStore("S-13", "Carewatch Express Lyon Perrache", "Gare de Perrache, 69002 Lyon",
                45.7486, 4.8262, _EXPRESS, _STATION),
)
# fmt: on


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def nearby(lat: float, lon: float, *, radius_km: float, limit: int) -> list[NearbyStore]:
    """The shops within ``radius_km`` of (lat, lon), nearest first, at most ``limit``."""
    found = [NearbyStore(store, haversine_km(lat, lon, store.lat, store.lon)) for store in STORES]
    within = [hit for hit in found if hit.distance_km <= radius_km]
    within.sort(key=lambda hit: (hit.distance_km, hit.store.store_id))
    return within[:limit]
