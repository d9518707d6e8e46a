-- A nullable column without a default changes only the catalog: no rewrite of the table.
ALTER TABLE {table} {additions}
