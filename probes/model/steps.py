"""Steps and what they expect: every step kind a journey can take, as checks.yaml writes it.

A step's kind is told by its key: ``url`` (HTTP), ``websocket`` (a chat conversation),
``await`` (an inbound webhook: SMS reply, push receipt, email), ``tcp``, ``dns`` or ``smtp``.
Like the rest of the model, this module imports no engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, TypeAlias, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from probes.model.addresses import check_address
from probes.model.types import Frozen, JsonPath, Name, Regex, Scalar, Timeout, VariableName

# --- expectations -----------------------------------------------------------------------------

_STATUS: Final = re.compile(r"^[1-5](?:xx|\d\d)$")
STATUS_EXPECTED: Final = (
    "expected an HTTP status such as 200, a class such as 2xx, or a list of them"
)


def _status_list(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError(f"{STATUS_EXPECTED}; got an empty list")
    out: list[str] = []
    for item in items:
        text = (
            str(item).lower() if isinstance(item, int | str) and not isinstance(item, bool) else ""
        )
        if not _STATUS.match(text):
            raise ValueError(f"{STATUS_EXPECTED}; got {item!r}")
        out.append(text)
    return tuple(out)


StatusSpec: TypeAlias = Annotated[tuple[str, ...], BeforeValidator(_status_list)]


def status_matches(spec: tuple[str, ...], code: int) -> bool:
    """Whether ``code`` is allowed by a status spec such as ``("200", "3xx")``."""
    text = str(code)
    return any(s == text or (s.endswith("xx") and s[0] == text[0] and len(text) == 3) for s in spec)


OPERATORS: Final = ("equals", "contains", "exists", "regex", "lt", "le", "gt", "ge")


class Matcher(Frozen):
    """What a value must satisfy; every operator given must hold.

    ``equals`` compares JSON values; ``contains`` is a substring for text, an element for lists
    and a key for objects, and one of the values selected by a JSON path that can select several
    (``$.items[*].id``); ``exists: false`` asserts absence; ``lt le gt ge`` compare numbers.
    """

    equals: Any = None
    contains: Any = None
    exists: bool | None = None
    regex: Regex | None = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Matcher:
        if not self.operators():
            raise ValueError(f"expected at least one of: {', '.join(OPERATORS)}")
        return self

    def operators(self) -> list[tuple[str, Any]]:
        """The operators that were written, in a stable order, with their operands."""
        return [(op, getattr(self, op)) for op in OPERATORS if op in self.model_fields_set]


def _matcher_shorthand(value: object) -> object:
    """A bare value under ``headers:`` means ``equals``."""
    return value if isinstance(value, Mapping) else {"equals": value}


HeaderMatcher: TypeAlias = Annotated[Matcher, BeforeValidator(_matcher_shorthand)]


class JsonAssertion(Matcher):
    """``{path: $.token, exists: true}``: a JSON-path assertion on the response body."""

    path: JsonPath


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


class BodyExpectation(Frozen):
    """Text the response body must contain, or regular expressions it must match."""

    contains: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = ()
    regex: Annotated[tuple[Regex, ...], BeforeValidator(_one_or_many)] = ()


class Expect(Frozen):
    """What a good response looks like. With no ``status`` given, any 2xx passes."""

    status: StatusSpec = ("2xx",)
    max_duration: Timeout | None = None
    headers: Mapping[str, HeaderMatcher] = Field(default_factory=dict)
    body: BodyExpectation | None = None
    json_: tuple[JsonAssertion, ...] = Field(default=(), alias="json")


class Capture(Frozen):
    """Where a later-steps variable comes from: exactly one of a JSON path, a header or a regex.

    A regex captures its first group, or the whole match when it has no group.
    """

    json_: JsonPath | None = Field(default=None, alias="json")
    header: str | None = None
    regex: Regex | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Capture:
        given = [k for k in ("json", "header", "regex") if getattr(self, _attr(k)) is not None]
        if len(given) != 1:
            raise ValueError(
                f"expected exactly one of json, header, regex; got {', '.join(given) or 'none'}"
            )
        return self


def _attr(key: str) -> str:
    return "json_" if key == "json" else key


# --- steps ------------------------------------------------------------------------------------

# --- TLS ----------------------------------------------------------------------------------------


class Tls(Frozen):
    """TLS options of an https, wss, TCP or SMTP step. Without them the system's CAs are trusted.

    Example: ``tls: {ca_file: certs/care-ca.pem, cert_file: probe.pem, key_file: probe.key}``.
    """

    ca_file: str | None = None  # PEM bundle to trust instead of the system's
    cert_file: str | None = None  # client certificate (PEM), for mutual TLS
    key_file: str | None = None  # its private key, when not inside cert_file
    server_name: str | None = None  # the name to verify (and send as SNI), when not the host
    insecure: bool = False  # do not verify; the certificate's expiry is still reported

    @model_validator(mode="after")
    def _key_needs_cert(self) -> Tls:
        if self.key_file and not self.cert_file:
            raise ValueError("expected cert_file with key_file")
        return self


Method: TypeAlias = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class HttpStep(Frozen):
    """One HTTP exchange. Strings may hold ``${...}`` templates.

    Example::

        - name: login
          method: POST
          url: ${base_url}/app/v1/login
          json: {username: ${username}, password: ${password}}
          expect: {status: 200, json: [{path: $.token, exists: true}]}
          capture: {token: {json: $.token}}
    """

    name: Name
    method: Annotated[Method, BeforeValidator(_upper)] = "GET"
    url: str
    headers: Mapping[str, str] = Field(default_factory=dict)
    query: Mapping[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    json_: Any = Field(default=None, alias="json")
    form: Mapping[str, Scalar] | None = None
    body: str | None = None
    timeout: Timeout | None = None
    follow_redirects: bool = True
    tls: Tls | None = None
    expect: Expect = Field(default_factory=Expect)
    capture: Mapping[VariableName, Capture] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^(https?://|\$\{)", value):
            raise ValueError(f"expected an http:// or https:// URL; got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> HttpStep:
        given = [k for k in ("json", "form", "body") if k in self._set_keys()]
        if len(given) > 1:
            raise ValueError(f"expected at most one of json, form, body; got {', '.join(given)}")
        return self

    def _set_keys(self) -> set[str]:
        return {("json" if f == "json_" else f) for f in self.model_fields_set}

    @property
    def has_json_body(self) -> bool:
        """Whether ``json:`` was written (it may legitimately be ``null``)."""
        return "json_" in self.model_fields_set


# --- WebSocket conversations (chat) -----------------------------------------------------------


class Send(Frozen):
    """A message the probe sends: ``{text: "hi"}`` or ``{json: {type: message, text: hi}}``."""

    text: str | None = None
    json_: Any = Field(default=None, alias="json")

    @model_validator(mode="after")
    def _one(self) -> Send:
        given = [k for k in ("text", "json_") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError("expected exactly one of text, json")
        return self


class Receive(Frozen):
    """The message the probe waits for. Messages that do not match are skipped (a real chat
    sends typing indicators first) until one matches or ``within`` passes."""

    within: Timeout = 10.0
    json_: tuple[JsonAssertion, ...] = Field(default=(), alias="json")
    contains: str | None = None
    regex: Regex | None = None


class Exchange(Frozen):
    """One line of a conversation: a ``send``, or a ``receive`` with optional ``capture``."""

    send: Send | None = None
    receive: Receive | None = None
    capture: Mapping[VariableName, Capture] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one(self) -> Exchange:
        if (self.send is None) == (self.receive is None):
            raise ValueError("expected exactly one of send, receive")
        if self.capture and self.receive is None:
            raise ValueError("capture goes with receive")
        return self


class WebSocketStep(Frozen):
    """A chat conversation over one WebSocket. The connection closes at the end of the step.

    Example::

        - name: ask-bot
          websocket: ${ws_base}/chat/v1/ws
          subprotocols: [carechat.v1]
          conversation:
            - receive: {json: [{path: $.type, equals: greeting}]}
            - send: {json: {type: message, text: "roaming charges?"}}
            - receive: {within: 5s, json: [{path: $.type, equals: bot_reply}]}
              capture: {intent: {json: $.intent}}
    """

    name: Name
    websocket: str
    headers: Mapping[str, str] = Field(default_factory=dict)
    subprotocols: tuple[str, ...] = ()
    timeout: Timeout | None = None
    tls: Tls | None = None
    conversation: Annotated[tuple[Exchange, ...], Field(min_length=1)]

    @field_validator("websocket")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not re.match(r"^(wss?://|\$\{)", value):
            raise ValueError(f"expected a ws:// or wss:// URL; got {value!r}")
        return value


# --- asynchronous round trips (SMS replies, push receipts, inbound email) ---------------------


class AwaitSpec(Frozen):
    """Wait for an inbound event on ``/callbacks/<callback>`` that matches, for ``within``."""

    callback: Name  # the webhook's name under checks.yaml's callbacks:
    within: Timeout
    match: tuple[JsonAssertion, ...] = ()


class AwaitStep(Frozen):
    """Wait for a provider to deliver what an earlier step sent (an SMS reply, a push receipt).

    The event's body is matched as JSON, or a form body as an object of its fields, so
    ``{path: $.Body, contains: "${run_id}"}`` correlates an SMS reply with this run. Its
    ``delivery`` phase is the time from the end of the previous step to the event's arrival.

    Example::

        - name: reply-arrives
          await:
            callback: sms-inbound
            within: 30s
            match: [{path: $.Body, contains: "${run_id}"}]
          capture: {reply: {json: $.Body}}
    """

    name: Name
    await_: AwaitSpec = Field(alias="await")
    capture: Mapping[VariableName, Capture] = Field(default_factory=dict)

    @property
    def timeout(self) -> float:
        """An await step's own limit is its ``within``."""
        return self.await_.within


# --- infrastructure under the channels --------------------------------------------------------


class TextExpect(Frozen):
    """What received text must contain or match (both, when both are given)."""

    contains: str | None = None
    regex: Regex | None = None

    @model_validator(mode="after")
    def _something(self) -> TextExpect:
        if self.contains is None and self.regex is None:
            raise ValueError("expected contains, regex or both")
        return self


class TcpSpec(Frozen):
    """Connect to ``address`` (``host:port``), optionally send text, and read what comes back
    until ``expect`` holds, the peer closes, or the step times out."""

    address: str
    tls: Tls | None = None  # given: the connection is TLS
    send: str | None = None
    expect: TextExpect | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_address(value)


class TcpStep(Frozen):
    """A raw TCP (or TLS) exchange: a SIP or IVR port, a legacy care gateway."""

    name: Name
    tcp: TcpSpec
    timeout: Timeout | None = None
    capture: Mapping[VariableName, Capture] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _captures_read_text(self) -> TcpStep:
        if self.capture and self.tcp.expect is None:
            raise ValueError("capture needs tcp.expect: the text to read before capturing")
        for name, capture in self.capture.items():
            if capture.regex is None:
                raise ValueError(f"capture {name}: a TCP step captures with regex only")
        return self


RecordType: TypeAlias = Literal["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA"]
Rcode: TypeAlias = Literal["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED"]


class DnsExpect(Frozen):
    """The response code, and a matcher over the answers as text (``contains``, ``regex``...)."""

    rcode: Rcode = "NOERROR"
    answers: Matcher | None = None

    @field_validator("answers")
    @classmethod
    def _text_operators(cls, value: Matcher | None) -> Matcher | None:
        numeric = (
            [op for op, _ in value.operators() if op in ("lt", "le", "gt", "ge")] if value else []
        )
        if numeric:
            raise ValueError(
                f"answers are text: expected equals, contains, regex or exists; got {numeric[0]}"
            )
        return value


class DnsSpec(Frozen):
    """Resolve ``name`` as ``type``, from ``server`` (``host[:port]``) or the system resolver."""

    name: str
    type: RecordType = "A"
    server: str | None = None
    protocol: Literal["udp", "tcp"] = "udp"
    expect: DnsExpect = Field(default_factory=DnsExpect)

    @field_validator("server")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        return check_address(value, default_port=53) if value is not None else None


class DnsStep(Frozen):
    """A DNS query: is the care domain still resolving, and to the right place?"""

    name: Name
    dns: DnsSpec
    timeout: Timeout | None = None


class SmtpSpec(Frozen):
    """Send one email: ``security`` is ``starttls`` (default), ``tls`` (implicit) or ``none``."""

    address: str
    security: Literal["starttls", "tls", "none"] = "starttls"
    tls: Tls | None = None
    username: str | None = None
    password: str | None = None
    from_: str = Field(alias="from")
    to: Annotated[tuple[str, ...], BeforeValidator(_one_or_many), Field(min_length=1)]
    subject: str
    body: str = ""
    headers: Mapping[str, str] = Field(default_factory=dict)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_address(value, default_port=25)  # the real default depends on security

    @model_validator(mode="after")
    def _credentials(self) -> SmtpSpec:
        if (self.username is None) != (self.password is None):
            raise ValueError("expected both username and password, or neither")
        return self


class SmtpStep(Frozen):
    """Send an email to a care address; its reply comes back through a webhook (``await``)."""

    name: Name
    smtp: SmtpSpec
    timeout: Timeout | None = None


# --- the union --------------------------------------------------------------------------------

#: The key that tells each step kind, and the kind's name in messages.
STEP_KINDS: Final = {
    "url": "HTTP step",
    "websocket": "WebSocket step",
    "await": "await step",
    "tcp": "TCP step",
    "dns": "DNS step",
    "smtp": "SMTP step",
}
_CLASSES: Final[dict[str, type[Frozen]]] = {
    "HTTP step": HttpStep,
    "WebSocket step": WebSocketStep,
    "await step": AwaitStep,
    "TCP step": TcpStep,
    "DNS step": DnsStep,
    "SMTP step": SmtpStep,
}


def step_kind(value: object) -> str | None:
    """The tag of the step kind ``value`` (raw mapping or model) is, or None."""
    if isinstance(value, Mapping):
        return next((tag for key, tag in STEP_KINDS.items() if key in value), None)
    return next((tag for tag, cls in _CLASSES.items() if isinstance(value, cls)), None)


#: Every step kind the engines can run. A kind joins this union together with its runner
#: (``probes.engine.engine.RUNNERS``), its tests and its docs (docs/checks-yaml.md), never before.
Step: TypeAlias = Annotated[
    Union[  # noqa: UP007 (more kinds join here)
        Annotated[HttpStep, Tag("HTTP step")],
        Annotated[WebSocketStep, Tag("WebSocket step")],
        Annotated[AwaitStep, Tag("await step")],
        Annotated[TcpStep, Tag("TCP step")],
        Annotated[DnsStep, Tag("DNS step")],
        Annotated[SmtpStep, Tag("SMTP step")],
    ],
    Discriminator(
        step_kind,
        custom_error_type="step_kind",
        custom_error_message=(
            "expected a step with one of: url (HTTP), websocket, await, tcp, dns, smtp"
        ),
    ),
]
