"""Airflow assets the learning platform pipeline produces, for other DAGs to schedule on."""

from __future__ import annotations

from airflow.sdk import Asset

# The URI names the table (postgres://<host>/<database>/<schema>/<table>); the host is the
# Airflow connection id, because the real address differs between deployments.
ATTEMPTS = Asset(
    name="learning_platform.attempts",
    uri="postgres://learning_platform_db:5432/warehouse/learning_platform/attempts",
)
