-- The batch's sums, per consumer, for the statements below; gone at COMMIT or ROLLBACK.
CREATE TEMPORARY TABLE batch_sums (consumer_id bigint NOT NULL, amount bigint NOT NULL) ON COMMIT DROP
