-- What a run delivered at or after %(after)s, in the order the receiver acknowledged it: the
-- fields of its sent lines.
SELECT d.seq,
       d.sent_at,
       p.profile ->> 'name' AS name,
       p.profile ->> 'sex' AS sex,
       p.profile ->> 'job' AS job,
       p.age,
       d.outcome
FROM profile_relay.deliveries AS d
JOIN profile_relay.profiles AS p USING (run_id, seq)
WHERE d.run_id = %(run_id)s AND d.sent_at >= %(after)s
ORDER BY d.sent_at, d.seq
