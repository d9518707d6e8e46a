-- Rows in consumer order, so that concurrent batches lock shared consumers in the same order and
-- wait for each other instead of deadlocking. bigint addition raises on overflow: the batch is
-- refused whole, a total never wraps.
INSERT INTO usage_ingest.consumer_totals (consumer_id, amount, updated_at)
SELECT consumer_id, amount, now()
FROM pg_temp.batch_sums
ORDER BY consumer_id
ON CONFLICT (consumer_id) DO UPDATE
SET amount = consumer_totals.amount + EXCLUDED.amount,
    updated_at = EXCLUDED.updated_at
