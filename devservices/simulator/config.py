"""The simulator's configuration: credentials fixed at start-up, the rest changeable at runtime.

The runtime part is what ``PUT /_simulator/config`` (and ``SimulatorServer.configure``)
accepts, as a partial JSON object; a key given replaces that whole setting:

``records_per_day``  int, 0–2,000,000
``seed``             int: the same seed and date give the same records
``defects``          {kind: share}: kinds left out are 0 (see :mod:`.data` for the kinds)
``faults``           [rule, ...] in order (see :mod:`.faults`); setting them re-arms their counts
``latency_ms``       number: added to every API answer
``empty_dates``      ["YYYY-MM-DD", ...]: days for which the API has no records
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from devservices.simulator.data import DEFAULT_DEFECTS, DEFECT_KINDS
from devservices.simulator.faults import FaultRule, FaultRuleError

DEFAULT_CLIENT = "demo-client"
DEFAULT_CLIENT_KEY = "demo-key"
DEFAULT_SEED = 2023
DEFAULT_RECORDS_PER_DAY = 15_000
# Far above the benchmark's million; beyond it one hour's records no longer fit comfortably
# in the slot cache.
MAX_RECORDS_PER_DAY = 2_000_000
MAX_LATENCY_MS = 600_000

RUNTIME_SETTINGS = ("records_per_day", "seed", "defects", "faults", "latency_ms", "empty_dates")


class ConfigError(ValueError):
    """A setting the simulator cannot apply."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator's answers depend on. Immutable: changes make a new one."""

    client: str = DEFAULT_CLIENT
    client_key: str = field(default=DEFAULT_CLIENT_KEY, repr=False)
    records_per_day: int = DEFAULT_RECORDS_PER_DAY
    seed: int = DEFAULT_SEED
    # Normalised to every kind, in DEFECT_KINDS order; kinds left out are 0.
    defects: Mapping[str, float] = field(default_factory=lambda: DEFAULT_DEFECTS)
    faults: tuple[FaultRule, ...] = ()
    latency_ms: float = 0
    empty_dates: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not all(isinstance(value, str) and value for value in (self.client, self.client_key)):
            raise ConfigError("client and client_key must be non-empty strings")
        if not (_is_int(self.records_per_day) and 0 <= self.records_per_day <= MAX_RECORDS_PER_DAY):
            raise ConfigError(f"records_per_day must be an integer from 0 to {MAX_RECORDS_PER_DAY}")
        if not _is_int(self.seed):
            raise ConfigError("seed must be an integer")
        if not (_is_number(self.latency_ms) and 0 <= self.latency_ms <= MAX_LATENCY_MS):
            raise ConfigError(f"latency_ms must be a number from 0 to {MAX_LATENCY_MS}")
        if not all(isinstance(rule, FaultRule) for rule in self.faults):
            raise ConfigError("faults must be FaultRule objects")
        if not all(isinstance(day, date) and not isinstance(day, datetime) for day in self.empty_dates):
            raise ConfigError("empty_dates must be dates")
        object.__setattr__(self, "defects", _normalized_defects(self.defects))
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "empty_dates", frozenset(self.empty_dates))

    def updated(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """A copy with runtime settings replaced, from JSON values or Python ones."""
        unknown = set(changes) - set(RUNTIME_SETTINGS)
        if unknown:
            raise ConfigError(
                f"unknown or start-up-only settings: {', '.join(sorted(unknown))}; "
                f"changeable: {', '.join(RUNTIME_SETTINGS)}"
            )
        values = dict(changes)
        if "faults" in values:
            values["faults"] = _fault_rules(values["faults"])
        if "empty_dates" in values:
            values["empty_dates"] = _dates(values["empty_dates"])
        if "defects" in values and not isinstance(values["defects"], Mapping):
            raise ConfigError("defects must be an object of kind: share")
        return dataclasses.replace(self, **values)

    def to_json(self) -> dict[str, Any]:
        """The runtime settings as ``GET /_simulator/config`` shows them (no credentials)."""
        return {
            "records_per_day": self.records_per_day,
            "seed": self.seed,
            "defects": dict(self.defects),
            "faults": [rule.to_json() for rule in self.faults],
            "latency_ms": self.latency_ms,
            "empty_dates": sorted(day.isoformat() for day in self.empty_dates),
        }


def _normalized_defects(defects: Mapping[str, float]) -> Mapping[str, float]:
    unknown = set(defects) - set(DEFECT_KINDS)
    if unknown:
        raise ConfigError(
            f"unknown defect kinds: {', '.join(sorted(unknown))}; known: {', '.join(DEFECT_KINDS)}"
        )
    for kind, share in defects.items():
        if not (_is_number(share) and 0 <= share <= 1):
            raise ConfigError(f"the share of defect {kind!r} must be a number from 0 to 1")
    return MappingProxyType({kind: float(defects.get(kind, 0.0)) for kind in DEFECT_KINDS})


def _fault_rules(rules: object) -> tuple[FaultRule, ...]:
    if not isinstance(rules, list | tuple):
        raise ConfigError("faults must be a list of fault rules")
    try:
        return tuple(rule if isinstance(rule, FaultRule) else FaultRule.from_json(rule) for rule in rules)
    except (FaultRuleError, TypeError) as error:
        raise ConfigError(f"invalid fault rule: {error}") from None


def _dates(values: object) -> frozenset[date]:
    if not isinstance(values, list | tuple | set | frozenset):
        raise ConfigError("empty_dates must be a list of YYYY-MM-DD dates")
    try:
        return frozenset(value if isinstance(value, date) else date.fromisoformat(value) for value in values)
    except (TypeError, ValueError):
        raise ConfigError("empty_dates must be a list of YYYY-MM-DD dates") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
