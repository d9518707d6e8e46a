"""`make airflow` and `make run DAG=csv_folder_import` share one demo drop; a user's Variable is kept."""

from __future__ import annotations

import json
from pathlib import Path

from devservices.csv_demo import DEMO_TABLE, VARIABLE_ENV, configure_demo_import
from include.csv_import.spec import ImportSpec

SIZE = "300KB"


def test_an_unset_variable_points_at_the_demo_drop_which_is_generated_once(tmp_path: Path) -> None:
    environ: dict[str, str] = {}

    value = configure_demo_import(environ, size=SIZE, root=tmp_path)

    assert environ[VARIABLE_ENV] == value
    # What a scheduled run or an empty form makes of it: the pipeline's own parsing.
    spec = ImportSpec.from_params(json.loads(value), run_id="manual")
    [folder] = tmp_path.iterdir()
    assert spec.source == f"file://{folder}"
    assert f"{spec.table.schema}.{spec.table.name}" == DEMO_TABLE
    manifest = folder / "manifest.json"
    assert json.loads(manifest.read_text())["totals"]["good_rows"] > 0
    generated = manifest.stat().st_mtime_ns

    assert configure_demo_import({}, size=SIZE, root=tmp_path) == value
    assert manifest.stat().st_mtime_ns == generated
    assert [path.name for path in tmp_path.iterdir()] == [folder.name]


def test_a_variable_the_user_set_is_kept_and_nothing_is_generated(tmp_path: Path) -> None:
    mine = json.dumps({"source": "s3://drops/energy-certificates", "table": "imports.mine"})
    environ = {VARIABLE_ENV: mine}

    assert configure_demo_import(environ, size=SIZE, root=tmp_path) == mine
    assert environ == {VARIABLE_ENV: mine}
    assert list(tmp_path.iterdir()) == []


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    environ = {VARIABLE_ENV: " "}

    configure_demo_import(environ, size=SIZE, root=tmp_path)

    assert json.loads(environ[VARIABLE_ENV])["table"] == DEMO_TABLE
