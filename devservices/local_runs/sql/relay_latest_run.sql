-- The user_profiles_relay run registered last since %(since)s (the store's clock): the one make run started.
SELECT run_id
FROM profile_relay.runs
WHERE dag_id = %(dag_id)s AND registered_at >= %(since)s
ORDER BY registered_at DESC
LIMIT 1
