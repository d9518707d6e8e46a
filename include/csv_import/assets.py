"""The assets ``csv_folder_import`` produces: one per destination table, for downstream DAGs.

The destination is a param, so the DAG cannot declare the table's asset when it is parsed; it
declares the alias and ``publish`` adds an event for the table it published, with the run's
account (files, rows, bytes, rejects) as the event's extra. A downstream DAG schedules on the
table's asset (:func:`table_asset`), or on the alias for every table this DAG imports.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

IMPORTS = AssetAlias(name="csv_import.tables")


def table_asset(conn_id: str, database: str, schema: str, table: str) -> Asset:
    """The asset of ``schema.table``; as for the flagship's, the URI's host is the connection id,
    because the real address differs between deployments."""
    return Asset(
        name=f"csv_import.{schema}.{table}", uri=f"postgres://{conn_id}:5432/{database}/{schema}/{table}"
    )
