"""What the test modules share that is not a fixture: plain functions, classes and constants.

Test modules import these by name (``from tests._support.servers import serve``); fixtures stay in
``conftest.py`` files, where pytest finds them. No test module imports another test module, nor a
``conftest.py`` (``tests/test_layering.py`` checks this).

* ``paths``: the repository and the fixture files.
* ``timing``: how far a measured duration may stray from the expected one.
* ``servers``: aiohttp test servers of a few routes, and free ports.
* ``stack``: the alerting stack's tools, and Prometheus's and Alertmanager's HTTP APIs.
* ``journeys``: checks.yaml documents of one journey, run on a fresh engine.
* ``hours``: a channel with opening hours, and two instants either side of them.
* ``scrape``: samples of a Prometheus exposition.
* ``processes``: democare and the exporter as child processes, reached over HTTP.
* ``hostile``: hostile targets (silent, trickling, flooding, malformed, bad TLS), in a thread.
* ``tools``: the real tools the alert tests drive (promtool, amtool), or how to install them.
* ``grafana``: checks over Grafana dashboard JSON (ids, layout, targets, variables, links), and
  Grafana's substitution of template variables.
* ``grafana_sdk``: Grafana's own types (grafana-foundation-sdk), made strict.
* ``promql``: panel queries substituted as an SRE's selections, parsed by promql-parser.
"""
