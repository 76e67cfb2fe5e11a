"""Wiring: the aiohttp application with every channel, the fault machinery and the limits.

::

    app = build_app(seed=7, limits=replace(DEFAULT_LIMITS, max_tickets=3))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Final

from aiohttp import web

from democare import _fault_api, _health, _webhook_api
from democare._appkeys import (
    CONVERSATIONS,
    DELIVERER,
    FAULTS,
    SMS_MESSAGES,
    STATE,
    TIMINGS,
    VIDEO_SESSIONS,
    VOICE_CALLBACKS,
    WEBHOOKS,
)
from democare._channels import agent as agent_channel
from democare._channels import app as app_channel
from democare._channels import chat as chat_channel
from democare._channels import email as email_channel
from democare._channels import help as self_service_channel
from democare._channels import push as push_channel
from democare._channels import sms as sms_channel
from democare._channels import stores as locator_channel
from democare._channels import video as video_channel
from democare._channels import voice as voice_channel
from democare._conversations import Conversations
from democare._deliveries import Deliverer
from democare._fault_injection import inject_faults
from democare._faults import FaultTable
from democare._middlewares import add_request_id, cap_body_size, json_errors
from democare._sms_messages import SmsMessages
from democare._smtp import SMTP_SERVER, SmtpServer
from democare._state import DEFAULT_LIMITS, CareState, Clock, Limits, utc_now
from democare._timings import DEFAULT_TIMINGS, Timings
from democare._video_sessions import VideoSessions
from democare._voice_callbacks import VoiceCallbacks
from democare._webhooks import DEFAULT_WEBHOOK_SECRET, Webhooks

MAX_BODY_BYTES: Final = 64 * 1024


def create_app(
    *,
    seed: int | None = None,
    webhooks: Mapping[str, str] | None = None,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
    smtp: tuple[str, int] | None = None,
) -> web.Application:
    """The demo care backend as an aiohttp application, ready to run or test in-process.

    ``seed`` fixes the dice of flaky faults, so a test or demo fails the same requests each run.
    ``webhooks`` maps ``sms``, ``push`` and ``email`` to loopback URLs their replies are POSTed
    to, signed with ``webhook_secret`` (ValueError for anything else). ``smtp`` is a
    ``(host, port)`` to serve the email channel's SMTP on while the application runs (port 0
    picks a free one; :func:`smtp_server` tells which)::

        app = create_app(seed=7, webhooks={"sms": "http://127.0.0.1:9000/sms"})
        web.run_app(app, host="127.0.0.1", port=8900)
    """
    return build_app(seed=seed, webhooks=webhooks, webhook_secret=webhook_secret, smtp=smtp)


def build_app(
    *,
    seed: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    clock: Clock = utc_now,
    timings: Timings = DEFAULT_TIMINGS,
    webhooks: Mapping[str, str] | None = None,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
    smtp: tuple[str, int] | None = None,
) -> web.Application:
    """:func:`create_app` with its limits, clock and timings open to change, for tests."""
    application = web.Application(
        client_max_size=MAX_BODY_BYTES,
        # Outermost first: errors become JSON after faults and the body cap had their say.
        middlewares=[json_errors, inject_faults, cap_body_size],
    )
    application[STATE] = CareState(limits=limits, clock=clock)
    application[FAULTS] = FaultTable(seed=seed)
    application[TIMINGS] = timings
    application[WEBHOOKS] = Webhooks(webhooks, secret=webhook_secret)
    application[DELIVERER] = Deliverer(application[WEBHOOKS], limits=limits, clock=clock)
    application[SMS_MESSAGES] = SmsMessages(
        limits=limits, clock=clock, handoff=timedelta(milliseconds=timings.sms_handoff_ms)
    )
    application[CONVERSATIONS] = Conversations(limits=limits, clock=clock)
    application[VOICE_CALLBACKS] = VoiceCallbacks(limits=limits, clock=clock)
    application[VIDEO_SESSIONS] = VideoSessions(limits=limits, clock=clock)
    application[chat_channel.CHAT_SOCKETS] = chat_channel.ChatSockets()
    application.on_response_prepare.append(add_request_id)
    application.on_shutdown.append(chat_channel.close_chat_sockets)
    application.cleanup_ctx.append(_run_deliverer)
    if smtp is not None:
        application[SMTP_SERVER] = SmtpServer(*smtp)
        application.cleanup_ctx.append(_run_smtp)
    for routes in (
        _health.routes,
        _fault_api.routes,
        _webhook_api.routes,
        app_channel.routes,
        self_service_channel.routes,
        locator_channel.routes,
        agent_channel.routes,
        chat_channel.routes,
        sms_channel.routes,
        push_channel.routes,
        email_channel.routes,
        voice_channel.routes,
        video_channel.routes,
    ):
        application.add_routes(routes)
    return application


def smtp_server(app: web.Application) -> SmtpServer | None:
    """The application's SMTP server, if it was made with ``smtp=``; its port once started."""
    return app.get(SMTP_SERVER)


async def _run_deliverer(app: web.Application) -> AsyncIterator[None]:
    deliverer = app[DELIVERER]
    await deliverer.start()
    yield
    await deliverer.close()


async def _run_smtp(app: web.Application) -> AsyncIterator[None]:
    server = app[SMTP_SERVER]
    await server.start(app)
    yield
    await server.close()
