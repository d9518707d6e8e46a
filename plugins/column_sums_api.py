"""Mounts ``csv_column_sums``' REST API (``include.column_sums.api``) on Airflow's API server.

Airflow imports every file in ``plugins/`` in every component, each task process included, but
asks for ``fastapi_apps`` only in the API server (and ``airflow plugins``). A property keeps
FastAPI and the core API's modules (over a second of imports) out of all the others.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin


class ColumnSumsApiPlugin(AirflowPlugin):
    name = "column_sums_api"

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from include.column_sums.api import URL_PREFIX, app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "CSV column sums"}]
