-- Figures per course. The course id is the `course-v1:ORG+COURSE+RUN` that opens
-- `lis_result_sourcedid`; attempts whose passback names no course share the NULL course.
INSERT INTO learning_platform.daily_course_stats (
    stats_date, course_id, unique_users, runs, submits, successful_submits, success_share
)
SELECT
    %(day)s,
    course_id,
    count(DISTINCT user_id),
    count(*) FILTER (WHERE attempt_type = 'run'),
    count(*) FILTER (WHERE attempt_type = 'submit'),
    count(*) FILTER (WHERE attempt_type = 'submit' AND is_correct),
    count(*) FILTER (WHERE attempt_type = 'submit' AND is_correct)::numeric
        / NULLIF(count(*) FILTER (WHERE attempt_type = 'submit'), 0)
FROM (
    SELECT user_id, attempt_type, is_correct,
           substring(lis_result_sourcedid FROM '^(course-v1:[^:]+)') AS course_id
    FROM learning_platform.attempts
    WHERE created_at >= %(start)s AND created_at < %(end)s
) AS day_attempts
GROUP BY course_id
