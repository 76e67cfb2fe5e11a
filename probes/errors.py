"""The one error root of carewatch, drawn as a tree.

* CarewatchError
  * ConfigError         -- checks.yaml is unreadable or invalid; carries every Problem found
    * _Invalid          -- (probes.model._yaml) a YAML node that cannot become data; stops the
                           build, and its problem is reported
  * MissingVariable     -- a template names a variable that has no value in this run (a capture
                           that an earlier, failed step never took); engines skip the step
  * TlsSetupError       -- a step's own TLS files (tls.ca_file, cert_file, key_file) cannot be
                           loaded
    * _EncryptedKey     -- (probes.net.tls) the key file asks for a passphrase
  * Rejected            -- (probes.service.receiver) an inbound callback is refused: a bad
                           signature or token, a replay, too large, or too many from its source
  * WebhookTimeout      -- no inbound webhook event matched an ``await`` step in time (also a
                           TimeoutError)
  * TransportError      -- talking to a target failed
    * Unreachable       -- no connection to the target could be made
      * DnsFailed       -- its name did not resolve
      * ConnectFailed   -- nothing accepted the TCP connection
      * TlsFailed       -- the TLS handshake failed, or the server refused it with an alert
    * WireError         -- the target broke the HTTP exchange
      * Disconnected    -- the server closed the connection without answering
      * ConnectionLost  -- the connection broke before the answer was complete
      * MalformedResponse -- the answer is not HTTP/1.1, or its headers are too large
      * BrokenBody      -- the body was cut short or does not decode
      * BodyTooLarge    -- the body is larger than the engine's limit
    * ClientError       -- the client would not make or follow the request: a header with a line
                           break, a redirect away from HTTP, too many redirects
      * InvalidUrl      -- the URL (or a redirect's Location) is not an HTTP URL

Probe failures are not exceptions: a failed step is a result (see ``probes.runs.results``) with a
``reason`` from a closed enum and a human message. A transport's exception becomes one through
that transport's table (``probes.runs.reasons``); the message is the exception's text.

This module sits under every layer (``tests/test_layering.py``): it imports nothing of carewatch,
so each exception is given its message already worded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: A problem's message and path are cut to these lengths, and a ConfigError prints at most
#: MAX_PROBLEMS_SHOWN problems: a value of 100,000 digits, or a file of 100,000 mistakes, must
#: not make an error of megabytes (in a log, or in an HTTP answer).
MAX_MESSAGE_CHARS: Final = 500
MAX_PATH_CHARS: Final = 200
MAX_PROBLEMS_SHOWN: Final = 100
ELLIPSIS: Final = "…"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying how much was cut.

    Only the end goes: a secret cut short then shows its start before the ``…``, which
    ``Secrets.redact`` (``probes.model.secrets``) recognises and hides.

    >>> shorten("x" * 1000, 30)
    'xxxxxxxxxxxxxxxxxx…(982 more)'
    """
    if len(text) <= limit:
        return text
    # The count has at most as many digits as the length: the marker is never longer than this.
    keep = limit - len(f"{ELLIPSIS}({len(text)} more)")
    if keep < 1:
        return text[:limit]
    return f"{text[:keep]}{ELLIPSIS}({len(text) - keep} more)"


class CarewatchError(Exception):
    """Root of every error carewatch raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem in a config file.

    Example: ``Problem("checks.yaml", 12, 9, "channels[0].journeys[1].steps[2].expect.status",
    "expected an HTTP status such as 200, [200, 201] or 2xx; got 'ok'")`` prints as
    ``checks.yaml:12:9: channels[0].journeys[1].steps[2].expect.status: expected ...``.
    """

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", shorten(self.path, MAX_PATH_CHARS))
        object.__setattr__(self, "message", shorten(self.message, MAX_MESSAGE_CHARS))

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(CarewatchError):
    """checks.yaml could not be turned into a model. ``problems`` lists every problem found;
    its text shows the first ``MAX_PROBLEMS_SHOWN`` and counts the rest."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in config"
        shown = [str(p) for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        if count > MAX_PROBLEMS_SHOWN:
            shown.append(f"... and {count - MAX_PROBLEMS_SHOWN:,} more")
        super().__init__("\n".join([head, *shown]))


class MissingVariable(CarewatchError):
    """A ``${name}`` had no value when a step was rendered.

    Validation guarantees every name is defined somewhere, so at run time this only happens when
    the step that captures it did not run: a ``finally`` step is then skipped, not failed.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"${{{name}}} has no value in this run")


class TlsSetupError(CarewatchError):
    """The step's own TLS files could not be loaded (a missing CA file, a bad key).

    Its message names the option and the file: ``cannot load tls.ca_file ca.pem: No such file``.
    """


class WebhookTimeout(CarewatchError, TimeoutError):
    """No matching event came in time; ``unmatched`` others came and did not match."""

    def __init__(self, unmatched: int) -> None:
        super().__init__(f"no matching event ({unmatched} others)")
        self.unmatched = unmatched


# --- talking to a target ------------------------------------------------------------------------


class TransportError(CarewatchError):
    """Talking to a target failed; ``str()`` is the failed step's message."""


class Unreachable(TransportError):
    """No connection to the target could be made: its name, its address or its TLS."""


class DnsFailed(Unreachable):
    """``cannot resolve care.example: Name or service not known``."""

    def __init__(self, host: str, error: str) -> None:
        super().__init__(f"cannot resolve {host}: {error}")


class ConnectFailed(Unreachable):
    """``cannot connect to 127.0.0.1:8443: Connection refused``."""

    def __init__(self, address: str, error: str) -> None:
        super().__init__(f"cannot connect to {address}: {error}")


class TlsFailed(Unreachable):
    """The TLS handshake failed, by kind (``probes.net.tls.describe_tls_error``).

    ``cert_expiry`` is the expiry of a certificate that was seen and rejected, when known.
    """

    def __init__(self, message: str, *, cert_expiry: float | None = None) -> None:
        super().__init__(message)
        self.cert_expiry = cert_expiry


class WireError(TransportError):
    """The target broke the HTTP exchange: a malformed answer, a body too large, a connection
    lost."""


class Disconnected(WireError):
    """The server closed the connection before any byte of an answer."""

    def __init__(self) -> None:
        super().__init__("the server closed the connection without answering")


class ConnectionLost(WireError):
    """The connection broke mid-answer, or with an error of its own (``cause``)."""

    def __init__(self, cause: BaseException | None) -> None:
        self.cause = cause
        what = getattr(cause, "strerror", None) or str(cause or "") or "closed by the server"
        super().__init__(f"connection lost: {what}")


class MalformedResponse(WireError):
    def __init__(self, what: str) -> None:
        super().__init__(f"malformed response: {what}")


class BrokenBody(WireError):
    def __init__(self, what: str) -> None:
        super().__init__(f"broken response body: {what}")


class BodyTooLarge(WireError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"response body larger than {limit} bytes")


class ClientError(TransportError):
    """A request the client would not make or follow (a header with a line break, a redirect
    away from HTTP, too many redirects)."""


class InvalidUrl(ClientError):
    def __init__(self, url: str, why: str = "") -> None:
        super().__init__(f"invalid URL {url!r}" + (f": {why}" if why else ""))
