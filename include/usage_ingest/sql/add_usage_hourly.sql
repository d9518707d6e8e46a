-- The same sums, booked to the file's arrival hour; consumer order for the same reason as totals.
INSERT INTO usage_ingest.usage_hourly (hour, consumer_id, amount)
SELECT %(hour)s, consumer_id, amount
FROM pg_temp.batch_sums
ORDER BY consumer_id
ON CONFLICT (hour, consumer_id) DO UPDATE
SET amount = usage_hourly.amount + EXCLUDED.amount
