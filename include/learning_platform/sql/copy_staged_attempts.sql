COPY learning_platform.staged_attempts (
    window_start, position, user_id, oauth_consumer_key, lis_result_sourcedid,
    lis_outcome_service_url, is_correct, attempt_type, created_at, defects
) FROM STDIN (FORMAT BINARY)
