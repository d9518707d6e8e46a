-- The partitions of the given tables of the schema (a catalog read: it locks none of them).
SELECT child.relname
FROM pg_inherits AS i
JOIN pg_class AS parent ON parent.oid = i.inhparent
JOIN pg_class AS child ON child.oid = i.inhrelid
WHERE parent.relnamespace = 'learning_platform'::regnamespace
  AND parent.relname = ANY (%(tables)s)
