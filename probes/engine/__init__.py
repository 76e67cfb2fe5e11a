"""The asyncio engine: ``Engine`` runs one journey at a time, one runner per step kind, on the
transport of ``probes.net``; ``run_on_uvloop`` is the loop every entry point runs it on.

Import it only where an event loop runs; the model, the generators and the Locust engine never
do.
"""

from __future__ import annotations

from probes.engine.engine import Engine
from probes.engine.loop import new_event_loop, run_on_uvloop
from probes.engine.webhooks import Event, WebhookHub
from probes.errors import WebhookTimeout

__all__ = ["Engine", "Event", "WebhookHub", "WebhookTimeout", "new_event_loop", "run_on_uvloop"]
