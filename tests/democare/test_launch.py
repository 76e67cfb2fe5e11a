"""democare.launch's check that a port is served by the process it started, not another one.

Real processes and sockets on loopback, read back through /proc as the launcher reads them.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from democare import launch
from democare._server import ListenAddress

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads the kernel's TCP table in /proc"
)

SLEEPER = "import time; time.sleep(60)"
LISTENER = (
    "import socket, time\n"
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
    "print(s.getsockname()[1], flush=True); time.sleep(60)\n"
)


Spawn = Callable[[str], "subprocess.Popen[bytes]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """``spawn(code)``: ``python -c code`` as a child process, killed after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def run(code: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        started.append(process)
        return process

    yield run
    for process in started:
        process.kill()
        process.wait()


def test_a_port_another_process_listens_on_is_not_ours(spawn: Spawn) -> None:
    child = spawn(SLEEPER)
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        with pytest.raises(launch.DemoFailed, match=f"port {port} is served by another process"):
            launch._check_ours(child, "democare", [ListenAddress("127.0.0.1", port)])


def test_a_port_the_child_listens_on_is_ours(spawn: Spawn) -> None:
    child = spawn(LISTENER)
    assert child.stdout is not None
    port = int(child.stdout.readline())
    launch._check_ours(child, "democare", [ListenAddress("127.0.0.1", port)])  # no DemoFailed


def test_a_child_that_listens_nowhere_is_reported(spawn: Spawn) -> None:
    child = spawn(SLEEPER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: no listener on the port
        with pytest.raises(launch.DemoFailed, match=f"does not listen on port {port}"):
            launch._check_ours(child, "exporter", [ListenAddress("127.0.0.1", port)])


def test_a_child_that_died_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    launch.STATE.mkdir()
    (launch.STATE / "democare.log").write_text("OSError: address already in use\n")
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    child.wait()
    with pytest.raises(launch.DemoFailed) as failed:
        launch._check_ours(child, "democare", [ListenAddress("127.0.0.1", 8900)])
    assert "democare (to listen on port 8900) exited with status 1" in str(failed.value)
    assert "address already in use" in str(failed.value)
