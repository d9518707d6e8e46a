-- The partitions of the given tables of the schema, with their parent and their size on disk
-- (table, indexes and TOAST).
SELECT parent.relname, child.relname, pg_total_relation_size(child.oid)
FROM pg_inherits AS i
JOIN pg_class AS parent ON parent.oid = i.inhparent
JOIN pg_class AS child ON child.oid = i.inhrelid
WHERE parent.relnamespace = 'learning_platform'::regnamespace
  AND parent.relname = ANY (%(tables)s)
ORDER BY child.relname
