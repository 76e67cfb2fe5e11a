"""The ``locator`` channel: finding the shops nearest to the customer.

::

    GET /stores/v1/nearby?lat=48.8566&lon=2.3522&radius_km=10&limit=5
        -> {"stores": [{"id", "name", "address", "lat", "lon", "distance_km", ...}], "count"}
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from democare._appkeys import STATE
from democare._http import json_response
from democare._parse import query_float, query_int
from democare._store_locations import nearby

MAX_LATITUDE: Final = 90.0
MAX_LONGITUDE: Final = 180.0
DEFAULT_RADIUS_KM: Final = 10.0
MAX_RADIUS_KM: Final = 20_000.0
DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 50
DISTANCE_DECIMALS: Final = 2

routes = web.RouteTableDef()


@routes.get("/stores/v1/nearby")
async def nearby_stores(request: web.Request) -> web.Response:
    """The shops within ``radius_km`` of (lat, lon), nearest first, and whether each is open."""
    lat = query_float(request, "lat", minimum=-MAX_LATITUDE, maximum=MAX_LATITUDE)
    lon = query_float(request, "lon", minimum=-MAX_LONGITUDE, maximum=MAX_LONGITUDE)
    radius_km = query_float(
        request, "radius_km", minimum=0.0, maximum=MAX_RADIUS_KM, default=DEFAULT_RADIUS_KM
    )
    limit = query_int(request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    now = request.app[STATE].now()
    found = nearby(lat, lon, radius_km=radius_km, limit=limit)
    return json_response(
        {
            "stores": [
                {
                    "id": hit.store.store_id,
                    "name": hit.store.name,
                    "address": hit.store.address,
                    "lat": hit.store.lat,
                    "lon": hit.store.lon,
                    "distance_km": round(hit.distance_km, DISTANCE_DECIMALS),
                    "open_now": hit.store.is_open(now),
                    "services": list(hit.store.services),
                }
                for hit in found
            ],
            "count": len(found),
        }
    )
