"""Airflow assets the learning platform pipeline produces, for other DAGs to schedule on."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

# The URI names the table (postgres://<host>/<database>/<schema>/<table>); the host is the
# Airflow connection id, because the real address differs between deployments.
ATTEMPTS = Asset(
    name="learning_platform.attempts",
    uri="postgres://learning_platform_db:5432/warehouse/learning_platform/attempts",
)

# What `load` declares as its outlet: it adds an event for ATTEMPTS through this alias after a
# real day's load, and none after a test-mode run, which loads the scratch warehouse.
ATTEMPTS_LOADS = AssetAlias(name="learning_platform.attempts.loads")
