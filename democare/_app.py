"""Wiring: the aiohttp application with every channel, the fault machinery and the limits.

::

    app = build_app(seed=7, limits=replace(DEFAULT_LIMITS, max_tickets=3))
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from democare import _fault_api, _health
from democare._appkeys import FAULTS, STATE
from democare._channels import agent as agent_channel
from democare._channels import app as app_channel
from democare._channels import help as self_service_channel
from democare._channels import stores as locator_channel
from democare._fault_injection import inject_faults
from democare._faults import FaultTable
from democare._middlewares import add_request_id, cap_body_size, json_errors
from democare._state import DEFAULT_LIMITS, CareState, Clock, Limits, utc_now

MAX_BODY_BYTES: Final = 64 * 1024


def create_app(*, seed: int | None = None) -> web.Application:
    """The demo care backend as an aiohttp application, ready to run or test in-process.

    ``seed`` fixes the dice of flaky faults, so a test or demo fails the same requests each run::

        app = create_app(seed=7)
        web.run_app(app, host="127.0.0.1", port=8900)
    """
    return build_app(seed=seed)


def build_app(
    *, seed: int | None = None, limits: Limits = DEFAULT_LIMITS, clock: Clock = utc_now
) -> web.Application:
    """:func:`create_app` with its limits and clock open to change, for tests."""
    application = web.Application(
        client_max_size=MAX_BODY_BYTES,
        # Outermost first: errors become JSON after faults and the body cap had their say.
        middlewares=[json_errors, inject_faults, cap_body_size],
    )
    application[STATE] = CareState(limits=limits, clock=clock)
    application[FAULTS] = FaultTable(seed=seed)
    application.on_response_prepare.append(add_request_id)
    for routes in (
        _health.routes,
        _fault_api.routes,
        app_channel.routes,
        self_service_channel.routes,
        locator_channel.routes,
        agent_channel.routes,
    ):
        application.add_routes(routes)
    return application
