"""democare.pager: the webhook receiver that stands in for the on-call engineer's pager."""

from __future__ import annotations

import doctest
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Final

import pytest

import democare.pager
from democare.pager import Notification, Pager, describe

#: Alertmanager 0.25's webhook JSON, as it sends it for one firing alert.
FIRING: Final = {
    "receiver": "mobile-app-page",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "ChannelDown", "channel": "app", "severity": "page"},
            "annotations": {
                "summary": "Channel app is down",
                "description": "step login: expected status 200, got 503 (reason http_status)",
                "runbook_url": "https://runbooks.example.com/app",
                "dashboard_url": "http://127.0.0.1:3000/d/carewatch?var-channel=app",
            },
            "startsAt": "2026-12-02T05:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
        }
    ],
    "groupLabels": {"channel": "app"},
    "version": "4",
}


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def heard() -> list[Notification]:
    return []


@pytest.fixture
def pager(heard: list[Notification]) -> Iterator[Pager]:
    with Pager(on_notification=heard.append) as running:
        yield running


def test_each_notification_is_recorded_with_its_path_and_arrival(
    pager: Pager, heard: list[Notification]
) -> None:
    before = time.monotonic()
    assert post(f"{pager.url}/page", json.dumps(FIRING).encode()) == 200
    assert post(f"{pager.url}/ticket", json.dumps({**FIRING, "status": "resolved"}).encode()) == 200

    first, second = pager.notifications()
    assert heard == [first, second]
    assert (first.path, first.status, second.path, second.status) == (
        "/page",
        "firing",
        "/ticket",
        "resolved",
    )
    assert first.body == FIRING
    assert first.alertnames() == ["ChannelDown"]
    assert first.alertnames("resolved") == []
    assert before <= first.at <= second.at <= time.monotonic()


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff"])
def test_what_is_not_a_notification_is_refused(pager: Pager, body: bytes) -> None:
    assert post(f"{pager.url}/page", body) == 400
    assert pager.notifications() == []


def test_a_taken_port_fails_the_start() -> None:
    with Pager() as taken:
        port = int(taken.url.rpartition(":")[2])
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            Pager(port=port).start()


def test_a_page_reads_as_what_failed_and_where_to_look() -> None:
    notification = Notification(path="/page", body=FIRING, at=0.0, wall=0.0)
    lines = describe(notification).splitlines()
    assert lines[0].endswith("/page (receiver mobile-app-page): 1 alert")
    assert lines[1:] == [
        "  FIRING ChannelDown {channel=app, severity=page}",
        "    Channel app is down",
        "    why:       step login: expected status 200, got 503 (reason http_status)",
        "    runbook:   https://runbooks.example.com/app",
        "    dashboard: http://127.0.0.1:3000/d/carewatch?var-channel=app",
    ]


def test_a_notification_that_is_not_alertmanagers_still_reads() -> None:
    body: dict[str, Any] = {"alerts": "none"}
    notification = Notification(path="/hook", body=body, at=0.0, wall=0.0)
    assert describe(notification).endswith("/hook (receiver ?): 0 alerts")
    assert notification.status == ""


def test_the_examples_in_the_docstrings_are_true() -> None:
    assert doctest.testmod(democare.pager).failed == 0
