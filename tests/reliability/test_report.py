"""``report --only``: one pipeline's section of docs/RELIABILITY.md rewritten, the rest kept."""

from __future__ import annotations

from typing import Any

from tests.reliability.report import INTRO, RELAY_PIPELINE, RERUN, SUMS_PIPELINE, replace_section

OLD = """\
# Reliability: an old title

Generated 2026-12-06 11:33 UTC from 42 rows recorded by the tests.

| Fault | Rows lost |
|---|---|
| API down | 0 |

## usage_files_ingest

| Fault | Lines lost |
|---|---|
| worker killed | 0 |

## How to rerun it

An old paragraph.
"""


def relay_row(fault: str) -> dict[str, Any]:
    return {
        "pipeline": RELAY_PIPELINE,
        "fault": fault,
        "injection": "how",
        "behaviour": "what",
        "in_range": 17,
        "lost": 0,
        "doubled": 0,
        "out_of_range_sent": 0,
        "duplicates_dropped": 2,
        "ticks": "28 ticks",
    }


def test_a_new_section_goes_before_how_to_rerun_it_and_the_rest_is_kept() -> None:
    document = replace_section(OLD, RELAY_PIPELINE, [relay_row("receiver down")])

    title, _, rest = document.partition("\n")
    assert title == INTRO.partition("\n")[0]
    assert rest.startswith(OLD.partition("\n")[2].partition("## usage_files_ingest")[0])
    assert "## usage_files_ingest\n\n| Fault | Lines lost |\n|---|---|\n| worker killed | 0 |\n" in document
    assert document.index("## usage_files_ingest") < document.index("## user_profiles_relay")
    assert "| receiver down | how | what | 17 | 0 | 0 | 0 | 2 | 28 ticks |" in document
    assert document.endswith(RERUN)
    assert "An old paragraph" not in document


def test_a_section_rewritten_again_replaces_the_old_one() -> None:
    once = replace_section(OLD, RELAY_PIPELINE, [relay_row("receiver down")])

    twice = replace_section(once, RELAY_PIPELINE, [relay_row("PostgreSQL restarted")])

    assert twice.count("## user_profiles_relay") == 1
    assert "receiver down" not in twice
    assert twice == replace_section(OLD, RELAY_PIPELINE, [relay_row("PostgreSQL restarted")])


def test_the_column_sums_section_says_where_each_row_ran_and_follows_the_others() -> None:
    row = {
        "pipeline": SUMS_PIPELINE,
        "ran_under": "airflow",
        "fault": "worker killed",
        "injection": "how",
        "behaviour": "what",
        "requests": 1,
        "right": 1,
        "wrong": 0,
        "lost": 0,
        "rows_per_request": "1",
        "resumes": 0,
        "tries": "sum_file 2",
    }
    with_relay = replace_section(OLD, RELAY_PIPELINE, [relay_row("receiver down")])

    document = replace_section(with_relay, SUMS_PIPELINE, [row, {**row, "ran_under": "harness"}])

    assert document.index("## user_profiles_relay") < document.index("## csv_column_sums")
    assert "| worker killed | Airflow | how | what | 1 | 1 | 0 | 0 | 1 | 0 | sum_file 2 |" in document
    assert "| worker killed | harness | how | what | 1 | 1 | 0 | 0 | 1 | 0 | sum_file 2 |" in document
    assert document.endswith(RERUN)
