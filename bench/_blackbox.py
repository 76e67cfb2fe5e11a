"""blackbox_exporter, the Prometheus prober carewatch is compared with, run as a process.

>>> with Blackbox(workdir) as bb:                                # doctest: +SKIP
...     bb.probe_url("http://127.0.0.1:8080/")   # GET it: one probe, text-format answer

It is Debian's ``prometheus-blackbox-exporter``, which ``make bench`` (and ``make test``, for
the smoke runs) installs. Its ``http_2xx`` module opens a fresh connection for every probe.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Final

from bench._journeys import free_port

COMMAND: Final = "prometheus-blackbox-exporter"
INSTALL: Final = "apt-get install -y prometheus-blackbox-exporter (make bench does this)"
MODULE: Final = "http_2xx"
START_TIMEOUT_SECONDS: Final = 15.0
STOP_TIMEOUT_SECONDS: Final = 5.0
_POLL_SECONDS: Final = 0.05
_CONFIG: Final = f"""\
modules:
  {MODULE}:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


class BlackboxMissing(RuntimeError):
    """The blackbox_exporter binary is not installed."""


class Blackbox:
    """A blackbox_exporter listening on a free loopback port, for the ``with`` block."""

    def __init__(self, workdir: str | Path) -> None:
        self.workdir = Path(workdir)
        self.address = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def probe_url(self, target: str) -> str:
        """The ``/probe`` URL that makes blackbox probe ``target`` once."""
        query = urllib.parse.urlencode({"module": MODULE, "target": target})
        return f"http://{self.address}/probe?{query}"

    def __enter__(self) -> Blackbox:
        binary = shutil.which(COMMAND)
        if binary is None:
            raise BlackboxMissing(f"{COMMAND} is not installed: {INSTALL}")
        config = self.workdir / "blackbox.yml"
        config.write_text(_CONFIG, encoding="utf-8")
        self.address = f"127.0.0.1:{free_port()}"
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--web.listen-address={self.address}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{COMMAND} exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"http://{self.address}/-/healthy", timeout=1):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(_POLL_SECONDS)
        self.__exit__()
        raise RuntimeError(f"{COMMAND} did not answer within {START_TIMEOUT_SECONDS:g} s")

    def __exit__(self, *_: object) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT_SECONDS)
        self._process = None
