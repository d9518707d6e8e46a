-- Why the target cannot be replaced by swapping the staging table in: anything that names the
-- table by its identity (views, foreign keys, triggers, policies, grants, indexes, ...) would
-- be lost with it or keep pointing at the old one. Empty: swapping loses nothing.
WITH target AS (
    SELECT c.oid, c.relkind, c.relacl, c.relowner, c.relhassubclass, c.relrowsecurity, c.reloptions
    FROM pg_catalog.pg_class AS c
    WHERE c.oid = pg_catalog.to_regclass(%(target)s)
)
SELECT reason FROM (
    SELECT 'it is not a plain table' AS reason FROM target WHERE relkind <> 'r'
    UNION ALL
    SELECT 'the pipeline''s role does not own it' FROM target
    WHERE NOT pg_catalog.pg_has_role(current_user, relowner, 'USAGE')
    UNION ALL
    SELECT 'privileges were granted on it' FROM target WHERE relacl IS NOT NULL
    UNION ALL
    SELECT 'it has storage parameters' FROM target WHERE reloptions IS NOT NULL
    UNION ALL
    SELECT 'it or its columns have comments' FROM target
    WHERE EXISTS (
        SELECT 1 FROM pg_catalog.pg_description AS d
        WHERE d.classoid = 'pg_catalog.pg_class'::regclass AND d.objoid = target.oid
    )
    UNION ALL
    SELECT 'it has row-level security' FROM target WHERE relrowsecurity
    UNION ALL
    SELECT 'it takes part in inheritance or partitioning' FROM target
    WHERE relhassubclass OR EXISTS (SELECT 1 FROM pg_catalog.pg_inherits AS i WHERE i.inhrelid = target.oid)
    UNION ALL
    SELECT 'it has indexes' FROM target
    WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i WHERE i.indrelid = target.oid)
    UNION ALL
    SELECT 'it has constraints or is referenced by a foreign key' FROM target
    WHERE EXISTS (
        SELECT 1 FROM pg_catalog.pg_constraint AS k WHERE k.conrelid = target.oid OR k.confrelid = target.oid
    )
    UNION ALL
    SELECT 'it has triggers' FROM target
    WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_trigger AS t WHERE t.tgrelid = target.oid)
    UNION ALL
    SELECT 'views or rules depend on it' FROM target
    WHERE EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend AS d
        JOIN pg_catalog.pg_rewrite AS r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.oid = d.objid
        WHERE d.refobjid = target.oid AND r.ev_class <> target.oid
    )
    UNION ALL
    SELECT 'it is in a publication' FROM target
    WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel AS p WHERE p.prrelid = target.oid)
    UNION ALL
    SELECT 'it has extended statistics' FROM target
    WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext AS s WHERE s.stxrelid = target.oid)
    UNION ALL
    SELECT 'other objects depend on it' FROM target
    WHERE EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend AS d
        WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = target.oid
          AND d.classid NOT IN (
              'pg_catalog.pg_class'::regclass, 'pg_catalog.pg_type'::regclass,
              'pg_catalog.pg_rewrite'::regclass, 'pg_catalog.pg_constraint'::regclass,
              'pg_catalog.pg_trigger'::regclass, 'pg_catalog.pg_attrdef'::regclass,
              'pg_catalog.pg_statistic_ext'::regclass, 'pg_catalog.pg_policy'::regclass
          )
    )
) AS blockers
