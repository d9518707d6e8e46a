"""The closed vocabulary of DAG tags, so that filtering by tag in the UI finds every pipeline.

A DAG file spells its tags out (they read as part of its header); the integrity test in
``tests/dags`` fails on a tag not listed here. Add a tag here first, then use it.
"""

from __future__ import annotations

DAG_TAGS = frozenset(
    {
        "learning_platform",
        "etl",
        "daily",
        "quarterly",
        "maintenance",
        "imports",
        "streaming",
        "usage",
        "on_request",
    }
)
