"""SSL contexts for a step's ``tls`` options, built once and reused."""

from __future__ import annotations

import ssl

from probes.steps import Tls


class TlsSetupError(Exception):
    """The step's own TLS files could not be loaded (a missing CA file, a bad key)."""


class TlsContexts:
    """A cache of ``ssl.SSLContext`` by ``Tls`` options (they are frozen, hence hashable)."""

    def __init__(self) -> None:
        self._cache: dict[Tls, ssl.SSLContext] = {}

    def context(self, options: Tls) -> ssl.SSLContext:
        cached = self._cache.get(options)
        if cached is None:
            cached = self._cache[options] = _build(options)
        return cached


def _build(options: Tls) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=options.ca_file)
        if options.cert_file:
            context.load_cert_chain(options.cert_file, options.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load the step's TLS files: {exc}") from exc
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
