INSERT INTO learning_platform.daily_quality_checks (stats_date, check_name, passed, observed, expected, dag_run_id)
VALUES (%(day)s, %(check_name)s, %(passed)s, %(observed)s, %(expected)s, %(dag_run_id)s)
