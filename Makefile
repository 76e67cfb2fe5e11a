# carewatch: `make demo` to see it run, `make test` to check it. Everything it needs, it installs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CAREWATCH := $(VENV)/bin/carewatch
# What the demo needs (carewatch and its dependencies), and everything (the test extras too).
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed
DEMO_LISTEN ?= 127.0.0.1:8900
EXPORTER_LISTEN ?= 127.0.0.1:9640
DEMO_SMTP ?= 127.0.0.1:8925
LOADTEST_LISTEN ?= 127.0.0.1:8901
# A democare fault for the load test, as JSON: LOADTEST_FAULT='{"channel": "app", "mode": "slow"}'
LOADTEST_FAULT ?=
# Debian packages the tests drive for real (prometheus ships promtool too; alertmanager, amtool).
# openssl makes democare's demo SMTP certificate. blackbox_exporter is the benchmarks' anchor.
APT_PACKAGES := prometheus prometheus-alertmanager openssl prometheus-blackbox-exporter
APT_COMMANDS := prometheus promtool prometheus-alertmanager amtool openssl prometheus-blackbox-exporter

.PHONY: demo demo-prerequisites demo-stop test lint check alerts dashboards bench loadtest system-deps venv clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "carewatch needs Python 3.11 or later; $(PYTHON) is: $$($(PYTHON) -V 2>&1)."; \
	  echo "Install it, or name one: make PYTHON=python3.11 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(DEMO_STAMP)

venv: $(STAMP)

## demo: start democare and the exporter in the background, wait for every journey, print URLs
demo: demo-prerequisites $(DEMO_STAMP)
	$(CAREWATCH) demo start --democare $(DEMO_LISTEN) --exporter $(EXPORTER_LISTEN) --smtp $(DEMO_SMTP)

# Before installing anything: democare makes its SMTP certificate with openssl.
demo-prerequisites:
	@command -v openssl >/dev/null || { \
	  echo "make demo needs the openssl command (democare makes its SMTP certificate with it)."; \
	  echo "Install it: sudo apt-get install openssl (Debian/Ubuntu), sudo dnf install openssl"; \
	  echo "(Fedora) or brew install openssl (macOS), then run make demo again."; exit 1; }

## demo-stop: stop what `make demo` started
demo-stop:
	@if [ -x $(CAREWATCH) ]; then $(CAREWATCH) demo stop; else echo "nothing to stop"; fi

.PHONY: stack stack-stop
## stack: democare, the exporter, Prometheus with the generated rules (alerts/generated),
## Alertmanager, and a pager printing each page here, until Ctrl-C or make stack-stop
stack: demo-prerequisites $(DEMO_STAMP)
	$(PY) -m democare.stack_demo start

## stack-stop: stop what `make stack` started
stack-stop:
	@if [ -x $(PY) ]; then $(PY) -m democare.stack_demo stop; else echo "nothing to stop"; fi

## check: validate checks.yaml
check: $(DEMO_STAMP)
	$(CAREWATCH) check checks.yaml

## alerts: regenerate alerts/generated/ (rules, promtool tests, Alertmanager) from checks.yaml
alerts: $(DEMO_STAMP)
	$(CAREWATCH) alerts --config checks.yaml --out alerts/generated

## dashboards: regenerate dashboards/generated/ (Grafana JSON, provisioning) from checks.yaml
dashboards: $(DEMO_STAMP)
	$(CAREWATCH) dashboards --config checks.yaml --out dashboards/generated

## system-deps: the Debian packages the tests need (apt-get as root, once)
system-deps:
	@missing=""; for c in $(APT_COMMANDS); do command -v $$c >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to install: apt-get install -y $(APT_PACKAGES)"; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	fi

## lint: ruff and mypy
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## test: install everything the tests need, lint, and run the whole suite
test: system-deps $(STAMP) lint
	$(VENV)/bin/pytest

## bench: performance figures against anchors measured in the same run (see docs/performance.md)
bench: $(STAMP) system-deps
	$(PY) -m bench.cpu
	$(PY) -m bench.scheduling --journeys 5000 --interval 10 --seconds 60 --repeat 3
	$(PY) -m bench.scrape --journeys 5000 --seconds 60 --runs 3
	$(PY) -m bench.accuracy
	$(PY) -m bench.locust_overhead
	$(PY) -m bench.soak --journeys 1000 --seconds 600
	$(PY) -m bench.fuzz_config --cases 20000

## loadtest: 20 users, 30 s, against a fresh democare; Locust exits 99 if a threshold broke
loadtest: $(DEMO_STAMP)
	$(PY) -m loadtests.demo --listen $(LOADTEST_LISTEN) $(if $(LOADTEST_FAULT),--fault '$(LOADTEST_FAULT)')

clean: demo-stop stack-stop
	rm -rf $(VENV) .demo .stack .pytest_cache .mypy_cache .ruff_cache
