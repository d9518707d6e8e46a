"""A local simulator of the learning platform's statistics API (``shared/LEARNING_PLATFORM_API.md``).

A real HTTP server with deterministic, realistic data for any date, configurable defects in
the records, and injectable faults. Run it with ``python -m devservices.simulator``, or in a
background thread with :class:`SimulatorServer`. The parts:

- :mod:`.data`: record generation (pure: :func:`generate_records` predicts any answer);
- :mod:`.faults`: which faults to inject into which requests;
- :mod:`.config`: the settings, fixed at start-up or changed at runtime;
- :mod:`.server`: the HTTP side, the control endpoints under ``/_simulator/``.
"""

from devservices.simulator.config import ConfigError, SimulatorConfig
from devservices.simulator.data import (
    DEFAULT_DEFECTS,
    DEFECT_KINDS,
    generate_records,
    hourly_counts,
    serialize_records,
)
from devservices.simulator.faults import FAULT_KINDS, FaultRule
from devservices.simulator.server import SimulatorServer

__all__ = [
    "DEFAULT_DEFECTS",
    "DEFECT_KINDS",
    "FAULT_KINDS",
    "ConfigError",
    "FaultRule",
    "SimulatorConfig",
    "SimulatorServer",
    "generate_records",
    "hourly_counts",
    "serialize_records",
]
