"""Every event type of every aggregate has a line in the audit's SUMMARIES (and no line is stale)."""

from __future__ import annotations

import importlib
import pkgutil

from eventsourcing.domain import Aggregate, DomainEvent

import domain
from projections.raw import TOPIC_PREFIX
from projections.summaries import SUMMARIES


def aggregate_classes() -> list[type[Aggregate]]:
    found: dict[str, type[Aggregate]] = {}
    for module in pkgutil.walk_packages(domain.__path__, "domain."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, type) and issubclass(value, Aggregate) and value.__module__.startswith("domain."):
                found[value.__qualname__] = value
    return list(found.values())


def stored_event_types(aggregate: type[Aggregate]) -> set[str]:
    """The event classes the aggregate records: the ones given an explicit stored topic."""
    types = set()
    for value in vars(aggregate).values():
        if isinstance(value, type) and issubclass(value, DomainEvent):
            topic = value.__dict__.get("TOPIC")
            if topic:
                types.add(str(topic).removeprefix(TOPIC_PREFIX))
    return types


def test_the_introspection_finds_every_aggregate() -> None:
    names = {a.__name__ for a in aggregate_classes()}
    assert names >= {
        "Service", "Configuration", "Deployment", "NameClaim", "AddressPlan", "PoolPlan", "TemplateCatalogue",
        "LocalAccount", "ApiToken", "Refusal", "RequestRecord",
    }  # fmt: skip
    assert {"Deployment.FencePlanned", "Deployment.SwapStepDone"} <= stored_event_types(
        next(a for a in aggregate_classes() if a.__name__ == "Deployment")
    )


def test_every_event_type_of_every_aggregate_has_a_summary() -> None:
    # The audit projection records every stored event (RequestRecord's too), so each needs a line.
    missing = sorted(t for a in aggregate_classes() for t in stored_event_types(a) if t not in SUMMARIES)
    assert missing == [], f"add a line to projections/summaries.py SUMMARIES for: {', '.join(missing)}"


def test_every_summary_names_an_event_type_that_exists() -> None:
    known = {t for a in aggregate_classes() for t in stored_event_types(a)}
    assert sorted(set(SUMMARIES) - known) == []
