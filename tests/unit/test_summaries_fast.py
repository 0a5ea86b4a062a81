"""The audit summary of a machine change: the fast path says exactly what the general diff says."""

from __future__ import annotations

import itertools
from typing import Any

from domain.diff import describe, diff_definitions
from projections.summaries import summarise


def general(before: Any, after: Any) -> str:
    return describe(diff_definitions({"machines": [before]}, {"machines": [after]}))


BASE: dict[str, Any] = {
    "name": "web1",
    "template": "tpl-ubuntu-2404",
    "cpus": 2,
    "memory_mib": 2048,
    "disks": [{"size_gib": 20}],
    "nics": [{"network": "front"}],
}

VARIANTS: list[dict[str, Any]] = [
    BASE,
    {**BASE, "cpus": 4},
    {**BASE, "cpus": 4, "memory_mib": 4096, "disks": [{"size_gib": 40}]},
    {**BASE, "name": "WEB1"},  # the same name key, spelt otherwise: changed, not added and removed
    {**BASE, "name": "web2"},  # another machine: added and removed
    {k: v for k, v in BASE.items() if k != "memory_mib"},  # a key gone
    {**BASE, "placement": None},  # a key added as null: no change for it
    {**BASE, "placement": {"host": "h1"}, "nics": []},
    {**BASE, "description": "x" * 100},  # shortened in the summary
    {**BASE, "name": "Stra\u00dfe"},
    {**BASE, "name": "STRASSE"},
]


def test_machine_change_summaries_match_the_general_diff() -> None:
    for before, after in itertools.product(VARIANTS, repeat=2):
        data = {"before": before, "machine": after, "actor": "dev"}
        assert summarise("Configuration.MachineChanged", data) == general(before, after), (before, after)


def test_a_real_change_is_described() -> None:
    summary = summarise("Configuration.MachineChanged", {"before": BASE, "machine": {**BASE, "cpus": 4}})
    assert summary == "machine web1: cpus 2 -> 4"
