"""The fault table is written whole whether pytest ran in one process or in xdist's several."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.reliability import table_file


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "reliability" / "faults.json"
    monkeypatch.setattr(table_file, "TABLE_FILE", path)
    return path


def test_one_process_writes_its_rows_at_the_end_of_its_session(table: Path) -> None:
    table_file.finish_session(
        SimpleNamespace(stash=pytest.Stash()), [{"fault": "a", "day": date(2026, 1, 2)}]
    )

    assert json.loads(table.read_text()) == [{"fault": "a", "day": "2026-01-02"}]


def test_workers_hand_their_rows_to_the_controller_which_writes_every_workers_rows(table: Path) -> None:
    workers = [SimpleNamespace(stash=pytest.Stash(), workeroutput={}) for _ in range(3)]
    table_file.finish_session(workers[0], [{"fault": "a", "day": date(2026, 1, 2)}])
    table_file.finish_session(workers[1], [{"fault": "b"}, {"fault": "c"}])
    table_file.finish_session(workers[2], [])  # ran no fault test
    assert not table.exists()  # a worker never writes the file itself

    controller = SimpleNamespace(stash=pytest.Stash())
    for worker in workers:
        table_file.collect_from_worker(controller, worker.workeroutput)
    table_file.collect_from_worker(controller, {"exitstatus": 0})  # a worker without the module
    table_file.write_collected(controller)

    assert json.loads(table.read_text()) == [
        {"fault": "a", "day": "2026-01-02"},
        {"fault": "b"},
        {"fault": "c"},
    ]


def test_a_session_without_fault_rows_leaves_the_last_table_in_place(table: Path) -> None:
    table.parent.mkdir(parents=True)
    table.write_text('[{"fault": "earlier"}]\n')

    table_file.finish_session(SimpleNamespace(stash=pytest.Stash()), [])
    table_file.write_collected(SimpleNamespace(stash=pytest.Stash()))

    assert json.loads(table.read_text()) == [{"fault": "earlier"}]
