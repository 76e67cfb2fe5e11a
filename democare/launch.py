"""``carewatch demo``: start democare and the exporter in the background and show that they work.

::

    carewatch demo start [--democare HOST:PORT] [--exporter HOST:PORT] [--smtp HOST:PORT]
                         [--config checks.yaml]
    carewatch demo stop

``start`` waits until every journey of checks.yaml has reported, prints the URLs and each
journey's state, and leaves both processes running (logs and pids in ``.demo/``).

It never reports a stack it did not start. Before starting, openssl must be on PATH (democare
makes its SMTP certificate with it) and every port must be free. Once the processes answer, each
must be alive and be the only process listening on its ports (read from ``/proc/net/tcp`` and
``/proc/PID/fd`` where there are such files), when they first answer and again before the demo
is declared running. Otherwise both are stopped and ``start`` ends with ``Exit.FAILED``, naming
the port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

from democare._server import ListenAddress, parse_listen
from democare._tls import OPENSSL
from probes import Config, ConfigError, Exit
from probes.model import load_config

STATE: Final = Path(".demo")
READY_TIMEOUT_SECONDS: Final = 20.0
POLL_SECONDS: Final = 0.5
STOP_GRACE_SECONDS: Final = 5.0
SERVICES: Final = ("democare", "exporter")
SMTP_CA: Final = "smtp-ca.pem"
LOG_TAIL_CHARS: Final = 2000
#: The kernel's TCP tables (IPv4, IPv6): local address, state and socket inode of each socket.
PROC_TCP: Final = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
TCP_LISTEN: Final = "0A"
INSTALL_OPENSSL: Final = (
    "openssl is missing: democare makes the demo SMTP certificate with the openssl command. "
    "Install it (Debian/Ubuntu: sudo apt-get install openssl; Fedora: sudo dnf install openssl; "
    "macOS: brew install openssl) and start the demo again."
)


class DemoFailed(Exception):
    """The demo stack cannot run as asked; the message says why, naming the port."""


def start(democare: str, exporter: str, *, config: str, smtp: str) -> Exit:
    """Start democare and the exporter, wait for every journey, print the URLs and states.

    ``Exit.CONFIG`` when ``config`` or an address is invalid; ``Exit.FAILED`` when the stack
    cannot run (openssl missing, a port taken, a process died or another one answers in its
    place), or when a journey is not up at the end; ``Exit.OK`` when every journey is up.
    """
    try:
        care, agent, mail = parse_listen(democare), parse_listen(exporter), parse_listen(smtp)
    except ValueError as exc:
        print(f"carewatch demo: {exc}", file=sys.stderr)
        return Exit.CONFIG
    env = environment(democare, smtp, smtp_ca=STATE / SMTP_CA)
    try:
        model = load_config(config, environ=env)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return Exit.CONFIG
    started: list[subprocess.Popen[bytes]] = []
    try:
        if shutil.which(OPENSSL) is None:
            raise DemoFailed(INSTALL_OPENSSL)
        stop(quiet=True)  # a demo started here before
        _check_free({"democare": (care, mail), "exporter": (agent,)})
        STATE.mkdir(exist_ok=True)
        backend = _spawn(
            "democare",
            democare_command(democare, smtp, smtp_ca=STATE / SMTP_CA, exporter=exporter),
            env,
        )
        started.append(backend)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        _wait(f"http://{democare}/healthz", backend, "democare", (care, mail), deadline)
        command = [sys.executable, "-m", "carewatch", "serve", "--config", config]
        exporting = _spawn("exporter", [*command, "--listen", exporter], env)
        started.append(exporting)
        _wait(f"http://{exporter}/-/ready", exporting, "exporter", (agent,), deadline)
        states = _wait_for_journeys(model, f"http://{exporter}/metrics")
        # What answered all along must still be what was started here.
        _check_ours(backend, "democare", (care, mail))
        _check_ours(exporting, "exporter", (agent,))
    except DemoFailed as exc:
        print(f"carewatch demo: {exc}", file=sys.stderr)
        for process in started:
            _end(process)
        return Exit.FAILED
    print(
        f"\ncarewatch demo is running.\n"
        f"  democare (demo care backend)  http://{democare}/healthz, SMTP {smtp}\n"
        f"  exporter status page          http://{exporter}/\n"
        f"  exporter metrics              http://{exporter}/metrics\n"
        f"  run a journey now             http://{exporter}/probe?journey=help/search-article\n"
        f"  break a channel               curl -X POST http://{democare}/_faults "
        f'-d \'{{"channel": "app", "mode": "error"}}\'\n'
        f"  repair it                     curl -X DELETE http://{democare}/_faults\n"
        f"  logs                          {STATE}/democare.log, {STATE}/exporter.log\n"
        f"  stop                          carewatch demo stop (or make demo-stop)\n"
    )
    wanted = sorted(j.id for j in model.journeys)
    for journey_id in wanted:
        up, why = states.get(journey_id, (None, ""))
        label = (
            {1.0: "up", 0.0: "DOWN"}.get(up, "no result yet") if up is not None else "no result yet"
        )
        print(f"  {journey_id:36} {label} {why}")
    return Exit.OK if all(states.get(j, (0.0, ""))[0] == 1.0 for j in wanted) else Exit.FAILED


def stop(*, quiet: bool = False) -> Exit:
    """Stop what ``start`` left running (the process groups of the pids in ``.demo/``)."""
    stopped = []
    for name in SERVICES:
        pid = _pid(name)
        if pid is None:
            continue
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        (STATE / f"{name}.pid").unlink(missing_ok=True)
        stopped.append(name)
    if not quiet:
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return Exit.OK


def _check_free(ports: dict[str, tuple[ListenAddress, ...]]) -> None:
    for name, addresses in ports.items():
        for address in addresses:
            why = _cannot_bind(address)
            if why is not None:
                raise DemoFailed(
                    f"port {address.port} is not free: {name} cannot listen on "
                    f"{address.host}:{address.port} ({why}). Stop what holds it, or give the "
                    "demo other ports (--democare, --exporter, --smtp; with make: DEMO_LISTEN, "
                    "EXPORTER_LISTEN, DEMO_SMTP)."
                )


def _cannot_bind(address: ListenAddress) -> str | None:
    """Why a server could not listen on ``address`` now, or None if it could."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As asyncio's servers do: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address.host, address.port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _wait(
    url: str,
    process: subprocess.Popen[bytes],
    name: str,
    addresses: Sequence[ListenAddress],
    deadline: float,
) -> None:
    """Until ``url`` answers; then ``process`` must be the one listening on ``addresses``."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _get(url) is not None:
            _check_ours(process, name, addresses)
            return
        time.sleep(POLL_SECONDS)
    if process.poll() is not None:
        _check_ours(process, name, addresses)  # says why it died
    raise DemoFailed(
        f"{name} did not answer {url} within {READY_TIMEOUT_SECONDS:g}s; see {_log(name)}"
    )


def _check_ours(
    process: subprocess.Popen[bytes], name: str, addresses: Sequence[ListenAddress]
) -> None:
    """DemoFailed unless ``process`` is alive and the only listener on each of ``addresses``."""
    ports = " and ".join(str(address.port) for address in addresses)
    if process.poll() is not None:
        tail = _log(name).read_text(errors="replace")[-LOG_TAIL_CHARS:]
        raise DemoFailed(
            f"{name} (to listen on port {ports}) exited with status {process.returncode}:\n{tail}"
        )
    sockets = _sockets_of(process.pid)
    for address in addresses:
        listeners = _listeners(address.port)
        if listeners is None:
            continue  # no /proc: that the process is alive is all that can be told
        if not listeners:
            raise DemoFailed(
                f"the {name} started here (pid {process.pid}) does not listen on port "
                f"{address.port}"
            )
        if not listeners <= sockets:
            raise DemoFailed(
                f"port {address.port} is served by another process, not by the {name} started "
                f"here (pid {process.pid})"
            )


def _listeners(port: int) -> set[str] | None:
    """The inodes of the sockets listening on TCP ``port`` (any address), or None without
    ``/proc``."""
    found: set[str] = set()
    readable = False
    for table in PROC_TCP:
        try:
            rows = table.read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            # sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid tmo inode
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == TCP_LISTEN and int(local.rpartition(":")[2], 16) == port:
                found.add(inode)
    return found if readable else None


def _sockets_of(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds open."""
    inodes = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return set()
    for descriptor in descriptors:
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    return inodes


def _wait_for_journeys(model: Config, metrics_url: str) -> dict[str, tuple[float, str]]:
    wanted = {j.id for j in model.journeys}
    longest = max(j.interval + j.timeout * (j.retries + 1) for j in model.journeys)
    print(f"waiting for {len(wanted)} journeys to report (at most {longest:g}s)...")
    until = time.monotonic() + longest + READY_TIMEOUT_SECONDS
    states: dict[str, tuple[float, str]] = {}
    while time.monotonic() < until and not wanted <= states.keys():
        time.sleep(POLL_SECONDS)
        states = _journey_states(metrics_url)
    return states


def _journey_states(metrics_url: str) -> dict[str, tuple[float, str]]:
    """journey id -> (up, failing step and reason) from the exporter's /metrics."""
    text = _get(metrics_url) or ""
    states: dict[str, tuple[float, str]] = {}
    why: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = f"{sample.labels.get('channel')}/{sample.labels.get('journey')}"
            if sample.name == "carewatch_journey_up":
                states[key] = (sample.value, "")
            elif sample.name == "carewatch_step_failure_info":
                why[key] = f"step {sample.labels['step']}: {sample.labels['reason']}"
            elif (
                sample.name == "carewatch_step_duration_seconds"
                and sample.labels.get("phase") in ("delivery", "first_reply")
                and key not in why
            ):
                what = "delivered in" if sample.labels["phase"] == "delivery" else "bot replied in"
                why[key] = f"{what} {sample.value * 1000:.0f} ms"
    return {k: (up, why.get(k, "")) for k, (up, _) in states.items()}


def environment(democare: str, smtp: str, *, smtp_ca: Path) -> dict[str, str]:
    """What checks.yaml reads to find the demo stack (see its ``variables``)."""
    return {
        **os.environ,
        "DEMOCARE_URL": f"http://{democare}",
        "DEMOCARE_WS_URL": f"ws://{democare}",
        "DEMOCARE_SMTP": smtp,
        "DEMOCARE_SMTP_CA": str(smtp_ca),
    }


def democare_command(democare: str, smtp: str, *, smtp_ca: Path, exporter: str) -> list[str]:
    """``python -m democare`` on ``democare`` and ``smtp`` (``HOST:PORT``), its certificate
    written to ``smtp_ca``, delivering its replies to the exporter's /callbacks at
    ``exporter``, as checks.yaml's callbacks expect."""
    receiver = f"http://{exporter}/callbacks"
    return [
        *(sys.executable, "-m", "democare", "--listen", democare),
        *("--smtp-listen", smtp, "--smtp-cert-out", str(smtp_ca)),
        *("--webhook", f"sms={receiver}/sms-inbound"),
        *("--webhook", f"push={receiver}/push-receipts"),
        *("--webhook", f"email={receiver}/email-inbound"),
    ]


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _pid(name: str) -> int | None:
    """The pid of ``name`` that a demo started here left running, if any."""
    pid = _pid_in_file(name)
    return pid if pid is not None and _alive(pid) else None


def _pid_in_file(name: str) -> int | None:
    try:
        return int((STATE / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None


def _log(name: str) -> Path:
    return STATE / f"{name}.log"


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop a process ``start`` spawned (its whole session) and forget its pid."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for name in SERVICES:
        if _pid_in_file(name) == process.pid:
            (STATE / f"{name}.pid").unlink(missing_ok=True)


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with _log(name).open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    (STATE / f"{name}.pid").write_text(str(process.pid))
    return process
