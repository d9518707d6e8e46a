"""The REST bench's figures: percentiles, targets and its docs section, from a results record.

The measurement itself needs a whole local Airflow (about a minute): `make bench-sums-rest
ARGS=--quick` runs it. What it reports from its samples is checked here, in milliseconds.
"""

from __future__ import annotations

import random
from pathlib import Path

from bench import column_sums_rest as rest
from bench.report import write_section


def results(p95_submit_ms: float) -> dict:
    rng = random.Random(3)
    latency = {
        "submit": rest._percentiles([p95_submit_ms] * 10 + [1.0] * 90),  # its p95 is the slow one
        "count": rest._percentiles([rng.uniform(5, 20) for _ in range(200)]),
        "result": rest._percentiles([rng.uniform(10, 40) for _ in range(200)]),
    }
    record = {
        "rows": 3_000_000,
        "columns": 30,
        "bytes": 719_000_000,
        "burst": 8,
        "parallelism": 4,
        "cpus": 2,
        "load": 1.5,
        "compute": {"wall_s": 6.0, "cpu_s": 6.0, "peak_rss_mb": 70},
        "whole": {
            "disk": {"task_id": "a", "total_s": 9.0, "waiting_s": 1.0, "run_s": 7.5},
            "s3": {"task_id": "b", "total_s": 10.0, "waiting_s": 1.0, "run_s": 8.5},
        },
        "latency": latency,
    }
    record["targets"] = rest.targets(record)
    return record


def test_percentiles_are_those_of_the_samples() -> None:
    figures = rest._percentiles([float(ms) for ms in range(1, 101)])
    assert figures == {"samples": 100, "p50_ms": 50.5, "p95_ms": 95.0, "max_ms": 100.0}


def test_a_route_whose_p95_reaches_100_ms_misses_its_target() -> None:
    assert all(target["met"] for target in results(p95_submit_ms=60)["targets"])
    missed = [target for target in results(p95_submit_ms=150)["targets"] if not target["met"]]
    assert [target["target"].split(":")[0] for target in missed] == ["submit"]


def test_the_docs_section_shows_every_route_and_is_the_only_part_rewritten(tmp_path: Path) -> None:
    document = tmp_path / "PERFORMANCE.md"
    document.write_text("# Performance of another pipeline\n\nkept\n")
    write_section(document, rest.markdown(results(p95_submit_ms=150)))
    text = document.read_text()
    assert "kept" in text
    assert rest.SECTION_TITLE in text
    for route in rest.ROUTES:
        assert f"| {route} |" in text
    assert "NOT MET" in text
    assert "| disk | 9.00 | 1.00 | 7.50 | 3.00 |" in text  # the whole request minus the compute
