"""``python -m bench.usage_ingest_parse`` on a small file: every variant runs, ours is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.usage_ingest_parse import main


def test_the_parse_benchmark_measures_every_variant_and_our_totals_are_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--size", "2MB", "--consumers", "1000", "--dir", str(tmp_path)]) == 0

    results = json.loads(capsys.readouterr().out)
    assert results["read_batches"]["consumers_wrong"] == 0
    for variant in ("plan_file", "read_batches", "duckdb_1_thread", "duckdb_all_threads"):
        assert results[variant]["lines_per_s"] > 0
    assert results["read_batches_vs_duckdb_1_thread"] > 0
    assert list(tmp_path.iterdir()) == []  # the file is written in a temporary folder, then removed
