-- Figures per course, from day_course_students (create_day_course_students.sql): each of its rows
-- is one student of the course.
INSERT INTO learning_platform.daily_course_stats (
    stats_date, course_id, unique_users, runs, submits, successful_submits, success_share
)
SELECT
    %(day)s,
    course_id,
    count(*),
    sum(runs),
    sum(submits),
    sum(successful_submits),
    sum(successful_submits)::numeric / NULLIF(sum(submits), 0)
FROM day_course_students
GROUP BY course_id
