INSERT INTO learning_platform.attempts (
    user_id, oauth_consumer_key, lis_result_sourcedid, lis_outcome_service_url,
    is_correct, attempt_type, created_at, defects,
    source_window_start, source_position, dag_run_id
)
SELECT
    user_id, oauth_consumer_key, lis_result_sourcedid, lis_outcome_service_url,
    is_correct, attempt_type, created_at, defects,
    window_start, position, %(dag_run_id)s
FROM learning_platform.staged_attempts
WHERE window_start >= %(start)s AND window_start < %(end)s
