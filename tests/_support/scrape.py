"""Samples of a Prometheus text exposition, parsed by prometheus-client."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and label set."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    """The first sample ``name`` whose labels include ``labels``, or None."""
    for (sample, found), v in samples(text).items():
        if sample == name and set(labels.items()) <= found:
            return v
    return None
