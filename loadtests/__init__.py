"""carewatch load tests: the journeys of checks.yaml run as Locust users.

``loadtests/locustfile.py`` builds one Locust user class per journey; the users interpret the
same journey model as the probes (``probes.model.config``), on Locust's gevent-based clients. Run it
with ``make loadtest`` or ``locust -f loadtests/locustfile.py``.

This package's ``__init__`` imports nothing, and never locust: gevent monkey-patches the standard
library when locust is imported, so only the modules that run inside Locust import it, first.
``loadtests.journeys`` (which journeys a load test runs) is safe to import anywhere.
"""
