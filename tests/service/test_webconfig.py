"""``--web.config.file``: the exporter-toolkit web config in front of a real in-process agent,
over real TLS on loopback (trustme certificates), with and without client certificates; the
files it refuses, each with a located problem; ``--web.protect`` and ``--web.disable``; and,
last, a real Prometheus 2.42 scraping through TLS, a client certificate and basic auth.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final

import aiohttp
import bcrypt
import pytest
import trustme
from aiohttp import web

from democare.stack import Stack, prometheus_config, start_prometheus, write_yaml
from probes.errors import ConfigError
from probes.service import Endpoint, Service, WebConfig, load_web_config, secure
from probes.service.webconfig import ALL
from tests._support.commands import environment
from tests._support.processes import Process, wait_until
from tests._support.servers import free_port
from tests._support.stack import query

PASSWORD: Final = "scrape-me"
#: Cost 4, the lowest bcrypt allows: the tests check the protocol, not the hashing cost.
HASH: Final = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
HEADERS: Final = {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}
PROMETHEUS_SECONDS: Final = 60.0

CHECKS: Final = """\
defaults: {interval: 1h, timeout: 1s, retries: 0}
callbacks:
  lab: {unsigned: true}
channels:
  - name: web
    kind: web
    team: digital
    journeys:
      - name: home
        steps:
          - {name: home, url: "http://127.0.0.1:9/"}
"""

Serve = Callable[..., Awaitable[str]]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(tmp_path: Path, ca: trustme.CA) -> Path:
    """The server's certificate and key, and the clients' CA, as PEM files in ``tmp_path``."""
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    for blob in server.cert_chain_pems[1:]:
        blob.write_to_path(str(tmp_path / "server.crt"), append=True)
    server.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    return tmp_path


def web_config(folder: Path, text: str) -> WebConfig:
    path = folder / "web.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_web_config(path)


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """``await serve(web_config, protect=..., disable=...)``: an agent behind it on loopback;
    its base URL (https when the config has TLS)."""
    checks = tmp_path / "checks.yaml"
    checks.write_text(CHECKS, encoding="utf-8")
    runners: list[web.AppRunner] = []
    services: list[Service] = []

    async def start(
        config: WebConfig | None,
        *,
        protect: frozenset[Endpoint] = ALL,
        disable: frozenset[Endpoint] = frozenset(),
    ) -> str:
        service = Service(checks, location="test")
        app = service.app()
        secure(app, config, protect=protect, disable=disable)
        await service.start()
        services.append(service)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        tls = config.tls if config is not None else None
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port = runner.addresses[0][1]
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    yield start
    for service in services:
        await service.stop()
    for runner in runners:
        await runner.cleanup()


def client_context(ca: trustme.CA, *, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if cert is not None:
        cert.configure_cert(context)
    return context


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def fetch(
    url: str,
    *,
    method: str = "GET",
    context: ssl.SSLContext | bool = True,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, ssl=context, headers=headers or {}) as response,
    ):
        return response.status, dict(response.headers), await response.text()


# --- TLS and basic auth --------------------------------------------------------------------------


async def test_tls_and_basic_auth_guard_every_endpoint_but_callbacks(
    serve: Serve, files: Path, ca: trustme.CA
) -> None:
    config = web_config(
        files,
        f"""\
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
        http_server_config:
          headers: {HEADERS}
        basic_auth_users:
          prometheus: {HASH}
        """,
    )
    base = await serve(config)
    trusted = client_context(ca)

    anonymous = await fetch(f"{base}/metrics", context=trusted)
    wrong = await fetch(f"{base}/metrics", context=trusted, headers=basic("prometheus", "nope"))
    unknown = await fetch(f"{base}/metrics", context=trusted, headers=basic("root", PASSWORD))
    long = await fetch(f"{base}/metrics", context=trusted, headers=basic("prometheus", "x" * 100))
    garbage = await fetch(f"{base}/metrics", context=trusted, headers={"Authorization": "Basic %%"})
    good = await fetch(f"{base}/metrics", context=trusted, headers=basic("prometheus", PASSWORD))
    again = await fetch(f"{base}/metrics", context=trusted, headers=basic("prometheus", PASSWORD))
    health = await fetch(f"{base}/-/healthy", context=trusted)
    reload = await fetch(f"{base}/-/reload", method="POST", context=trusted)
    callback = await fetch(f"{base}/callbacks/lab", method="POST", context=trusted)

    assert anonymous[0] == wrong[0] == unknown[0] == long[0] == garbage[0] == 401
    assert health[0] == reload[0] == 401
    assert anonymous[1]["WWW-Authenticate"] == "Basic"
    assert good[0] == again[0] == 200
    assert "carewatch_build_info" in good[2]
    assert callback[0] == 200  # providers sign their requests instead (unsigned here: lab)
    for status, headers, _ in (anonymous, good, callback):
        assert {name: headers.get(name) for name in HEADERS} == HEADERS, status


async def test_a_client_that_does_not_trust_the_certificate_or_speaks_http_gets_nothing(
    serve: Serve, files: Path
) -> None:
    config = web_config(files, "tls_server_config: {cert_file: server.crt, key_file: server.key}")
    base = await serve(config)
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await fetch(f"{base}/metrics")  # the system's CAs do not know trustme's
    with pytest.raises(aiohttp.ClientError):
        await fetch(base.replace("https://", "http://") + "/metrics")


async def test_a_required_client_certificate_must_come_from_the_client_ca(
    serve: Serve, files: Path, ca: trustme.CA
) -> None:
    config = web_config(
        files,
        """\
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
          client_ca_file: ca.crt
          client_auth_type: RequireAndVerifyClientCert
          client_allowed_sans: [scraper.example]
        """,
    )
    base = await serve(config)
    stranger = trustme.CA().issue_cert("scraper.example")

    allowed = await fetch(
        f"{base}/metrics", context=client_context(ca, cert=ca.issue_cert("scraper.example"))
    )
    other_name = await fetch(
        f"{base}/metrics", context=client_context(ca, cert=ca.issue_cert("other.example"))
    )
    assert allowed[0] == 200
    assert other_name[0] == 403  # a certificate from the CA, for a name not allowed
    for context in (client_context(ca), client_context(ca, cert=stranger)):
        with pytest.raises(aiohttp.ClientError):  # no certificate, or one from another CA
            await fetch(f"{base}/metrics", context=context)


async def test_an_optional_client_certificate_is_verified_when_given(
    serve: Serve, files: Path, ca: trustme.CA
) -> None:
    config = web_config(
        files,
        """\
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
          client_ca_file: ca.crt
          client_auth_type: VerifyClientCertIfGiven
        """,
    )
    base = await serve(config)
    without = await fetch(f"{base}/metrics", context=client_context(ca))
    good = await fetch(f"{base}/metrics", context=client_context(ca, cert=ca.issue_cert("a")))
    assert without[0] == good[0] == 200
    with pytest.raises(aiohttp.ClientError):
        await fetch(
            f"{base}/metrics", context=client_context(ca, cert=trustme.CA().issue_cert("a"))
        )


async def test_inline_pem_and_min_version(serve: Serve, tmp_path: Path, ca: trustme.CA) -> None:
    server = ca.issue_cert("127.0.0.1")
    cert = "".join(blob.bytes().decode() for blob in server.cert_chain_pems)
    key = server.private_key_pem.bytes().decode()
    config = web_config(
        tmp_path,
        "tls_server_config:\n"
        f"  cert: |\n{textwrap.indent(cert, '    ')}"
        f"  key: |\n{textwrap.indent(key, '    ')}"
        "  min_version: TLS13\n",
    )
    base = await serve(config)
    assert (await fetch(f"{base}/metrics", context=client_context(ca)))[0] == 200
    old = client_context(ca)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiohttp.ClientError):
        await fetch(f"{base}/metrics", context=old)


async def test_rate_limit_answers_429_beyond_the_burst(serve: Serve, tmp_path: Path) -> None:
    base = await serve(web_config(tmp_path, "rate_limit: {interval: 1m, burst: 2}"))
    statuses = [(await fetch(f"{base}/-/healthy"))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_bcrypt_runs_once_per_password_and_off_the_event_loop(
    serve: Serve, tmp_path: Path
) -> None:
    slow = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(12)).decode()  # ~250 ms a check
    base = await serve(web_config(tmp_path, f"basic_auth_users: {{prometheus: '{slow}'}}"))
    finished: list[str] = []

    async def scrape() -> int:
        status = (await fetch(f"{base}/metrics", headers=basic("prometheus", PASSWORD)))[0]
        finished.append("scrape")
        return status

    async def callback() -> int:
        await asyncio.sleep(0.02)  # once the scrape's bcrypt has started
        status = (await fetch(f"{base}/callbacks/lab", method="POST"))[0]
        finished.append("callback")
        return status

    started = time.perf_counter()
    statuses = await asyncio.gather(scrape(), callback())
    first_took = time.perf_counter() - started
    started = time.perf_counter()
    again = await fetch(f"{base}/metrics", headers=basic("prometheus", PASSWORD))
    second_took = time.perf_counter() - started
    assert statuses == [200, 200]
    assert finished == ["callback", "scrape"]  # the loop served others while bcrypt ran
    assert again[0] == 200
    assert second_took < first_took / 2, (first_took, second_took)  # remembered


# --- per-endpoint exposure -----------------------------------------------------------------------


async def test_protect_puts_only_the_endpoints_listed_behind_the_auth(
    serve: Serve, tmp_path: Path
) -> None:
    config = web_config(tmp_path, f"basic_auth_users: {{ops: '{HASH}'}}")
    base = await serve(config, protect=frozenset({Endpoint.RELOAD, Endpoint.PROBE}))
    assert (await fetch(f"{base}/metrics"))[0] == 200
    assert (await fetch(f"{base}/-/ready"))[0] == 200
    assert (await fetch(f"{base}/-/reload", method="POST"))[0] == 401
    assert (await fetch(f"{base}/probe?journey=web/home"))[0] == 401
    reloaded = await fetch(f"{base}/-/reload", method="POST", headers=basic("ops", PASSWORD))
    assert reloaded[0] == 200, reloaded


async def test_disable_answers_403_whatever_the_credentials(serve: Serve, tmp_path: Path) -> None:
    config = web_config(tmp_path, f"basic_auth_users: {{ops: '{HASH}'}}")
    base = await serve(config, disable=frozenset({Endpoint.RELOAD, Endpoint.PROBE}))
    auth = basic("ops", PASSWORD)
    reload = await fetch(f"{base}/-/reload", method="POST", headers=auth)
    probe = await fetch(f"{base}/probe?journey=web/home", headers=auth)
    assert (reload[0], probe[0]) == (403, 403)
    assert "--web.disable" in reload[2]
    assert (await fetch(f"{base}/metrics", headers=auth))[0] == 200


async def test_disable_works_without_a_web_config(serve: Serve) -> None:
    base = await serve(None, disable=frozenset({Endpoint.RELOAD}))
    assert (await fetch(f"{base}/-/reload", method="POST"))[0] == 403
    assert (await fetch(f"{base}/metrics"))[0] == 200


def test_protect_without_users_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--web\.protect needs basic_auth_users"):
        secure(web.Application(), None, protect=frozenset({Endpoint.RELOAD}))


# --- files refused -------------------------------------------------------------------------------

BAD: Final = {
    "unknown key": (
        "tls_server_config: {cert_file: server.crt, key_file: server.key, cert_flie: x}\n",
        "web.yml:1: tls_server_config.cert_flie: Extra inputs are not permitted",
    ),
    "plain password": (
        "basic_auth_users:\n  alice: hunter2\n",
        "web.yml:2: basic_auth_users.alice: expected a bcrypt hash",
    ),
    "no key": (
        "tls_server_config:\n  cert_file: server.crt\n",
        "web.yml:1: tls_server_config.key_file: missing",
    ),
    "missing file": (
        "tls_server_config: {cert_file: nowhere.crt, key_file: server.key}\n",
        "tls_server_config.cert_file: cannot load the certificate and key: "
        "No such file or directory",
    ),
    "key of another certificate": (
        "tls_server_config: {cert_file: server.crt, key_file: ca.crt}\n",
        "tls_server_config.cert_file: cannot load the certificate and key",
    ),
    "client auth type": (
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAnyClientCert\n",
        "web.yml:4: tls_server_config.client_auth_type: RequireAnyClientCert",
    ),
    "client auth without a CA": (
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n",
        "tls_server_config.client_ca_file: missing: RequireAndVerifyClientCert needs",
    ),
    "CA without client auth": (
        "tls_server_config: {cert_file: server.crt, key_file: server.key, client_ca_file: ca.crt}",
        "a client CA is given but client_auth_type is NoClientCert",
    ),
    "version": (
        "tls_server_config: {cert_file: server.crt, key_file: server.key, min_version: TLS14}",
        "tls_server_config.min_version: expected one of TLS10, TLS11, TLS12, TLS13; got 'TLS14'",
    ),
    "header": (
        "http_server_config:\n  headers:\n    X-Powered-By: carewatch\n",
        "web.yml:3: http_server_config.headers.X-Powered-By: 'X-Powered-By' cannot be set",
    ),
    "header value": (
        "http_server_config: {headers: {X-Frame-Options: allow}}\n",
        "X-Frame-Options: expected one of deny, sameorigin",
    ),
    "not a mapping": ("- tls_server_config\n", "web.yml:1: expected a mapping"),
    "not YAML": ("basic_auth_users: {a: [\n", "web.yml:2: not YAML"),
    "alias": ("a: &x {b: 1}\nc: *x\n", "web.yml:2: not YAML: aliases are not allowed"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_is_refused_with_a_located_problem(case: str, files: Path) -> None:
    text, wanted = BAD[case]
    with pytest.raises(ConfigError) as refused:
        web_config(files, text)
    assert wanted in str(refused.value)
    assert str(files) in str(refused.value)


def test_a_huge_or_missing_file_is_refused(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yml"
    huge.write_text("#" * 300_000)
    with pytest.raises(ConfigError, match="larger than"):
        load_web_config(huge)
    with pytest.raises(ConfigError, match="cannot read: No such file"):
        load_web_config(tmp_path / "nowhere.yml")


def test_an_empty_file_is_no_tls_and_no_auth(tmp_path: Path) -> None:
    config = web_config(tmp_path, "")
    assert (config.tls, dict(config.users), dict(config.headers)) == (None, {}, {})


def test_the_toolkits_own_sample_loads_unchanged(files: Path) -> None:
    """exporter-toolkit's docs/web-config.yml, its certificate paths pointed at ours."""
    config = web_config(
        files,
        """\
        # TLS and basic authentication configuration example.
        #
        # Additionally, a certificate and a key file are needed.
        tls_server_config:
          cert_file: server.crt
          key_file: server.key

        # Usernames and passwords required to connect.
        # Passwords are hashed with bcrypt: https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md#about-bcrypt.
        basic_auth_users:
          alice: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze
          bob: $2y$10$hLqFl9jSjoAAy95Z/zw8Ye8wkdMBM8c5Bn1ptYqP/AXyV0.oy0S8m
        """,
    )
    assert config.tls is not None
    assert sorted(config.users) == ["alice", "bob"]


# --- real Prometheus -----------------------------------------------------------------------------


@pytest.mark.prometheus
def test_prometheus_scrapes_through_tls_a_client_certificate_and_basic_auth(
    files: Path, ca: trustme.CA
) -> None:
    """Prometheus 2.42 scrapes ``carewatch serve --web.config.file``: ``up`` is 1 with the
    right password and 0 with a wrong one."""
    scraper = ca.issue_cert("prometheus.example")
    scraper.cert_chain_pems[0].write_to_path(str(files / "scraper.crt"))
    scraper.private_key_pem.write_to_path(str(files / "scraper.key"))
    (files / "web.yml").write_text(
        textwrap.dedent(
            f"""\
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
              client_ca_file: ca.crt
              client_auth_type: RequireAndVerifyClientCert
            basic_auth_users:
              prometheus: {HASH}
            """
        )
    )
    (files / "checks.yaml").write_text(CHECKS)
    port = free_port()
    exporter = Process(
        [
            *(sys.executable, "-m", "carewatch", "serve", "--config", str(files / "checks.yaml")),
            *("--listen", f"127.0.0.1:{port}", "--web.config.file", str(files / "web.yml")),
        ],
        files / "exporter.log",
        env=environment(),
    )
    try:
        with Stack(files / "stack") as stack:
            config = prometheus_config(
                job="carewatch",
                targets=[f"127.0.0.1:{port}"],
                rule_files=[],
                alertmanager="127.0.0.1:9",
                scrape_interval=1.0,
                evaluation_interval=1.0,
            )
            secured = {
                "scheme": "https",
                "tls_config": {
                    "ca_file": str(files / "ca.crt"),
                    "cert_file": str(files / "scraper.crt"),
                    "key_file": str(files / "scraper.key"),
                    "server_name": "127.0.0.1",
                },
            }
            (good,) = config["scrape_configs"]
            good.update(secured, basic_auth={"username": "prometheus", "password": PASSWORD})
            wrong = {**good, "job_name": "wrong-password"}
            wrong["basic_auth"] = {"username": "prometheus", "password": "nope"}
            config["scrape_configs"].append(wrong)
            path = write_yaml(stack.folder / "prometheus.yml", config)
            prometheus = start_prometheus(stack, config=path, port=free_port())

            def up() -> dict[str, str] | None:
                found = {r["metric"]["job"]: r["value"][1] for r in query(prometheus.url, "up")}
                return found if len(found) == 2 else None

            jobs = wait_until(up, PROMETHEUS_SECONDS, f"Prometheus scraping; {exporter.output()}")
            assert jobs == {"carewatch": "1", "wrong-password": "0"}
            built = query(prometheus.url, 'carewatch_build_info{job="carewatch"}')
            assert [sample["value"][1] for sample in built] == ["1"]
    finally:
        exporter.stop()
    assert "serving on https://127.0.0.1" in exporter.output()
