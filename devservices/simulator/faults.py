"""Fault injection for the simulated statistics API: which faults to inject, and when.

A configuration holds an ordered list of :class:`FaultRule`. For every API request the
:class:`FaultPlan` walks the rules in order and fires the first one that still has uses left
(``times``: ``None`` means unlimited) and wins its ``probability`` draw; only a fired rule
counts down. The draws come from a generator seeded with the configuration's seed, so a
sequence of requests meets the same faults on every run.

Kinds and their parameters (in a rule's JSON form):

``error``           answer ``status`` (default 503) with a JSON error body
``rate_limit``      answer 429 with ``Retry-After: retry_after`` (seconds, default 1)
``cut_body``        announce the full ``Content-Length`` with status 200, send only the first
                    ``fraction`` (default 0.5) of the body, then close the connection
``stall``           wait ``seconds`` (default 5) before answering normally, to trip client
                    read timeouts
``malformed_json``  answer 200 with a complete HTTP message whose body is not valid JSON
                    (the real answer cut in half, as a proxy that truncates silently would)

How a fault is put on the wire is the server's business; this module only decides, and
mangles bodies.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = ("error", "rate_limit", "cut_body", "stall", "malformed_json")

# The parameter each kind takes, with its default.
_PARAMETERS: dict[str, dict[str, float]] = {
    "error": {"status": 503},
    "rate_limit": {"retry_after": 1},
    "cut_body": {"fraction": 0.5},
    "stall": {"seconds": 5.0},
    "malformed_json": {},
}


class FaultRuleError(ValueError):
    """A fault rule that cannot be applied."""


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One fault to inject; parameters of other kinds than ``kind`` are ignored."""

    kind: str
    times: int | None = None
    probability: float = 1.0
    status: int = 503
    retry_after: float = 1
    seconds: float = 5.0
    fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FaultRuleError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.times is not None and not (_is_int(self.times) and self.times >= 0):
            raise FaultRuleError("times must be a non-negative integer or null (unlimited)")
        if not (_is_number(self.probability) and 0 <= self.probability <= 1):
            raise FaultRuleError("probability must be a number between 0 and 1")
        if not (_is_int(self.status) and 400 <= self.status <= 599):
            raise FaultRuleError("status must be an HTTP error status (400-599)")
        if not (_is_number(self.retry_after) and self.retry_after >= 0):
            raise FaultRuleError("retry_after must be a non-negative number of seconds")
        if not (_is_number(self.seconds) and 0 <= self.seconds <= 3600):
            raise FaultRuleError("seconds must be between 0 and 3600")
        if not (_is_number(self.fraction) and 0 <= self.fraction < 1):
            raise FaultRuleError("fraction must be at least 0 and below 1")

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> FaultRule:
        """Read a rule's JSON form, refusing keys that do not apply to its kind (likely typos)."""
        if not isinstance(spec, Mapping):
            raise FaultRuleError(f"a fault rule is a JSON object, not {type(spec).__name__}")
        kind = spec.get("kind")
        if kind not in _PARAMETERS:
            raise FaultRuleError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        unknown = set(spec) - {"kind", "times", "probability", *_PARAMETERS[kind]}
        if unknown:
            raise FaultRuleError(f"fault {kind!r} takes no {', '.join(sorted(unknown))}")
        return cls(**spec)

    def to_json(self) -> dict[str, Any]:
        """The rule's JSON form: kind, times, probability and the kind's own parameter."""
        own = {name: getattr(self, name) for name in _PARAMETERS[self.kind]}
        return {"kind": self.kind, "times": self.times, "probability": self.probability, **own}


class FaultPlan:
    """The rules of one configuration with their remaining uses; safe across request threads."""

    def __init__(self, rules: Sequence[FaultRule], seed: int) -> None:
        self._rules = tuple(rules)
        self._left = [rule.times for rule in self._rules]
        self._fired = [0] * len(self._rules)
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()

    def draw(self) -> FaultRule | None:
        """The fault to inject into the next API request, if any (counts it down)."""
        with self._lock:
            for i, rule in enumerate(self._rules):
                if self._left[i] == 0:
                    continue
                if rule.probability < 1 and self._rng.random() >= rule.probability:
                    continue
                if self._left[i] is not None:
                    self._left[i] -= 1
                self._fired[i] += 1
                return rule
            return None

    def snapshot(self) -> list[dict[str, Any]]:
        """Each rule's JSON form with ``times_left`` (``None``: unlimited) and ``fired``."""
        with self._lock:
            return [
                {**rule.to_json(), "times_left": left, "fired": fired}
                for rule, left, fired in zip(self._rules, self._left, self._fired, strict=True)
            ]


def cut_short(body: bytes, fraction: float) -> bytes:
    """The part of ``body`` sent before the connection drops: always at least a byte short."""
    return body[: min(int(len(body) * fraction), len(body) - 1)]


def malform(body: bytes) -> bytes:
    """A JSON array cut in half: no proper prefix of an array is valid JSON."""
    return body[: max(1, len(body) // 2)]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
