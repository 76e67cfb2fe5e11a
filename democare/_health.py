"""GET /healthz: whether the demo backend is up, whatever faults are injected.

Launch scripts and tests poll it to know when the server is ready.
"""

from __future__ import annotations

from aiohttp import web

from democare._http import json_response

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Always ``{"status": "ok"}``: faults live under the channel prefixes, never here."""
    return json_response({"status": "ok"})
