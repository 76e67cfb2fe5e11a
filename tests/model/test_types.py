"""The shared field types and the one base of the checks.yaml model (``probes.model.types``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from pydantic import BaseModel, ValidationError

import probes.model
from probes.model.hours import OpeningHours
from probes.model.types import Frozen


def models() -> list[type[BaseModel]]:
    found = []
    for info in pkgutil.walk_packages(probes.model.__path__, "probes.model."):
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseModel) and value.__module__ == info.name:
                found.append(value)
    return found


def test_every_model_class_has_the_one_frozen_base_and_its_config() -> None:
    classes = models()

    assert OpeningHours in classes  # the walk sees the model, hours included
    assert [c.__qualname__ for c in classes if not issubclass(c, Frozen)] == []
    assert [c.__qualname__ for c in classes if c.model_config != Frozen.model_config] == []


def test_a_model_is_immutable_and_rejects_unknown_keys() -> None:
    hours = OpeningHours.model_validate({"tz": "UTC", "weekly": {"mon": "08:00-20:00"}})

    with pytest.raises(ValidationError, match="frozen"):
        hours.tz = "Europe/Paris"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        OpeningHours.model_validate({"tz": "UTC", "weekly": {}, "holidays": []})
