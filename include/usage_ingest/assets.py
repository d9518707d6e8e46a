"""The asset ``usage_files_ingest`` produces: the consumers' totals, for downstream DAGs.

One event per run that added files, after they are all marked done; its extra carries the run's
account (files, lines applied and quarantined, duplicates, consumers in the store) and which
connection's database holds the totals (the store's connection is a param, so not in the name).
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

CONSUMER_TOTALS = Asset(name="usage_ingest.consumer_totals")
# The task's outlet: through an alias, an event is emitted only when the run added files.
TOTALS_UPDATES = AssetAlias(name="usage_ingest.consumer_totals.updates")
