"""``host:port`` addresses, as TCP, DNS and SMTP steps write them.

``care.example.com:5060``, ``10.0.0.1:53``, ``[2001:db8::1]:25``; a kind with a usual port
(DNS 53, SMTP 25, 465 or 587) lets it be left out.

>>> split_address("[::1]:5060")
('::1', 5060)
>>> split_address("mx.example.com", default_port=25)
('mx.example.com', 25)
>>> join_address("::1", 53)
'[::1]:53'
"""

from __future__ import annotations

from typing import Final

MAX_PORT: Final = 65535


def split_address(text: str, *, default_port: int | None = None) -> tuple[str, int]:
    """The host and port of ``text``; ValueError says what is wrong with it."""
    expected = (
        "expected host:port or [IPv6]:port"
        if default_port is None
        else "expected host, host:port or [IPv6]:port"
    )
    port_text: str | None
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"{expected}; got {text!r}")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        raise ValueError(f"{expected} (an IPv6 address goes in brackets); got {text!r}")
    else:
        host, colon, port_text = text.partition(":")
        port_text = port_text if colon else None
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"{expected}; got {text!r}")
    if port_text is None:
        if default_port is None:
            raise ValueError(f"{expected} (the port is missing); got {text!r}")
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) <= MAX_PORT:
        raise ValueError(f"{expected} with a port from 1 to {MAX_PORT}; got {text!r}")
    return host, int(port_text)


def join_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_address(text: str, *, default_port: int | None = None) -> str:
    """``text`` if it is a valid address or holds a template (checked when rendered)."""
    if "${" not in text:
        split_address(text, default_port=default_port)
    return text
