"""``python -m bench.column_sums_rest``: csv_column_sums through its REST API, as clients see it.

    python -m bench.column_sums_rest [--rows 3000000] [--burst 8] [--quick] [--write-docs]

A local Airflow (API server with the ``/column-sums`` plugin, scheduler, LocalExecutor with 4
slots on this machine's 2 cores; metadata and results in the local PostgreSQL) and a local S3
server (moto), as ``make run DAG=csv_column_sums`` starts them, then two measurements:

1. **The whole request**: one file of ``--rows`` rows asked for alone, from disk and from S3,
   with the client polling its task every 50 ms: seconds from the POST to the answer holding
   the sums, split into waiting for a worker (``queued_at`` → ``started_at``) and the run
   (``started_at`` → ``ended_at``), beside the compute alone on the same file in a fresh
   process (``bench.column_sums``' ``ours`` lane): what Airflow adds to a request.
2. **Answers while tasks run**: a burst of ``--burst`` requests of that file, and until they
   have all finished, one client in a loop: ``GET /in-progress`` and ``GET /tasks/<id>`` of a
   finished task (its sums read from the warehouse) every 50 ms, and once a second ``POST
   /tasks`` of a 10-row file (which runs too). Each answer's latency is timed at the client.
   p50, p95 and max per route against the issue's 100 ms.

Then the figures as text and, last, one JSON line; ``--write-docs`` rewrites the
``csv_column_sums' REST API`` section of docs/PERFORMANCE.md (nothing else).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.column_sums import DEFAULT_STATE_DIR, run_lane
from devservices.airflow_cluster import ADMIN_USER, LocalAirflow
from devservices.column_sums_client import FINISHED, ColumnSumsClient
from devservices.column_sums_demo import configure_demo_sums, s3_environment, sample, serve_from_s3
from devservices.environment import PROJECT_ROOT, load_settings
from devservices.local_airflow import metadata_url
from devservices.local_services import LOCAL_DIR, start_local_services
from devservices.s3_server import LocalS3
from include.column_sums.settings import DAG_ID

log = logging.getLogger("bench")

DOCS = PROJECT_ROOT / "docs" / "PERFORMANCE.md"
SECTION_TITLE = "# Performance of csv_column_sums' REST API"
METADATA_DATABASE = "airflow_column_sums_bench"
AIRFLOW_HOME = LOCAL_DIR / "column_sums" / "bench-airflow"
LATENCY_TARGET_MS = 100
POLL_S = 0.05
PARALLELISM = 4
ROUTES = ("submit", "count", "result")
SUBMIT_EVERY_S = 1.0
CHECK_EVERY_S = 1.0
SAMPLE_PAUSE_S = 0.05


def measure(rows: int, columns: int, burst: int, state_dir: Path) -> dict[str, Any]:
    root = state_dir / "root"
    big = sample(rows, columns, root=root)
    tiny = sample(10, columns, root=root)
    compute = run_lane("disk", "ours", big, None)
    with ExitStack() as services:
        s3 = services.enter_context(LocalS3())
        os.environ.update(s3_environment(s3))
        big_s3 = serve_from_s3(s3, Path(big.path))
        configure_demo_sums(os.environ, root=root, force=True)
        local_postgres = start_local_services(services)
        password = secrets.token_urlsafe(16)
        airflow = LocalAirflow.on_free_ports(
            home=AIRFLOW_HOME,
            metadata_url=metadata_url(local_postgres, METADATA_DATABASE),
            admin_password=password,
            parallelism=PARALLELISM,
            dags_paused_at_creation=True,  # nothing but the requests runs
        )
        services.enter_context(airflow)
        airflow.wait_until_ready([DAG_ID])
        client = ColumnSumsClient(airflow.url, ADMIN_USER, password)
        client.wait(client.submit(Path(tiny.path).name), timeout_s=300)  # the first task warms the executor
        whole = {
            "disk": whole_request(client, Path(big.path).name, big.rows),
            "s3": whole_request(client, big_s3, big.rows),
        }
        latencies = answers_while_running(client, Path(big.path).name, Path(tiny.path).name, whole, burst)
    return {
        "rows": big.rows,
        "columns": columns,
        "bytes": big.bytes,
        "burst": burst,
        "parallelism": PARALLELISM,
        "cpus": os.cpu_count(),
        "compute": {key: compute[key] for key in ("wall_s", "cpu_s", "peak_rss_mb")},
        "whole": whole,
        "latency": latencies,
        "load": os.getloadavg()[0],
    }


def whole_request(client: ColumnSumsClient, location: str, rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    task_id = client.submit(location)
    answer = client.wait(task_id, timeout_s=600, poll_s=POLL_S)
    total = time.perf_counter() - started
    if answer["state"] != "success" or answer["result"]["rows"] != rows:
        raise RuntimeError(f"{location}: {answer['state']} {answer.get('error')}")
    queued, began, ended = (_moment(answer[key]) for key in ("queued_at", "started_at", "ended_at"))
    return {
        "task_id": task_id,
        "total_s": round(total, 3),
        "waiting_s": round((began - queued).total_seconds(), 3),
        "run_s": round((ended - began).total_seconds(), 3),
    }


def answers_while_running(
    client: ColumnSumsClient, big: str, tiny: str, whole: dict[str, Any], burst: int
) -> dict[str, Any]:
    finished_task = whole["disk"]["task_id"]
    times: dict[str, list[float]] = {route: [] for route in ROUTES}
    running = [_timed(times, "submit", lambda: client.submit(big)) for _ in range(burst)]
    submitted = list(running)
    last_submit = last_check = time.monotonic()
    while running:
        _timed(times, "count", client.in_progress)
        _timed(times, "result", lambda: client.task(finished_task))
        if time.monotonic() - last_submit >= SUBMIT_EVERY_S:  # each small request runs too: pace them
            submitted.append(_timed(times, "submit", lambda: client.submit(tiny)))
            last_submit = time.monotonic()
        if time.monotonic() - last_check >= CHECK_EVERY_S:
            running = [task_id for task_id in running if client.task(task_id)["state"] not in FINISHED]
            last_check = time.monotonic()
        time.sleep(SAMPLE_PAUSE_S)
    for task_id in submitted:
        if client.wait(task_id, timeout_s=600)["state"] != "success":
            raise RuntimeError(f"task {task_id} did not succeed")
    return {route: _percentiles(samples) for route, samples in times.items()}


def _timed(times: dict[str, list[float]], route: str, call: Any) -> Any:
    started = time.perf_counter()
    answer = call()
    times[route].append((time.perf_counter() - started) * 1000)
    return answer


def _percentiles(samples_ms: list[float]) -> dict[str, Any]:
    ordered = sorted(samples_ms)
    return {
        "samples": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(report.percentile(ordered, 0.95), 1),
        "max_ms": round(ordered[-1], 1),
    }


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for route, figures in results["latency"].items():
        met = figures["p95_ms"] < LATENCY_TARGET_MS
        out.append(
            {
                "target": f"{route}: p95 < {LATENCY_TARGET_MS} ms while tasks run",
                "measured": f"{figures['p95_ms']:.0f} ms ({figures['samples']} answers)",
                "met": met,
            }
        )
    return out


def text(results: dict[str, Any]) -> str:
    compute = results["compute"]
    lines = [
        f"{results['rows']:,} rows, {results['bytes'] / 1e6:.0f} MB; compute alone {compute['wall_s']:.2f} s",
        f"  {'whole request':14} {'total s':>8} {'waiting s':>10} {'run s':>7}",
    ]
    for source, figures in results["whole"].items():
        lines.append(
            f"  {source:14} {figures['total_s']:8.2f} {figures['waiting_s']:10.2f} {figures['run_s']:7.2f}"
        )
    lines.append(f"answers while {results['burst']} requests run ({results['parallelism']} at a time):")
    for route, figures in results["latency"].items():
        lines.append(
            f"  {route:8} p50 {figures['p50_ms']:6.1f} ms  p95 {figures['p95_ms']:6.1f} ms  "
            f"max {figures['max_ms']:7.1f} ms  ({figures['samples']} answers)"
        )
    lines.append("targets:")
    for target in results["targets"]:
        lines.append(f"  [{'met' if target['met'] else 'MISSED'}] {target['target']}: {target['measured']}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> list[str]:
    compute = results["compute"]
    lines = [
        SECTION_TITLE,
        "",
        "Generated by `python -m bench.column_sums_rest --write-docs` "
        "(`make bench-sums-rest ARGS=--write-docs`); do not edit by hand.",
        "",
        "What a client of `/column-sums` sees: a local Airflow (API server with the plugin, scheduler, "
        f"LocalExecutor with {results['parallelism']} slots on {results['cpus']} cores), results in the "
        "local PostgreSQL, files on disk and on a local S3 server (moto). Latencies are timed at the client, "
        f"over HTTP on the same machine. The file: {results['rows']:,} rows × {results['columns']} columns, "
        f"{results['bytes'] / 1e6:.0f} MB (`devservices.csv_columns`). Load average (1 min) at the end: "
        f"{results['load']:.1f}.",
        "",
        "## The whole request, one at a time",
        "",
        f"The compute alone on this file (`sum_columns` in a fresh process): **{compute['wall_s']:.2f} s**. "
        "Through the API, from the POST to the answer holding the sums (the client polls every 50 ms):",
        "",
        "| from | POST → sums, s | waiting for a worker, s | the run, s | added to the compute, s |",
        "|---|---|---|---|---|",
    ]
    for source, figures in results["whole"].items():
        lines.append(
            f"| {source} | {figures['total_s']:.2f} | {figures['waiting_s']:.2f} | {figures['run_s']:.2f} "
            f"| {figures['total_s'] - compute['wall_s']:.2f} |"
        )
    lines += [
        "",
        "The run includes the task process's start (Airflow's imports, the connections fetched through "
        "the execution API) and, from S3, the download; waiting is the scheduler noticing the new run and "
        "handing its task to the executor.",
        "",
        f"## Answers while {results['burst']} requests of this file run",
        "",
        "One client in a loop until the burst has finished: the count and a finished task's result (its "
        "sums read from the warehouse) every 50 ms, and once a second a submit of a 10-row file (which "
        "runs too); the burst's own submits are counted with them.",
        "",
        "| route | answers | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for route, figures in results["latency"].items():
        lines.append(
            f"| {route} | {figures['samples']} | {figures['p50_ms']:.1f} | {figures['p95_ms']:.1f} "
            f"| {figures['max_ms']:.1f} |"
        )
    lines += ["", "| target (from the issue) | measured | status |", "|---|---|---|"]
    for target in results["targets"]:
        lines.append(
            f"| {target['target']} | {target['measured']} | {'met' if target['met'] else 'NOT MET'} |"
        )
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(
        prog="python -m bench.column_sums_rest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--burst", type=int, default=8, help="requests of the big file run at once")
    parser.add_argument("--quick", action="store_true", help="20,000 rows and a burst of 4: a smoke test")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument(
        "--write-docs", action="store_true", help="rewrite its section of docs/PERFORMANCE.md"
    )
    args = parser.parse_args(argv)
    if args.write_docs and args.quick:
        parser.error("--write-docs needs a full run: drop --quick")
    rows, burst = (20_000, 4) if args.quick else (args.rows, args.burst)
    load_settings()
    state_dir: Path = args.state_dir.resolve()
    results = measure(rows, args.columns, burst, state_dir)
    results["targets"] = targets(results)
    (state_dir / "rest_results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text(results))
    print(json.dumps(results))
    if args.write_docs:
        report.write_section(DOCS, markdown(results))
        log.info("wrote the %s section of %s", SECTION_TITLE, DOCS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
