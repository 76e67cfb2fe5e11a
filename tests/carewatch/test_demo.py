"""``carewatch demo``: it reports a running stack only when the processes it started serve it.

The defect this guards against: with the demo's ports already held by another process,
``make demo`` printed "carewatch demo is running" with every journey up and exited 0, while
its own democare and exporter had died on "address already in use".
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from probes import Exit
from tests._support.commands import Carewatch
from tests._support.paths import REPO
from tests._support.servers import free_port

SERVICES = ("democare", "exporter", "smtp")
#: Every journey of checks.yaml reports within its interval, timeout and retries (35 s at most
#: today), and the command gives up 20 s after that.
DEMO_SECONDS = 120.0


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def demo_start(carewatch: Carewatch, ports: dict[str, int], cwd: Path) -> tuple[int, str, str]:
    done = carewatch(
        *("demo", "start", "--config", str(REPO / "checks.yaml")),
        *(arg for name, port in ports.items() for arg in (f"--{name}", f"127.0.0.1:{port}")),
        cwd=cwd,
        timeout=DEMO_SECONDS,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("taken", SERVICES)
def test_start_with_a_port_taken_fails_naming_it(
    carewatch: Carewatch, tmp_path: Path, taken: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ports = {name: port if name == taken else free_port() for name in SERVICES}
        code, out, err = demo_start(carewatch, ports, tmp_path)
        assert code == Exit.FAILED, out + err
        assert f"port {port} is not free" in err
        assert "is running" not in out
        # nothing of the demo was left running
        assert list(tmp_path.glob(".demo/*.pid")) == []
        assert [name for name in SERVICES if name != taken and listening(ports[name])] == []


def test_stop_with_nothing_running(carewatch: Carewatch) -> None:
    done = carewatch("demo", "stop")
    assert (done.returncode, done.stdout) == (Exit.OK, "nothing was running\n")


@pytest.mark.e2e
def test_a_second_demo_on_the_same_ports_fails_and_the_first_keeps_running(
    carewatch: Carewatch, tmp_path: Path
) -> None:
    """The defect's own scenario: another instance (here, a demo started from another folder,
    so with other pid files) already holds the ports."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    ports = {name: free_port() for name in SERVICES}
    try:
        code, out, err = demo_start(carewatch, ports, first)
        assert code == Exit.OK, out + err
        assert "carewatch demo is running" in out
        assert "app/login                            up" in out
        code, out, err = demo_start(carewatch, ports, second)
        assert code == Exit.FAILED, out + err
        assert f"port {ports['democare']} is not free" in err
        assert "is running" not in out
        assert all(listening(port) for port in ports.values())  # the first demo is untouched
    finally:
        stopped = carewatch("demo", "stop", cwd=first)
    assert stopped.stdout == "stopped: democare, exporter\n"
    assert not any(listening(port) for port in ports.values())
