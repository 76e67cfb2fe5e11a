"""``pip install .`` gives a working ``carewatch``: a real wheel, in a fresh venv, run from a
folder that is not the repository.

The wheel is built from a copy of the sources (so the build leaves nothing in the repository)
and installed without its dependencies; the fresh venv sees the dependencies already installed
for this test run through a ``.pth`` file, so no package index is needed beyond the build
backend. Every module must then come from the venv's site-packages, never from the repository.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from probes import Exit
from tests._support.paths import REPO
from tests._support.servers import free_port

pytestmark = pytest.mark.e2e

#: What the wheel must hold: every file of these packages, and these modules.
PACKAGES = ("carewatch", "probes", "democare", "loadtests")
MODULES = ("exporter.py",)
#: Not sources: left out of the copy the wheel is built from.
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", ".demo", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", "tests"
)
BUILD_SECONDS = 300.0
START_SECONDS = 30.0


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    site_packages: Path
    cwd: Path  # an empty folder with a copy of checks.yaml

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "carewatch"), *args],
            cwd=self.cwd,
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def clean_environment() -> dict[str, str]:
    """No PYTHONPATH: the repository must not be importable."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=IGNORED)
    pip("wheel", "--no-deps", "--wheel-dir", str(tmp / "dist"), str(source))
    (wheel,) = (tmp / "dist").glob("carewatch-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    pip("--python", str(python), "install", "--no-deps", "--no-index", str(wheel))
    # Then, after the venv's own site-packages, the dependencies this test run already has.
    # Not before installing: pip would find this run's carewatch there and install nothing.
    ours = sysconfig.get_paths()
    (site_packages / "_carewatch_test_dependencies.pth").write_text(
        "\n".join(dict.fromkeys((ours["purelib"], ours["platlib"]))) + "\n"
    )
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    shutil.copy(REPO / "checks.yaml", cwd / "checks.yaml")
    return Installed(venv, wheel, site_packages, cwd)


def test_the_wheel_holds_every_package_file_and_the_console_script(
    installed: Installed,
) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = wheel.read(entry_points).decode()
    wanted = {
        path.relative_to(REPO).as_posix()
        for package in PACKAGES
        for path in (REPO / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert "loadtests/locustfile.py" in wanted
    assert sorted(wanted - names) == []
    assert set(MODULES) <= names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)
    assert "carewatch = carewatch.cli:main" in scripts


def test_carewatch_is_imported_from_the_venv_not_the_repository(installed: Installed) -> None:
    code = "import carewatch, probes, loadtests.command, democare, exporter\n" + "".join(
        f"print({name}.__file__)\n"
        for name in ("carewatch", "probes", "loadtests.command", "democare", "exporter")
    )
    done = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", code],
        cwd=installed.cwd,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for path in done.stdout.split():
        assert Path(path).is_relative_to(installed.site_packages), path


def test_version(installed: Installed) -> None:
    done = installed.run("--version")
    assert (done.returncode, done.stdout) == (Exit.OK, "carewatch 0.1.0\n")


def test_check(installed: Installed) -> None:
    done = installed.run("check", "checks.yaml")
    assert done.returncode == Exit.OK, done.stderr
    assert done.stdout.startswith("checks.yaml: OK: ")


def test_loadtest_finds_the_installed_locustfile(installed: Installed) -> None:
    done = installed.run("loadtest", "--help")
    assert done.returncode == Exit.OK, done.stderr
    assert f"Runs Locust on {installed.site_packages / 'loadtests' / 'locustfile.py'}" in (
        done.stdout
    )


@pytest.fixture
def serving(installed: Installed) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``carewatch serve`` on a free loopback port, probing a demo stack that is not there."""
    nowhere = f"127.0.0.1:{free_port()}"
    address = f"127.0.0.1:{free_port()}"
    environ = {
        **clean_environment(),
        "DEMOCARE_URL": f"http://{nowhere}",
        "DEMOCARE_WS_URL": f"ws://{nowhere}",
    }
    process = subprocess.Popen(
        [str(installed.venv / "bin" / "carewatch"), "serve", "--listen", address],
        cwd=installed.cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, address
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_serve(serving: tuple[subprocess.Popen[str], str]) -> None:
    process, address = serving
    deadline = time.monotonic() + START_SECONDS
    text = None
    while text is None and time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    assert text is not None, f"no /metrics within {START_SECONDS:g}s (exit {process.poll()})"
    assert 'carewatch_build_info{location="local",version="0.1.0"} 1.0' in text
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == Exit.OK, output
    assert f"serving on http://{address}/metrics" in output
