SELECT pg_catalog.to_regclass(%(table)s) IS NOT NULL
