SELECT consumer_id, amount
FROM usage_ingest.consumer_totals
ORDER BY amount DESC, consumer_id
LIMIT %(top)s
