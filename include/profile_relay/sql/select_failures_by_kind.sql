-- The run's failed sends by kind (refused, timeout, http_500, ...), most frequent first.
SELECT kind, count(*) AS sends, sum(profiles) AS profiles
FROM profile_relay.send_failures
WHERE run_id = %(run_id)s
GROUP BY kind
ORDER BY count(*) DESC, kind
