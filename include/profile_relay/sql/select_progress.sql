-- A run's books, stage by stage (the summary and the fault harness read them).
SELECT r.count,
       (SELECT count(*) FROM profile_relay.profiles AS p WHERE p.run_id = r.run_id) AS stored,
       (SELECT count(*) FROM profile_relay.profiles AS p
        WHERE p.run_id = r.run_id AND p.judged_at IS NOT NULL) AS judged,
       (SELECT count(*) FROM profile_relay.profiles AS p WHERE p.run_id = r.run_id AND p.in_range) AS in_range,
       (SELECT count(*) FROM profile_relay.outbox AS o WHERE o.run_id = r.run_id) AS queued,
       (SELECT count(*) FROM profile_relay.deliveries AS d WHERE d.run_id = r.run_id) AS delivered,
       (SELECT count(*) FROM profile_relay.deliveries AS d
        WHERE d.run_id = r.run_id AND d.outcome = 'duplicate') AS duplicates,
       (SELECT count(*) FROM profile_relay.deliveries AS d
        JOIN profile_relay.profiles AS p USING (run_id, seq)
        WHERE d.run_id = r.run_id AND p.in_range IS NOT TRUE) AS delivered_out_of_range,
       (SELECT count(*) FROM profile_relay.deliveries AS d
        WHERE d.run_id = r.run_id AND d.sent_at < r.generated_at) AS delivered_while_generating,
       (SELECT coalesce(sum(f.profiles), 0) FROM profile_relay.send_failures AS f
        WHERE f.run_id = r.run_id) AS failed_sends,
       r.generated_at,
       r.processed_at,
       r.sent_at
FROM profile_relay.runs AS r
WHERE r.run_id = %(run_id)s
