SELECT count(*) FROM usage_ingest.consumer_totals
