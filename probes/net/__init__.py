"""The transport under the asyncio engine: carewatch's HTTP/1.1 client and its wire protocol,
connection racing, sockets, TLS contexts and their failures, and the timing and traffic of each
phase.

Step runners (``probes.engine``) use it; it knows nothing of journeys or schedules.
"""

from __future__ import annotations

from probes.net.client import Client
from probes.net.timing import Timer
from probes.net.tls import TlsContexts

__all__ = ["Client", "Timer", "TlsContexts"]
