"""What a benchmark run found, as a table, the issue's targets, a JSON line and docs/PERFORMANCE.md."""

from __future__ import annotations

import math
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

AIRFLOW_STARTUP_NOTE = (
    "Airflow's own per-task start-up (scheduling, supervisor, task runner, DAG parsing) comes on top "
    "of these stage times, which are the stage function in a fresh process, connection included; "
    "it does not grow with the day and is measured apart, below"
)
# The JSON line's keys, beyond the per-stage figures.
SUMMARY_KEYS = (
    "records",
    "valid_rows",
    "load_rows_per_s",
    "load_vs_psql_copy",
    "load_vs_row_by_row",
    "end_to_end_s",
    "end_to_end_vs_psql_copy",
    "psql_copy_s",
    "simulator_alone_s",
    "peak_rss_mb",
    "airflow_overhead_per_task_s",
)
STAGE_HEADER = ("stage", "records", "wall s", "records/s", "CPU s", "peak RSS MB")
RSS_LIMIT_MB = 300
_NUMBER = re.compile(r"-|[\d,.]+x?")
SMALL, LARGE = 100_000, 1_000_000


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The figures of the last printed line: the required keys and each stage's."""
    line = {key: results[key] for key in SUMMARY_KEYS}
    line["stages"] = {
        name: {key: stage[key] for key in ("wall_s", "rows_per_s", "peak_rss_mb")}
        for name, stage in results["stages"].items()
    }
    return line


def text_tables(results: dict[str, Any]) -> str:
    """The tables printed to stdout."""
    parts = [
        f"Simulated day: {results['records']:,} attempts, {results['valid_rows']:,} valid rows published",
        "",
        _table(STAGE_HEADER, _stage_rows(results)),
        f"end-to-end (sum of the four stages): {results['end_to_end_s']:.2f} s; "
        f"max peak RSS {results['peak_rss_mb']:.0f} MB",
        f"Note: {AIRFLOW_STARTUP_NOTE}.",
        _simulator_alone_sentence(results),
        "",
        _table(["load of the same rows", "rows", "s", "rows/s", "how"], _load_rows(results)),
        "",
        _table(["ratio", "value"], _ratio_rows(results)),
    ]
    if results["scaling"]:
        parts += ["", _table(["attempts", "end-to-end s", "max peak RSS MB"], _scaling_rows(results))]
    if "retention" in results:
        parts += ["", *retention_text(results["retention"])]
    parts += ["", *_airflow_text(results)]
    parts += ["", _table(["target (from the issue)", "measured", "status"], _target_rows(results))]
    return "\n".join(parts)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets beside the measured values; ``met`` is None when not measured."""
    found: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool | None) -> None:
        found.append({"target": target, "measured": measured, "met": met})

    ratio = results["load_vs_psql_copy"]
    add("load rows/s >= 0.8x psql \\copy", _times(ratio), _at_least(ratio, 0.8))
    ratio = results["load_vs_row_by_row"]
    add("load rows/s >= 50x row-by-row", _times(ratio), _at_least(ratio, 50))
    ratio = results["end_to_end_vs_psql_copy"]
    add("end-to-end < 4x psql \\copy time", _times(ratio), None if ratio is None else ratio < 4)

    by_size = {point["attempts"]: point for point in results["scaling"]}
    if results["records"] not in by_size:
        by_size[results["records"]] = _point(results)
    large, small = by_size.get(LARGE), by_size.get(SMALL)
    if large:
        worst = max(large["stages"].items(), key=lambda item: item[1]["peak_rss_mb"])
        add(
            f"peak RSS of every stage < {RSS_LIMIT_MB} MB at 1M",
            f"max {worst[1]['peak_rss_mb']:.0f} MB ({worst[0]})",
            worst[1]["peak_rss_mb"] < RSS_LIMIT_MB,
        )
    else:
        add(f"peak RSS of every stage < {RSS_LIMIT_MB} MB at 1M", "not measured: no 1M run", None)
    if large and small:
        growth = {
            name: large["stages"][name]["peak_rss_mb"] / small["stages"][name]["peak_rss_mb"]
            for name in large["stages"]
        }
        name, worst_growth = max(growth.items(), key=lambda item: item[1])
        add(
            "peak RSS at 1M <= 1.2x at 100k (every stage)",
            f"max {worst_growth:.2f}x ({name})",
            worst_growth <= 1.2,
        )
        ratio = large["end_to_end_s"] / small["end_to_end_s"]
        add("time at 1M <= 12x time at 100k", f"{ratio:.1f}x", ratio <= 12)
    else:
        for target in ("peak RSS at 1M <= 1.2x at 100k (every stage)", "time at 1M <= 12x time at 100k"):
            add(target, "not measured: needs a scaling run at 100k and 1M", None)
    return found


def machine() -> dict[str, Any]:
    cpu = "unknown"
    memory_kb = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
    }


def write_docs(results: dict[str, Any], markdown: Path, chart: Path) -> None:
    markdown.parent.mkdir(parents=True, exist_ok=True)
    if results["scaling"]:
        _write_chart(results, chart)
    text = _markdown(results, chart.name if results["scaling"] else None)
    markdown.write_text(text.rstrip("\n") + "\n" + _other_pipelines(markdown))


def _other_pipelines(markdown: Path) -> str:
    """The other pipelines' parts of the document (each from its own ``# `` title on), kept as they are.

    Each pipeline's benchmark rewrites only its own part, so one run never erases another's figures.
    """
    lines = markdown.read_text().splitlines() if markdown.exists() else []
    titles = [i for i, line in enumerate(lines) if line.startswith("# ")]
    if len(titles) < 2:
        return ""
    return "\n" + "\n".join(lines[titles[1] :]).rstrip("\n") + "\n"


# --- tables ---------------------------------------------------------------------------------------


def _stage_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [
            name,
            f"{stage['records']:,}",
            f"{stage['wall_s']:.2f}",
            f"{stage['rows_per_s']:,.0f}",
            f"{stage['cpu_s']:.2f}",
            f"{stage['peak_rss_mb']:.0f}",
        ]
        for name, stage in results["stages"].items()
    ]


def _load_rows(results: dict[str, Any]) -> list[list[str]]:
    load = results["stages"]["load"]
    rows = [["our load (staging -> attempts)", f"{load['records']:,}", f"{load['wall_s']:.2f}"]]
    rows[0] += [f"{load['rows_per_s']:,.0f}", "measured (indexes and constraints of attempts)"]
    for baseline in results["baselines"].values():
        if baseline["skipped"]:
            rows.append([baseline["name"], f"{baseline['rows']:,}", "-", "-", baseline["note"]])
            continue
        rows.append(
            [
                baseline["name"],
                f"{baseline['rows']:,}",
                f"{baseline['seconds']:.2f}",
                f"{baseline['rows_per_s']:,.0f}",
                baseline["note"],
            ]
        )
    return rows


def _ratio_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        ["our load rows/s vs psql \\copy rows/s", _times(results["load_vs_psql_copy"])],
        ["our load rows/s vs row-by-row rows/s", _times(results["load_vs_row_by_row"])],
        ["our end-to-end time vs psql \\copy time", _times(results["end_to_end_vs_psql_copy"])],
    ]


def _scaling_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [f"{point['attempts']:,}", f"{point['end_to_end_s']:.2f}", f"{point['peak_rss_mb']:.0f}"]
        for point in results["scaling"]
    ]


def _target_rows(results: dict[str, Any]) -> list[list[str]]:
    status = {True: "met", False: "NOT MET", None: "not measured"}
    return [[target["target"], target["measured"], status[target["met"]]] for target in results["targets"]]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    columns = range(len(header))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in columns]
    # Figures are right-aligned so that their digits line up; words stay left-aligned.
    numeric = [all(_NUMBER.fullmatch(row[i]) for row in rows) for i in columns]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(header), line(["-" * width for width in widths]), *map(line, rows)])


def _point(results: dict[str, Any]) -> dict[str, Any]:
    return {
        "attempts": results["records"],
        "end_to_end_s": results["end_to_end_s"],
        "peak_rss_mb": results["peak_rss_mb"],
        "stages": results["stages"],
    }


def median_run(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the median (the lower middle one of an even number), with every run's ``key``.

    Lanes that take turns, repeat after repeat, and report their median run: a busy moment of a
    shared machine then weighs on each lane alike instead of on the one it happened to meet.
    """
    ranked = sorted(runs, key=lambda run: run[key])
    return {**ranked[(len(ranked) - 1) // 2], f"repeats_{key}": [run[key] for run in runs]}


def _times(ratio: float | None) -> str:
    return "not measured" if ratio is None else f"{ratio:.2f}x"


def _at_least(ratio: float | None, floor: float) -> bool | None:
    return None if ratio is None else ratio >= floor


# --- docs -----------------------------------------------------------------------------------------


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _simulator_alone_sentence(results: dict[str, Any]) -> str:
    serving = results["simulator_alone"]
    return (
        f"The simulator alone, its answers fetched window by window and discarded unread, "
        f"served the day ({serving['bytes'] / 1e6:,.0f} MB of JSON) in {serving['wall_s']:.1f} s: "
        "extract's floor on this machine."
    )


def _end_to_end_floor(results: dict[str, Any]) -> list[str]:
    """Why end-to-end is where it is against ``psql \\copy``, from this run's own figures."""
    copy_s = results["psql_copy_s"]
    if not copy_s:
        return []
    serving_s = results["simulator_alone_s"]
    load_s = results["stages"]["load"]["wall_s"]
    budget_s = 4 * copy_s
    left_s = budget_s - serving_s - load_s
    return [
        "## What end-to-end can come down to",
        "",
        f"`psql \\copy` writes the day's rows once, from a CSV file already on disk. The pipeline "
        f"must first get the day from the API: the simulator alone takes {serving_s:.1f} s, "
        f"{serving_s / copy_s:.1f}x `\\copy` by itself. Publishing into `attempts` takes "
        f"{load_s:.1f} s ({load_s / copy_s:.1f}x). Together that is {(serving_s + load_s) / copy_s:.1f}x "
        f"before any record is judged. Of the 4x target ({budget_s:.1f} s), {left_s:.1f} s would be "
        "left for everything else: landing the day verbatim, validating each record in Python, "
        "staging the verdicts, and the statistics.",
        "",
        "The day crosses PostgreSQL three times: extract lands the API's JSON unchanged in "
        "`raw_attempts`, validate stages its verdicts, and load publishes them. The landing is what "
        "lets a rerun skip the API, and what the quarantine keeps verbatim. Each crossing is a "
        "separate, retriable task that hands over through PostgreSQL, not XCom, so tasks can run "
        "on different workers. The cost of that design is the distance to the target.",
        "",
    ]


def _where_the_time_goes(results: dict[str, Any]) -> list[str]:
    total = results["end_to_end_s"]
    lines = []
    for name, stage in sorted(results["stages"].items(), key=lambda item: -item[1]["wall_s"]):
        share = stage["wall_s"] / total if total else 0.0
        waiting = max(stage["wall_s"] - stage["cpu_s"], 0.0)
        text = (
            f"- **{name}**: {stage['wall_s']:.1f} s, {share:.0%} of end-to-end; its process used "
            f"{stage['cpu_s']:.1f} s of CPU, so about {waiting:.1f} s went to waiting"
        )
        if name == "extract":
            text += (
                " (for the simulator, which generates and serialises each hour, and for PostgreSQL); "
                "the rest is Python splitting the streamed JSON array into records and COPY into "
                f"`raw_attempts`. {_simulator_alone_sentence(results)}"
            )
        elif name in ("load", "compute_stats"):
            text += " on PostgreSQL: the work is SQL inside the server."
        else:
            text += (
                " on PostgreSQL; the rest is Python: JSON decoding and the rules of each record, "
                "written back with COPY."
            )
        lines.append(text)
    return lines


def _markdown(results: dict[str, Any], chart_name: str | None) -> str:
    box = results["machine"]
    out = [
        "# Performance of the learning platform pipeline",
        "",
        "Generated by `make bench ARGS=--write-docs`; do not edit by hand. Reproduce with `make bench` "
        "(full run, several minutes) or `make bench ARGS=--quick` (100,000 attempts, under a minute).",
        "",
        f"A simulated day of **{results['records']:,} attempts** ({results['valid_rows']:,} valid rows "
        "published), served over HTTP by the API simulator in its own process, into a local "
        "PostgreSQL with default durability (fsync and synchronous commit on). Each stage ran as "
        "the DAG runs it, in its own process, one after the other. Each stage, and each other way "
        "of loading, starts right after a `CHECKPOINT` (not timed): a day writes gigabytes of WAL, so "
        "PostgreSQL checkpoints every 10-30 s, and a measurement that overlapped one would also pay "
        "for flushing what came before it.",
        "",
        "## Machine",
        "",
        f"- {box['nproc']} CPUs ({box['cpu']}), {box['memory_gb']} GB memory",
        f"- PostgreSQL {box['postgres']}, Python {box['python']}",
        "",
        "## Stages",
        "",
        _markdown_table(
            ["stage", "records", "wall s", "records/s", "CPU s", "peak RSS MB"], _stage_rows(results)
        ),
        "",
        f"End-to-end (sum of the four stages): **{results['end_to_end_s']:.1f} s**. {AIRFLOW_STARTUP_NOTE}.",
        "",
        _simulator_alone_sentence(results),
        "",
        "## Against the other ways of loading the same rows",
        "",
        _markdown_table(["load of the same rows", "rows", "s", "rows/s", "how"], _load_rows(results)),
        "",
        "The alternatives load into a bare table of the same seven columns (no index, no constraint); "
        "our load also keeps the primary key, the checks and the indexes of `attempts`, the quarantine "
        "and the batch ledger up to date in the same transaction.",
        "",
        "## Targets",
        "",
        _markdown_table(["target (from the issue)", "measured", "status"], _target_rows(results)),
        "",
    ]
    if chart_name:
        out += [
            "## Scaling",
            "",
            _markdown_table(["attempts", "end-to-end s", "max peak RSS MB"], _scaling_rows(results)),
            "",
            f"![time and peak memory against day size]({chart_name})",
            "",
        ]
    out += ["## Where the time goes", "", *_where_the_time_goes(results), ""]
    out += _end_to_end_floor(results)
    if "retention" in results:
        out += retention_markdown(results["retention"])
    out += _airflow_markdown(results)
    return "\n".join(out)


def _write_chart(results: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure  # deferred: only --write-docs draws

    points = sorted(results["scaling"], key=lambda point: point["attempts"])
    sizes = [point["attempts"] for point in points]
    figure = Figure(figsize=(10, 4), layout="constrained")
    time_axes, memory_axes = figure.subplots(1, 2)
    time_axes.plot(sizes, [point["end_to_end_s"] for point in points], marker="o")
    time_axes.set(xscale="log", yscale="log", xlabel="attempts per day", ylabel="end-to-end s")
    time_axes.set_title("Time (log-log: slope 1 is linear)")
    for name in points[0]["stages"]:
        memory_axes.plot(
            sizes, [point["stages"][name]["peak_rss_mb"] for point in points], marker="o", label=name
        )
    memory_axes.set(xscale="log", xlabel="attempts per day", ylabel="peak RSS MB", ylim=(0, None))
    memory_axes.set_title("Peak memory of each stage process")
    memory_axes.legend()
    for axes in (time_axes, memory_axes):
        axes.grid(True, which="both", alpha=0.3)
    figure.savefig(path, dpi=100)


# --- what the per-pipeline benchmarks (bench.csv_import, bench.usage_ingest) share --------------

TARGET_HEADER = ("target (from the issue)", "measured", "status")


def machine_sentence(box: dict[str, Any]) -> str:
    """The machine of ``results["machine"]`` in one sentence, with how busy it was."""
    return (
        f"Machine: {box['nproc']} CPUs ({box['cpu']}), {box['memory_gb']} GB memory, "
        f"PostgreSQL {box['postgres']}, Python {box['python']}." + _load_sentence(box)
    )


def _load_sentence(box: dict[str, Any]) -> str:
    if "load_average_1min" not in box:
        return ""
    start, end = box["load_average_1min"]
    busy = " (above the number of CPUs: other work shared them)" if max(start, end) > box["nproc"] else ""
    return f" Load average (1 min) {start:.1f} at the start, {end:.1f} at the end{busy}."


def percentile(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of an ascending list: a value that was measured, not interpolated."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def write_section(document: Path, section: list[str], *, ends: tuple[str, ...] = ("# ",)) -> None:
    """Replace the part of ``document`` titled ``section[0]`` by ``section`` (append it if it has none).

    The part runs up to the next line starting with one of ``ends``; the rest of the document (the
    other pipelines' parts) is kept as it is, so one benchmark never erases another's figures.
    """
    lines = document.read_text().splitlines() if document.exists() else []
    if section[0] in lines:
        start = lines.index(section[0])
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(ends)), len(lines))
        lines[start:end] = section
    else:
        lines += ["", *section]
    document.write_text("\n".join(lines).rstrip("\n") + "\n")


def write_lanes_chart(
    points: list[dict[str, Any]],
    path: Path,
    *,
    rss_limit_mb: float | None = None,
    legend_size: str = "small",
    memory_legend: bool = True,
) -> None:
    """Each lane's MB/s and peak RSS (its process or its largest child) against the drop's size.

    A lane not measured at every size (it could not run on this machine) is left out.
    """
    from matplotlib.figure import Figure  # deferred: only the docs draw

    sizes = [point["bytes"] / 1e6 for point in points]
    figure = Figure(figsize=(10, 4), layout="constrained")
    speed_axes, memory_axes = figure.subplots(1, 2)
    for name in points[0]["lanes"]:
        lanes = [point["lanes"][name] for point in points]
        if any("skipped" in lane for lane in lanes):
            continue
        label = f"{name} (extrapolated)" if lanes[0]["extrapolated"] else name
        speed_axes.plot(sizes, [lane["mb_per_s"] for lane in lanes], marker="o", label=label)
        memory_axes.plot(
            sizes,
            [max(lane["peak_rss_mb"], lane["children_peak_rss_mb"]) for lane in lanes],
            marker="o",
            label=name,
        )
    if rss_limit_mb is not None:
        memory_axes.axhline(rss_limit_mb, color="grey", linestyle="--", linewidth=1)
    speed_axes.set(xscale="log", yscale="log", xlabel="drop MB", ylabel="MB/s", title="Throughput")
    memory_axes.set(
        xscale="log", xlabel="drop MB", ylabel="MB", ylim=(0, None), title="Peak RSS of a process"
    )
    for axes in (speed_axes, memory_axes):
        axes.grid(True, which="both", alpha=0.3)
    for axes in (speed_axes, memory_axes) if memory_legend else (speed_axes,):
        axes.legend(fontsize=legend_size)
    figure.savefig(path, dpi=100)


# --- Airflow's own per-task start-up ----------------------------------------------------------

AIRFLOW_HEADER = ("task", "ready -> queued s", "queued -> start s", "start -> end s", "total s")
_AIRFLOW_COLUMNS = ("ready_to_queued_s", "queued_to_start_s", "start_to_end_s", "total_s")
_AIRFLOW_TITLE = "Airflow's own per-task start-up"


def _airflow_text(results: dict[str, Any]) -> list[str]:
    airflow = results["airflow_task_overhead"]
    if not airflow["measured"]:
        return [f"{_AIRFLOW_TITLE}: not measured: {airflow['why']}."]
    runs = airflow["runs"]
    return [
        f"{_AIRFLOW_TITLE}: the DAG in a local Airflow {airflow['airflow']} ({airflow['executor']}) "
        f"on a day of {airflow['records_per_day']:,} attempts, run {len(runs)} of {len(runs)}",
        _table(AIRFLOW_HEADER, _airflow_rows(runs[-1])),
        _airflow_day_sentence(results),
        _airflow_runs_sentence(airflow),
    ]


def _airflow_markdown(results: dict[str, Any]) -> list[str]:
    airflow = results["airflow_task_overhead"]
    out = [f"## {_AIRFLOW_TITLE}", ""]
    if not airflow["measured"]:
        return [*out, f"Not measured in this run: {airflow['why']}.", ""]
    return [
        *out,
        "The stage times above are each stage function alone in a fresh process. Under Airflow, each "
        "task also waits for the scheduler to queue it once its upstream tasks are done (ready -> "
        "queued), then for the executor to start a supervisor, which forks the task's process "
        "(queued -> start); that process runs Airflow's task runner, parses the DAG file and imports "
        "the pipeline's modules before the task's work, and reports the task's state after it "
        "(start -> end).",
        "",
        f"Measured in a local Airflow {airflow['airflow']} as `make airflow` runs it ("
        f"{airflow['executor']}; api-server, scheduler, dag-processor and triggerer; metadata in the "
        "same PostgreSQL): the DAG triggered through the REST API on a day of "
        f"{airflow['records_per_day']:,} attempts, small enough that the stages' own work is a small "
        f"part of these times. The figures are those of the last of {len(airflow['runs'])} runs, one "
        "after the other; the first also paid for cold caches.",
        "",
        _markdown_table(AIRFLOW_HEADER, _airflow_rows(airflow["runs"][-1])),
        "",
        _airflow_day_sentence(results),
        "",
        _airflow_runs_sentence(airflow),
        "",
    ]


def _airflow_rows(run: dict[str, Any]) -> list[list[str]]:
    tasks = run["tasks"]
    rows = [[name, *(f"{task[column]:.2f}" for column in _AIRFLOW_COLUMNS)] for name, task in tasks.items()]
    totals = (sum(task[column] for task in tasks.values()) for column in _AIRFLOW_COLUMNS)
    rows.append([f"all {len(tasks)} tasks", *(f"{total:.2f}" for total in totals)])
    return rows


def _airflow_runs_sentence(airflow: dict[str, Any]) -> str:
    first, last = airflow["runs"][0], airflow["runs"][-1]
    return (
        f"The run took {last['wall_s']:.1f} s from trigger to done (the first run {first['wall_s']:.1f} s); "
        f"Airflow itself took {airflow['start_s']:.0f} s to come up (metadata migrated, components "
        "started, DAG parsed), once per deployment."
    )


def _airflow_day_sentence(results: dict[str, Any]) -> str:
    airflow = results["airflow_task_overhead"]
    stage_sum, overhead = results["end_to_end_s"], airflow["stage_tasks_s"]
    return (
        "This start-up does not grow with the day: no record passes through Airflow, the tasks hand "
        f"the day over through PostgreSQL. So for the day of {results['records']:,} attempts above, "
        "extract + validate + load + compute_stats under Airflow take about the sum of the four "
        f"stages plus {len(results['stages'])} x {airflow['per_task_s']:.2f} s: {stage_sum:.1f} s + "
        f"{overhead:.1f} s = {stage_sum + overhead:.1f} s."
    )


# --- landing retention (bench.retention) -----------------------------------------------------------

RETENTION_TITLE = "## Landing retention"
_SIZE_HEADER = ("warehouse after the days", "database MB", "landing + staging MB", "rest of the schema MB")
_DAY_HEADER = ("one day's landing + staging", "s", "MB left on disk")


def retention_text(figures: dict[str, Any]) -> list[str]:
    if not figures["measured"]:
        return [f"Landing retention: not measured: {figures['why']}."]
    return [
        f"Landing retention: {figures['days']} days of {figures['records_per_day']:,} attempts, "
        f"{figures['retention_days']} days kept",
        _table(_SIZE_HEADER, _retention_size_rows(figures)),
        "",
        _table(_DAY_HEADER, _retention_day_rows(figures)),
    ]


def retention_markdown(figures: dict[str, Any]) -> list[str]:
    out = [RETENTION_TITLE, ""]
    if not figures["measured"]:
        return [*out, f"Not measured in this run: {figures['why']}.", ""]
    day = figures["one_day"]
    machine = figures.get("machine")
    where = (
        f" on {machine['nproc']} CPUs, PostgreSQL {machine['postgres']} (generated by "
        "`python -m bench.retention --write-docs`, which rewrites this section only)"
        if machine
        else ""
    )
    return [
        *out,
        f"{figures['days']} simulated days of {figures['records_per_day']:,} attempts{where}, each run "
        "through extract, validate, load and compute_stats into two warehouses: one where nothing is "
        f"removed, one where retention ({figures['retention_days']} days kept) runs after each day as "
        "`airflow_maintenance` would the next morning. Sizes at the end (`pg_database_size`, and "
        "the schema's tables with their indexes and TOAST):",
        "",
        _markdown_table(_SIZE_HEADER, _retention_size_rows(figures)),
        "",
        f"Each daily retention took at most {figures['daily_purge_max_s']:.2f} s. Then the oldest day of the "
        "warehouse without retention was dropped by retention, and the next day's rows deleted with the "
        f"DELETE statements a rerun uses ({day['rows']:,} rows, {day['bytes'] / 1e6:.0f} MB), each right "
        "after a CHECKPOINT:",
        "",
        _markdown_table(_DAY_HEADER, _retention_day_rows(figures)),
        "",
        "Dropping the partitions costs the same whatever the day's size and leaves nothing behind. The "
        "DELETE writes every row to the WAL and leaves the space taken until VACUUM, which here "
        "could give it back only because the day had a partition of its own: in one table holding "
        "every day, VACUUM only truncates empty pages at the end of the file, and a deleted old day "
        "stays allocated for reuse.",
        "",
        "A rerun of a day still replaces its landing and staging with that DELETE, not a TRUNCATE of "
        "the day's partitions: TRUNCATE needs an exclusive lock on the partition, so it would wait "
        "behind any reader of it (a backup holds one for hours), and a test-mode run replaces only the "
        "day's first hour. The first run of a day deletes from an empty partition; a rerun's dead rows "
        "are vacuumed, and go with the day's partitions at the latest.",
        "",
    ]


def write_retention_section(figures: dict[str, Any], markdown: Path) -> None:
    """Rewrite the retention section of ``markdown`` (appended when it has none), nothing else."""
    # The section ends at the next section of this pipeline or at the next pipeline's title.
    write_section(markdown, retention_markdown(figures), ends=("# ", "## "))


def _retention_size_rows(figures: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label, key in (("without retention", "without_retention"), ("with retention", "with_retention")):
        sizes = figures[key]
        rows.append(
            [
                label,
                f"{sizes['database'] / 1e6:,.0f}",
                f"{sizes['landing_and_staging'] / 1e6:,.0f}",
                f"{sizes['rest_of_schema'] / 1e6:,.0f}",
            ]
        )
    return rows


def _retention_day_rows(figures: dict[str, Any]) -> list[list[str]]:
    day = figures["one_day"]
    return [
        ["drop its partitions (retention)", f"{day['drop_s']:.3f}", "0"],
        [
            "DELETE its rows (as a rerun does)",
            f"{day['delete_s']:.3f}",
            f"{day['bytes_after_delete'] / 1e6:,.1f}",
        ],
        ["then VACUUM", f"{day['vacuum_s']:.3f}", f"{day['bytes_after_vacuum'] / 1e6:,.1f}"],
    ]
