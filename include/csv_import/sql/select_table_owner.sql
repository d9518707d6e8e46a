-- Whether the current role may alter the table (owns it, or is a member of its owner), and who owns it.
SELECT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE'), pg_catalog.pg_get_userbyid(c.relowner)
FROM pg_catalog.pg_class AS c
WHERE c.oid = pg_catalog.to_regclass(%(table)s)
