-- What a processor that found nothing to judge needs to know: is the run generated, is any of its
-- profiles still unjudged (possibly held by another processor), and how far generation got.
SELECT r.generated_at IS NOT NULL AS generated,
       EXISTS (
           SELECT 1 FROM profile_relay.profiles AS p WHERE p.run_id = r.run_id AND p.judged_at IS NULL
       ) AS unjudged,
       (SELECT coalesce(max(p.seq), 0) FROM profile_relay.profiles AS p WHERE p.run_id = r.run_id) AS stored
FROM profile_relay.runs AS r
WHERE r.run_id = %(run_id)s
