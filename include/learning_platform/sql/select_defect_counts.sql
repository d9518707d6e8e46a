-- Loaded attempts per defect for one interval.
SELECT defect, count(*) AS records
FROM learning_platform.attempts, unnest(defects) AS defect
WHERE created_at >= %(start)s AND created_at < %(end)s
GROUP BY defect
ORDER BY records DESC, defect
