"""The alerting stack as child processes on loopback: democare, carewatch exporters, Prometheus
and Alertmanager, all in one folder and all stopped together.

``make stack`` (``democare.stack_demo``) and the end-to-end test of the alerts
(tests/alerts/test_end_to_end.py) build on it::

    with Stack(tmp_path) as stack:
        care = start_democare(stack, "democare", port=free_port())
        agent = start_exporter(stack, "exporter-paris", config=checks, port=free_port(),
                               location="paris", env={"DEMOCARE_URL": care.url})
        alertmanager = start_alertmanager(stack, config=am_yaml, port=free_port())
        config = stack.folder / "prometheus.yml"
        write_yaml(config, prometheus_config(job="carewatch", targets=[agent.address],
                   rule_files=[rules], alertmanager=alertmanager.address,
                   scrape_interval=1.0, evaluation_interval=1.0))
        prometheus = start_prometheus(stack, config=config, port=free_port())
        ...
    # every process is stopped here, even when a start failed half-way

Each ``start_*`` returns once the process answers its readiness URL, within a bounded time;
a process that exits first, or never answers, raises ``StackFailed`` with the end of its log.
Each process runs in a session of its own (its children die with it) and writes its pid to
``NAME.pid`` in the folder, so that a stack whose owner was killed can still be stopped
(``stop_recorded``). Prometheus and Alertmanager are Debian's ``prometheus`` and
``prometheus-alertmanager`` packages, or any release on PATH; when one is missing,
``ToolMissing`` says how to install it.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

HOST: Final = "127.0.0.1"
READY_TIMEOUT_SECONDS: Final = 30.0
POLL_SECONDS: Final = 0.1
REQUEST_TIMEOUT_SECONDS: Final = 2.0
STOP_GRACE_SECONDS: Final = 10.0
LOG_TAIL_CHARS: Final = 3000
PID_SUFFIX: Final = ".pid"
#: Where ``python -m democare`` and ``python -m carewatch`` are found: the folder holding the
#: democare package (the repository, or site-packages once installed).
PACKAGE_ROOT: Final = Path(__file__).resolve().parents[1]


class StackFailed(Exception):
    """A process of the stack did not start; the message says which, and why."""


class ToolMissing(StackFailed):
    """Prometheus or Alertmanager is not installed; the message says how to install it."""


@dataclass(frozen=True, slots=True)
class Tool:
    """A program the stack runs, the names it is installed under, and where it comes from."""

    title: str
    commands: tuple[str, ...]
    debian_package: str

    def path(self) -> str:
        """The first of ``commands`` on PATH; ToolMissing, saying how to install it, if none."""
        for command in self.commands:
            found = shutil.which(command)
            if found is not None:
                return found
        raise ToolMissing(
            f"{self.title} is missing: none of {', '.join(self.commands)} is on PATH. Install it "
            f"(Debian/Ubuntu: sudo apt-get install {self.debian_package}; elsewhere a release "
            f"from https://prometheus.io/download/ on PATH), or run make system-deps as root."
        )


PROMETHEUS: Final = Tool("Prometheus", ("prometheus",), "prometheus")
#: The checkers that come in the same Debian packages: rules (promtool), routing (amtool).
PROMTOOL: Final = Tool("promtool", ("promtool",), "prometheus")
AMTOOL: Final = Tool("amtool", ("amtool",), "prometheus-alertmanager")
#: Debian names the binary prometheus-alertmanager; upstream releases name it alertmanager.
ALERTMANAGER: Final = Tool(
    "Alertmanager", ("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager"
)


@dataclass(slots=True)
class Service:
    """A process of the stack: its name, its handle, where it listens and where it logs."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    host: str = HOST

    @property
    def address(self) -> str:
        """``HOST:PORT``, as a Prometheus target or an Alertmanager to send to."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://HOST:PORT``."""
        return f"http://{self.address}"

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def tail(self) -> str:
        """The end of its log."""
        try:
            return self.log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return ""


@dataclass
class Stack:
    """Processes started in ``folder`` (configs, data, logs, pids), stopped by ``close``.

    Stopping is SIGTERM to the process's session, then SIGKILL after ``STOP_GRACE_SECONDS``;
    ``close`` stops them newest first, so that Prometheus goes before the Alertmanager it
    sends to, and the exporters before the democare they probe.
    """

    folder: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    services: dict[str, Service] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        ready: str,
        env: Mapping[str, str] | None = None,
        timeout: float = READY_TIMEOUT_SECONDS,
    ) -> Service:
        """Run ``argv`` as ``name`` and wait until ``ready`` (a path on ``port``) answers 200."""
        if name in self.services:
            raise ValueError(f"{name} is already part of the stack")
        taken = port_taken(HOST, port)
        if taken is not None:
            # Checked first: another server answering the readiness URL would pass for this one.
            raise StackFailed(f"{name} cannot listen on {HOST}:{port}: {taken}")
        log = self.folder / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                list(argv),
                cwd=PACKAGE_ROOT,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, process, port, log)
        self.services[name] = service
        record_pid(self.folder, name, process.pid, argv[0])
        wait_ready(service, f"{service.url}{ready}", timeout=timeout)
        return service

    def stop(self, name: str) -> int:
        """Stop ``name`` and return its exit status (negative: the signal that ended it)."""
        service = self.services.pop(name)
        status = _end(service.process)
        (self.folder / f"{name}{PID_SUFFIX}").unlink(missing_ok=True)
        return status

    def close(self) -> None:
        """Stop every process, newest first."""
        for name in reversed(list(self.services)):
            self.stop(name)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def wait_ready(service: Service, url: str, *, timeout: float) -> None:
    """Until ``url`` answers 200; StackFailed if the process exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise StackFailed(
                f"{service.name} exited with status {service.process.returncode} before "
                f"answering {url}; the end of {service.log}:\n{service.tail()}"
            )
        if http_status(url) == 200:
            return
        time.sleep(POLL_SECONDS)
    raise StackFailed(
        f"{service.name} did not answer {url} within {timeout:g}s; the end of {service.log}:\n"
        f"{service.tail()}"
    )


def port_taken(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` now, or None if it could."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As servers do: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def http_status(url: str) -> int | None:
    """The status of a GET of ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def start_democare(
    stack: Stack, name: str, *, port: int, options: Sequence[str] = ("--smtp-listen", "off")
) -> Service:
    """democare on ``port`` (``options`` are more of ``python -m democare``'s)."""
    argv = [sys.executable, "-m", "democare", "--listen", f"{HOST}:{port}", *options]
    return stack.start(name, argv, port=port, ready="/healthz")


def start_exporter(
    stack: Stack,
    name: str,
    *,
    config: Path,
    port: int,
    location: str,
    env: Mapping[str, str] | None = None,
) -> Service:
    """``carewatch serve`` of ``config`` at ``location`` on ``port``, ``env`` added to its
    environment (checks.yaml reads its targets from there)."""
    argv = [
        *(sys.executable, "-m", "carewatch", "serve", "--config", str(config.resolve())),
        *("--listen", f"{HOST}:{port}", "--location", location),
    ]
    return stack.start(name, argv, port=port, ready="/-/ready", env=env)


def start_prometheus(stack: Stack, *, config: Path, port: int, name: str = "prometheus") -> Service:
    """Prometheus with ``config``, its data in the stack's folder, on loopback ``port``."""
    argv = [
        PROMETHEUS.path(),
        f"--config.file={config.resolve()}",
        f"--storage.tsdb.path={stack.folder.resolve() / f'{name}-data'}",
        f"--web.listen-address={HOST}:{port}",
    ]
    return stack.start(name, argv, port=port, ready="/-/ready")


def start_alertmanager(
    stack: Stack, *, config: Path, port: int, name: str = "alertmanager"
) -> Service:
    """Alertmanager with ``config``, its data in the stack's folder, on loopback ``port``, and
    no cluster (an empty ``--cluster.listen-address``), so it neither listens on a gossip port
    nor waits for peers before it notifies."""
    argv = [
        ALERTMANAGER.path(),
        f"--config.file={config.resolve()}",
        f"--storage.path={stack.folder.resolve() / f'{name}-data'}",
        f"--web.listen-address={HOST}:{port}",
        "--cluster.listen-address=",
    ]
    return stack.start(name, argv, port=port, ready="/-/ready")


def prometheus_config(
    *,
    job: str,
    targets: Sequence[str],
    rule_files: Sequence[Path],
    alertmanager: str,
    scrape_interval: float,
    evaluation_interval: float,
) -> dict[str, Any]:
    """A Prometheus configuration: one scrape job ``job`` of the exporters at ``targets``
    (``HOST:PORT``), the ``rule_files``, and alerts sent to ``alertmanager`` (``HOST:PORT``).

    The targets carry no labels of their own: each exporter labels its series with its own
    ``location``, which a target label must not overwrite.

    >>> config = prometheus_config(job="carewatch", targets=["127.0.0.1:9640"],
    ...     rule_files=[Path("/tmp/rules.yaml")], alertmanager="127.0.0.1:9093",
    ...     scrape_interval=1, evaluation_interval=0.5)
    >>> config["global"]
    {'scrape_interval': '1s', 'scrape_timeout': '1s', 'evaluation_interval': '500ms'}
    >>> config["scrape_configs"][0]["static_configs"]
    [{'targets': ['127.0.0.1:9640']}]
    """
    return {
        "global": {
            "scrape_interval": duration(scrape_interval),
            # Prometheus refuses a timeout longer than the interval, and its default is 10s.
            "scrape_timeout": duration(scrape_interval),
            "evaluation_interval": duration(evaluation_interval),
        },
        "rule_files": [str(path.resolve()) for path in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
    }


def duration(seconds: float) -> str:
    """A Prometheus duration: ``1s``, ``500ms``, ``2m``.

    >>> [duration(s) for s in (1, 0.5, 120, 90)]
    ['1s', '500ms', '2m', '90s']
    """
    milliseconds = round(seconds * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


def write_yaml(path: Path, document: Mapping[str, Any]) -> Path:
    """Write ``document`` as YAML to ``path`` and return ``path``."""
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False), encoding="utf-8")
    return path


def record_pid(folder: Path, name: str, pid: int, program: str) -> None:
    """Write ``NAME.pid`` in ``folder``: the pid, and the program it runs (so that a pid the
    system has since given to another program is never signalled)."""
    (folder / f"{name}{PID_SUFFIX}").write_text(f"{pid} {program}\n")


def recorded_pid(folder: Path, name: str) -> int | None:
    """The pid in ``NAME.pid`` if that process still runs the program recorded with it."""
    try:
        pid_text, program = (folder / f"{name}{PID_SUFFIX}").read_text().strip().split(" ", 1)
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if pid <= 0 or not _alive(pid):
        return None
    try:
        running = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return pid  # no /proc: that it is alive is all that can be told
    return pid if running == program else None


def stop_recorded(folder: Path) -> list[str]:
    """Stop the processes whose pid files are in ``folder`` (a stack whose owner is gone), and
    return their names. A pid file whose process is gone is deleted."""
    stopped = []
    for pid_file in sorted(folder.glob(f"*{PID_SUFFIX}")):
        pid = recorded_pid(folder, pid_file.stem)
        if pid is not None and _signal_session(pid, signal.SIGTERM):
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
            if _alive(pid):
                _signal_session(pid, signal.SIGKILL)
            stopped.append(pid_file.stem)
        pid_file.unlink(missing_ok=True)
    return stopped


def _end(process: subprocess.Popen[bytes]) -> int:
    """Stop ``process`` and everything in its session; its exit status."""
    if process.poll() is None:
        _signal_session(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_session(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def _signal_session(pid: int, signum: int) -> bool:
    """Send ``signum`` to the process group led by ``pid``, or to ``pid`` alone when it leads
    none (a command run by make); False if there is no such process."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
    except PermissionError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie (exited, not yet reaped by its parent) holds its pid but runs nothing.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True
