"""Registers what the project's DAGs need from Airflow's scheduler, DAG processor and API server.

A custom timetable is stored in the serialized DAG by its import path, and Airflow only
deserializes timetables that a plugin registered: without this plugin the DAG processor refuses
the DAG and the scheduler cannot plan it. Listeners too reach the scheduler only through a
plugin. The code lives in ``include/common`` (tested as plain modules); this file only wires it.
"""

from __future__ import annotations

from types import ModuleType
from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin

from include.common import run_notes
from include.common.timetables import UtcDayTimetable


class LearningPlatformPlugin(AirflowPlugin):
    name = "learning_platform"
    timetables: ClassVar[list[type]] = [UtcDayTimetable]
    listeners: ClassVar[list[ModuleType]] = [run_notes]
