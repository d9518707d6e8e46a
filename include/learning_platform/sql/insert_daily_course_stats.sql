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
    -- The id is `course-v1:` and what follows up to the next colon, when that is not empty:
    -- what `substring(... FROM '^(course-v1:[^:]+)')` reads, with string functions, which cost
    -- a third of that regular expression evaluated on each of a day's million rows.
    SELECT user_id, attempt_type, is_correct,
           CASE WHEN starts_with(lis_result_sourcedid, 'course-v1:') AND course.key <> ''
                THEN 'course-v1:' || course.key
           END AS course_id
    FROM learning_platform.attempts,
         LATERAL (SELECT split_part(substr(lis_result_sourcedid, 11), ':', 1) AS key) AS course
    WHERE created_at >= %(start)s AND created_at < %(end)s
) AS day_attempts
GROUP BY course_id
